import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CompactSign, decodeProtectedHeader } from 'jose';
import { initCa } from '../../ca/init.ts';
import { parseCertificates } from '../../ca/pem.ts';
import { deserializeCompiled } from '../../policies/index.ts';
import { isApiError, verifySnapshot, type ControlPlaneClient, type SnapshotMessage } from '../../api/client.ts';
import type { ControlPlane } from '../../control-plane/start.ts';
import { adminCert, anonClient, makeWorld, newKey, startTestControlPlane, TD } from './helpers.ts';

let world: Awaited<ReturnType<typeof makeWorld>>;
let cp: ControlPlane;
let node: ControlPlaneClient;
let nodeCert: { certPem: string; keyPem: string; serial: string };
let admin: ControlPlaneClient;
const clients: ControlPlaneClient[] = [];

before(async () => {
  world = await makeWorld();
  cp = await startTestControlPlane(world.config);
  const anon = anonClient(cp);
  const { token } = await cp.createJoinToken({ shard: 'tokyo-1', node: 'w' });
  const k = newKey();
  const r = await anon.sign({ csrDer: k.csrDer, joinToken: token });
  anon.close();
  nodeCert = { certPem: r.chainPem, keyPem: k.keyPem, serial: r.serial };
  node = anonClient(cp, nodeCert);
  admin = anonClient(cp, await adminCert(world.config.caDir));
  clients.push(node, admin);
});
after(async () => {
  for (const c of clients) c.close();
  await cp.close();
  await world.cleanup();
});

/** The next snapshot a watch delivers. */
function nextSnapshot(client: ControlPlaneClient, revision?: string): Promise<SnapshotMessage> {
  return new Promise((resolve, reject) => {
    const h = client.watch({
      revision,
      onSnapshot: (s) => {
        h.close();
        resolve(s);
      },
      onError: (e) => {
        h.close();
        reject(e);
      },
    });
  });
}

test('a snapshot verifies with only the bundle; tampered or foreign-signed ones are refused', async () => {
  const snap = await nextSnapshot(node);
  assert.equal(snap.revision, cp.revision());
  const payload = await verifySnapshot(snap.jws, cp.bundlePem, TD);
  assert.equal(payload.revision, snap.revision);
  assert.equal(payload.bundlePem, cp.bundlePem);
  assert.ok(deserializeCompiled(payload.placement).shards.length >= 3);
  assert.equal(decodeProtectedHeader(snap.jws).alg, 'ES256');

  // Tampered payload (same header and signature).
  const [h, p, s] = snap.jws.split('.');
  const evil = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  evil.revokedIds = [];
  evil.revision = 'evil';
  const tampered = [h, Buffer.from(JSON.stringify(evil)).toString('base64url'), s].join('.');
  await assert.rejects(verifySnapshot(tampered, cp.bundlePem, TD), (e) => isApiError(e, 'ERR_SNAPSHOT_INVALID'));

  // Signed by a node (valid chain, wrong identity).
  const nodeKey = (await import('node:crypto')).createPrivateKey(nodeCert.keyPem);
  const byNode = await new CompactSign(Buffer.from(JSON.stringify(evil)))
    .setProtectedHeader({ alg: 'ES256', typ: 'mailmesh-snapshot+jws', x5c: parseCertificates(nodeCert.certPem).map((c) => c.raw.toString('base64')) })
    .sign(nodeKey);
  await assert.rejects(verifySnapshot(byNode, cp.bundlePem, TD), (e) => isApiError(e, 'ERR_SNAPSHOT_SIGNER'));

  // A bundle from another CA does not accept the real snapshot.
  const otherCa = await initCa({ dir: join(world.dir, 'other-ca'), trustDomain: TD });
  await assert.rejects(verifySnapshot(snap.jws, otherCa.bundle.toPem(), TD), (e) => isApiError(e, 'ERR_SNAPSHOT_SIGNER'));
});

test('a revocation reaches a watcher that stated the current revision, and the revoked cert cannot renew', async () => {
  const victim = anonClient(cp);
  const { token } = await cp.createJoinToken({ shard: 'osaka-1', node: 'victim' });
  const vk = newKey();
  const v = await victim.sign({ csrDer: vk.csrDer, joinToken: token });
  victim.close();
  const current = cp.revision();
  // Stating the current revision: the first thing received must be the revocation, not a repeat.
  const next = nextSnapshot(node, current);
  // Wait until the stream is attached (event-driven: poll the watcher count).
  while (cp.watchers() < 1) await new Promise((r) => setImmediate(r));
  const revision = await admin.revoke({ serials: [v.serial], reason: 'test' });
  const snap = await next;
  assert.equal(snap.revision, revision);
  assert.notEqual(snap.revision, current);
  const payload = await verifySnapshot(snap.jws, cp.bundlePem, TD);
  assert.ok(payload.revokedSerials.includes(v.serial));
  const revoked = anonClient(cp, { certPem: v.chainPem, keyPem: vk.keyPem });
  try {
    await assert.rejects(revoked.sign({ csrDer: newKey().csrDer }), (e) => isApiError(e, 'ERR_REVOKED_SERIAL'));
  } finally {
    revoked.close();
  }
  // Identity revocation too.
  const rev2 = await admin.revoke({ identities: [`spiffe://${TD}/shard/osaka-1/node/victim`] });
  assert.match(rev2, /\+r2$/);
  // Only admins revoke.
  await assert.rejects(node.revoke({ serials: ['01'] }), (e) => isApiError(e, 'ERR_PERMISSION_DENIED'));
});

test('an invalid policy edit keeps the old revision served and shows in status; a fix is pushed', async () => {
  const before = cp.revision();
  const mesh = join(world.config.policyDir, 'mesh.yaml');
  const good = await readFile(mesh, 'utf8');
  await writeFile(mesh, good.replace('region: eu', 'region: 42\n    bogus: true'));
  assert.equal(await cp.reloadPolicy(), 'error');
  assert.equal(cp.revision(), before);
  const st = await admin.status();
  assert.equal(st.revision, before);
  assert.match(st.lastPolicyError ?? '', /mesh\.yaml:\d+:\d+/);
  assert.equal(st.policyErrorsTotal, 1);
  // A watcher still gets the old revision.
  assert.equal((await nextSnapshot(node)).revision, before);

  await writeFile(mesh, good.replace('  - id: frankfurt-1', '  - id: nagoya-1\n    region: jp\n    mesh: 127.0.0.1:0\n  - id: frankfurt-1'));
  const next = nextSnapshot(node, before);
  while (cp.watchers() < 1) await new Promise((r) => setImmediate(r));
  assert.equal(await cp.reloadPolicy(), 'changed');
  const snap = await next;
  assert.notEqual(snap.revision, before);
  const payload = await verifySnapshot(snap.jws, cp.bundlePem, TD);
  assert.ok(deserializeCompiled(payload.placement).shards.some((s) => s.id === 'nagoya-1'));
  assert.equal((await admin.status()).lastPolicyError, null);
  // The new shard can now join.
  const { token } = await cp.createJoinToken({ shard: 'nagoya-1', node: 'n1' });
  const anon = anonClient(cp);
  try {
    assert.equal((await anon.sign({ csrDer: newKey().csrDer, joinToken: token })).spiffeId, `spiffe://${TD}/shard/nagoya-1/node/n1`);
  } finally {
    anon.close();
  }
  await writeFile(mesh, good);
  assert.equal(await cp.reloadPolicy(), 'changed');
});

test('Report is recorded and shows in status with the clock offset', async () => {
  const r = await node.report({ revision: cp.revision(), certSerial: nodeCert.serial, certNotAfter: Date.now() + 3_600_000, clockOffsetMs: 42 });
  assert.ok(Math.abs(r.serverTimeMs - Date.now()) < 5_000);
  assert.ok(Math.abs(r.clockOffsetMs) < 5_000);
  const st = await admin.status();
  const me = st.nodes.find((n) => n.spiffeId === `spiffe://${TD}/shard/tokyo-1/node/w`);
  assert.ok(me, JSON.stringify(st.nodes));
  assert.equal(me.revision, cp.revision());
  assert.equal(me.certSerial, nodeCert.serial);
  assert.equal(me.clockOffsetMs, 42);
  // Nodes may not read status.
  await assert.rejects(node.status(), (e) => isApiError(e, 'ERR_PERMISSION_DENIED'));
});

test('the control plane renews its own certificate live; new snapshots verify with the new chain', async () => {
  const old = cp.identity();
  await cp.renewIdentity();
  const now = cp.identity();
  assert.notEqual(now.serial, old.serial);
  const fresh = anonClient(cp, nodeCert);
  clients.push(fresh);
  const snap = await nextSnapshot(fresh);
  const x5c = decodeProtectedHeader(snap.jws).x5c ?? [];
  assert.equal(parseCertificates(now.chainPem)[0].raw.toString('base64'), x5c[0]);
  await verifySnapshot(snap.jws, cp.bundlePem, TD);
  await fresh.report({ revision: snap.revision });
});

test('the revision names the git commit, with -dirty-<hash> for uncommitted edits; fs.watch reloads', async () => {
  const w = await makeWorld();
  const git = (...args: string[]) => execFileSync('git', ['-C', w.config.policyDir, ...args], { stdio: 'pipe' }).toString().trim();
  git('init', '-q');
  git('-c', 'user.email=t@t', '-c', 'user.name=t', 'add', '.');
  git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-q', '-m', 'policy');
  const head = git('rev-parse', 'HEAD');
  const cp2 = await startTestControlPlane(w.config, { watchPolicy: true, debounceMs: 50 });
  const admin2 = anonClient(cp2, await adminCert(w.config.caDir));
  try {
    assert.equal(cp2.revision(), head);
    const mesh = join(w.config.policyDir, 'mesh.yaml');
    const changed = new Promise<string>((resolve) => {
      const h = setInterval(() => {
        if (cp2.revision() !== head) {
          clearInterval(h);
          resolve(cp2.revision());
        }
      }, 20);
    });
    await writeFile(mesh, (await readFile(mesh, 'utf8')).replace('joinTokenTtl: 10m', 'joinTokenTtl: 5m'));
    const rev = await changed;
    assert.match(rev, new RegExp(`^${head}-dirty-[0-9a-f]{12}$`));
    assert.equal((await admin2.status()).revision, rev);
  } finally {
    admin2.close();
    await cp2.close();
    await w.cleanup();
  }
});
