import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { Logger } from '../../common/log.ts';

/** Where a mailbox lives, as placement answers it for a login name. */
export type RouteResult = { kind: 'local' } | { kind: 'remote'; shardId: string } | { kind: 'unknown' };

/** A backend to connect to: the local Dovecot or the owning shard (over the mesh). */
export type BackendTarget = { kind: 'local' } | { kind: 'remote'; shardId: string };

/** The mail-access protocol a backend connection will speak. */
export type MailProtocol = 'imap' | 'pop3';

/** Placement lookup injected by the sidecar. */
export type RouteFn = (login: string) => RouteResult | Promise<RouteResult>;

/** Opens a byte stream to the backend that holds the mailbox (plain TCP or mTLS over the mesh). */
export type ConnectBackendFn = (target: BackendTarget, protocol: MailProtocol) => Promise<Duplex>;

/** Options shared by {@link startImapProxy} and {@link startPop3Proxy}. */
export interface MailProxyOptions {
  host: string;
  /** 0 picks an ephemeral port. */
  port: number;
  /** TLS for STARTTLS/STLS (or implicit TLS); a function so certificate rotation applies to the next handshake. */
  tls?: { secureContext: () => tls.SecureContext };
  /** Handshake TLS right after accept (993/995) instead of offering STARTTLS/STLS. */
  implicitTls?: boolean;
  route: RouteFn;
  connectBackend: ConnectBackendFn;
  /** Accept LOGIN/USER/PASS/AUTH on a connection without TLS (default false). */
  allowPlaintextLogin?: boolean;
  /** Time allowed from accept until a successful login. */
  preauthTimeoutMs: number;
  /** After login: a session with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /** Longest command line accepted before login (bytes, without CRLF). */
  maxLineLength: number;
  /** Largest IMAP literal accepted before login (bytes); POP3 has no literals. */
  maxLiteral: number;
  /** Failed logins allowed per connection; then the connection is closed. */
  maxAuthAttempts: number;
  /** Awaited before every failed-login reply, the same for unknown users and wrong passwords. */
  failureDelay?: () => Promise<void>;
  log: Logger;
}

/** One logged-in session, as {@link MailProxyHandle.sessions} lists it. */
export interface SessionInfo {
  login: string;
  protocol: MailProtocol;
  /** The client's address as `ip:port`. */
  client: string;
}

/** A running IMAP or POP3 proxy. */
export interface MailProxyHandle {
  /** The port actually bound. */
  port: number;
  /** Stop accepting, close every session, resolve when the listener is closed. */
  close(): Promise<void>;
  /** The logged-in (spliced) sessions. */
  sessions(): SessionInfo[];
  /**
   * Close the logged-in sessions whose login matches, cleanly (IMAP `* BYE [UNAVAILABLE]`,
   * POP3 `-ERR [SYS/TEMP]`), e.g. users a policy change moved to another shard.
   * Returns how many sessions were closed.
   */
  closeSessions(predicate: (login: string) => boolean): number;
}
