// route() takes in-place fast paths (ASCII domain folding, compiled globs, the user index's key
// arena). Each must agree with the definitional slow path built from the public pieces:
// normalizeDomain/normalizeLocal, addressHash, UserIndex.get, globToRegExp, rendezvous.
import assert from 'node:assert/strict';
import test from 'node:test';
import { compilePolicy, loadPolicy, route, type CompiledPolicy } from '../../policies/index.ts';
import { normalizeDomain, normalizeLocal } from '../../policies/address.ts';
import { compileGlob, globMatch, globToRegExp } from '../../policies/glob.ts';
import { addressHash, rendezvous } from '../../policies/hash.ts';
import type { RouteResult } from '../../policies/types.ts';
import { MESH_YAML, policyDir } from './fixtures.ts';

/** Deterministic PRNG (mulberry32) so a failure names a reproducible input. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

test('compiled glob agrees with globToRegExp on random ASCII globs and strings', () => {
  const rnd = prng(1);
  const pick = (s: string) => s[Math.floor(rnd() * s.length)];
  const word = (alphabet: string, max: number) => Array.from({ length: Math.floor(rnd() * (max + 1)) }, () => pick(alphabet)).join('');
  let matched = 0;
  for (let g = 0; g < 400; g++) {
    const glob = word('aAbB-.*?*', 7) || '*';
    for (const caseSensitive of [false, true]) {
      const prog = compileGlob(glob, caseSensitive);
      assert.ok(prog, glob);
      const re = globToRegExp(glob, caseSensitive);
      for (let s = 0; s < 60; s++) {
        const text = word('aAbB-.\n+', 9);
        // Match a prefix of a longer string, as route() does with `local+detail@domain`.
        const padded = `${text}+x@y`;
        const want = re.test(caseSensitive ? text : text.toLowerCase());
        assert.equal(globMatch(prog, padded, text.length, !caseSensitive), want, `${glob} ${caseSensitive} ${JSON.stringify(text)}`);
        if (want) matched++;
      }
    }
  }
  assert.ok(matched > 1000, 'the sample exercises matches, not only mismatches');
  assert.equal(compileGlob('ü*', false), null, 'non-ASCII globs stay on the regex');
  assert.deepEqual([...compileGlob('NOC-*', false)!], [110, 111, 99, 45, -1]);
});

/** The definitional router: every step spelled out with the public pieces, no fast path. */
function slowRoute(c: CompiledPolicy, address: string): RouteResult {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return { kind: 'invalid' };
  const raw = address.slice(at + 1);
  const d = c.domainMap.get(raw) ?? c.domainMap.get(normalizeDomain(raw));
  if (!d) return { kind: 'not-hosted' };
  const local = normalizeLocal(address.slice(0, at), d.caseSensitive, d.subaddressSeparator);
  if (local === '') return { kind: 'invalid' };
  const h = addressHash(local, d.name);
  const n = c.shards.length;
  const row = d.users?.get(local);
  if (row !== undefined) return d.results[(d.placement[row] >>> 16) * n + (d.placement[row] & 0xffff)];
  for (const r of d.runtimeRules) if (r.re.test(local)) return d.results[r.slot * n + rendezvous(h, r.indexes, r.seeds)];
  return d.results[d.defaultSlot * n + rendezvous(h, d.defaultIndexes, d.defaultSeeds)];
}

test('route() agrees with the slow path on a random sample of tricky addresses', () => {
  const long = 'l'.repeat(300);
  const { dir, cleanup } = policyDir({
    'mesh.yaml': MESH_YAML,
    'domains.yaml': `domains:
  - name: Mail.Test
    directory: users.csv
    rules:
      - { name: pm, match: { localPart: "postmaster" }, target: { shard: tokyo-1 }, priority: 6 }
      - { name: xyz, match: { localPart: "x*y*z" }, target: { shard: osaka-1 }, priority: 5 }
      - { name: noc, match: { localPart: "NOC-*" }, target: { shards: [tokyo-1, osaka-1] }, priority: 4 }
      - { name: abc, match: { localPart: "a?c*" }, target: { shard: tokyo-1 }, priority: 3 }
      - { name: ops, match: { localPart: "*-ops" }, target: { shard: frankfurt-1 }, priority: 2 }
      - { name: uml, match: { localPart: "ü*" }, target: { shard: osaka-1 }, priority: 1 }
  - name: kit.test
    localPart: { caseSensitive: true, subaddressSeparator: "-" }
    directory: kit.csv
    rules:
      - { name: ab, match: { localPart: "Ab*" }, target: { shard: frankfurt-1 } }
  - name: plain.test
    localPart: { subaddressSeparator: "" }
`,
    'users.csv': `address,shard\nalice@mail.test,frankfurt-1\nmüller@mail.test,osaka-1\n山田@mail.test,tokyo-1\n${long}@mail.test,osaka-1\nnoc-1@mail.test,frankfurt-1\n`,
    'kit.csv': 'address,shard\nBob@kit.test,osaka-1\nbob@kit.test,frankfurt-1\nAbe@kit.test,tokyo-1\n',
  });
  try {
    const c = compilePolicy(loadPolicy(dir));
    const rnd = prng(2);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
    const flip = (s: string) => [...s].map((ch) => (rnd() < 0.3 ? ch.toUpperCase() : ch)).join('');
    const locals = ['alice', 'müller', 'MÜLLER', '山田', long, 'noc-1', 'noc-', 'postmaster', 'x1y2z', 'xyz', 'abc', 'a-c', 'team-ops', 'ü', 'üx',
      'Bob', 'bob', 'Abe', 'Abx', 'aB', 'ſ', '\u212Aelvin', 'İ', '', '+', '-', 'é', 'a\nb'];
    const details = ['', '+tag', '+', '-x', '+a+b', '-', '+ü'];
    const domains = ['mail.test', 'MAIL.TEST', 'Mail.Test.', 'mail.test.', 'kit.test', 'KIT.test', '\u212Ait.test', 'kit.test.', 'plain.test', 'PLAIN.TEST',
      'mail.tes', 'xmail.test', 'elsewhere.example', 'maİl.test', 'mail.tеst', ''];
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const local = rnd() < 0.8 ? flip(pick(locals)) + pick(details) : flip(pick(locals)) + pick(['@', '']) + pick(locals);
      const address = `${local}@${pick(domains)}`;
      const got = route(c, address);
      assert.deepEqual(got, slowRoute(c, address), JSON.stringify(address));
      seen.add(got.kind === 'shard' ? got.rule : got.kind);
    }
    // The sample reaches every decision route() can make.
    for (const rule of ['directory', 'rule:pm', 'rule:xyz', 'rule:noc', 'rule:abc', 'rule:ops', 'rule:uml', 'rule:ab', 'default', 'invalid', 'not-hosted']) {
      assert.ok(seen.has(rule), rule);
    }
  } finally {
    cleanup();
  }
});
