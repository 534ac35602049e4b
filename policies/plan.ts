import type { CompiledPolicy } from './compiled.ts';
import { route } from './route.ts';
import type { RouteResult } from './types.ts';

/** A directory user whose owning shard differs between two revisions (`null` = not hosted). */
export interface UserMove {
  address: string;
  from: string | null;
  to: string | null;
  fromRule: string | null;
  toRule: string | null;
}

/** Estimated movement of hashed (non-directory) placement in one domain. */
export interface HashedMovement {
  domain: string;
  /** Synthetic addresses routed under both revisions. */
  samples: number;
  /** Share of the sampled address space that changes shard (0..1). */
  moved: number;
  /** Share moving per shard pair, largest first. `null` = not hosted in that revision. */
  pairs: { from: string | null; to: string | null; share: number }[];
}

/** What changes between two compiled revisions. */
export interface Plan {
  users: UserMove[];
  hashed: HashedMovement[];
}

const shardOf = (r: RouteResult) => (r.kind === 'shard' ? r.shard : null);
const ruleOf = (r: RouteResult) => (r.kind === 'shard' ? r.rule : null);

/**
 * Compare two revisions: every directory user (of either revision) whose shard changes, exactly;
 * and, per domain, the share of the hashed address space moving between each pair of shards,
 * estimated by routing `samples` synthetic addresses (`mm-sample-<i>@domain`) under both.
 */
export function planChanges(before: CompiledPolicy, after: CompiledPolicy, samples = 100_000): Plan {
  const users: UserMove[] = [];
  const hashed: HashedMovement[] = [];
  const names = [...new Set([...before.domainMap.keys(), ...after.domainMap.keys()])].sort();
  for (const name of names) {
    const locals = new Set<string>();
    for (const c of [before, after]) {
      const users = c.domainMap.get(name)?.users;
      if (users) for (const l of users.keys()) locals.add(l);
    }
    for (const local of [...locals].sort()) {
      const address = `${local}@${name}`;
      const a = route(before, address);
      const b = route(after, address);
      if (shardOf(a) !== shardOf(b)) users.push({ address, from: shardOf(a), to: shardOf(b), fromRule: ruleOf(a), toRule: ruleOf(b) });
    }
    const counts = new Map<string, { from: string | null; to: string | null; n: number }>();
    let moved = 0;
    for (let i = 0; i < samples; i++) {
      const address = `mm-sample-${i}@${name}`;
      const from = shardOf(route(before, address));
      const to = shardOf(route(after, address));
      if (from === to) continue;
      moved++;
      const key = `${from}\0${to}`;
      const entry = counts.get(key);
      if (entry) entry.n++;
      else counts.set(key, { from, to, n: 1 });
    }
    hashed.push({
      domain: name,
      samples,
      moved: samples === 0 ? 0 : moved / samples,
      pairs: [...counts.values()]
        .sort((x, y) => y.n - x.n || String(x.from).localeCompare(String(y.from)) || String(x.to).localeCompare(String(y.to)))
        .map((e) => ({ from: e.from, to: e.to, share: e.n / samples })),
    });
  }
  return { users, hashed };
}
