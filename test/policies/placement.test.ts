import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  authorize, compilePolicy, deserializeCompiled, isKnownUser, loadPolicy, route, serializeCompiled, type CompiledPolicy,
} from '../../policies/index.ts';
import { globsOverlap } from '../../policies/glob.ts';
import { MESH_YAML, policyDir } from './fixtures.ts';

/** A policy whose only domain hashes over `ids` (all in region jp). */
function hashedPolicy(ids: string[]): CompiledPolicy {
  const shards = ids.map((id, i) => `  - { id: ${id}, region: jp, mesh: "127.0.0.1:${9000 + i}" }`).join('\n');
  const { dir, cleanup } = policyDir({
    'p.yaml': `trustDomain: mail.test\nshards:\n${shards}\ndomains:\n  - name: mail.test\n    default: { shards: [${ids.join(', ')}] }\n`,
  });
  try {
    return compilePolicy(loadPolicy(dir));
  } finally {
    cleanup();
  }
}

const N = 100_000;
const addresses = Array.from({ length: N }, (_, i) => `user${i}@mail.test`);
const owners = (c: CompiledPolicy) => addresses.map((a) => { const r = route(c, a); assert.equal(r.kind, 'shard'); return (r as { shard: string }).shard; });

test('rendezvous hashing: adding one shard to n moves ~1/(n+1), all of it to the new shard', () => {
  for (const n of [3, 5]) {
    const ids = Array.from({ length: n }, (_, i) => `s${i}`);
    const before = owners(hashedPolicy(ids));
    const after = owners(hashedPolicy([...ids, 'new']));
    let moved = 0;
    for (let i = 0; i < N; i++) {
      if (before[i] !== after[i]) {
        moved++;
        assert.equal(after[i], 'new', 'a user only ever moves to the added shard');
      }
    }
    const share = moved / N;
    assert.ok(Math.abs(share - 1 / (n + 1)) < 0.01, `n=${n}: moved ${share}, expected ~${1 / (n + 1)}`);
    // balance: every shard holds ~1/(n+1)
    for (const id of [...ids, 'new']) {
      const got = after.filter((s) => s === id).length / N;
      assert.ok(Math.abs(got - 1 / (n + 1)) < 0.01, `${id} holds ${got}`);
    }
  }
});

test('rendezvous hashing: removing a shard moves only its own users', () => {
  const ids = ['s0', 's1', 's2', 's3', 's4'];
  const before = owners(hashedPolicy(ids));
  const after = owners(hashedPolicy(ids.filter((s) => s !== 's2')));
  let own = 0;
  for (let i = 0; i < N; i++) {
    if (before[i] === 's2') own++;
    else assert.equal(after[i], before[i], `${addresses[i]} moved although its shard stayed`);
  }
  assert.ok(Math.abs(own / N - 0.2) < 0.01);
});

test('same snapshot gives the same answers in another process', () => {
  const c = compilePolicy(loadPolicy('policies/examples/example-co-jp'));
  const sample = Array.from({ length: 2000 }, (_, i) => `Person.${i}+tag@Example.co.jp`).concat(['anna@example.co.jp', 'noc-3@example.co.jp']);
  const here = sample.map((a) => { const r = route(c, a); return r.kind === 'shard' ? `${r.shard}/${r.rule}` : r.kind; });
  const { dir, cleanup } = policyDir({});
  try {
    writeFileSync(join(dir, 'snap.txt'), serializeCompiled(c));
    writeFileSync(join(dir, 'addrs.json'), JSON.stringify(sample));
    const script = `import { readFileSync } from 'node:fs';
import { deserializeCompiled, route } from '${process.cwd()}/policies/index.ts';
const c = deserializeCompiled(readFileSync('${dir}/snap.txt', 'utf8'));
const out = JSON.parse(readFileSync('${dir}/addrs.json', 'utf8')).map((a) => { const r = route(c, a); return r.kind === 'shard' ? r.shard + '/' + r.rule : r.kind; });
process.stdout.write(JSON.stringify(out));`;
    const there = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
    assert.deepEqual(there, here);
    assert.ok(new Set(here).size > 3, 'the sample spreads over several shards');
  } finally {
    cleanup();
  }
});

test('serialize/deserialize roundtrip keeps every decision and setting', () => {
  for (const dir of ['policies/examples/example-co-jp', 'policies/examples/demo']) {
    const c = compilePolicy(loadPolicy(dir), { shardAddresses: { 'tokyo-1': '127.0.0.1:4444' } });
    const text = serializeCompiled(c);
    const d = deserializeCompiled(text);
    assert.equal(serializeCompiled(d), text, 're-serializing is byte-identical');
    assert.deepEqual(d.shards, c.shards);
    assert.equal(d.trustDomain, c.trustDomain);
    assert.equal(d.digest, c.digest);
    assert.deepEqual(d.certificates, c.certificates);
    for (const dom of c.domains) {
      const users = dom.users ? [...dom.users.keys()] : [];
      for (const a of [...users, 'x1', 'noc-9', 'postmaster', 'Zed+Q'].map((l) => `${l}@${dom.name}`)) {
        assert.deepEqual(route(d, a), route(c, a), a);
        assert.equal(isKnownUser(d, a), isKnownUser(c, a), a);
      }
      assert.deepEqual(d.domainMap.get(dom.name)?.auth, dom.auth);
    }
    assert.equal(authorize(d, `spiffe://${c.trustDomain}/shard/osaka-1/node/n1`, 'tokyo-1'), true);
  }
  assert.throws(() => deserializeCompiled('{"format":"other"}'), { code: 'ERR_POLICY_SNAPSHOT' });
  assert.throws(() => deserializeCompiled('not json'), { code: 'ERR_POLICY_SNAPSHOT' });
  const good = serializeCompiled(compilePolicy(loadPolicy('policies/examples/demo')));
  assert.throws(() => deserializeCompiled(good.split('\n').slice(0, 3).join('\n')), { code: 'ERR_POLICY_SNAPSHOT' });
});

test('case and subaddress handling follow the domain settings', () => {
  const { dir, cleanup } = policyDir({
    'mesh.yaml': MESH_YAML,
    'domains.yaml': `domains:
  - name: Mail.Test
    directory: users.csv
    directoryIsComplete: true
  - name: strict.test
    localPart: { caseSensitive: true, subaddressSeparator: "-" }
    directory: strict.csv
    directoryIsComplete: true
  - name: plain.test
    localPart: { subaddressSeparator: "" }
    directory: plain.csv
`,
    'users.csv': 'address,shard\nAlice@MAIL.test,frankfurt-1\nmüller@mail.test,osaka-1\n',
    'strict.csv': 'address,shard\nBob@strict.test,osaka-1\n',
    'plain.csv': 'address,shard\nc+d@plain.test,osaka-1\n',
  });
  try {
    const c = compilePolicy(loadPolicy(dir));
    const shard = (a: string) => { const r = route(c, a); return r.kind === 'shard' ? `${r.shard}/${r.rule}` : r.kind; };
    for (const a of ['alice@mail.test', 'ALICE@MAIL.TEST', 'alice+news@mail.test', 'Alice+a+b@Mail.Test.']) assert.equal(shard(a), 'frankfurt-1/directory', a);
    assert.equal(shard('Bob@strict.test'), 'osaka-1/directory');
    assert.equal(shard('Bob-lists@STRICT.test'), 'osaka-1/directory');
    assert.notEqual(shard('bob@strict.test'), 'osaka-1/directory', 'case-sensitive domain');
    assert.equal(isKnownUser(c, 'bob@strict.test'), false);
    assert.equal(isKnownUser(c, 'Bob-x@strict.test'), true);
    assert.equal(shard('c+d@plain.test'), 'osaka-1/directory', 'no separator: + is part of the name');
    assert.notEqual(shard('c@plain.test'), 'osaka-1/directory');
    // non-ASCII local parts take the slow path and must agree with the directory
    assert.equal(shard('MÜLLER+x@mail.test'), 'osaka-1/directory');
    assert.equal(shard('Ærø@mail.test'), shard('ærø+y@MAIL.TEST'));
    // the hash of a subaddressed, differently-cased address equals the hash of the base address
    assert.equal(shard('Zed+1@mail.test'), shard('zed@mail.test'));
  } finally {
    cleanup();
  }
});

test('authorize allows listed identities to listed shards and denies everything else', () => {
  const { dir, cleanup } = policyDir({
    'mesh.yaml': MESH_YAML.replace(/authorization:[\s\S]*$/, ''),
    'authz.yaml': `authorization:
  - name: jp nodes reach jp shards
    allow: ["spiffe://mail.test/shard/tokyo-1/node/*", "spiffe://mail.test/shard/osaka-1/node/*"]
    shards: [tokyo-1, osaka-1]
  - name: control plane everywhere
    allow: ["spiffe://mail.test/control-plane"]
    shards: ["*"]
`,
  });
  try {
    const c = compilePolicy(loadPolicy(dir));
    assert.equal(authorize(c, 'spiffe://mail.test/shard/osaka-1/node/a1', 'tokyo-1'), true);
    assert.equal(authorize(c, 'spiffe://mail.test/shard/osaka-1/node/a1', 'frankfurt-1'), false);
    assert.equal(authorize(c, 'spiffe://mail.test/shard/frankfurt-1/node/f1', 'tokyo-1'), false);
    assert.equal(authorize(c, 'spiffe://mail.test/control-plane', 'frankfurt-1'), true);
    assert.equal(authorize(c, 'spiffe://mail.test/shard/osaka-1/node/a1/extra', 'tokyo-1'), false, '* is one segment');
    assert.equal(authorize(c, 'spiffe://evil.test/shard/osaka-1/node/a1', 'tokyo-1'), false);
    assert.equal(authorize(c, 'spiffe://mail.test/shard/osaka-1/node/a1', 'nara-1'), false, 'unknown shard');
    const demo = compilePolicy(loadPolicy('policies/examples/demo'));
    for (const from of ['tokyo-1', 'osaka-1', 'frankfurt-1']) for (const to of ['tokyo-1', 'osaka-1', 'frankfurt-1']) {
      assert.equal(authorize(demo, `spiffe://mail.test/shard/${from}/node/n`, to), true);
    }
  } finally {
    cleanup();
  }
});

test('glob overlap is decided exactly', () => {
  const cases: [string, string, boolean][] = [
    ['sales-*', '*-emea', true], ['ops-?', 'ops-eu', false], ['ops-?', 'ops-e', true], ['a*b', 'c*', false],
    ['*', 'x', true], ['a?c', 'abc', true], ['a?c', 'abd', false], ['*a*', '*b*', true], ['abc', 'ABC', true],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(globsOverlap(a, b, false), want, `${a} vs ${b}`);
    assert.equal(globsOverlap(b, a, false), want, `${b} vs ${a}`);
  }
  assert.equal(globsOverlap('abc', 'ABC', true), false);
});
