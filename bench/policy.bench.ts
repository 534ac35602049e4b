// Placement policy at scale: compile 1M directory users, O(1) lookups, heap after compile.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { result, type BenchFn } from './harness.ts';
import { compilePolicy, loadPolicy, route, serializeCompiled, deserializeCompiled, type CompiledPolicy } from '../policies/index.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMb = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

const POLICY = `trustDomain: bench.test
shards:
  - { id: tokyo-1, region: jp, mesh: "127.0.0.1:1" }
  - { id: tokyo-2, region: jp, mesh: "127.0.0.1:2" }
  - { id: osaka-1, region: jp, mesh: "127.0.0.1:3" }
  - { id: frankfurt-1, region: eu, mesh: "127.0.0.1:4" }
  - { id: frankfurt-2, region: eu, mesh: "127.0.0.1:5" }
domains:
  - name: example.co.jp
    residency: [jp, eu]
    directory: users.csv
    directoryIsComplete: true
    rules:
      - { name: eu, match: { attributes: { region: eu } }, target: { regions: [eu] }, priority: 1 }
      - { name: legal, match: { attributes: { department: legal } }, target: { shard: osaka-1 } }
      - { name: noc, match: { localPart: "noc-*" }, target: { shards: [tokyo-1, tokyo-2] } }
    default: { regions: [jp] }
authorization:
  - { allow: ["spiffe://bench.test/shard/*/node/*"], shards: ["*"] }
`;

/** Write the policy with `users` directory rows: 10% explicit shards, 10% eu, 5% legal. */
function writePolicy(dir: string, users: number): void {
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  const lines = ['address,shard,region,department'];
  const depts = ['sales', 'engineering', 'support', 'legal'];
  for (let i = 0; i < users; i++) {
    const shard = i % 10 === 0 ? 'tokyo-2' : '';
    const region = i % 10 === 1 ? 'eu' : 'jp';
    const dept = i % 20 === 3 ? 'legal' : depts[i % 3];
    lines.push(`user.${i}@example.co.jp,${shard},${region},${dept}`);
  }
  writeFileSync(join(dir, 'users.csv'), lines.join('\n') + '\n');
}

/** Baseline: read the CSV and split it into rows and fields, nothing else. */
function parseOnly(file: string): number {
  const text = readFileSync(file, 'utf8');
  let n = 0;
  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    const f = text.slice(pos, nl).split(',');
    n += f.length;
    pos = nl + 1;
  }
  return n;
}

let sink = 0;

/** route() calls per second over `keys`, for about `ms`. */
function routeRate(c: CompiledPolicy, keys: string[], ms: number): number {
  const start = performance.now();
  let n = 0;
  do {
    for (let i = 0; i < keys.length; i++) {
      const r = route(c, keys[i]);
      if (r.kind === 'shard') sink += r.shardIndex;
    }
    n += keys.length;
  } while (performance.now() - start < ms);
  return n / ((performance.now() - start) / 1000);
}

/** Map.get calls per second over `keys`, for about `ms` (the same loop as {@link routeRate}). */
function mapRate(map: Map<string, number>, keys: string[], ms: number): number {
  const start = performance.now();
  let n = 0;
  do {
    for (let i = 0; i < keys.length; i++) {
      const v = map.get(keys[i]);
      if (v !== undefined) sink += v;
    }
    n += keys.length;
  } while (performance.now() - start < ms);
  return n / ((performance.now() - start) / 1000);
}

export const run: BenchFn = async ({ quick }) => {
  const users = quick ? 100_000 : 1_000_000;
  const dir = mkdtempSync(join(tmpdir(), 'mailmesh-bench-policy-'));
  try {
    writePolicy(dir, users);
    const heapBefore = heapMb();
    let t = performance.now();
    parseOnly(join(dir, 'users.csv'));
    const parseS = (performance.now() - t) / 1000;

    t = performance.now();
    let compiled: CompiledPolicy | undefined = compilePolicy(loadPolicy(dir));
    const compileS = (performance.now() - t) / 1000;
    const heapAfter = heapMb();

    // Lookup keys: 3/4 directory users (mixed case, some subaddressed), 1/4 hashed addresses.
    const keys: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      const u = (i * 7919) % users;
      keys.push(i % 4 === 3 ? `new.${i}@example.co.jp` : i % 8 === 1 ? `User.${u}+tag@Example.co.jp` : `user.${u}@example.co.jp`);
    }
    const c = compiled;
    // Baseline: a raw Map.get on pre-normalized keys of the same shape.
    const map = new Map(c.domains[0].users!.locals.map((l, i) => [l, i]));
    const rawKeys = keys.map((a) => a.slice(0, a.indexOf('@')).toLowerCase().split('+')[0]);
    // Both loops have the same shape (a plain for over a pre-built key array, no per-call
    // closure). Interleaved windows, best of each: a burst of load from other processes on a
    // shared machine then lowers neither figure alone.
    const windowMs = quick ? 250 : 500;
    let lookups = 0;
    let rawRate = 0;
    for (let rep = 0; rep < 3; rep++) {
      lookups = Math.max(lookups, routeRate(c, keys, windowMs));
      rawRate = Math.max(rawRate, mapRate(map, rawKeys, windowMs));
    }

    t = performance.now();
    const snapshot = serializeCompiled(c);
    const serializeS = (performance.now() - t) / 1000;
    t = performance.now();
    deserializeCompiled(snapshot);
    const deserializeS = (performance.now() - t) / 1000;
    const snapshotMb = Buffer.byteLength(snapshot) / 2 ** 20;
    const csvMb = readFileSync(join(dir, 'users.csv')).length / 2 ** 20;
    compiled = undefined;
    if (sink === -1) console.log(sink);

    return [
      result('policy.compile', compileS, 's', parseS, `parse ${users} CSV rows only`, '<= 3 s for 1M users'),
      result('policy.lookup', lookups, 'lookups/s', rawRate, 'raw Map.get, same keys', '>= 2,000,000/s'),
      result('policy.heap', heapAfter, 'MB', heapBefore, 'heap before loading', '<= 200 MB'),
      result('policy.serialize', serializeS, 's', null),
      result('policy.deserialize', deserializeS, 's', compileS, 'load+compile from files'),
      result('policy.snapshot', snapshotMb, 'MB', csvMb, 'directory CSV size'),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
