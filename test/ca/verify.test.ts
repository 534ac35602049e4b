import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { OID } from '../../ca/algorithms.ts';
import { TrustBundle } from '../../ca/bundle.ts';
import { KU, extension } from '../../ca/certificate.ts';
import { seq } from '../../ca/der.ts';
import { initCa } from '../../ca/init.ts';
import { issueLeaf } from '../../ca/issue.ts';
import type { LoadedCa } from '../../ca/load.ts';
import { generateKeyPair } from '../../ca/keys.ts';
import { createIssuingCa, createRootCa } from '../../ca/mint.ts';
import { Issuer } from '../../ca/issuer.ts';
import { parseCertificates } from '../../ca/pem.ts';
import { verifyPeerChain, type VerifyOptions } from '../../ca/verify.ts';
import { HOUR, TD, badLeaf, makeLeaf, tempDir } from './fixtures.ts';

let ca: LoadedCa;
let other: LoadedCa;
const cleanups: (() => void)[] = [];
before(async () => {
  const a = tempDir();
  const b = tempDir();
  cleanups.push(a.cleanup, b.cleanup);
  ca = await initCa({ dir: a.dir, trustDomain: TD });
  other = await initCa({ dir: b.dir, trustDomain: TD });
});
after(() => cleanups.forEach((c) => c()));

const ID = `spiffe://${TD}/shard/osaka-1/node/b`;
const opts = (o: Partial<VerifyOptions> = {}): VerifyOptions => ({ bundle: ca.bundle, trustDomain: TD, usage: 'client', ...o });
const goodChain = (issuerCa = ca, now?: number): X509Certificate[] =>
  parseCertificates(issueLeaf(issuerCa.issuer, { publicKey: generateKeyPair().publicKey, spiffeId: ID, dnsNames: ['mx.mail.example'], ttlMs: HOUR, now }).chainPem);
const withIssuer = (leaf: X509Certificate) => [leaf, ca.issuer.cert];

test('a good chain verifies as client and server and yields the identity', () => {
  const chain = goodChain();
  for (const usage of ['client', 'server'] as const) {
    const peer = verifyPeerChain(chain, opts({ usage }));
    assert.equal(peer.spiffeId, ID);
    assert.equal(peer.trustDomain, TD);
    assert.equal(peer.serial, chain[0].serialNumber);
    assert.deepEqual(peer.dnsNames, ['mx.mail.example']);
    assert.equal(peer.notAfter.getTime(), chain[0].validToDate.getTime());
  }
  // Second call hits the intermediate cache and still checks the leaf signature.
  const tampered = badLeaf(other.issuer); // signed by another issuer with the same name shape
  assert.throws(() => verifyPeerChain([tampered, ca.issuer.cert], opts()), { code: 'ERR_UNKNOWN_AUTHORITY' });
});

test('a bundle with several roots accepts leaves from each (rotation overlap)', () => {
  const both = ca.bundle.with(other.bundle.roots[0]);
  assert.equal(both.roots.length, 2);
  assert.equal(verifyPeerChain(goodChain(ca), opts({ bundle: both })).spiffeId, ID);
  assert.equal(verifyPeerChain(goodChain(other), opts({ bundle: both })).spiffeId, ID);
  const again = TrustBundle.fromPem(both.toPem());
  assert.equal(verifyPeerChain(goodChain(other), opts({ bundle: again })).spiffeId, ID);
  assert.throws(() => verifyPeerChain(goodChain(other), opts({ bundle: both.without(other.bundle.roots[0].fingerprint256) })), { code: 'ERR_UNKNOWN_AUTHORITY' });
});

test('no chain → ERR_NO_CHAIN', () => {
  assert.throws(() => verifyPeerChain([], opts()), { code: 'ERR_NO_CHAIN' });
  assert.throws(() => verifyPeerChain(undefined, opts()), { code: 'ERR_NO_CHAIN' });
});

test('self-signed, another CA, or a missing intermediate → ERR_UNKNOWN_AUTHORITY', () => {
  const kp = generateKeyPair();
  assert.throws(() => verifyPeerChain([makeLeaf({ key: kp.privateKey }, kp.publicKey)], opts()), { code: 'ERR_UNKNOWN_AUTHORITY' });
  assert.throws(() => verifyPeerChain(goodChain(other), opts()), { code: 'ERR_UNKNOWN_AUTHORITY' });
  assert.throws(() => verifyPeerChain([goodChain()[0]], opts()), { code: 'ERR_UNKNOWN_AUTHORITY' });
});

test('expired and not-yet-valid leaves (time injected, no sleeping)', () => {
  const chain = goodChain();
  assert.throws(() => verifyPeerChain(chain, opts({ now: chain[0].validToDate.getTime() + 1000 })), { code: 'ERR_CERT_EXPIRED' });
  assert.throws(() => verifyPeerChain(chain, opts({ now: chain[0].validFromDate.getTime() - 1000 })), { code: 'ERR_CERT_NOT_YET_VALID' });
  assert.equal(verifyPeerChain(chain, opts({ now: chain[0].validToDate.getTime() })).spiffeId, ID, 'notAfter itself is still valid');
});

test('an expired intermediate fails even when the leaf is in date', () => {
  const now = Date.now();
  const root = createRootCa({ trustDomain: TD, now });
  const inter = createIssuingCa({ root: root.cert, rootKey: root.privateKey, trustDomain: TD, ttlMs: 2 * HOUR, now });
  const issuer = new Issuer(inter.cert, inter.privateKey, TD);
  const bundle = new TrustBundle([root.cert]);
  const leaf = issueLeaf(issuer, { publicKey: generateKeyPair().publicKey, spiffeId: ID, ttlMs: HOUR, now });
  const chain = parseCertificates(leaf.chainPem);
  assert.equal(verifyPeerChain(chain, opts({ bundle, now })).spiffeId, ID);
  // Hand-made leaf valid for a day under an intermediate valid for 2 h.
  const longLeaf = makeLeaf({ cert: inter.cert, key: inter.privateKey }, generateKeyPair().publicKey, { notAfter: new Date(now + 24 * HOUR) });
  assert.throws(() => verifyPeerChain([longLeaf, inter.cert], opts({ bundle, now: now + 3 * HOUR })), { code: 'ERR_CERT_EXPIRED' });
});

test('wrong trust domain, URI SAN count, non-SPIFFE URI', () => {
  assert.throws(() => verifyPeerChain(withIssuer(badLeaf(ca.issuer, { uris: ['spiffe://evil.example/shard/x'] })), opts()), { code: 'ERR_WRONG_TRUST_DOMAIN' });
  assert.throws(() => verifyPeerChain(goodChain(), opts({ trustDomain: 'other.example' })), { code: 'ERR_WRONG_TRUST_DOMAIN' });
  assert.throws(() => verifyPeerChain(withIssuer(badLeaf(ca.issuer, { uris: [ID, `spiffe://${TD}/control-plane`] })), opts()), { code: 'ERR_URI_SAN_COUNT' });
  assert.throws(() => verifyPeerChain(withIssuer(badLeaf(ca.issuer, { uris: [], dnsNames: ['mx.mail.example'] })), opts()), { code: 'ERR_URI_SAN_COUNT' });
  assert.throws(() => verifyPeerChain(withIssuer(badLeaf(ca.issuer, { uris: ['http://mail.example/shard/x'] })), opts()), { code: 'ERR_NOT_SPIFFE' });
});

test('a CA certificate as leaf → ERR_LEAF_IS_CA; intermediates must be CAs', () => {
  const caLeaf = badLeaf(ca.issuer, { ca: true, ku: KU.digitalSignature | KU.keyCertSign });
  assert.throws(() => verifyPeerChain(withIssuer(caLeaf), opts()), { code: 'ERR_LEAF_IS_CA' });
  // The issuer has pathLen 0: a CA below it that signs a leaf violates the constraint.
  const subKp = generateKeyPair();
  const sub = makeLeaf({ cert: ca.issuer.cert, key: ca.issuer.key }, subKp.publicKey, { ca: true, ku: KU.keyCertSign, uris: [] });
  const under = makeLeaf({ cert: sub, key: subKp.privateKey }, generateKeyPair().publicKey);
  assert.throws(() => verifyPeerChain([under, sub, ca.issuer.cert], opts()), { code: 'ERR_CHAIN_INVALID' });
  // A non-CA in the middle is refused even if it signed the leaf.
  const plainKp = generateKeyPair();
  const plain = makeLeaf({ cert: ca.issuer.cert, key: ca.issuer.key }, plainKp.publicKey, { ku: KU.digitalSignature | KU.keyCertSign });
  const below = makeLeaf({ cert: plain, key: plainKp.privateKey }, generateKeyPair().publicKey);
  assert.throws(() => verifyPeerChain([below, plain, ca.issuer.cert], opts()), { code: 'ERR_CHAIN_INVALID' });
});

test('missing EKUs and keyUsage without digitalSignature', () => {
  assert.throws(() => verifyPeerChain(withIssuer(badLeaf(ca.issuer, { eku: null })), opts()), { code: 'ERR_MISSING_EKU' });
  const serverOnly = withIssuer(badLeaf(ca.issuer, { eku: [OID.serverAuth] }));
  assert.throws(() => verifyPeerChain(serverOnly, opts({ usage: 'client' })), { code: 'ERR_MISSING_EKU' });
  assert.equal(verifyPeerChain(serverOnly, opts({ usage: 'server' })).spiffeId, `spiffe://${TD}/shard/s1/node/n1`);
  const clientOnly = withIssuer(badLeaf(ca.issuer, { eku: [OID.clientAuth] }));
  assert.throws(() => verifyPeerChain(clientOnly, opts({ usage: 'server' })), { code: 'ERR_MISSING_EKU' });
  assert.throws(() => verifyPeerChain(withIssuer(badLeaf(ca.issuer, { ku: KU.cRLSign })), opts()), { code: 'ERR_BAD_KEY_USAGE' });
});

test('an unknown critical extension is refused (RFC 5280 §4.2)', () => {
  const leaf = badLeaf(ca.issuer, { extra: [extension('1.3.6.1.4.1.99999.1', true, seq())] });
  assert.throws(() => verifyPeerChain(withIssuer(leaf), opts()), { code: 'ERR_CHAIN_INVALID' });
});

test('revoked serials and identities', () => {
  const chain = goodChain();
  assert.throws(() => verifyPeerChain(chain, opts({ revokedSerials: new Set([chain[0].serialNumber]) })), { code: 'ERR_REVOKED_SERIAL' });
  assert.throws(() => verifyPeerChain(chain, opts({ revokedSerials: new Set([ca.issuer.cert.serialNumber]) })), { code: 'ERR_REVOKED_SERIAL' });
  assert.throws(() => verifyPeerChain(chain, opts({ revokedIds: new Set([ID]) })), { code: 'ERR_REVOKED_IDENTITY' });
  assert.equal(verifyPeerChain(chain, opts({ revokedSerials: new Set(['00']), revokedIds: new Set(['spiffe://mail.example/x']) })).spiffeId, ID);
});
