import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, loadPolicy, route, isKnownUser, findDomain } from '../../policies/index.ts';

const DEMO = 'policies/examples/demo';
const JP = 'policies/examples/example-co-jp';

test('the demo policy loads and places the demo users', () => {
  const c = compilePolicy(loadPolicy(DEMO));
  assert.equal(c.trustDomain, 'mail.test');
  assert.deepEqual(c.shards.map((s) => `${s.id}/${s.region}`), ['tokyo-1/jp', 'osaka-1/jp', 'frankfurt-1/eu']);
  assert.equal(c.certificates.workloadTtlMs, 3_600_000);
  const r = (a: string) => route(c, a);
  assert.deepEqual(r('alice@mail.test'), { kind: 'shard', domain: 'mail.test', shard: 'tokyo-1', region: 'jp', shardIndex: 0, rule: 'directory' });
  assert.equal((r('bob@mail.test') as { shard: string }).shard, 'osaka-1');
  assert.equal((r('carol@mail.test') as { shard: string }).shard, 'frankfurt-1');
  // dave has no explicit shard but region eu: the eu-residents rule decides.
  assert.deepEqual([(r('dave@mail.test') as { shard: string }).shard, (r('dave@mail.test') as { rule: string }).rule], ['frankfurt-1', 'rule:eu-residents']);
  assert.equal((r('postmaster@mail.test') as { rule: string }).rule, 'rule:postmaster');
  assert.equal((r('someone-new@mail.test') as { rule: string }).rule, 'default');
  assert.deepEqual(r('x@not-hosted.example'), { kind: 'not-hosted' });
  assert.deepEqual(r('no-at-sign'), { kind: 'invalid' });
  assert.deepEqual(r('@mail.test'), { kind: 'invalid' });
  assert.deepEqual(r('+tag@mail.test'), { kind: 'invalid' });
  // The demo directory is complete: unknown users are refused at RCPT (RFC 5321 §3.3, 550 5.1.1).
  assert.equal(isKnownUser(c, 'alice@mail.test'), true);
  assert.equal(isKnownUser(c, 'Postmaster+x@mail.test'), true);
  assert.equal(isKnownUser(c, 'someone-new@mail.test'), false);
});

test('shard addresses can be overridden when compiling', () => {
  const policy = loadPolicy(DEMO);
  const c = compilePolicy(policy, { shardAddresses: { 'tokyo-1': '127.0.0.1:40001' }, shardBackends: { 'osaka-1': { lmtp: '127.0.0.1:40002' } } });
  assert.equal(c.shards[0].mesh, '127.0.0.1:40001');
  assert.equal(c.shards[1].mesh, '127.0.0.1:0');
  assert.equal(c.shards[1].backends.lmtp, '127.0.0.1:40002');
  policy.shards[2].mesh = '127.0.0.1:40003';
  assert.equal(compilePolicy(policy).shards[2].mesh, '127.0.0.1:40003');
});

test('the example.co.jp policy: overrides, attribute rules, local-part rules, hashing, residency', () => {
  const c = compilePolicy(loadPolicy(JP));
  const shardOf = (a: string) => { const r = route(c, a); return r.kind === 'shard' ? `${r.shard} ${r.rule}` : r.kind; };
  assert.equal(shardOf('taro@example.co.jp'), 'tokyo-1 directory');
  assert.equal(shardOf('anna@example.co.jp'), 'frankfurt-1 rule:eu-residents', 'eu-residents outranks legal');
  assert.equal(shardOf('kenji@example.co.jp'), 'osaka-1 rule:legal');
  assert.match(shardOf('noc-7@example.co.jp'), /^tokyo-[12] rule:operations$/);
  assert.equal(shardOf('postmaster@example.co.jp'), 'tokyo-1 rule:role-accounts');
  // hashed users of example.co.jp stay in jp (default regions: [jp])
  for (let i = 0; i < 500; i++) assert.match(shardOf(`u${i}@example.co.jp`), /^(tokyo-1|tokyo-2|osaka-1) default$/);
  assert.equal(shardOf('sato@example.jp'), 'osaka-1 directory');
  assert.equal(isKnownUser(c, 'Taro+x@EXAMPLE.co.jp'), true);
  assert.equal(isKnownUser(c, 'nobody@example.co.jp'), false);
  assert.equal(isKnownUser(c, 'sato@example.jp'), undefined);
  assert.equal(isKnownUser(c, 'x@nowhere.example'), undefined);
  const d = findDomain(c, 'Example.CO.JP');
  assert.deepEqual(d?.auth, { mode: 'enforce', dkim: { selector: 's2026', key: { secret: 'dkim-example-co-jp' } } });
  assert.equal(findDomain(c, 'example.jp')?.auth.mode, 'monitor');
});
