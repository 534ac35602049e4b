import type { X509Certificate } from 'node:crypto';
import tls, { type TLSSocket } from 'node:tls';
import type { TrustBundle } from '../../ca/bundle.ts';
import type { VerifiedPeer } from '../../ca/verify.ts';
import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/log.ts';
import type { Identity } from '../identity/identity.ts';
import { parseHostPort } from './address.ts';
import type { MeshAlpn } from './alpn.ts';
import { checkPeer, isNodeOfShard, type Revocations } from './check-peer.ts';
import { MeshError } from './errors.ts';
import { DEFAULT_GROUPS, groupFromClientSocket } from './groups.ts';
import { IntermediateCache, peerChainOf } from './peer-chain.ts';
import { IdlePool } from './pool.ts';
import { ContextCache } from './tls-context.ts';

/** Configuration of {@link MeshDialer}; the constructor fills the defaults. */
export interface MeshDialerConfig {
  identity: () => Identity | undefined;
  bundle: () => TrustBundle;
  trustDomain: () => string;
  /** The mesh address (`host:port`) of a shard's ingress. */
  resolveShard: (shardId: string) => string;
  revoked?: () => Revocations;
  clock: Clock;
  log?: Logger;
  /**
   * Idle connections kept per (shard, ALPN) (default 32). Postfix delivers to the egress over up
   * to 50 parallel LMTP sessions (`lmtp_destination_concurrency_limit` in deploy/postfix/main.cf),
   * and a burst beyond the idle ones opens the difference anew (a TLS handshake each); but every
   * idle LMTP connection holds a Dovecot LMTP process on the owning shard until `idleTimeoutMs`,
   * and every node keeps its own, so the pool stays below the concurrency.
   */
  maxIdlePerShard?: number;
  /** An idle connection is closed after this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Give up connecting + handshaking after this long (default 10 s). */
  connectTimeoutMs?: number;
  /** After a connection to a shard timed out, new connections to it fail at once for this long
   * (default 5 s), then one attempt probes it while the others still fail at once. Postfix
   * delivers every remote shard through one egress: a shard that swallows traffic must not hold
   * all of its parallel deliveries for the connect timeout, starving the shards that are up. A
   * refused connection fails fast by itself and changes nothing (a restarted shard is used at once). */
  unreachableRetryMs?: number;
  /** Key-exchange groups, OpenSSL syntax (default {@link DEFAULT_GROUPS}). */
  groups?: string;
}

/** `MeshError.reason` of a connection attempt that timed out. */
const TIMED_OUT = 'timeout';

/** A connection handed out by {@link MeshDialer.acquire}. */
export interface MeshLease {
  socket: TLSSocket;
  /** The verified server identity. */
  peer: VerifiedPeer;
  /** True when this connection came from the pool. */
  reused: boolean;
  /** True when the handshake resumed a TLS session. */
  resumed: boolean;
  /** Give the connection back: `reusable` only at a transaction boundary (after LMTP RSET/a
   * completed reply), otherwise it is closed. Idempotent. */
  release(reusable: boolean): void;
}

/** Dialer counters, for benchmarks ("handshakes per 1,000 messages") and metrics. */
export interface MeshDialerStats {
  /** Full or resumed TLS handshakes made. */
  handshakes: number;
  /** Of those, resumed with a session ticket. */
  resumed: number;
  /** Acquisitions served from the pool. */
  reused: number;
  /** Negotiated key-exchange groups of handshakes, as the client saw them. */
  groups: Record<string, number>;
}

interface LiveMeta {
  peer: VerifiedPeer;
}

/**
 * The mesh client: pooled mutual-TLS connections to other shards' ingresses. Connections are
 * reused per (shard, ALPN) and TLS sessions resumed per shard, so a busy route costs one handshake
 * and a reconnect costs a resumption, not a full mTLS handshake (DESIGN.md performance).
 * The server must prove it is a node of the shard we asked for (`spiffe://TD/shard/<id>/node/*`).
 *
 * @example
 * const lease = await dialer.acquire('osaka-1', 'mailmesh-lmtp');
 * try { await lmtp.deliver(lease.socket, msg); lease.release(true); } catch { lease.release(false); }
 */
export class MeshDialer {
  private readonly cfg: Required<Omit<MeshDialerConfig, 'revoked' | 'log'>> & Pick<MeshDialerConfig, 'revoked' | 'log'>;
  private readonly pool: IdlePool;
  private readonly contexts: ContextCache;
  private readonly intermediates = new IntermediateCache();
  // Per shard: the newest TLS session ticket and the server chain verified when it was issued
  // (on resumption node reports no server certificate at all, so we verify that chain again).
  private readonly sessions = new Map<string, { session: Buffer; chain: X509Certificate[] }>();
  private readonly meta = new WeakMap<TLSSocket, LiveMeta>();
  private readonly leased = new Set<TLSSocket>();
  private readonly counters: MeshDialerStats = { handshakes: 0, resumed: 0, reused: 0, groups: {} };
  /** Shards whose last connection attempt timed out: until when new connections fail at once,
   * and whether a probe connection is under way. */
  private readonly unreachable = new Map<string, { until: number; probing: boolean; why: string }>();
  private closed = false;

  constructor(cfg: MeshDialerConfig) {
    this.cfg = {
      maxIdlePerShard: 32,
      idleTimeoutMs: 30_000,
      connectTimeoutMs: 10_000,
      unreachableRetryMs: 5_000,
      groups: DEFAULT_GROUPS,
      ...cfg,
    };
    this.pool = new IdlePool(this.cfg.maxIdlePerShard, this.cfg.idleTimeoutMs);
    this.contexts = new ContextCache(this.cfg.groups);
  }

  /**
   * A connection to `shardId`'s ingress speaking `alpn`: an idle pooled one, or a new one.
   *
   * @throws MeshError `ERR_MESH_IDENTITY_EXPIRED` (our certificate is past notAfter: fail closed,
   * map to 4xx), `ERR_MESH_NO_IDENTITY`, `ERR_MESH_PEER_REFUSED` (the server is not a node of
   * the shard, or its chain fails verification; `reason` has the `ca/` code),
   * `ERR_MESH_UNREACHABLE`, `ERR_MESH_CLOSED`.
   */
  async acquire(shardId: string, alpn: MeshAlpn): Promise<MeshLease> {
    if (this.closed) throw new MeshError('ERR_MESH_CLOSED', 'the mesh dialer is closed');
    const identity = this.ownIdentity();
    const key = `${shardId}\u0000${alpn}`;
    for (let pooled = this.pool.take(key); pooled; pooled = this.pool.take(key)) {
      // The server was verified when the connection was made; a pooled connection is handed out
      // again only while that still holds (not expired, not revoked by a newer snapshot).
      if (this.stillTrusted(pooled)) {
        this.counters.reused++;
        return this.lease(key, pooled, true);
      }
      pooled.destroy();
    }
    const down = this.unreachable.get(shardId);
    if (down) {
      const now = this.cfg.clock.now();
      if (down.probing || now < down.until) {
        const next = down.probing ? 'once the current attempt ends' : `in ${Math.ceil((down.until - now) / 1000)} s`;
        throw new MeshError('ERR_MESH_UNREACHABLE', `shard ${shardId} is unreachable (${down.why}); next attempt ${next}`);
      }
      down.probing = true;
    }
    let socket: TLSSocket;
    try {
      socket = await this.dial(shardId, alpn, identity);
    } catch (err) {
      if (err instanceof MeshError && err.reason === TIMED_OUT) {
        this.unreachable.set(shardId, { until: this.cfg.clock.now() + this.cfg.unreachableRetryMs, probing: false, why: err.message });
      } else {
        this.unreachable.delete(shardId); // failed fast: nothing held up
      }
      throw err;
    }
    this.unreachable.delete(shardId);
    return this.lease(key, socket, false);
  }

  /** Use the current identity for new connections. Pooled connections keep their (still valid)
   * old certificate; sessions bound to the old certificate are forgotten so that the next
   * handshake presents the new one. */
  updateIdentity(): void {
    this.contexts.reset();
    this.sessions.clear();
  }

  /** Counters since construction. */
  stats(): MeshDialerStats {
    return { ...this.counters, groups: { ...this.counters.groups } };
  }

  /** Idle connections, for one (shard, ALPN) or all. */
  idleCount(shardId?: string, alpn?: MeshAlpn): number {
    return shardId === undefined ? this.pool.size() : this.pool.size(`${shardId}\u0000${alpn ?? 'mailmesh-lmtp'}`);
  }

  /** Close idle connections (sessions are kept, so the next connection resumes). */
  closeIdle(): void {
    this.pool.clear();
  }

  /** Close idle and leased connections; later `acquire` calls fail with `ERR_MESH_CLOSED`. */
  close(): void {
    this.closed = true;
    this.pool.clear();
    for (const s of this.leased) s.destroy();
    this.leased.clear();
    this.sessions.clear();
  }

  private stillTrusted(socket: TLSSocket): boolean {
    const peer = this.meta.get(socket)?.peer;
    if (!peer || this.cfg.clock.now() > peer.notAfter.getTime()) return false;
    const revoked = this.cfg.revoked?.();
    if (!revoked) return true;
    return !revoked.serials.has(peer.serial) && !revoked.ids.has(peer.spiffeId) && !peer.caSerials.some((s) => revoked.serials.has(s));
  }

  private ownIdentity(): Identity {
    const identity = this.cfg.identity();
    if (!identity) throw new MeshError('ERR_MESH_NO_IDENTITY', 'this node has no mesh certificate yet: check the join token and the control plane');
    // Fail closed (DESIGN.md identity lifecycle): past expiry we refuse, and the caller answers
    // 4xx so the sender keeps the message queued.
    if (this.cfg.clock.now() >= identity.notAfter.getTime()) {
      throw new MeshError('ERR_MESH_IDENTITY_EXPIRED', `this node's mesh certificate expired at ${identity.notAfter.toISOString()}: is the control plane reachable?`);
    }
    return identity;
  }

  private lease(key: string, socket: TLSSocket, reused: boolean): MeshLease {
    const meta = this.meta.get(socket)!;
    this.leased.add(socket);
    let released = false;
    return {
      socket,
      peer: meta.peer,
      reused,
      resumed: socket.isSessionReused(),
      release: (reusable: boolean) => {
        if (released) return;
        released = true;
        this.leased.delete(socket);
        if (!reusable || this.closed || !this.pool.put(key, socket)) socket.destroy();
      },
    };
  }

  private dial(shardId: string, alpn: MeshAlpn, identity: Identity): Promise<TLSSocket> {
    let address: { host: string; port: number };
    try {
      address = parseHostPort(this.cfg.resolveShard(shardId));
    } catch (err) {
      return Promise.reject(new MeshError('ERR_MESH_UNREACHABLE', `no mesh address for shard ${shardId}: ${(err as Error).message}`, { cause: err }));
    }
    const bundle = this.cfg.bundle();
    const { context, changed } = this.contexts.get(identity, bundle);
    // A session from before a rotation would resume as the old certificate: drop it.
    if (changed) {
      this.sessions.clear();
      this.intermediates.rememberPem(identity.chainPem);
    }
    const saved = this.sessions.get(shardId);
    return new Promise<TLSSocket>((resolve, reject) => {
      let settled = false;
      const socket = tls.connect({
        host: address.host,
        port: address.port,
        secureContext: context,
        ALPNProtocols: [alpn],
        // Trust is decided by ca/verify.ts below (SPIFFE identity, not a host name).
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
        minVersion: 'TLSv1.3',
        session: saved?.session,
        allowHalfOpen: true,
        // Request/response protocols (LMTP, IMAP): a small command must not wait for an ACK.
        noDelay: true,
      } as tls.ConnectionOptions);
      const fail = (err: MeshError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new MeshError('ERR_MESH_UNREACHABLE', `mesh connection to ${shardId} timed out after ${this.cfg.connectTimeoutMs} ms`, { reason: TIMED_OUT })), this.cfg.connectTimeoutMs);
      let verifiedChain: X509Certificate[] | undefined;
      // TLS 1.3 tickets arrive after the handshake; keep the newest for the next connection,
      // but only from a connection whose server we verified.
      socket.on('session', (s: Buffer) => {
        if (verifiedChain) this.sessions.set(shardId, { session: s, chain: verifiedChain });
        else pending = s;
      });
      let pending: Buffer | undefined;
      socket.once('error', (err) => fail(new MeshError('ERR_MESH_UNREACHABLE', `cannot reach shard ${shardId} at ${address.host}:${address.port}: ${err.message}`, { cause: err })));
      socket.once('secureConnect', () => {
        if (settled) return;
        this.counters.handshakes++;
        const resumed = socket.isSessionReused();
        if (resumed) this.counters.resumed++;
        const group = groupFromClientSocket(socket);
        if (group) this.counters.groups[group] = (this.counters.groups[group] ?? 0) + 1;
        const presented = peerChainOf(socket);
        const chain = this.intermediates.complete(presented.length === 0 && resumed && saved ? saved.chain : presented, bundle);
        const td = this.cfg.trustDomain();
        const decision = checkPeer({
          chain,
          bundle,
          trustDomain: td,
          usage: 'server',
          now: this.cfg.clock.now(),
          revoked: this.cfg.revoked?.(),
          authorize: (id) => isNodeOfShard(id, td, shardId),
          unauthorizedReason: 'ERR_MESH_WRONG_SHARD',
        });
        if (!decision.ok) {
          this.sessions.delete(shardId);
          this.cfg.log?.warn({ shard: shardId, reason: decision.reason, why: decision.message }, 'mesh server refused');
          return fail(new MeshError('ERR_MESH_PEER_REFUSED', `shard ${shardId} server refused: ${decision.message}`, { reason: decision.reason }));
        }
        if (socket.alpnProtocol !== alpn) {
          return fail(new MeshError('ERR_MESH_PEER_REFUSED', `shard ${shardId} did not agree to ${alpn}`, { reason: 'ERR_MESH_UNKNOWN_ALPN' }));
        }
        this.intermediates.remember(chain);
        verifiedChain = chain;
        if (pending) this.sessions.set(shardId, { session: pending, chain });
        settled = true;
        clearTimeout(timer);
        socket.removeAllListeners('error');
        // Errors after hand-out belong to the lease holder; keep one listener so an error on an
        // idle pooled socket does not crash the process.
        socket.on('error', () => socket.destroy());
        this.meta.set(socket, { peer: decision.peer });
        resolve(socket);
      });
    });
  }
}
