import 'reflect-metadata';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { createCsr } from '../../ca/csr.ts';
import { initCa } from '../../ca/init.ts';
import type { LoadedCa } from '../../ca/load.ts';
import { issueLeaf, BACKDATE_MS } from '../../ca/issue.ts';
import { generateKeyPair, KEY_ALGORITHMS } from '../../ca/keys.ts';
import { parseCertificates } from '../../ca/pem.ts';
import { HOUR, TD, tempDir } from './fixtures.ts';

let ca: LoadedCa;
let cleanup: () => void;
before(async () => {
  const t = tempDir();
  cleanup = t.cleanup;
  ca = await initCa({ dir: t.dir, trustDomain: TD });
});
after(() => cleanup());

const ID = `spiffe://${TD}/shard/tokyo-1/node/a`;

test('a leaf from a CSR has the X.509-SVID profile (checked with @peculiar/x509)', () => {
  const kp = generateKeyPair();
  const leaf = issueLeaf(ca.issuer, { csr: createCsr(kp), spiffeId: ID, dnsNames: ['mx1.mail.example'], ttlMs: HOUR, now: ca.issuer.notBefore.getTime() + HOUR });
  const cert = new x509.X509Certificate(leaf.certPem);
  assert.equal(cert.subject, '');
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
  assert.equal(san.critical, true, 'SAN is critical because the subject is empty');
  assert.deepEqual(san.names.toJSON(), [{ type: 'url', value: ID }, { type: 'dns', value: 'mx1.mail.example' }]);
  const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
  assert.equal(bc.ca, false);
  assert.equal(bc.critical, true);
  const ku = cert.getExtension(x509.KeyUsagesExtension)!;
  assert.equal(ku.critical, true);
  assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature);
  assert.deepEqual([...cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages], ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.ok(cert.getExtension(x509.AuthorityKeyIdentifierExtension));
  const node = new X509Certificate(leaf.certPem);
  assert.ok(node.publicKey.equals(kp.publicKey));
  assert.equal(node.serialNumber, leaf.serial);
  assert.match(leaf.serial, /^[0-9A-F]{32}$/, '128-bit serial, positive');
  assert.ok(node.verify(ca.issuer.cert.publicKey));
  const chain = parseCertificates(leaf.chainPem);
  assert.equal(chain.length, 2);
  assert.equal(chain[1].fingerprint256, ca.issuer.cert.fingerprint256, 'chain is leaf then issuer');
});

test('validity: notBefore backdated 60 s, notAfter = now + TTL, whole seconds', () => {
  const now = ca.issuer.notBefore.getTime() + 10 * HOUR + 250;
  const leaf = issueLeaf(ca.issuer, { publicKey: generateKeyPair().publicKey, spiffeId: ID, ttlMs: HOUR, now });
  const flo = (ms: number) => Math.floor(ms / 1000) * 1000;
  assert.equal(leaf.notBefore.getTime(), flo(now - BACKDATE_MS));
  assert.equal(leaf.notAfter.getTime(), flo(now + HOUR));
  const node = new X509Certificate(leaf.certPem);
  assert.equal(node.validFromDate.getTime(), leaf.notBefore.getTime());
  assert.equal(node.validToDate.getTime(), leaf.notAfter.getTime());
});

test('TTL is capped by the issuing CA notAfter', () => {
  const now = ca.issuer.notAfter.getTime() - HOUR;
  const leaf = issueLeaf(ca.issuer, { publicKey: generateKeyPair().publicKey, spiffeId: ID, ttlMs: 48 * HOUR, now });
  assert.equal(leaf.notAfter.getTime(), ca.issuer.notAfter.getTime());
  assert.throws(() => issueLeaf(ca.issuer, { publicKey: generateKeyPair().publicKey, spiffeId: ID, ttlMs: HOUR, now: ca.issuer.notAfter.getTime() + 1 }), { code: 'ERR_ISSUER_EXPIRED' });
});

test('the identity comes from the caller, never from the CSR subject', () => {
  const csr = createCsr(generateKeyPair(), { commonName: `spiffe://${TD}/control-plane` });
  const leaf = issueLeaf(ca.issuer, { csr, spiffeId: ID, ttlMs: HOUR });
  const cert = new x509.X509Certificate(leaf.certPem);
  assert.equal(cert.subject, '');
  assert.equal(leaf.spiffeId, ID);
  assert.ok(!leaf.certPem.includes('control-plane'));
  assert.ok(!Buffer.from(leaf.der).includes(Buffer.from('control-plane')));
});

test('bad requests are refused with their codes', () => {
  const publicKey = generateKeyPair().publicKey;
  assert.throws(() => issueLeaf(ca.issuer, { publicKey, spiffeId: 'spiffe://other.example/x', ttlMs: HOUR }), { code: 'ERR_WRONG_TRUST_DOMAIN' });
  assert.throws(() => issueLeaf(ca.issuer, { publicKey, spiffeId: `https://${TD}/x`, ttlMs: HOUR }), { code: 'ERR_NOT_SPIFFE' });
  assert.throws(() => issueLeaf(ca.issuer, { publicKey, spiffeId: `spiffe://${TD}`, ttlMs: HOUR }), { code: 'ERR_NOT_SPIFFE' });
  for (const ttlMs of [0, -1, NaN, Infinity]) assert.throws(() => issueLeaf(ca.issuer, { publicKey, spiffeId: ID, ttlMs }), { code: 'ERR_BAD_TTL' });
  assert.throws(() => issueLeaf(ca.issuer, { publicKey, spiffeId: ID, dnsNames: ['bad name'], ttlMs: HOUR }), { code: 'ERR_BAD_DNS_NAME' });
  assert.throws(() => issueLeaf(ca.issuer, { spiffeId: ID, ttlMs: HOUR }), { code: 'ERR_CSR_INVALID' });
  const forged = createCsr(generateKeyPair());
  forged[forged.length - 3] ^= 0xff;
  assert.throws(() => issueLeaf(ca.issuer, { csr: forged, spiffeId: ID, ttlMs: HOUR }), { code: 'ERR_CSR_INVALID' });
});

test('P-384 and Ed25519 CAs issue leaves for any supported leaf key', async () => {
  for (const algorithm of KEY_ALGORITHMS.filter((a) => a !== 'P-256')) {
    const t = tempDir();
    try {
      const other = await initCa({ dir: t.dir, trustDomain: TD, algorithm });
      assert.equal(other.issuer.algorithm, algorithm);
      for (const leafAlg of KEY_ALGORITHMS) {
        const leaf = issueLeaf(other.issuer, { csr: createCsr(generateKeyPair(leafAlg)), spiffeId: ID, ttlMs: HOUR });
        const node = new X509Certificate(leaf.certPem);
        assert.ok(node.verify(other.issuer.cert.publicKey), `${algorithm} signs ${leafAlg}`);
        assert.ok(other.issuer.cert.verify(other.bundle.roots[0].publicKey));
      }
    } finally {
      t.cleanup();
    }
  }
});
