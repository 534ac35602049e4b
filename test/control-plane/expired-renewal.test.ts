// A node whose certificate expired while the control plane was down rejoins without a new token:
// its last key signs the new CSR. Only the newest certificate of that identity, within the grace
// period, with a proof that verifies, and not revoked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { ManualClock } from '../../common/clock.ts';
import { parseConfig } from '../../control-plane/config.ts';
import type { ControlPlane } from '../../control-plane/start.ts';
import { SqliteStore } from '../../control-plane/sqlite-store.ts';
import type { Store } from '../../control-plane/store.ts';
import type { ControlPlaneClient } from '../../api/client.ts';
import { anonClient, makeWorld, newKey, startTestControlPlane } from './helpers.ts';

const clock = new ManualClock(Date.now());
let world: Awaited<ReturnType<typeof makeWorld>>;
let cp: ControlPlane;
let client: ControlPlaneClient;

before(async () => {
  world = await makeWorld();
  cp = await startTestControlPlane(world.config, { clock });
  client = anonClient(cp);
});
after(async () => {
  client.close();
  await cp.close();
  await world.cleanup();
});

const code = (c: string) => (e: Error & { code?: string }) => e.code === c;

test('rejoin after expiry: newest certificate only, within grace, with a valid proof', async () => {
  const { token } = await cp.createJoinToken({ shard: 'osaka-1', node: 'r1' });
  const k1 = newKey();
  const first = await client.sign({ csrDer: k1.csrDer, joinToken: token });
  const old = { certPem: first.chainPem, keyPem: k1.keyPem };
  clock.set(first.notAfter + 2 * 3_600_000); // the control plane was down two hours

  // A wrong key cannot speak for the expired certificate.
  await assert.rejects(client.sign({ csrDer: newKey().csrDer, expired: { certPem: old.certPem, keyPem: newKey().keyPem } }), code('ERR_RENEWAL_BAD_PROOF'));

  const k2 = newKey();
  const second = await client.sign({ csrDer: k2.csrDer, expired: old });
  assert.equal(second.spiffeId, 'spiffe://mail.test/shard/osaka-1/node/r1', 'same identity, from the certificate, not the CSR');
  assert.notEqual(second.serial, first.serial);
  assert.ok(second.notAfter > clock.now());
  assert.equal(new X509Certificate(second.chainPem).subjectAltName, 'URI:spiffe://mail.test/shard/osaka-1/node/r1');
  assert.equal((await cp.store.issued(1))[0].via, 'expired-renewal');

  // The replaced certificate cannot come back (e.g. a stolen backup of the old key).
  await assert.rejects(client.sign({ csrDer: newKey().csrDer, expired: old }), code('ERR_RENEWAL_NOT_LATEST'));

  // Revoked: refused even though it is the newest.
  const latest = { certPem: second.chainPem, keyPem: k2.keyPem };
  clock.set(second.notAfter + 60_000);
  await cp.revoke({ serials: [second.serial], reason: 'test' });
  await assert.rejects(client.sign({ csrDer: newKey().csrDer, expired: latest }), code('ERR_REVOKED_SERIAL'));
});

test('rejoin after expiry is refused past the grace period', async () => {
  const { token } = await cp.createJoinToken({ shard: 'tokyo-1', node: 'r2' });
  const k = newKey();
  const got = await client.sign({ csrDer: k.csrDer, joinToken: token });
  clock.set(got.notAfter + 8 * 86_400_000);
  await assert.rejects(client.sign({ csrDer: newKey().csrDer, expired: { certPem: got.chainPem, keyPem: k.keyPem } }), code('ERR_RENEWAL_GRACE_PASSED'));
});

test('the grace period is a control plane setting (expiredRenewalGrace)', () => {
  assert.equal(parseConfig({ listen: '127.0.0.1:0', caDir: 'ca', policyDir: 'p', stateDir: 's', expiredRenewalGrace: '36h' }, '/tmp').expiredRenewalGraceMs, 36 * 3_600_000);
  assert.throws(() => parseConfig({ listen: '127.0.0.1:0', caDir: 'ca', policyDir: 'p', stateDir: 's', expiredRenewalGrace: '0' }, '/tmp'), (e: Error & { code?: string }) => e.code === 'ERR_CONFIG');
});

test('two rejoins with the same expired certificate at once: one identity, not two (shared store)', async () => {
  // A shared SQL store answers over the network: latestSerial takes a while, so both requests
  // see the expired certificate as the newest before either records its new one.
  const w = await makeWorld();
  const inner = new SqliteStore(w.dir, ':memory:');
  const slow: Store = Object.assign(Object.create(inner) as Store, {
    latestSerial: async (id: string) => {
      const s = await inner.latestSerial(id);
      await new Promise((r) => setTimeout(r, 100));
      return s;
    },
  });
  const c2 = new ManualClock(Date.now());
  const cp2 = await startTestControlPlane(w.config, { clock: c2, store: slow });
  const cl = anonClient(cp2);
  try {
    const { token } = await cp2.createJoinToken({ shard: 'osaka-1', node: 'race' });
    const k = newKey();
    const got = await cl.sign({ csrDer: k.csrDer, joinToken: token });
    c2.set(got.notAfter + 3_600_000);
    const old = { certPem: got.chainPem, keyPem: k.keyPem };
    const results = await Promise.allSettled([cl.sign({ csrDer: newKey().csrDer, expired: old }), cl.sign({ csrDer: newKey().csrDer, expired: old })]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one rejoin succeeds');
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((refused.reason as { code?: string }).code, 'ERR_RENEWAL_NOT_LATEST');
    assert.equal((await inner.issued()).filter((r) => r.via === 'expired-renewal').length, 1);
  } finally {
    cl.close();
    await cp2.close();
    await w.cleanup();
  }
});
