import { randomBytes, type X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { TrustBundle } from '../../ca/bundle.ts';
import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/log.ts';
import type { Identity } from '../identity/identity.ts';
import { isMeshAlpn, type MeshAlpn } from './alpn.ts';
import { parseEndpoint, type Endpoint } from './address.ts';
import { checkPeer, type Revocations } from './check-peer.ts';
import { DEFAULT_GROUPS, groupFromSessionDer } from './groups.ts';
import { IntermediateCache, peerChainOf } from './peer-chain.ts';
import { splice } from './splice.ts';
import { meshContextOptions } from './tls-context.ts';

/** Configuration of {@link startIngress}. Functions are read on every connection, so a new
 * snapshot (policy, revocations, bundle) applies to the next handshake without a restart. */
export interface IngressConfig {
  host: string;
  /** 0 for an ephemeral port (tests). */
  port: number;
  identity: () => Identity | undefined;
  trustDomain: () => string;
  bundle: () => TrustBundle;
  /** Policy: may this peer reach this shard? */
  authorize: (peerSpiffeId: string) => boolean;
  revoked: () => Revocations;
  /** ALPN protocol → local backend: `host:port` or `unix:/path` to dial per session, or a
   * {@link LocalBackend} in this process that takes the decrypted session itself. */
  backends: Partial<Record<MeshAlpn, string | LocalBackend>>;
  clock: Clock;
  log?: Logger;
  /** Key-exchange groups, OpenSSL syntax (default {@link DEFAULT_GROUPS}). */
  groups?: string;
  /**
   * Issuing-CA certificates peers may be issued by besides ours (e.g. from the snapshot during an
   * issuing-CA rotation). Needed because node's server side does not expose the intermediates a
   * client sends (see peer-chain.ts); our own issuer is always known.
   */
  intermediates?: () => readonly X509Certificate[];
  /** Called for every accepted session (metrics, audit, tests: which certificate the peer used). */
  onAccept?: (info: AcceptedSession) => void;
  /** Abort handshakes that take longer (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Close spliced sessions idle for this long (default 10 min); a {@link LocalBackend} keeps its own. */
  idleTimeoutMs?: number;
}

/**
 * A backend in the sidecar's own process (the embedded Maildir store): it is handed the accepted
 * TLS session and serves it directly, so a delivery costs no second connection, no copy through a
 * loopback socket and no splice. It owns the socket from then on (errors, end, close).
 */
export type LocalBackend = (session: TLSSocket) => void;

/** What the ingress knows about an accepted session. */
export interface AcceptedSession {
  spiffeId: string;
  serial: string;
  alpn: MeshAlpn;
  group: string | undefined;
  resumed: boolean;
}

/** Counters of an ingress, for metrics and tests. */
export interface IngressStats {
  accepted: number;
  /** Refusals by reason code (`ERR_NO_CHAIN`, `ERR_MESH_NOT_AUTHORIZED`, …). */
  rejected: Record<string, number>;
  /** Negotiated key-exchange groups of completed handshakes (e.g. `X25519MLKEM768`). */
  groups: Record<string, number>;
  /** Accepted sessions whose backend could not be reached. */
  backendErrors: number;
  /** Open sessions cut by {@link Ingress.recheck}, by reason (revoked, not authorized). */
  closed: Record<string, number>;
  /** Accepted sessions that resumed a TLS session. */
  resumed: number;
}

/** A running ingress. */
export interface Ingress {
  port: number;
  stats: IngressStats;
  /** Swap the TLS context to the current identity/bundle. Established sessions are untouched. */
  updateIdentity(): void;
  /** Sessions being spliced right now. */
  activeSessions(): number;
  /** Re-check every spliced session's peer against the current trust (bundle, revocations,
   * authorization, expiry) and close those that fail; returns how many were closed. */
  recheck(): number;
  /** Stop listening and destroy every session. */
  close(): Promise<void>;
}

/** Why an open session is cut when trust changes: revocation or withdrawn authorization. */
const CUT_ON_RECHECK = new Set(['ERR_REVOKED_SERIAL', 'ERR_REVOKED_IDENTITY', 'ERR_MESH_NOT_AUTHORIZED']);

/** Refusal reasons of the ingress itself (the others are `ca/` verification codes). */
export const INGRESS_REASONS = {
  ownIdentity: 'ERR_MESH_IDENTITY_EXPIRED',
  noIdentity: 'ERR_MESH_NO_IDENTITY',
  alpn: 'ERR_MESH_UNKNOWN_ALPN',
  unauthorized: 'ERR_MESH_NOT_AUTHORIZED',
  handshake: 'ERR_MESH_HANDSHAKE',
} as const;

/**
 * Start the mesh ingress: a TLS 1.3 listener that requires a client certificate, verifies it with
 * `ca/verify.ts` itself (node's verifier is off so that each refusal has a reason code), checks
 * the identity against policy and revocations, then splices the session to the local backend
 * chosen by ALPN (or hands it to an in-process {@link LocalBackend}). Refused peers are logged and counted per reason; their socket is closed before
 * a single byte reaches a backend.
 *
 * @example
 * const ingress = await startIngress({ host: '0.0.0.0', port: 8443, identity: () => rotator.current(),
 *   trustDomain: () => td, bundle: () => snapshot.bundle, authorize: (id) => authorize(policy, id, shard),
 *   revoked: () => snapshot.revoked, backends: { 'mailmesh-lmtp': 'unix:/run/dovecot/lmtp' }, clock: systemClock });
 * rotator.onRotate(() => ingress.updateIdentity());
 */
export async function startIngress(cfg: IngressConfig): Promise<Ingress> {
  const groups = cfg.groups ?? DEFAULT_GROUPS;
  const idleTimeoutMs = cfg.idleTimeoutMs ?? 600_000;
  // One ticket key for the life of the listener: rotating the certificate must not invalidate
  // the session tickets peers hold, or every rotation would cost a full handshake per peer.
  const ticketKeys = randomBytes(48);
  const stats: IngressStats = { accepted: 0, rejected: {}, closed: {}, groups: {}, backendErrors: 0, resumed: 0 };
  const intermediates = new IntermediateCache();
  /** Spliced sessions and the chain each peer presented (re-checked when trust changes). */
  const sessions = new Map<net.Socket, X509Certificate[]>();
  /** The bundle each session was accepted under (a later root retirement does not cut it). */
  const sessionBundles = new Map<net.Socket, TrustBundle>();
  // Every TCP connection, handshaking or not, so that close() never waits on a stalled peer.
  const connections = new Set<net.Socket>();
  const backends = new Map<string, Endpoint | LocalBackend>();
  for (const [alpn, b] of Object.entries(cfg.backends)) if (b) backends.set(alpn, typeof b === 'function' ? b : parseEndpoint(b));

  const reject = (socket: TLSSocket | net.Socket | undefined, reason: string, fields: Record<string, unknown> = {}) => {
    stats.rejected[reason] = (stats.rejected[reason] ?? 0) + 1;
    cfg.log?.warn({ reason, remote: socket?.remoteAddress, ...fields }, 'mesh peer refused');
    socket?.destroy();
  };

  let contextSerial = '';
  let contextBundle: TrustBundle | undefined;
  const contextOptions = () => {
    const id = cfg.identity();
    const bundle = cfg.bundle();
    contextSerial = id?.serial ?? '';
    if (id) intermediates.rememberPem(id.chainPem);
    contextBundle = bundle;
    // Without an identity yet the listener still has to exist; handshakes then fail and are
    // counted as ERR_MESH_HANDSHAKE, and the check below refuses anything that gets through.
    return id ? meshContextOptions(id, bundle, groups, ticketKeys) : { minVersion: 'TLSv1.3' as const, ecdhCurve: groups, ticketKeys };
  };

  const server = tls.createServer({
    ...contextOptions(),
    requestCert: true,
    rejectUnauthorized: false,
    allowHalfOpen: true,
    // Request/response protocols (LMTP, IMAP) through a splice: no Nagle delay on either hop.
    noDelay: true,
    handshakeTimeout: cfg.handshakeTimeoutMs ?? 10_000,
    // RFC 7301 §3.2: a server that supports none of the client's protocols answers with the
    // no_application_protocol alert; returning undefined makes node do that.
    ALPNCallback: ({ protocols }) => protocols.find((p) => isMeshAlpn(p) && backends.has(p)),
  });

  const updateIdentity = () => {
    server.setSecureContext(contextOptions());
    cfg.log?.info({ serial: contextSerial }, 'mesh ingress context updated');
  };
  // Before node wraps a new TCP connection in TLS: pick up a rotated identity or bundle even if
  // nobody called updateIdentity (cheap: two comparisons per connection).
  server.prependListener('connection', (raw: net.Socket) => {
    connections.add(raw);
    raw.once('close', () => connections.delete(raw));
    if ((cfg.identity()?.serial ?? '') !== contextSerial || cfg.bundle() !== contextBundle) updateIdentity();
  });

  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    const alpn = /no.application.protocol|ALPN/i.test(`${err.code ?? ''} ${err.message}`);
    reject(socket, alpn ? INGRESS_REASONS.alpn : INGRESS_REASONS.handshake, { err: err.message });
  });

  server.on('secureConnection', (socket: TLSSocket) => {
    const group = groupFromSessionDer(socket.getSession());
    if (group) stats.groups[group] = (stats.groups[group] ?? 0) + 1;
    const now = cfg.clock.now();
    const own = cfg.identity();
    if (!own) return reject(socket, INGRESS_REASONS.noIdentity);
    // Fail closed: past our own notAfter we must not claim to be a mesh node.
    if (now >= own.notAfter.getTime()) return reject(socket, INGRESS_REASONS.ownIdentity, { notAfter: own.notAfter.toISOString() });
    const alpn = socket.alpnProtocol;
    const backend = typeof alpn === 'string' ? backends.get(alpn) : undefined;
    if (!backend) return reject(socket, INGRESS_REASONS.alpn, { alpn });

    const bundle = cfg.bundle();
    const extra = cfg.intermediates?.();
    if (extra) intermediates.add(extra);
    const chain = intermediates.complete(peerChainOf(socket), bundle);
    const decision = checkPeer({
      chain,
      bundle,
      trustDomain: cfg.trustDomain(),
      usage: 'client',
      now,
      revoked: cfg.revoked(),
      authorize: cfg.authorize,
      unauthorizedReason: INGRESS_REASONS.unauthorized,
    });
    if (!decision.ok) return reject(socket, decision.reason, { why: decision.message, peer: chain[0]?.subjectAltName });
    intermediates.remember(chain);
    stats.accepted++;
    if (socket.isSessionReused()) stats.resumed++;

    sessions.set(socket, chain);
    sessionBundles.set(socket, bundle);
    cfg.onAccept?.({ spiffeId: decision.peer.spiffeId, serial: decision.peer.serial, alpn: alpn as MeshAlpn, group, resumed: socket.isSessionReused() });
    cfg.log?.debug({ peer: decision.peer.spiffeId, serial: decision.peer.serial, alpn, group }, 'mesh session accepted');
    if (typeof backend === 'function') {
      socket.once('close', () => {
        sessions.delete(socket);
        sessionBundles.delete(socket);
      });
      backend(socket);
      return;
    }
    socket.setTimeout(idleTimeoutMs, () => socket.destroy());
    const upstream = net.connect({ ...backend, allowHalfOpen: true, noDelay: true });
    upstream.once('error', (err) => {
      stats.backendErrors++;
      cfg.log?.error({ alpn, err: err.message }, 'mesh backend unreachable');
    });
    splice(socket, upstream, () => {
      sessions.delete(socket);
      sessionBundles.delete(socket);
    });
  });

  server.on('error', (err) => cfg.log?.error({ err: err.message }, 'mesh ingress error'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    stats,
    updateIdentity,
    activeSessions: () => sessions.size,
    recheck() {
      // A new snapshot may revoke a peer (its serial, identity or issuing CA) or withdraw its
      // authorization: sessions already spliced are cut like new ones would be refused (the
      // sender's side sees a broken connection and answers 4xx; nothing half-delivered is
      // acknowledged). A planned root retirement is not a reason: those sessions belong to
      // nodes that already renewed under the new root and drain by themselves (idle timeout).
      const now = cfg.clock.now();
      let closed = 0;
      for (const [socket, chain] of sessions) {
        const decision = checkPeer({ chain, bundle: sessionBundles.get(socket) ?? cfg.bundle(), trustDomain: cfg.trustDomain(), usage: 'client', now, revoked: cfg.revoked(), authorize: cfg.authorize, unauthorizedReason: INGRESS_REASONS.unauthorized });
        if (decision.ok || !CUT_ON_RECHECK.has(decision.reason)) continue;
        stats.closed[decision.reason] = (stats.closed[decision.reason] ?? 0) + 1;
        cfg.log?.warn({ reason: decision.reason, why: decision.message }, 'mesh session closed: its peer is no longer trusted');
        sessions.delete(socket);
        sessionBundles.delete(socket);
        socket.destroy();
        closed++;
      }
      return closed;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions.keys()) s.destroy();
        for (const s of connections) s.destroy();
        sessions.clear();
      }),
  };
}
