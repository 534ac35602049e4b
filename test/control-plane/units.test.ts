import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../common/clock.ts';
import { parseConfig } from '../../control-plane/config.ts';
import { isControlPlaneError } from '../../control-plane/errors.ts';
import { RateLimiter } from '../../control-plane/rate-limit.ts';
import { msUntilRenewal, shouldRenew } from '../../control-plane/renewal.ts';
import { SqliteStore } from '../../control-plane/sqlite-store.ts';
import { createJoinToken, loadOrCreateTokenKey, verifyJoinToken, TOKEN_KEY_FILE } from '../../control-plane/token.ts';
import { addressOf } from '../../control-plane/auth.ts';

const AUD = 'spiffe://mail.test/control-plane';

test('join tokens: identity from sub, expiry by the injected clock, audience bound, key file 0600 and stable', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mm-tok-'));
  try {
    const clock = new ManualClock();
    const key = await loadOrCreateTokenKey(dir);
    assert.equal((await stat(join(dir, TOKEN_KEY_FILE))).mode & 0o777, 0o600);
    assert.equal((await loadOrCreateTokenKey(dir)).kid, key.kid);
    const t = await createJoinToken({ key, audience: AUD, trustDomain: 'mail.test', shard: 'tokyo-1', node: 'a', ttlMs: 60_000, clock });
    const c = await verifyJoinToken(t.token, { key, audience: AUD, trustDomain: 'mail.test', clock });
    assert.deepEqual([c.spiffeId, c.shard, c.node, c.jti], ['spiffe://mail.test/shard/tokyo-1/node/a', 'tokyo-1', 'a', t.jti]);
    clock.advance(120_000);
    await assert.rejects(verifyJoinToken(t.token, { key, audience: AUD, trustDomain: 'mail.test', clock }), (e) => isControlPlaneError(e, 'ERR_TOKEN_EXPIRED'));
    clock.advance(-120_000);
    await assert.rejects(verifyJoinToken(t.token, { key, audience: 'spiffe://x/control-plane', trustDomain: 'mail.test', clock }), (e) => isControlPlaneError(e, 'ERR_TOKEN_AUDIENCE'));
    await assert.rejects(verifyJoinToken(t.token, { key, audience: AUD, trustDomain: 'other.test', clock }), (e) => isControlPlaneError(e, 'ERR_TOKEN_INVALID'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('store: a token id is usable once; revocations and nodes persist across reopen', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mm-store-'));
  try {
    const s = new SqliteStore(dir);
    assert.equal(await s.useTokenId('j1', 'id', 10, 1), true);
    assert.equal(await s.useTokenId('j1', 'id', 10, 2), false);
    assert.equal(await s.revoke([{ kind: 'serial', value: 'AB', reason: 'r', at: 1 }, { kind: 'serial', value: 'AB', reason: 'r', at: 2 }]), 1);
    await s.upsertNode({ spiffeId: 'n', revision: 'r1', certSerial: 'C', certNotAfter: 5, lastReport: 6, clockOffsetMs: -3 });
    await s.upsertNode({ spiffeId: 'n', revision: 'r2', certSerial: 'C', certNotAfter: 5, lastReport: 7, clockOffsetMs: -3 });
    s.close();
    assert.equal((await stat(join(dir, 'state.db'))).mode & 0o777, 0o600);
    const s2 = new SqliteStore(dir);
    assert.equal(await s2.useTokenId('j1', 'id', 10, 3), false);
    assert.deepEqual((await s2.revocations()).map((r) => r.value), ['AB']);
    assert.deepEqual((await s2.nodes()).map((n) => [n.revision, n.lastReport]), [['r2', 7]]);
    assert.equal(await s2.pruneTokens(11), 1);
    s2.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('rate limiter: burst, then a wait that shrinks as the clock moves', () => {
  const clock = new ManualClock();
  const rl = new RateLimiter({ perMinute: 60, burst: 2, clock });
  assert.equal(rl.take('a'), 0);
  assert.equal(rl.take('a'), 0);
  assert.equal(rl.take('a'), 1000);
  assert.equal(rl.take('b'), 0);
  clock.advance(400);
  assert.equal(rl.take('a'), 600);
  clock.advance(600);
  assert.equal(rl.take('a'), 0);
});

test('renewal at half-life is a pure function of time', () => {
  assert.equal(shouldRenew(1_499, 1_000, 2_000), false);
  assert.equal(shouldRenew(1_500, 1_000, 2_000), true);
  assert.equal(msUntilRenewal(1_200, 1_000, 2_000), 300);
  assert.equal(msUntilRenewal(1_900, 1_000, 2_000), 0);
});

test('config: relative paths resolve against the file, bad keys and values are ERR_CONFIG', () => {
  const c = parseConfig({ listen: '127.0.0.1:0', caDir: 'ca', policyDir: '/abs/policy', stateDir: './state', signRateLimit: { perMinute: 5, burst: 2 } }, '/etc/mm');
  assert.deepEqual([c.caDir, c.policyDir, c.stateDir], ['/etc/mm/ca', '/abs/policy', '/etc/mm/state']);
  assert.deepEqual(c.signRateLimit, { perMinute: 5, burst: 2 });
  for (const bad of [{ listen: 'nope' }, { listen: '1.2.3.4:1', caDir: 'a', policyDir: 'b', stateDir: 'c', extra: 1 }, { listen: '1.2.3.4:1', caDir: 'a', policyDir: 'b' }, 'str']) {
    assert.throws(() => parseConfig(bad, '/x'), (e) => isControlPlaneError(e, 'ERR_CONFIG'));
  }
  assert.equal(parseConfig({ listen: '[::1]:0', caDir: 'a', policyDir: 'b', stateDir: 'c' }, '/x').listen, '[::1]:0');
});

test('peer addresses lose their port', () => {
  assert.equal(addressOf('ipv4:127.0.0.1:5000'), '127.0.0.1');
  assert.equal(addressOf('127.0.0.1:5000'), '127.0.0.1');
  assert.equal(addressOf('[::1]:5000'), '::1');
  assert.equal(addressOf('ipv6:[::1]:5000'), '::1');
});
