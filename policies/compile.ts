import { compileGlob, globToRegExp } from './glob.ts';
import { hashSet } from './resolve-directory.ts';
import type { CompiledAuthz, CompiledDomain, CompiledPolicy, CompiledShard, RuntimeRule } from './compiled.ts';
import type { UserIndex } from './user-index.ts';
import type { AuthorizationRule, Domain, Policy, RouteResult, ShardBackends } from './types.ts';

/** Overrides applied while compiling, e.g. by the local demo, which learns its ports only at
 * run time. Keys are shard ids. */
export interface CompileOptions {
  /** New mesh `host:port` per shard. */
  shardAddresses?: Record<string, string>;
  /** Backend addresses per shard (merged over the policy's). */
  shardBackends?: Record<string, ShardBackends>;
}

/** A runtime rule as compileDomain builds it: the regex plus, for an ASCII glob, the
 * {@link compileGlob} program route() runs on the raw address instead (null: use `re`). */
export interface RouteRule extends RuntimeRule {
  glob: Int32Array | null;
}

/** Compile one SPIFFE ID pattern: `*` matches exactly one path segment. */
export function spiffePattern(pattern: string): RegExp {
  const src = pattern
    .split('*')
    .map((part) => part.replace(/[\\^$.|?+()[\]{}/-]/g, '\\$&'))
    .join('[^/]+');
  return new RegExp(`^${src}$`);
}

/** Compile authorization rules. */
export function compileAuthz(rules: AuthorizationRule[]): CompiledAuthz[] {
  return rules.map((source) => ({
    source,
    patterns: source.allow.map(spiffePattern),
    shards: source.shards.includes('*') ? null : new Set(source.shards),
  }));
}

/** Build the compiled form of one domain (shared by compile and deserialize). */
export function compileDomain(
  d: Omit<Domain, 'directory' | 'at'>,
  shards: CompiledShard[],
  users: UserIndex | undefined,
  placement: Int32Array,
  directoryFiles: string[],
): CompiledDomain {
  const shardIndex = new Map(shards.map((s, i) => [s.id, i]));
  const n = shards.length;
  const results: RouteResult[] = [];
  const labels = ['directory', ...d.rules.map((r) => `rule:${r.name}`), 'default'];
  labels.forEach((rule, slot) => {
    shards.forEach((s, i) => {
      results[slot * n + i] = Object.freeze({ kind: 'shard', domain: d.name, shard: s.id, region: s.region, shardIndex: i, rule });
    });
  });
  const runtimeRules = d.rules
    .map((r, i) => ({ r, slot: i + 1 }))
    .filter(({ r }) => r.match.localPart !== undefined && r.match.attributes === undefined)
    .sort((a, b) => (b.r.priority ?? 0) - (a.r.priority ?? 0) || a.slot - b.slot)
    .map(({ r, slot }): RouteRule => ({
      re: globToRegExp(r.match.localPart!, d.caseSensitive),
      glob: compileGlob(r.match.localPart!, d.caseSensitive),
      slot,
      ...hashSet(r.shardIds, shardIndex),
    }));
  const def = hashSet(d.defaultShardIds, shardIndex);
  return {
    name: d.name,
    residency: d.residency,
    caseSensitive: d.caseSensitive,
    subaddressSeparator: d.subaddressSeparator,
    auth: d.auth,
    directoryIsComplete: d.directoryIsComplete,
    users,
    separatorCode: d.subaddressSeparator === '' ? -1 : d.subaddressSeparator.charCodeAt(0),
    placement,
    directoryFiles,
    rules: d.rules,
    default: d.default,
    defaultShardIds: d.defaultShardIds,
    runtimeRules,
    defaultIndexes: def.indexes,
    defaultSeeds: def.seeds,
    results,
    defaultSlot: d.rules.length + 1,
  };
}

/**
 * Compile a loaded policy into a snapshot for O(1) placement. The directory Map built by
 * {@link loadPolicy} is shared, not copied, so compiling a million users takes milliseconds.
 * Shard addresses can be overridden here (the demo binds port 0 and learns ports later).
 *
 * @example
 * const compiled = compilePolicy(loadPolicy(dir), { shardAddresses: { 'tokyo-1': '127.0.0.1:40123' } });
 * route(compiled, 'Alice+news@Mail.Test'); // { kind: 'shard', shard: 'tokyo-1', rule: 'directory', … }
 */
export function compilePolicy(policy: Policy, options: CompileOptions = {}): CompiledPolicy {
  if (policy.shards.length > 65535) throw new RangeError('at most 65535 shards');
  const shards: CompiledShard[] = policy.shards.map((s) => ({
    id: s.id,
    region: s.region,
    mesh: options.shardAddresses?.[s.id] ?? s.mesh,
    backends: { ...s.backends, ...options.shardBackends?.[s.id] },
  }));
  const domains = policy.domains.map((d) =>
    compileDomain(d, shards, d.directory?.index, d.directory?.placement ?? new Int32Array(0), d.directory?.files ?? []),
  );
  return {
    trustDomain: policy.trustDomain,
    certificates: { ...policy.certificates },
    digest: policy.digest,
    shards,
    domains,
    domainMap: new Map(domains.map((d) => [d.name, d])),
    authorization: compileAuthz(policy.authorization),
  };
}
