import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { initCa } from '../../ca/init.ts';
import { loadCa } from '../../ca/load.ts';
import { issueLeaf } from '../../ca/issue.ts';
import { generateKeyPair } from '../../ca/keys.ts';
import { OID } from '../../ca/algorithms.ts';
import { decodeBasicConstraints, readCertificate } from '../../ca/certificate.ts';
import { rotateIssuer } from '../../ca/rotate.ts';
import { HOUR, TD, tempDir } from './fixtures.ts';

const pathLen = (pem: string) => decodeBasicConstraints(readCertificate(new X509Certificate(pem).raw).extensions.get(OID.basicConstraints)!.value);

test('initCa writes the CA files with keys 0600 and certificates 0644', async () => {
  const t = tempDir();
  try {
    await initCa({ dir: t.dir, trustDomain: TD });
    assert.deepEqual(readdirSync(t.dir).sort(), ['bundle.pem', 'ca.json', 'issuer.key', 'issuer.pem', 'root.key', 'root.pem']);
    for (const k of ['root.key', 'issuer.key']) assert.equal(statSync(join(t.dir, k)).mode & 0o777, 0o600, k);
    for (const c of ['root.pem', 'issuer.pem', 'bundle.pem', 'ca.json']) assert.equal(statSync(join(t.dir, c)).mode & 0o777, 0o644, c);
    assert.deepEqual(pathLen(readFileSync(join(t.dir, 'root.pem'), 'utf8')), { ca: true, pathLen: 1 });
    assert.deepEqual(pathLen(readFileSync(join(t.dir, 'issuer.pem'), 'utf8')), { ca: true, pathLen: 0 });
    assert.equal(readFileSync(join(t.dir, 'bundle.pem'), 'utf8'), readFileSync(join(t.dir, 'root.pem'), 'utf8'));
    assert.equal(JSON.parse(readFileSync(join(t.dir, 'ca.json'), 'utf8')).trustDomain, TD);
  } finally {
    t.cleanup();
  }
});

test('initCa refuses to overwrite an existing CA unless forced', async () => {
  const t = tempDir();
  try {
    await initCa({ dir: t.dir, trustDomain: TD });
    const before = readFileSync(join(t.dir, 'root.pem'), 'utf8');
    await assert.rejects(initCa({ dir: t.dir, trustDomain: TD }), { code: 'ERR_CA_EXISTS' });
    assert.equal(readFileSync(join(t.dir, 'root.pem'), 'utf8'), before);
    await initCa({ dir: t.dir, trustDomain: TD, force: true });
    assert.notEqual(readFileSync(join(t.dir, 'root.pem'), 'utf8'), before);
    await assert.rejects(initCa({ dir: join(t.dir, 'x'), trustDomain: 'Bad TD' }), { code: 'ERR_BAD_TRUST_DOMAIN' });
    assert.equal(existsSync(join(t.dir, 'x')), false);
  } finally {
    t.cleanup();
  }
});

test('loadCa works without the root key and issues verifiable leaves', async () => {
  const t = tempDir();
  try {
    await initCa({ dir: t.dir, trustDomain: TD, algorithm: 'P-384' });
    unlinkSync(join(t.dir, 'root.key'));
    const ca = await loadCa(t.dir);
    assert.equal(ca.trustDomain, TD);
    assert.equal(ca.algorithm, 'P-384');
    const leaf = issueLeaf(ca.issuer, { publicKey: generateKeyPair().publicKey, spiffeId: `spiffe://${TD}/control-plane`, ttlMs: HOUR });
    assert.ok(new X509Certificate(leaf.certPem).verify(ca.issuer.cert.publicKey));
  } finally {
    t.cleanup();
  }
});

test('loadCa: missing directory, unreadable and mismatched files', async () => {
  const t = tempDir();
  try {
    await assert.rejects(loadCa(join(t.dir, 'nope')), { code: 'ERR_CA_NOT_FOUND' });
    await initCa({ dir: t.dir, trustDomain: TD });
    const other = tempDir();
    try {
      await initCa({ dir: other.dir, trustDomain: TD });
      // A bundle from another CA: the issuing CA's self-test fails.
      writeFileSync(join(t.dir, 'bundle.pem'), readFileSync(join(other.dir, 'bundle.pem')));
      await assert.rejects(loadCa(t.dir), { code: 'ERR_ISSUER_SELFTEST' });
      writeFileSync(join(t.dir, 'bundle.pem'), readFileSync(join(t.dir, 'root.pem')));
      // A key that does not belong to the issuing certificate.
      const goodKey = readFileSync(join(t.dir, 'issuer.key'));
      writeFileSync(join(t.dir, 'issuer.key'), readFileSync(join(other.dir, 'issuer.key')));
      await assert.rejects(loadCa(t.dir), { code: 'ERR_CA_UNREADABLE' });
      writeFileSync(join(t.dir, 'issuer.key'), 'not a key');
      await assert.rejects(loadCa(t.dir), { code: 'ERR_CA_UNREADABLE' });
      writeFileSync(join(t.dir, 'issuer.key'), goodKey);
      if (process.getuid?.() !== 0) {
        chmodSync(join(t.dir, 'issuer.key'), 0);
        await assert.rejects(loadCa(t.dir), { code: 'ERR_CA_UNREADABLE' });
        chmodSync(join(t.dir, 'issuer.key'), 0o600);
      }
      await loadCa(t.dir);
    } finally {
      other.cleanup();
    }
  } finally {
    t.cleanup();
  }
});

test('rotateIssuer makes a new issuing CA with the root key; old leaves still verify', async () => {
  const t = tempDir();
  try {
    const first = await initCa({ dir: t.dir, trustDomain: TD });
    const rotated = await rotateIssuer({ dir: t.dir });
    assert.notEqual(rotated.issuer.cert.fingerprint256, first.issuer.cert.fingerprint256);
    assert.equal(statSync(join(t.dir, 'issuer.key')).mode & 0o777, 0o600);
    const loaded = await loadCa(t.dir);
    assert.equal(loaded.issuer.cert.fingerprint256, rotated.issuer.cert.fingerprint256);
    unlinkSync(join(t.dir, 'root.key'));
    await assert.rejects(rotateIssuer({ dir: t.dir }), { code: 'ERR_CA_NOT_FOUND' });
  } finally {
    t.cleanup();
  }
});
