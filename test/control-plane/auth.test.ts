// control-plane/auth.ts keeps verified client certificates in a cache; a cached result must not
// outlive the trust it was computed with (a retired root, a dropped previous issuer, a revoked CA).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { TrustBundle } from '../../ca/bundle.ts';
import { issueLeaf } from '../../ca/issue.ts';
import { generateKeyPair } from '../../ca/keys.ts';
import { authenticate, type AuthContext } from '../../control-plane/auth.ts';
import { makeCa } from '../mesh/pki.ts';

const TD = 'mail.test';

/** The two methods authenticate() reads of a grpc-js call. */
function callWith(leaf: X509Certificate): Parameters<typeof authenticate>[0] {
  return {
    getPeer: () => 'ipv4:127.0.0.1:5000',
    getAuthContext: () => ({ transportSecurityType: 'ssl', sslPeerCertificate: { raw: leaf.raw, fingerprint256: leaf.fingerprint256 } }),
  } as unknown as Parameters<typeof authenticate>[0];
}

function setup() {
  const oldCa = makeCa(TD);
  const newCa = makeCa(TD);
  // An admin certificate from the old root's issuing CA (mailmesh ca issue, long TTL).
  const admin = new X509Certificate(issueLeaf(oldCa.issuer, { publicKey: generateKeyPair().publicKey, spiffeId: `spiffe://${TD}/admin/ops`, ttlMs: 30 * 86_400_000 }).certPem);
  const overlap: AuthContext = {
    bundle: new TrustBundle([newCa.rootCert, oldCa.rootCert]),
    issuer: newCa.issuer,
    intermediates: [newCa.issuer.cert, oldCa.issuer.cert],
    trustDomain: TD,
    now: Date.now(),
    revokedSerials: new Set(),
    revokedIds: new Set(),
  };
  return { oldCa, newCa, admin, overlap };
}

test('a cached client certificate is refused once its root is retired (same current issuer)', () => {
  const { newCa, admin, overlap } = setup();
  assert.equal(authenticate(callWith(admin), overlap).role, 'admin', 'accepted during the overlap');
  assert.equal(authenticate(callWith(admin), overlap).role, 'admin', 'and from the cache');
  const retired: AuthContext = { ...overlap, bundle: new TrustBundle([newCa.rootCert]), intermediates: [newCa.issuer.cert] };
  assert.throws(() => authenticate(callWith(admin), retired), { code: 'ERR_UNKNOWN_AUTHORITY' });
});

test('a cached client certificate is refused once the previous issuing CA is dropped (same bundle)', () => {
  const { newCa, admin, overlap } = setup();
  assert.equal(authenticate(callWith(admin), overlap).role, 'admin');
  assert.throws(() => authenticate(callWith(admin), { ...overlap, intermediates: [newCa.issuer.cert] }), { code: 'ERR_UNKNOWN_AUTHORITY' });
});

test('a cached client certificate is refused once a CA on its path is revoked by serial', () => {
  const { oldCa, admin, overlap } = setup();
  assert.equal(authenticate(callWith(admin), overlap).role, 'admin');
  const revoked = new Set([oldCa.issuer.cert.serialNumber.toUpperCase()]);
  assert.throws(() => authenticate(callWith(admin), { ...overlap, revokedSerials: revoked }), { code: 'ERR_REVOKED_SERIAL' });
});
