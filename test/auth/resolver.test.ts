import './deny-dns.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dns from 'node:dns/promises';
import { ManualClock } from '../../common/clock.ts';
import { createResolver, nodeDnsUpstream, type DnsAnswer } from '../../sidecar/auth/resolver.ts';
import { DnsError, isTemporaryDnsError } from '../../sidecar/auth/errors.ts';
import { zoneResolver } from './zone-resolver.ts';

function counting(answer: (name: string, type: string) => DnsAnswer) {
  const calls: string[] = [];
  return {
    calls,
    upstream: async (name: string, type: string) => {
      calls.push(`${type} ${name}`);
      return answer(name, type);
    },
  };
}

test('the guard refuses real DNS in unit tests', async () => {
  await assert.rejects(() => dns.resolveTxt('example.org'), { code: 'ERR_TEST_REAL_DNS' });
  await assert.rejects(async () => new dns.Resolver().resolve4('example.org'), { code: 'ERR_TEST_REAL_DNS' });
});

test('A answers are cached for their TTL, then asked again', async () => {
  const clock = new ManualClock();
  const up = counting(() => ({ records: ['192.0.2.1'], ttlSec: 300 }));
  const r = createResolver({ upstream: up.upstream, clock });
  assert.deepEqual(await r('a.example', 'A'), ['192.0.2.1']);
  clock.advance(299_000);
  assert.deepEqual(await r('A.Example.', 'A'), ['192.0.2.1']); // case and trailing dot do not matter
  assert.equal(up.calls.length, 1);
  clock.advance(2_000);
  await r('a.example', 'A');
  assert.equal(up.calls.length, 2);
  assert.deepEqual(r.stats(), { hits: 1, misses: 2, size: 1 });
});

test('TXT answers (no TTL from node:dns) use the default TTL; maxTtl caps huge TTLs', async () => {
  const clock = new ManualClock();
  const up = counting((_n, t) => (t === 'TXT' ? { records: [['v=spf1 -all']] } : { records: ['192.0.2.1'], ttlSec: 86400 * 7 }));
  const r = createResolver({ upstream: up.upstream, clock, defaultTtlSec: 60, maxTtlSec: 3600 });
  await r('x.example', 'TXT');
  await r('x.example', 'A');
  clock.advance(61_000);
  await r('x.example', 'TXT');
  assert.equal(up.calls.filter((c) => c.startsWith('TXT')).length, 2);
  clock.advance(3600_000);
  await r('x.example', 'A');
  assert.equal(up.calls.filter((c) => c.startsWith('A ')).length, 2);
});

test('misses are cached (negative TTL) and keep their ENOTFOUND / ENODATA code', async () => {
  const clock = new ManualClock();
  const { resolver, zone } = zoneResolver({ 'nx.example': ['NXDOMAIN'], 'empty.example': [{ A: '192.0.2.1' }] }, { clock });
  await assert.rejects(() => resolver('nx.example', 'TXT'), (e: unknown) => e instanceof DnsError && e.code === 'ENOTFOUND' && !e.temporary);
  await assert.rejects(() => resolver('empty.example', 'TXT'), { code: 'ENODATA' });
  await assert.rejects(() => resolver('nx.example', 'TXT'), { code: 'ENOTFOUND' });
  assert.equal(zone.calls.length, 2);
  clock.advance(31_000);
  await assert.rejects(() => resolver('nx.example', 'TXT'), { code: 'ENOTFOUND' });
  assert.equal(zone.calls.length, 3);
});

test('server failures and timeouts are temporary and never cached', async () => {
  const { resolver, zone } = zoneResolver({ 'sf.example': ['SERVFAIL'], 'to.example': ['TIMEOUT'] });
  await assert.rejects(() => resolver('sf.example', 'TXT'), (e: unknown) => e instanceof DnsError && e.code === 'ESERVFAIL' && e.temporary);
  await assert.rejects(() => resolver('to.example', 'TXT'), { code: 'ETIMEOUT' });
  await assert.rejects(() => resolver('sf.example', 'TXT'), { code: 'ESERVFAIL' });
  assert.equal(zone.calls.length, 3);
});

test('unknown upstream error codes (ECONNREFUSED …) become ESERVFAIL, i.e. temperror', async () => {
  const r = createResolver({
    upstream: async () => {
      throw Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    },
  });
  const err = await r('a.example', 'TXT').catch((e: unknown) => e);
  assert.equal((err as DnsError).code, 'ESERVFAIL');
  assert.ok(isTemporaryDnsError(err));
});

test('the cache is bounded (LRU) and concurrent identical queries share one upstream call', async () => {
  const up = counting((n) => ({ records: [n], ttlSec: 600 }));
  const r = createResolver({ upstream: up.upstream, cacheSize: 2 });
  await Promise.all([r('a.example', 'A'), r('a.example', 'A'), r('a.example', 'A')]);
  assert.equal(up.calls.length, 1);
  await r('b.example', 'A');
  await r('a.example', 'A'); // touch a: b is now the least recently used
  await r('c.example', 'A');
  assert.equal(r.stats().size, 2);
  await r('a.example', 'A');
  assert.equal(up.calls.length, 3);
  await r('b.example', 'A');
  assert.equal(up.calls.length, 4);
});

test('answers are copies: a caller sorting an MX list cannot change the cache', async () => {
  const r = createResolver({ upstream: async () => ({ records: [{ exchange: 'b', priority: 20 }, { exchange: 'a', priority: 10 }] }) });
  const first = (await r('m.example', 'MX')) as { exchange: string; priority: number }[];
  first.sort((x, y) => x.priority - y.priority);
  first[0].exchange = 'evil';
  assert.deepEqual(await r('m.example', 'MX'), [{ exchange: 'b', priority: 20 }, { exchange: 'a', priority: 10 }]);
});

test('a bad server address is refused with ERR_AUTH_BAD_CONFIG', () => {
  assert.throws(() => nodeDnsUpstream({ servers: ['dns.example:53'] }), { code: 'ERR_AUTH_BAD_CONFIG' });
});
