// The data model of a policy: what loadPolicy() returns (validated, with the user directory
// already resolved to shards) and what compilePolicy() turns into an O(1) lookup snapshot.
import type { UserIndex } from './user-index.ts';

/** Where a definition sits, for error messages (`file:line:col`). */
export interface SourceLocation {
  file: string;
  line: number;
  col: number;
}

/** Backend addresses of a shard, as seen from its own sidecar (`host:port` or `unix:/path`). */
export interface ShardBackends {
  /** Dovecot LMTP. */
  lmtp?: string;
  imap?: string;
  pop3?: string;
  /** Postfix's trusted re-injection smtpd. */
  smtp?: string;
}

/** One mail backend owning a set of mailboxes. */
export interface Shard {
  id: string;
  region: string;
  /** `host:port` of the shard's sidecar mesh listener. The demo rewrites it after loading. */
  mesh: string;
  backends: ShardBackends;
  at?: SourceLocation;
}

/** Where a rule or a domain default sends users: one shard, or rendezvous hashing over a set
 * (given as shard ids, or as every shard in some regions). Resolved to shard ids at load time. */
export type Target = { shard: string } | { shards: string[] } | { regions: string[] };

/** An attribute/local-part placement rule of a domain. */
export interface Rule {
  name: string;
  /** Higher wins when two rules match the same user; absent counts as 0. */
  priority?: number;
  match: { attributes?: Record<string, string>; localPart?: string };
  target: Target;
  /** Shard ids the target resolves to, sorted by id (one element for a single shard). */
  shardIds: string[];
  at?: SourceLocation;
}

/** A DKIM private-key reference: a file path or a Kubernetes secret name, never the key. */
export type DkimKeyRef = { file: string } | { secret: string };

/** Per-domain message authentication settings. */
export interface DomainAuth {
  /** `enforce`: DMARC policy applied; `monitor`: verdicts recorded only. */
  mode: 'enforce' | 'monitor';
  dkim?: { selector: string; key: DkimKeyRef };
}

/** The resolved user directory of one domain. Rows were validated and placed at load time:
 * `index` finds a normalized local part's row, `placement[row]` packs the decision as
 * `ruleSlot * 65536 + shardIndex` (ruleSlot 0 = explicit directory row, i+1 = `rules[i]`). */
export interface DirectoryTable {
  files: string[];
  index: UserIndex;
  placement: Int32Array;
}

/** A hosted mail domain. */
export interface Domain {
  /** Lower-case domain name (RFC 5321 §2.4: domains are case-insensitive). */
  name: string;
  /** Allowed regions; empty means any region. */
  residency: string[];
  /** RFC 5321 §2.4 lets a server treat local parts case-sensitively; default false. */
  caseSensitive: boolean;
  /** Subaddress separator (RFC 5233), '' disables; default '+'. */
  subaddressSeparator: string;
  auth: DomainAuth;
  directory?: DirectoryTable;
  /** True: an address absent from the directory does not exist (RCPT may refuse it). */
  directoryIsComplete: boolean;
  rules: Rule[];
  default: Target;
  /** Shard ids of the default, sorted by id. */
  defaultShardIds: string[];
  at?: SourceLocation;
}

/** Which identities may connect to which shards. */
export interface AuthorizationRule {
  name?: string;
  /** SPIFFE ID patterns; `*` matches one path segment. */
  allow: string[];
  /** Shard ids, or `*` for every shard. */
  shards: string[];
  at?: SourceLocation;
}

/** A loaded, validated policy set. Change shard `mesh`/`backends` addresses freely before
 * compiling (the demo does); do not add, remove or reorder shards: directory placements refer
 * to shards by index. */
export interface Policy {
  trustDomain: string;
  certificates: { workloadTtlMs: number; joinTokenTtlMs: number };
  shards: Shard[];
  domains: Domain[];
  authorization: AuthorizationRule[];
  /** sha256 (hex) over every policy and directory file, in path order. */
  digest: string;
}

/** The outcome of placing one address. Results are shared frozen objects: do not mutate. */
export type RouteResult =
  | {
      readonly kind: 'shard';
      readonly domain: string;
      /** Owning shard id. */
      readonly shard: string;
      readonly region: string;
      /** Index into `compiled.shards`. */
      readonly shardIndex: number;
      /** What decided: `directory`, `rule:<name>` or `default`. */
      readonly rule: string;
    }
  | { readonly kind: 'not-hosted' }
  | { readonly kind: 'invalid' };
