// CA rotation on disk: `mailmesh ca rotate --issuer`, `--root` (overlap bundle, staged issuer),
// `ca retire-root` with its refusals; keys 0600; chains checked with openssl as well.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { initCa } from '../../ca/init.ts';
import { issueLeaf } from '../../ca/issue.ts';
import { generateKeyPair } from '../../ca/keys.ts';
import { loadCa } from '../../ca/load.ts';
import { parseCertificates } from '../../ca/pem.ts';
import { retireRoot } from '../../ca/retire-root.ts';
import { rotateIssuer } from '../../ca/rotate.ts';
import { rotateRoot } from '../../ca/rotate-root.ts';
import { issuersInForce, normalizeFingerprint } from '../../ca/rotation.ts';
import { verifyPeerChain } from '../../ca/verify.ts';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../cli/mailmesh.ts', import.meta.url));
const TD = 'mail.test';

function leafChain(ca: Awaited<ReturnType<typeof loadCa>>) {
  const kp = generateKeyPair('P-256');
  return issueLeaf(ca.issuer, { publicKey: kp.publicKey, spiffeId: `spiffe://${TD}/shard/s/node/n`, ttlMs: 3_600_000 });
}

async function openssl(args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await run('openssl', args);
    return { ok: true, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('issuer rotation keeps the previous issuer; root rotation overlaps, stages, switches and retires', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-rot-files-'));
  try {
    const first = await initCa({ dir, trustDomain: TD });
    const oldLeaf = leafChain(first);

    // 1. Issuer, same root: old leaves still verify; previous kept; generation 1.
    const r1 = await rotateIssuer({ dir });
    assert.equal(r1.promoted, false);
    assert.equal(r1.generation, 1);
    assert.equal(statSync(join(dir, 'issuer.key')).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(dir, 'issuer-previous.pem'), 'utf8'), first.issuer.certPem);
    const ca1 = await loadCa(dir);
    verifyPeerChain(parseCertificates(oldLeaf.chainPem), { bundle: ca1.bundle, trustDomain: TD, usage: 'client' });
    assert.deepEqual((await issuersInForce(dir, ca1.issuer.cert, ca1.bundle, Date.now())).map((c) => c.fingerprint256), [r1.issuer.cert.fingerprint256, first.issuer.cert.fingerprint256]);

    // 2. Root: bundle holds both roots, the issuer in use is unchanged, the next one is staged.
    const r2 = await rotateRoot({ dir });
    assert.equal(r2.bundle.roots.length, 2);
    const ca2 = await loadCa(dir);
    assert.equal(ca2.issuer.cert.fingerprint256, r1.issuer.cert.fingerprint256, 'nothing issues from the new root yet');
    for (const f of ['issuer-next.key', 'root.key', 'root-previous.key']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    assert.equal(readFileSync(join(dir, 'root-previous.pem'), 'utf8'), first.bundle.toPem());
    await assert.rejects(rotateRoot({ dir }), { code: 'ERR_ROTATION_PENDING' });
    const oldFp = r2.previousRoot.fingerprint256;
    await assert.rejects(retireRoot({ dir, fingerprint: oldFp }), { code: 'ERR_ROOT_IN_USE' });

    // 3. Switch: the staged issuer becomes current (no root key needed).
    rmSync(join(dir, 'root.key'));
    const r3 = await rotateIssuer({ dir });
    assert.equal(r3.promoted, true);
    assert.equal(r3.issuer.cert.fingerprint256, r2.nextIssuer.fingerprint256);
    assert.ok(!existsSync(join(dir, 'issuer-next.pem')) && !existsSync(join(dir, 'issuer-next.key')));
    const ca3 = await loadCa(dir);
    const newLeaf = leafChain(ca3);
    const r1Leaf = leafChain(ca1);
    // openssl agrees: leaves of both roots verify against the overlap bundle.
    writeFileSync(join(dir, 'new-leaf.pem'), newLeaf.chainPem);
    writeFileSync(join(dir, 'r1-leaf.pem'), r1Leaf.chainPem);
    assert.ok((await openssl(['verify', '-CAfile', join(dir, 'bundle.pem'), '-untrusted', join(dir, 'issuer.pem'), join(dir, 'new-leaf.pem')])).ok);
    assert.ok((await openssl(['verify', '-CAfile', join(dir, 'bundle.pem'), '-untrusted', join(dir, 'issuer-previous.pem'), join(dir, 'r1-leaf.pem')])).ok);

    // 4. Retire: refused for a stranger and for the last root; then the old root goes.
    await assert.rejects(retireRoot({ dir, fingerprint: '00'.repeat(32) }), { code: 'ERR_ROOT_UNKNOWN' });
    await assert.rejects(retireRoot({ dir, fingerprint: 'nope' }), { code: 'ERR_ROOT_UNKNOWN' });
    const r4 = await retireRoot({ dir, fingerprint: oldFp.replace(/:/g, '').toLowerCase() });
    assert.equal(r4.bundle.roots.length, 1);
    assert.equal(r4.generation, 4);
    await assert.rejects(retireRoot({ dir, fingerprint: r4.bundle.roots[0].fingerprint256 }), { code: 'ERR_ROOT_LAST' });
    const ca4 = await loadCa(dir);
    assert.throws(() => verifyPeerChain([...parseCertificates(r1Leaf.chainPem)], { bundle: ca4.bundle, trustDomain: TD, usage: 'client' }), { code: 'ERR_UNKNOWN_AUTHORITY' });
    verifyPeerChain(parseCertificates(newLeaf.chainPem), { bundle: ca4.bundle, trustDomain: TD, usage: 'client' });
    // The previous issuer chains to the retired root: no longer in force.
    assert.deepEqual((await issuersInForce(dir, ca4.issuer.cert, ca4.bundle, Date.now())).length, 1);
    const v = await openssl(['verify', '-CAfile', join(dir, 'bundle.pem'), '-untrusted', join(dir, 'issuer-previous.pem'), join(dir, 'r1-leaf.pem')]);
    assert.equal(v.ok, false, v.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('normalizeFingerprint takes what operators paste', () => {
  const fp = 'AB:'.repeat(31) + 'AB';
  assert.equal(normalizeFingerprint('ab'.repeat(32)), fp);
  assert.equal(normalizeFingerprint(`sha256 Fingerprint=${fp}`), fp);
  assert.equal(normalizeFingerprint(`SHA256:${fp.toLowerCase()}`), fp);
});

test('CLI: ca rotate / retire-root with --json, usage errors exit 2, refusals exit 1 with the code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-rot-cli-'));
  const caDir = join(dir, 'ca');
  try {
    await initCa({ dir: caDir, trustDomain: TD });
    const help = await cli(['ca', 'rotate', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Examples:\n\s+\$ mailmesh ca rotate --dir \.\/ca --issuer/);
    assert.match((await cli(['ca', 'retire-root', '--help'])).stdout, /Examples:/);
    const both = await cli(['ca', 'rotate', '--dir', caDir, '--issuer', '--root']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /exactly one of --issuer or --root/);
    assert.equal((await cli(['ca', 'rotate', '--dir', caDir])).code, 2);

    const iss = JSON.parse((await cli(['ca', 'rotate', '--dir', caDir, '--issuer', '--json'])).stdout) as { action: string; generation: number; promoted: boolean; issuer: { fingerprint256: string }; previousIssuer: { fingerprint256: string } };
    assert.equal(iss.action, 'issuer');
    assert.equal(iss.generation, 1);
    assert.notEqual(iss.issuer.fingerprint256, iss.previousIssuer.fingerprint256);
    const root = JSON.parse((await cli(['ca', 'rotate', '--dir', caDir, '--root', '--json'])).stdout) as { action: string; bundle: string[]; previousRoot: { fingerprint256: string }; root: { fingerprint256: string }; nextIssuer: { fingerprint256: string } };
    assert.equal(root.action, 'root');
    assert.deepEqual(root.bundle, [root.previousRoot.fingerprint256, root.root.fingerprint256]);
    // openssl sees both roots in the bundle.
    const pemCount = (readFileSync(join(caDir, 'bundle.pem'), 'utf8').match(/BEGIN CERTIFICATE/g) ?? []).length;
    assert.equal(pemCount, 2);

    const inUse = await cli(['ca', 'retire-root', '--dir', caDir, '--fingerprint', root.previousRoot.fingerprint256]);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /^mailmesh: the current issuing CA chains to root .*\(ERR_ROOT_IN_USE\)\n$/);
    const sw = JSON.parse((await cli(['ca', 'rotate', '--dir', caDir, '--issuer', '--json'])).stdout) as { promoted: boolean; issuer: { fingerprint256: string } };
    assert.equal(sw.promoted, true);
    assert.equal(sw.issuer.fingerprint256, root.nextIssuer.fingerprint256);
    const fpOpenssl = (await openssl(['x509', '-in', join(caDir, 'root-previous.pem'), '-noout', '-fingerprint', '-sha256'])).out.trim();
    const ret = await cli(['ca', 'retire-root', '--dir', caDir, '--fingerprint', fpOpenssl, '--json']);
    assert.equal(ret.code, 0, ret.stderr);
    const out = JSON.parse(ret.stdout) as { generation: number; retired: { fingerprint256: string }; bundle: string[] };
    assert.equal(out.retired.fingerprint256, root.previousRoot.fingerprint256);
    assert.deepEqual(out.bundle, [root.root.fingerprint256]);
    const last = await cli(['ca', 'retire-root', '--dir', caDir, '--fingerprint', root.root.fingerprint256]);
    assert.equal(last.code, 1);
    assert.match(last.stderr, /ERR_ROOT_LAST/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
