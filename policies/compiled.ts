// The compiled snapshot: everything route() and authorize() need, laid out for O(1) lookups.
import type { UserIndex } from './user-index.ts';
import type { AuthorizationRule, DomainAuth, Policy, RouteResult, Rule, ShardBackends, Target } from './types.ts';

/** A shard as the mesh sees it. */
export interface CompiledShard {
  id: string;
  region: string;
  /** `host:port` of its sidecar mesh listener. */
  mesh: string;
  backends: ShardBackends;
}

/** A local-part rule evaluated at route time (attribute rules only apply to directory users,
 * whose placement was decided at load time). Sorted by priority, highest first. */
export interface RuntimeRule {
  re: RegExp;
  slot: number;
  indexes: Int32Array;
  seeds: Uint32Array;
}

/** One hosted domain in compiled form. */
export interface CompiledDomain {
  name: string;
  residency: string[];
  caseSensitive: boolean;
  subaddressSeparator: string;
  auth: DomainAuth;
  directoryIsComplete: boolean;
  /** Normalized local part → row in `placement`; undefined without a directory. */
  users: UserIndex | undefined;
  /** Char code of the subaddress separator, -1 when disabled. */
  separatorCode: number;
  /** `ruleSlot * 65536 + shardIndex` per row. */
  placement: Int32Array;
  directoryFiles: string[];
  rules: Rule[];
  default: Target;
  defaultShardIds: string[];
  runtimeRules: RuntimeRule[];
  defaultIndexes: Int32Array;
  defaultSeeds: Uint32Array;
  /** Shared frozen results: `results[slot * shards.length + shardIndex]`; slot 0 = directory,
   * 1..rules.length = rules, rules.length + 1 = default. */
  results: RouteResult[];
  defaultSlot: number;
}

/** An authorization rule with its patterns compiled. */
export interface CompiledAuthz {
  source: AuthorizationRule;
  patterns: RegExp[];
  /** null = every shard. */
  shards: Set<string> | null;
}

/** A compiled policy snapshot. Treat as immutable; share between requests freely. */
export interface CompiledPolicy {
  trustDomain: string;
  certificates: Policy['certificates'];
  digest: string;
  shards: CompiledShard[];
  domains: CompiledDomain[];
  /** Lower-case domain name → domain. */
  domainMap: Map<string, CompiledDomain>;
  authorization: CompiledAuthz[];
}
