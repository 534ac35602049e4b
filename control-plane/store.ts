/** One issued certificate in the audit log. */
export interface IssuedRecord {
  serial: string;
  spiffeId: string;
  /** ms since the epoch. */
  notAfter: number;
  issuedAt: number;
  /** How the caller authenticated. */
  via: 'join-token' | 'renewal' | 'expired-renewal' | 'self';
}

/** One entry on the revocation list. */
export interface Revocation {
  kind: 'serial' | 'identity';
  /** Uppercase hex serial or SPIFFE ID. */
  value: string;
  reason: string;
  at: number;
}

/** The last status a node reported. */
export interface NodeRecord {
  spiffeId: string;
  revision: string;
  certSerial: string;
  certNotAfter: number;
  lastReport: number;
  clockOffsetMs: number;
}

/**
 * The control plane's small state. Async so that a shared SQL store (several replicas) can
 * implement it; the default is {@link ../control-plane/sqlite-store.ts SqliteStore}.
 */
export interface Store {
  /** Record a join token id as used. False when it was already used (a replay). */
  useTokenId(jti: string, spiffeId: string, expiresAt: number, usedAt: number): Promise<boolean>;
  recordIssued(rec: IssuedRecord): Promise<void>;
  issued(limit?: number): Promise<IssuedRecord[]>;
  /** The serial of the newest certificate issued to `spiffeId`, if any. */
  latestSerial(spiffeId: string): Promise<string | undefined>;
  /** Add revocations; returns how many were new. */
  revoke(items: Revocation[]): Promise<number>;
  revocations(): Promise<Revocation[]>;
  upsertNode(rec: NodeRecord): Promise<void>;
  nodes(): Promise<NodeRecord[]>;
  /** Forget used token ids that expired before `now` (they cannot be replayed any more). */
  pruneTokens(now: number): Promise<number>;
  close(): void;
}
