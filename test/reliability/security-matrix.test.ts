// The security matrix, as one table per front: every peer the mesh ingress must refuse (with the
// reason it must give), a chain to a root retired by rotation, and every bad credential the
// control-plane API must refuse (with its domain code) — each next to a row that must pass, so a
// matrix that refuses everything fails too.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TrustBundle } from '../../ca/bundle.ts';
import { KU, basicConstraints, buildCertificate, extKeyUsageBoth, keyUsage, randomSerial, subjectAltName } from '../../ca/certificate.ts';
import { toPem } from '../../ca/der.ts';
import type { Issuer } from '../../ca/issuer.ts';
import { generateKeyPair, privateKeyToPem } from '../../ca/keys.ts';
import { loadCa } from '../../ca/load.ts';
import { isApiError, type ControlPlaneClient } from '../../api/client.ts';
import { ManualClock } from '../../common/clock.ts';
import type { ControlPlane } from '../../control-plane/start.ts';
import { createJoinToken, loadOrCreateTokenKey } from '../../control-plane/token.ts';
import { startIngress, type Ingress } from '../../sidecar/mesh/ingress.ts';
import { adminCert, anonClient, makeWorld, newKey, startTestControlPlane, TD } from '../control-plane/helpers.ts';
import { startBackend, type TestBackend } from '../mesh/backend.ts';
import { ingressConfig } from '../mesh/ingress-config.ts';
import { nodeClient } from '../mesh/clients.ts';
import { badLeaf, issueIdentity, makeCa } from '../mesh/pki.ts';
import { summary } from './summary.ts';

const sum = summary('security-matrix');
const H = 3_600_000;

/** A leaf signed by `issuer` for any SPIFFE ID (issueLeaf refuses a foreign trust domain). */
function leafFor(issuer: Issuer, spiffeId: string): { keyPem: string; chainPem: string } {
  const kp = generateKeyPair('P-256');
  const now = Date.now();
  const der = buildCertificate({
    serial: randomSerial(),
    issuerName: issuer.issuerName,
    subjectName: Buffer.from([0x30, 0x00]),
    notBefore: new Date(Math.floor((now - H) / 1000) * 1000),
    notAfter: new Date(Math.floor((now + H) / 1000) * 1000),
    spki: kp.publicKey.export({ type: 'spki', format: 'der' }),
    extensions: [basicConstraints(false), keyUsage(KU.digitalSignature), extKeyUsageBoth(), subjectAltName([spiffeId], [], true)],
    signingKey: issuer.key as KeyObject,
  });
  return { keyPem: privateKeyToPem(kp.privateKey), chainPem: toPem('CERTIFICATE', der) + issuer.certPem };
}

describe('mesh ingress: refused peers', () => {
  const ca = makeCa('mail.test');
  const otherCa = makeCa('mail.test');
  const otherTd = makeCa('other.test');
  const server = issueIdentity(ca, 's1', 'a');
  const good = issueIdentity(ca, 's2', 'b');
  const revokedSerial = issueIdentity(ca, 's2', 'c');
  const revokedId = issueIdentity(ca, 's2', 'd');
  const stranger = issueIdentity(ca, 's3', 'x');
  let backend: TestBackend;
  let ingress: Ingress;
  before(async () => {
    backend = await startBackend();
    ingress = await startIngress(ingressConfig(server, ca, backend.address, {
      // The other trust domain's root is an anchor here, so its leaves reach the trust-domain check.
      bundle: () => new TrustBundle([...ca.bundle.roots, ...otherTd.bundle.roots]),
      intermediates: () => [otherTd.issuer.cert],
      authorize: (id) => id !== stranger.spiffeId,
      revoked: () => ({ serials: new Set([revokedSerial.serial]), ids: new Set([revokedId.spiffeId]) }),
    }));
  });
  after(async () => {
    await ingress?.close();
    await backend?.close();
  });

  const rows: [string, () => { keyPem?: string; chainPem?: string }, string | 'ACCEPTED'][] = [
    ['valid mesh identity', () => good, 'ACCEPTED'],
    ['no client certificate', () => ({}), 'ERR_NO_CHAIN'],
    ['self-signed', () => badLeaf(ca, 'self-signed'), 'ERR_UNKNOWN_AUTHORITY'],
    ['other CA, same trust domain name', () => issueIdentity(otherCa, 's2', 'b'), 'ERR_UNKNOWN_AUTHORITY'],
    ['expired', () => issueIdentity(ca, 's2', 'old', { now: Date.now() - 3 * H, ttlMs: H }), 'ERR_CERT_EXPIRED'],
    ['not yet valid', () => issueIdentity(ca, 's2', 'new', { now: Date.now() + 3 * H, ttlMs: H }), 'ERR_CERT_NOT_YET_VALID'],
    ['wrong trust domain', () => issueIdentity(otherTd, 's2', 'b'), 'ERR_WRONG_TRUST_DOMAIN'],
    ['revoked serial', () => revokedSerial, 'ERR_REVOKED_SERIAL'],
    ['revoked identity', () => revokedId, 'ERR_REVOKED_IDENTITY'],
    ['not authorized for this shard', () => stranger, 'ERR_MESH_NOT_AUTHORIZED'],
    ['leaf marked CA', () => badLeaf(ca, 'leaf-ca'), 'ERR_LEAF_IS_CA'],
    ['wrong EKU (serverAuth only)', () => badLeaf(ca, 'server-eku-only'), 'ERR_MISSING_EKU'],
  ];
  for (const [name, material, want] of rows) {
    test(`${name} → ${want}`, async () => {
      const before = want === 'ACCEPTED' ? ingress.stats.accepted : (ingress.stats.rejected[want] ?? 0);
      const lines = backend.lines.length;
      const seen = await nodeClient(ingress.port, { ...material(), line: 'HELLO' });
      if (want === 'ACCEPTED') {
        assert.equal(seen.refused, false, seen.data);
        assert.equal(ingress.stats.accepted, before + 1);
      } else {
        assert.equal(seen.refused, true, `reached the backend: ${seen.data}`);
        assert.equal(ingress.stats.rejected[want], before + 1, JSON.stringify(ingress.stats.rejected));
        assert.equal(backend.lines.length, lines, 'a byte reached the backend');
        sum.add(`ingress_refused_${want}`);
      }
      sum.add('ingress_rows');
    });
  }
});

describe('mesh ingress: root rotation retires the old root', () => {
  const oldCa = makeCa('mail.test');
  const newCa = makeCa('mail.test');
  const server = issueIdentity(newCa, 's1', 'a');
  const underOld = issueIdentity(oldCa, 's2', 'old');
  const underNew = issueIdentity(newCa, 's2', 'new');
  let bundle = new TrustBundle([...oldCa.bundle.roots, ...newCa.bundle.roots]);
  let backend: TestBackend;
  let ingress: Ingress;
  before(async () => {
    backend = await startBackend();
    ingress = await startIngress(ingressConfig(server, newCa, backend.address, {
      bundle: () => bundle,
      // The snapshot carries the old issuing CA during the overlap (and may keep carrying it).
      intermediates: () => [oldCa.issuer.cert],
    }));
  });
  after(async () => {
    await ingress?.close();
    await backend?.close();
  });

  test('overlap: both pass; after the old root is removed: old → ERR_UNKNOWN_AUTHORITY, new passes', async () => {
    assert.equal((await nodeClient(ingress.port, { ...underOld, line: 'HELLO' })).refused, false, 'old-root peer during overlap');
    assert.equal((await nodeClient(ingress.port, { ...underNew, line: 'HELLO' })).refused, false, 'new-root peer during overlap');
    bundle = bundle.without(oldCa.rootCert.fingerprint256);
    assert.equal(bundle.roots.length, 1);
    const before = ingress.stats.rejected.ERR_UNKNOWN_AUTHORITY ?? 0;
    assert.equal((await nodeClient(ingress.port, { ...underOld, line: 'HELLO' })).refused, true, 'old-root peer after retirement');
    assert.equal(ingress.stats.rejected.ERR_UNKNOWN_AUTHORITY, before + 1);
    // Even a fresh leaf from the retired chain.
    assert.equal((await nodeClient(ingress.port, { ...issueIdentity(oldCa, 's2', 'fresh'), line: 'HELLO' })).refused, true);
    assert.equal(ingress.stats.rejected.ERR_UNKNOWN_AUTHORITY, before + 2);
    assert.equal((await nodeClient(ingress.port, { ...underNew, line: 'HELLO' })).refused, false, 'new-root peer after retirement');
    assert.equal(ingress.stats.accepted, 3);
    sum.add('ingress_refused_retired_root', 2);
    sum.add('ingress_rows', 5);
  });
});

describe('control-plane API: bad credentials', () => {
  let world: Awaited<ReturnType<typeof makeWorld>>;
  let cp: ControlPlane;
  const clock = new ManualClock(Date.now());
  const clients: ControlPlaneClient[] = [];
  let tmp: string;
  const client = (cert?: { certPem: string; keyPem: string }) => {
    const c = anonClient(cp, cert);
    clients.push(c);
    return c;
  };
  /** A node that joined with a token: its certificate and key. */
  async function joinedNode(node: string) {
    const { token } = await cp.createJoinToken({ shard: 'tokyo-1', node });
    const k = newKey();
    const res = await client().sign({ csrDer: k.csrDer, joinToken: token });
    return { certPem: res.chainPem, keyPem: k.keyPem, serial: res.serial, spiffeId: res.spiffeId };
  }
  before(async () => {
    world = await makeWorld();
    cp = await startTestControlPlane(world.config, { clock });
    tmp = await mkdtemp(join(tmpdir(), 'mm-matrix-'));
  });
  after(async () => {
    for (const c of clients) c.close();
    await cp?.close();
    await world?.cleanup();
    await rm(tmp, { recursive: true, force: true });
  });

  async function outcome(p: Promise<unknown>): Promise<string> {
    try {
      await p;
      return 'OK';
    } catch (err) {
      assert.ok(isApiError(err), String(err));
      return err.code;
    }
  }
  const watchOutcome = (c: ControlPlaneClient) =>
    new Promise<string>((resolve) => {
      const h = c.watch({
        onSnapshot: () => {
          h.close();
          resolve('OK');
        },
        onError: (e) => {
          h.close();
          resolve(isApiError(e) ? e.code : String(e));
        },
      });
    });

  test('every refused credential has its code; the allowed rows pass', async () => {
    const anon = client();
    const node = await joinedNode('matrix-a');
    const nodeClientCp = client(node);
    const admin = client(await adminCert(world.config.caDir));
    const ca = await loadCa(world.config.caDir);
    const otherTdCa = makeCa('other.test');
    const rows: [string, () => Promise<string>, string][] = [
      // Allowed rows first: the matrix is not "refuse everything".
      ['Sign with a fresh join token', async () => outcome((async () => joinedNode('matrix-ok'))()), 'OK'],
      ['Sign renewal with the current certificate', () => outcome(nodeClientCp.sign({ csrDer: newKey().csrDer })), 'OK'],
      ['Report by a node', () => outcome(nodeClientCp.report({ revision: 'x' })), 'OK'],
      ['Watch by a node', () => watchOutcome(nodeClientCp), 'OK'],
      ['Status by an admin', () => outcome(admin.status()), 'OK'],
      ['Revoke by an admin', () => outcome(admin.revoke({ serials: ['0A0B0C'] })), 'OK'],
      // Refusals.
      ['Sign without token and without certificate', () => outcome(anon.sign({ csrDer: newKey().csrDer })), 'ERR_UNAUTHENTICATED'],
      ['Sign with a replayed token', async () => {
        const { token } = await cp.createJoinToken({ shard: 'tokyo-1', node: 'replay' });
        await anon.sign({ csrDer: newKey().csrDer, joinToken: token });
        return outcome(anon.sign({ csrDer: newKey().csrDer, joinToken: token }));
      }, 'ERR_TOKEN_REPLAYED'],
      ['Sign with an expired token', async () => {
        const { token } = await cp.createJoinToken({ shard: 'tokyo-1', node: 'late', ttlMs: 60_000 });
        clock.advance(10 * 60_000);
        try {
          return await outcome(anon.sign({ csrDer: newKey().csrDer, joinToken: token }));
        } finally {
          clock.advance(-10 * 60_000);
        }
      }, 'ERR_TOKEN_EXPIRED'],
      ['Sign with a forged token (another key)', async () => {
        const forged = await loadOrCreateTokenKey(join(tmp, 'forged'));
        const { token } = await createJoinToken({ key: forged, audience: cp.audience, trustDomain: TD, shard: 'tokyo-1', node: 'f', ttlMs: 600_000 });
        return outcome(anon.sign({ csrDer: newKey().csrDer, joinToken: token }));
      }, 'ERR_TOKEN_INVALID_SIGNATURE'],
      ['Sign with a token for another audience', async () => {
        const key = await loadOrCreateTokenKey(world.config.stateDir);
        const { token } = await createJoinToken({ key, audience: 'spiffe://other.test/control-plane', trustDomain: TD, shard: 'tokyo-1', node: 'aud', ttlMs: 600_000 });
        return outcome(anon.sign({ csrDer: newKey().csrDer, joinToken: token }));
      }, 'ERR_TOKEN_AUDIENCE'],
      ['renewal with a certificate of another trust domain (our CA)', () => outcome(client(asCert(leafFor(ca.issuer, 'spiffe://other.test/shard/tokyo-1/node/x'))).sign({ csrDer: newKey().csrDer })), 'ERR_WRONG_TRUST_DOMAIN'],
      // A chain to a root outside the bundle gives no identity at all (gRPC's TLS layer does not
      // hand over an unverified certificate): the call is anonymous, and anonymous Sign needs a token.
      ['renewal with a certificate of another trust domain (its CA)', () => outcome(client(asCert(issueIdentity(otherTdCa, 'tokyo-1', 'x'))).sign({ csrDer: newKey().csrDer })), 'ERR_UNAUTHENTICATED'],
      ['Report with a certificate of another CA', () => outcome(client(asCert(issueIdentity(otherTdCa, 'tokyo-1', 'x'))).report({ revision: 'x' })), 'ERR_UNAUTHENTICATED'],
      ['renewal trying to change identity', async () => {
        const other = await cp.createJoinToken({ shard: 'osaka-1', node: 'someone-else' });
        return outcome(nodeClientCp.sign({ csrDer: newKey().csrDer, joinToken: other.token }));
      }, 'ERR_IDENTITY_CHANGE'],
      ['Watch without a client certificate', () => watchOutcome(anon), 'ERR_UNAUTHENTICATED'],
      ['Report without a client certificate', () => outcome(anon.report({ revision: 'x' })), 'ERR_UNAUTHENTICATED'],
      ['Status without a client certificate', () => outcome(anon.status()), 'ERR_UNAUTHENTICATED'],
      ['Status by a node', () => outcome(nodeClientCp.status()), 'ERR_PERMISSION_DENIED'],
      ['Revoke without a client certificate', () => outcome(anon.revoke({ serials: ['AB'] })), 'ERR_UNAUTHENTICATED'],
      ['Revoke by a non-admin (a node)', () => outcome(nodeClientCp.revoke({ identities: [`spiffe://${TD}/shard/osaka-1/node/victim`] })), 'ERR_PERMISSION_DENIED'],
      ['renewal with a revoked certificate', async () => {
        const victim = await joinedNode('matrix-revoked');
        await admin.revoke({ serials: [victim.serial] });
        return outcome(client(victim).sign({ csrDer: newKey().csrDer }));
      }, 'ERR_REVOKED_SERIAL'],
    ];
    const got: string[] = [];
    for (const [name, run, want] of rows) {
      const code = await run();
      got.push(`${name}: ${code}`);
      assert.equal(code, want, `${name}\n${got.join('\n')}`);
      sum.add(want === 'OK' ? 'api_allowed' : `api_refused_${want}`);
      sum.add('api_rows');
    }
  });
});

/** Client material from key + chain PEM (leaf then issuer, as a node presents it). */
function asCert(m: { keyPem: string; chainPem: string }): { certPem: string; keyPem: string } {
  return { certPem: m.chainPem, keyPem: m.keyPem };
}
