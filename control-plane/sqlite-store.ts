import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { mkdirSync, chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { IssuedRecord, NodeRecord, Revocation, Store } from './store.ts';
import { ControlPlaneError } from './errors.ts';

/** File name of the database inside the state directory. */
export const STATE_DB = 'state.db';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS used_tokens (jti TEXT PRIMARY KEY, spiffe_id TEXT NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS issued (serial TEXT PRIMARY KEY, spiffe_id TEXT NOT NULL, not_after INTEGER NOT NULL, issued_at INTEGER NOT NULL, via TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS issued_by_id ON issued (spiffe_id);
CREATE TABLE IF NOT EXISTS revocations (kind TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (kind, value));
CREATE TABLE IF NOT EXISTS nodes (spiffe_id TEXT PRIMARY KEY, revision TEXT NOT NULL, cert_serial TEXT NOT NULL, cert_not_after INTEGER NOT NULL, last_report INTEGER NOT NULL, clock_offset_ms INTEGER NOT NULL);
`;

/**
 * The embedded store: one SQLite file (`node:sqlite`, built into Node 24) in the state directory,
 * mode 0600. WAL with `synchronous=NORMAL`: a crash may lose the last few audit rows but never
 * corrupts the file, and Sign does not wait for an fsync per certificate.
 */
export class SqliteStore implements Store {
  private readonly db: DatabaseSync;
  private readonly stmts: Record<string, StatementSync>;

  /** Open (creating) `stateDir/state.db`; pass `':memory:'` as `path` for tests. */
  constructor(stateDir: string, path = join(stateDir, STATE_DB)) {
    try {
      if (path !== ':memory:') mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      const fresh = path !== ':memory:' && !existsSync(path);
      this.db = new DatabaseSync(path);
      if (fresh) chmodSync(path, 0o600);
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
      this.db.exec(SCHEMA);
    } catch (err) {
      throw new ControlPlaneError('ERR_STATE', `cannot open state database ${path}: ${(err as Error).message}`, { cause: err });
    }
    const p = (sql: string) => this.db.prepare(sql);
    this.stmts = {
      useToken: p('INSERT OR IGNORE INTO used_tokens (jti, spiffe_id, expires_at, used_at) VALUES (?, ?, ?, ?)'),
      issue: p('INSERT OR REPLACE INTO issued (serial, spiffe_id, not_after, issued_at, via) VALUES (?, ?, ?, ?, ?)'),
      issued: p('SELECT serial, spiffe_id, not_after, issued_at, via FROM issued ORDER BY issued_at DESC LIMIT ?'),
      latest: p('SELECT serial FROM issued WHERE spiffe_id = ? ORDER BY issued_at DESC, rowid DESC LIMIT 1'),
      revoke: p('INSERT OR IGNORE INTO revocations (kind, value, reason, at) VALUES (?, ?, ?, ?)'),
      revocations: p('SELECT kind, value, reason, at FROM revocations ORDER BY at, value'),
      node: p(`INSERT INTO nodes (spiffe_id, revision, cert_serial, cert_not_after, last_report, clock_offset_ms) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (spiffe_id) DO UPDATE SET revision = excluded.revision, cert_serial = excluded.cert_serial,
               cert_not_after = excluded.cert_not_after, last_report = excluded.last_report, clock_offset_ms = excluded.clock_offset_ms`),
      nodes: p('SELECT spiffe_id, revision, cert_serial, cert_not_after, last_report, clock_offset_ms FROM nodes ORDER BY spiffe_id'),
      prune: p('DELETE FROM used_tokens WHERE expires_at < ?'),
    };
  }

  async useTokenId(jti: string, spiffeId: string, expiresAt: number, usedAt: number): Promise<boolean> {
    return Number(this.stmts.useToken.run(jti, spiffeId, expiresAt, usedAt).changes) === 1;
  }

  async recordIssued(r: IssuedRecord): Promise<void> {
    this.stmts.issue.run(r.serial, r.spiffeId, r.notAfter, r.issuedAt, r.via);
  }

  async issued(limit = 1000): Promise<IssuedRecord[]> {
    return this.stmts.issued.all(limit).map((r) => ({
      serial: String(r.serial),
      spiffeId: String(r.spiffe_id),
      notAfter: Number(r.not_after),
      issuedAt: Number(r.issued_at),
      via: String(r.via) as IssuedRecord['via'],
    }));
  }

  async latestSerial(spiffeId: string): Promise<string | undefined> {
    const row = this.stmts.latest.get(spiffeId) as { serial: string } | undefined;
    return row ? String(row.serial) : undefined;
  }

  async revoke(items: Revocation[]): Promise<number> {
    let added = 0;
    this.db.exec('BEGIN');
    try {
      for (const r of items) added += Number(this.stmts.revoke.run(r.kind, r.value, r.reason, r.at).changes);
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
    return added;
  }

  async revocations(): Promise<Revocation[]> {
    return this.stmts.revocations.all().map((r) => ({ kind: String(r.kind) as Revocation['kind'], value: String(r.value), reason: String(r.reason), at: Number(r.at) }));
  }

  async upsertNode(n: NodeRecord): Promise<void> {
    this.stmts.node.run(n.spiffeId, n.revision, n.certSerial, n.certNotAfter, n.lastReport, n.clockOffsetMs);
  }

  async nodes(): Promise<NodeRecord[]> {
    return this.stmts.nodes.all().map((r) => ({
      spiffeId: String(r.spiffe_id),
      revision: String(r.revision),
      certSerial: String(r.cert_serial),
      certNotAfter: Number(r.cert_not_after),
      lastReport: Number(r.last_report),
      clockOffsetMs: Number(r.clock_offset_ms),
    }));
  }

  async pruneTokens(now: number): Promise<number> {
    return Number(this.stmts.prune.run(now).changes);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}
