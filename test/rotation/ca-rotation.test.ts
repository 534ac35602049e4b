// Issuing-CA and root rotation of a running mesh under load (issue 8 and 9): an in-process
// control plane and three sidecars (embedded Maildir backends) carry continuous mail while the
// operator's sequence runs with the real CLI on the CA directory:
//   ca rotate --issuer → reloadCa → every node on the new revision → nodes renew
//   ca rotate --root   → reloadCa → every node on the two-root revision (Status RPC)
//   ca rotate --issuer → reloadCa → nodes renew under the new root
//   ca retire-root     → reloadCa → every node on the one-root revision
// Zero failed handshakes (ingress refusals) and zero non-250 deliveries throughout; afterwards a
// peer still presenting a certificate of the retired root is refused with ERR_UNKNOWN_AUTHORITY.
// Renewals are driven explicitly: the sidecars' rotation loops are stopped and `rotator.tick()` is
// called with the sidecars' ManualClock set past half-life of every certificate in use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { cp as copyDir, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { initCa } from '../../ca/init.ts';
import { issueLeaf } from '../../ca/issue.ts';
import { generateKeyPair, privateKeyToPem } from '../../ca/keys.ts';
import { loadCa } from '../../ca/load.ts';
import { parseCertificates } from '../../ca/pem.ts';
import { ManualClock } from '../../common/clock.ts';
import { createLogger } from '../../common/log.ts';
import { ControlPlaneClient } from '../../api/client.ts';
import { startControlPlane, type ControlPlane } from '../../control-plane/start.ts';
import { startSidecar, type Sidecar } from '../../sidecar/run.ts';
import type { SidecarConfig } from '../../sidecar/config.ts';
import type { Identity } from '../../sidecar/identity/identity.ts';
import { MeshDialer } from '../../sidecar/mesh/dialer.ts';
import { MailClient } from '../../sidecar/lmtp/client.ts';
import { freePorts } from '../../cli/demo/ports.ts';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../cli/mailmesh.ts', import.meta.url));
const DEMO_POLICY = fileURLToPath(new URL('../../policies/examples/demo/', import.meta.url));
const TD = 'mail.test';
const SHARDS = ['tokyo-1', 'osaka-1', 'frankfurt-1'] as const;
const USER: Record<string, string> = { 'tokyo-1': 'alice@mail.test', 'osaka-1': 'bob@mail.test', 'frankfurt-1': 'carol@mail.test' };
const MIN = 60_000;

const quiet = () => createLogger({ test: true }).child({}, { level: process.env.MAILMESH_TEST_LOG ?? 'silent' });

async function mailmesh(args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [CLI, ...args, '--json']);
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** Wait for a condition driven by network events (bounded; no fixed sleeps). */
async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const issuerOf = (id: Identity) => parseCertificates(id.chainPem)[1].fingerprint256;

interface Load {
  ok: number;
  failures: string[];
  stop(): Promise<void>;
}

/**
 * Continuous traffic: for every ordered pair of shards, a loop of mesh LMTP deliveries over a
 * FRESH full handshake each time (a dialer bound to the sending sidecar's live identity and
 * snapshot, session tickets dropped before each dial), plus a loop of SMTP messages into each
 * front door for users on all three shards (the sidecars' own pooled dialers).
 */
function startLoad(sidecars: Map<string, Sidecar>, clock: ManualClock): Load {
  const state = { ok: 0, failures: [] as string[], running: true };
  const loops: Promise<void>[] = [];
  let n = 0;
  const body = (tag: string) => Buffer.from(`Message-ID: <${tag}.${n++}.${process.pid}@rotation.test>\r\nFrom: load@sender.test\r\nSubject: rotation load\r\n\r\n${tag}\r\n`);
  for (const from of SHARDS) {
    const a = sidecars.get(from)!;
    for (const to of SHARDS) {
      if (to === from) continue;
      const dialer = new MeshDialer({
        identity: () => a.rotator.current(), bundle: () => a.view.bundle, trustDomain: () => TD,
        resolveShard: a.view.meshAddress, revoked: a.view.revocations, clock, maxIdlePerShard: 1,
      });
      loops.push((async () => {
        while (state.running) {
          dialer.updateIdentity(); // forget session tickets: every delivery is a full mTLS handshake
          try {
            const lease = await dialer.acquire(to, 'mailmesh-lmtp');
            const c = await MailClient.open(lease.socket, { lmtp: true, heloName: `${from}.load`, timeoutMs: 10_000 });
            const res = await c.send({ from: 'load@sender.test', recipients: [USER[to]], body: body(`${from}-${to}`) });
            if (res.recipients[0].code !== 250) state.failures.push(`${from}→${to} mesh LMTP: ${res.recipients[0].code} ${res.recipients[0].message}`);
            else state.ok++;
            await c.quit().catch(() => {});
            lease.release(false);
          } catch (err) {
            state.failures.push(`${from}→${to} mesh: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
          }
        }
        dialer.close();
      })());
    }
    loops.push((async () => {
      const [host, port] = a.addresses.smtp.split(':');
      while (state.running) {
        try {
          const socket = net.connect(Number(port), host);
          await new Promise((r, j) => socket.once('connect', r).once('error', j));
          const c = await MailClient.open(socket, { lmtp: false, heloName: 'load.test', timeoutMs: 20_000 });
          const recipients = SHARDS.map((s) => USER[s]);
          const res = await c.send({ from: 'load@sender.test', recipients, body: body(`smtp-${from}`) });
          res.recipients.forEach((r, i) => (r.code === 250 ? state.ok++ : state.failures.push(`${from} front door → ${recipients[i]}: ${r.code} ${r.message}`)));
          await c.quit().catch(() => {});
        } catch (err) {
          state.failures.push(`${from} front door: ${(err as Error).message}`);
        }
      }
    })());
  }
  return {
    get ok() {
      return state.ok;
    },
    get failures() {
      return state.failures;
    },
    async stop() {
      state.running = false;
      await Promise.all(loops);
    },
  };
}

test('issuing-CA and root rotation under load: zero failed handshakes and deliveries; a retired root is refused', { timeout: 240_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mm-ca-rotation-'));
  const caDir = join(dir, 'ca');
  const sidecars = new Map<string, Sidecar>();
  let cp: ControlPlane | undefined;
  let load: Load | undefined;
  try {
    await initCa({ dir: caDir, trustDomain: TD });
    const policyDir = join(dir, 'policy');
    await copyDir(DEMO_POLICY, policyDir, { recursive: true });
    const meshPorts = await freePorts(SHARDS.length);
    let i = 0;
    const meshYaml = await readFile(join(policyDir, 'mesh.yaml'), 'utf8');
    await writeFile(join(policyDir, 'mesh.yaml'), meshYaml.replace(/mesh: 127\.0\.0\.1:0/g, () => `mesh: 127.0.0.1:${meshPorts[i++]}`));
    cp = await startControlPlane({ listen: '127.0.0.1:0', caDir, policyDir, stateDir: join(dir, 'cp') }, { log: quiet(), watchPolicy: false });
    const control = cp;

    // The sidecars' clock: real time at start, moved past half-life only to make renewals due.
    const clock = new ManualClock(Date.now());
    for (const [k, shard] of SHARDS.entries()) {
      const sdir = join(dir, shard);
      await mkdir(sdir, { recursive: true });
      const { token } = await control.createJoinToken({ shard, node: `${shard}-a` });
      await writeFile(join(sdir, 'token'), token, { mode: 0o600 });
      const cfg: SidecarConfig = {
        shard, node: `${shard}-a`, controlPlane: control.address, caBundle: join(caDir, 'bundle.pem'), joinTokenFile: join(sdir, 'token'),
        stateDir: join(sdir, 'state'), tlsDir: join(sdir, 'tls'), mode: 'embedded', hostname: `${shard}.mail.test`,
        listen: { mesh: `127.0.0.1:${meshPorts[k]}`, smtp: '127.0.0.1:0' },
        backends: { maildir: join(sdir, 'maildir') },
        limits: { maxMessageBytes: 1024 * 1024, maxRecipients: 10, maxClients: 100 },
        mailAuth: false,
      };
      const sc = await startSidecar(cfg, { clock, log: quiet() });
      sc.rotator.stop(); // renewals are driven by tick() below
      sidecars.set(shard, sc);
    }
    await until('every sidecar ready', () => [...sidecars.values()].every((s) => s.ready()));

    const all = [...sidecars.values()];
    const admin = async () => {
      const ca = await loadCa(caDir);
      const kp = generateKeyPair('P-256');
      const leaf = issueLeaf(ca.issuer, { publicKey: kp.publicKey, spiffeId: `spiffe://${TD}/admin/ops`, ttlMs: 600_000 });
      return new ControlPlaneClient({ address: control.address, bundlePem: control.bundlePem, trustDomain: TD, cert: { certPem: leaf.chainPem, keyPem: privateKeyToPem(kp.privateKey) } });
    };
    // What `mailmesh status` checks: every node reports the revision the control plane serves.
    const everyNodeOn = async (revision: string) => {
      await until(`every node on ${revision}`, async () => {
        const st = await control.status();
        return (st.nodes ?? []).length === SHARDS.length && (st.nodes ?? []).every((nd) => nd.revision === revision);
      });
      const client = await admin();
      try {
        const st = await client.status();
        assert.equal(st.revision, revision);
        assert.deepEqual(st.nodes.map((nd) => nd.revision), SHARDS.map(() => revision), 'Status RPC: every node on the served revision');
      } finally {
        client.close();
      }
    };
    const reload = async () => {
      const before = control.revision();
      assert.equal(await control.reloadCa(), 'changed');
      assert.notEqual(control.revision(), before, 'a CA change is a new revision');
      await everyNodeOn(control.revision());
      return control.revision();
    };
    const renewAll = async (issuerFp: string) => {
      clock.set(Date.now() + 40 * MIN); // past half-life (30 min ± 10 %) of every certificate in use
      for (const s of all) {
        const before = s.rotator.current()!.serial;
        await s.rotator.tick();
        assert.notEqual(s.rotator.current()!.serial, before, 'renewed');
        assert.equal(issuerOf(s.rotator.current()!), issuerFp, 'renewed from the new issuing CA');
        await progress(); // traffic between a renewed node and not-yet-renewed ones
      }
    };
    let mark = 0;
    const progress = async () => {
      const target = load!.ok + 24;
      await until('traffic to progress', () => load!.ok >= target || load!.failures.length > 0, 30_000);
      assert.deepEqual(load!.failures, []);
      mark = load!.ok;
    };

    load = startLoad(sidecars, clock);
    await progress();
    const firstRevision = control.revision();
    const r1Issuer = issuerOf(all[0].rotator.current()!);

    // 1. Issuing CA, same root.
    const iss = (await mailmesh(['ca', 'rotate', '--dir', caDir, '--issuer'])) as { issuer: { fingerprint256: string } };
    const rev1 = await reload();
    assert.equal(rev1.replace(firstRevision, ''), '+ca1');
    for (const s of all) assert.deepEqual(s.view.issuers.map((c) => c.fingerprint256), [iss.issuer.fingerprint256, r1Issuer], 'snapshot lists the new and the previous issuing CA');
    assert.equal(parseCertificates(control.identity().chainPem)[1].fingerprint256, iss.issuer.fingerprint256, 'the control plane re-issued its own certificate');
    await progress();
    await renewAll(iss.issuer.fingerprint256);

    // 2. Root: overlap bundle, issuer unchanged, next issuer listed.
    const root = (await mailmesh(['ca', 'rotate', '--dir', caDir, '--root'])) as { previousRoot: { fingerprint256: string }; root: { fingerprint256: string }; nextIssuer: { fingerprint256: string } };
    await reload();
    for (const s of all) {
      assert.deepEqual(s.view.bundle.roots.map((r) => r.fingerprint256), [root.previousRoot.fingerprint256, root.root.fingerprint256], 'every node trusts both roots');
      assert.ok(s.view.issuers.some((c) => c.fingerprint256 === root.nextIssuer.fingerprint256));
    }
    await progress();

    // 3. Switch to the new root's issuing CA; nodes renew under the new root.
    const oldRootIdentity = all[1].rotator.current()!; // osaka, from the old root: kept for the end
    const sw = (await mailmesh(['ca', 'rotate', '--dir', caDir, '--issuer'])) as { promoted: boolean; issuer: { fingerprint256: string } };
    assert.equal(sw.promoted, true);
    await reload();
    const cpChain = parseCertificates(control.identity().chainPem);
    assert.equal(cpChain[1].fingerprint256, root.nextIssuer.fingerprint256, 'the control plane now serves a certificate from the new root');
    await progress();
    await renewAll(root.nextIssuer.fingerprint256);

    // 4. Retire the old root.
    await mailmesh(['ca', 'retire-root', '--dir', caDir, '--fingerprint', root.previousRoot.fingerprint256]);
    await reload();
    for (const s of all) {
      assert.deepEqual(s.view.bundle.roots.map((r) => r.fingerprint256), [root.root.fingerprint256]);
      assert.deepEqual(s.view.issuers.map((c) => c.fingerprint256), [root.nextIssuer.fingerprint256]);
    }
    await progress();
    await load.stop();

    assert.deepEqual(load.failures, [], 'no delivery failed');
    assert.ok(mark >= 24 * 12, `traffic flowed throughout (${mark} deliveries)`);
    for (const [shard, s] of sidecars) assert.deepEqual(s.ingressStats.rejected, {}, `${shard}: no handshake refused`);

    // A peer still holding a certificate of the retired root is refused by the ingress.
    const tokyo = sidecars.get('tokyo-1')!;
    const closed = await new Promise<boolean>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: meshPorts[0], cert: oldRootIdentity.chainPem, key: oldRootIdentity.keyPem, ALPNProtocols: ['mailmesh-lmtp'], rejectUnauthorized: false });
      s.on('data', () => resolve(false)); // a byte from the backend would mean it got through
      s.on('close', () => resolve(true));
      s.on('error', () => {});
    });
    assert.equal(closed, true);
    await until('the refusal to be counted', () => (tokyo.ingressStats.rejected.ERR_UNKNOWN_AUTHORITY ?? 0) === 1, 5000);
    assert.deepEqual(tokyo.ingressStats.rejected, { ERR_UNKNOWN_AUTHORITY: 1 });
    // openssl agrees with the mesh: the old chain does not verify against the bundle now in force.
    await writeFile(join(dir, 'old.pem'), oldRootIdentity.chainPem);
    await assert.rejects(run('openssl', ['verify', '-CAfile', join(caDir, 'bundle.pem'), '-untrusted', join(caDir, 'issuer-previous.pem'), join(dir, 'old.pem')]));
    const current = new X509Certificate(tokyo.rotator.current()!.certPem);
    assert.ok(current.checkIssued(new X509Certificate(await readFile(join(caDir, 'issuer.pem')))));
  } finally {
    await load?.stop().catch(() => {});
    for (const s of sidecars.values()) await s.close().catch(() => {});
    await cp?.close();
    await rm(dir, { recursive: true, force: true });
  }
});
