import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ManualClock } from '../../common/clock.ts';
import { createCsr } from '../../ca/csr.ts';
import { generateKeyPair } from '../../ca/keys.ts';
import { isApiError, type ControlPlaneClient } from '../../api/client.ts';
import { createJoinToken, loadOrCreateTokenKey } from '../../control-plane/token.ts';
import type { ControlPlane } from '../../control-plane/start.ts';
import { anonClient, makeWorld, newKey, startTestControlPlane, TD } from './helpers.ts';

let world: Awaited<ReturnType<typeof makeWorld>>;
let cp: ControlPlane;
let anon: ControlPlaneClient;
const clock = new ManualClock(Date.now());
const clients: ControlPlaneClient[] = [];

before(async () => {
  world = await makeWorld();
  cp = await startTestControlPlane(world.config, { clock });
  anon = anonClient(cp);
  clients.push(anon);
});
after(async () => {
  for (const c of clients) c.close();
  await cp.close();
  await world.cleanup();
});

/** Assert a promise is refused with the given domain code and gRPC status. */
async function refused(p: Promise<unknown>, code: string, grpcCode: grpc.status): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(isApiError(e), String(e));
    assert.equal(e.code, code, e.message);
    assert.equal(e.grpcCode, grpcCode, `${e.code}: ${e.message}`);
    return true;
  });
}

const uriOf = (pem: string) => new X509Certificate(pem).subjectAltName;

test('join token → Sign → renewal over mTLS keeps the identity; the CSR subject is ignored', async () => {
  const { token, spiffeId } = await cp.createJoinToken({ shard: 'tokyo-1', node: 'a' });
  assert.equal(spiffeId, `spiffe://${TD}/shard/tokyo-1/node/a`);
  // A CSR that claims another identity in its subject: the token decides.
  const kp = generateKeyPair('P-256');
  const csrDer = createCsr(kp, { commonName: `spiffe://${TD}/shard/osaka-1/node/evil` });
  const first = await anon.sign({ csrDer, joinToken: token });
  assert.equal(first.spiffeId, spiffeId);
  assert.equal(uriOf(first.chainPem), `URI:${spiffeId}`);
  assert.equal(first.bundlePem, cp.bundlePem);
  assert.ok(first.notAfter > Date.now());

  const k = newKey();
  const node = anonClient(cp, { certPem: first.chainPem, keyPem: kp.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
  clients.push(node);
  const renewed = await node.sign({ csrDer: k.csrDer });
  assert.equal(renewed.spiffeId, spiffeId);
  assert.notEqual(renewed.serial, first.serial);
  // The audit log has both.
  const audit = await cp.store.issued();
  assert.deepEqual(
    audit.filter((r) => r.serial === first.serial || r.serial === renewed.serial).map((r) => r.via).sort(),
    ['join-token', 'renewal'],
  );

  // Renewal cannot change identity, even with a valid token for another node.
  const other = await cp.createJoinToken({ shard: 'osaka-1', node: 'b' });
  await refused(node.sign({ csrDer: newKey().csrDer, joinToken: other.token }), 'ERR_IDENTITY_CHANGE', grpc.status.PERMISSION_DENIED);
});

test('a replayed token is refused with ERR_TOKEN_REPLAYED', async () => {
  const { token } = await cp.createJoinToken({ shard: 'osaka-1', node: 'r' });
  await anon.sign({ csrDer: newKey().csrDer, joinToken: token });
  await refused(anon.sign({ csrDer: newKey().csrDer, joinToken: token }), 'ERR_TOKEN_REPLAYED', grpc.status.UNAUTHENTICATED);
});

test('an expired token is refused with ERR_TOKEN_EXPIRED', async () => {
  const { token } = await cp.createJoinToken({ shard: 'osaka-1', node: 'late', ttlMs: 60_000 });
  clock.advance(10 * 60_000);
  try {
    await refused(anon.sign({ csrDer: newKey().csrDer, joinToken: token }), 'ERR_TOKEN_EXPIRED', grpc.status.UNAUTHENTICATED);
  } finally {
    clock.advance(-10 * 60_000);
  }
});

test('a token signed by another key is refused with ERR_TOKEN_INVALID_SIGNATURE', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mm-forge-'));
  try {
    const forgedKey = await loadOrCreateTokenKey(dir);
    const { token } = await createJoinToken({ key: forgedKey, audience: cp.audience, trustDomain: TD, shard: 'tokyo-1', node: 'x', ttlMs: 600_000 });
    await refused(anon.sign({ csrDer: newKey().csrDer, joinToken: token }), 'ERR_TOKEN_INVALID_SIGNATURE', grpc.status.UNAUTHENTICATED);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a token for another control plane is refused with ERR_TOKEN_AUDIENCE', async () => {
  const key = await loadOrCreateTokenKey(world.config.stateDir);
  const { token } = await createJoinToken({ key, audience: 'spiffe://other.test/control-plane', trustDomain: TD, shard: 'tokyo-1', node: 'x', ttlMs: 600_000 });
  await refused(anon.sign({ csrDer: newKey().csrDer, joinToken: token }), 'ERR_TOKEN_AUDIENCE', grpc.status.UNAUTHENTICATED);
});

test('unknown shard, bad CSR, garbage token and no credential have their own codes', async () => {
  const { token } = await cp.createJoinToken({ shard: 'nowhere-9', node: 'x' });
  await refused(anon.sign({ csrDer: newKey().csrDer, joinToken: token }), 'ERR_UNKNOWN_SHARD', grpc.status.FAILED_PRECONDITION);
  const good = await cp.createJoinToken({ shard: 'tokyo-1', node: 'csr' });
  const csr = newKey().csrDer;
  csr[csr.length - 5] ^= 0xff; // break the CSR signature
  await refused(anon.sign({ csrDer: csr, joinToken: good.token }), 'ERR_CSR_INVALID', grpc.status.INVALID_ARGUMENT);
  // The bad CSR did not burn the token.
  const ok = await anon.sign({ csrDer: newKey().csrDer, joinToken: good.token });
  assert.equal(ok.spiffeId, good.spiffeId);
  await refused(anon.sign({ csrDer: newKey().csrDer, joinToken: 'not.a.jwt' }), 'ERR_TOKEN_INVALID', grpc.status.UNAUTHENTICATED);
  await refused(anon.sign({ csrDer: newKey().csrDer }), 'ERR_UNAUTHENTICATED', grpc.status.UNAUTHENTICATED);
});

test('without a certificate only Sign is allowed', async () => {
  await refused(anon.report({ revision: 'x' }), 'ERR_UNAUTHENTICATED', grpc.status.UNAUTHENTICATED);
  await refused(anon.status(), 'ERR_UNAUTHENTICATED', grpc.status.UNAUTHENTICATED);
  await refused(anon.revoke({ serials: ['AB'] }), 'ERR_UNAUTHENTICATED', grpc.status.UNAUTHENTICATED);
  const err = await new Promise<unknown>((resolve) => {
    const h = anon.watch({ onSnapshot: () => resolve(new Error('got a snapshot without a certificate')), onError: (e) => { h.close(); resolve(e); } });
  });
  assert.ok(isApiError(err, 'ERR_UNAUTHENTICATED'), String(err));
});

test('Sign is rate limited per peer with RESOURCE_EXHAUSTED and a retry hint', async () => {
  const w2 = await makeWorld();
  const cp2 = await startTestControlPlane({ ...w2.config, signRateLimit: { perMinute: 6, burst: 2 } });
  const c = anonClient(cp2);
  try {
    // Refusals count too: the bucket is spent before any work.
    for (let i = 0; i < 2; i++) await assert.rejects(c.sign({ csrDer: newKey().csrDer }), (e) => isApiError(e, 'ERR_UNAUTHENTICATED'));
    await assert.rejects(c.sign({ csrDer: newKey().csrDer }), (e) => {
      assert.ok(isApiError(e, 'ERR_RATE_LIMITED'), String(e));
      assert.equal(e.grpcCode, grpc.status.RESOURCE_EXHAUSTED);
      assert.ok(e.retryAfterMs !== undefined && e.retryAfterMs > 0 && e.retryAfterMs <= 10_000, String(e.retryAfterMs));
      assert.match(e.message, /retry after \d+ ms/);
      assert.equal(e.temporary, true);
      return true;
    });
  } finally {
    c.close();
    await cp2.close();
    await w2.cleanup();
  }
});
