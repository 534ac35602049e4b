import * as grpc from '@grpc/grpc-js';
import { controlPlaneSpiffeId } from '../ca/spiffe.ts';
import type { Clock } from '../common/clock.ts';
import { systemClock } from '../common/clock.ts';
import { createLogger, type Logger } from '../common/log.ts';
import { controlPlaneService, MAX_MESSAGE_BYTES } from '../api/proto.ts';
import type { SnapshotPayload } from '../api/snapshot.ts';
import type { ControlPlaneHandlers } from '../api/generated/mailmesh/v1/ControlPlane.ts';
import type { StatusResponse } from '../api/generated/mailmesh/v1/StatusResponse.ts';
import { authenticate, requireRole, type Peer } from './auth.ts';
import { CaSource, type CaState } from './ca-source.ts';
import { DEFAULT_SIGN_RATE_LIMIT, type ControlPlaneConfig } from './config.ts';
import type { ControlPlaneContext } from './context.ts';
import { PolicySource } from './policy-source.ts';
import { Publisher, memoizedSerializer } from './publisher.ts';
import { RateLimiter } from './rate-limit.ts';
import { msUntilRenewal } from './renewal.ts';
import { report } from './rpc/report.ts';
import { revoke, revokeItems, type RevokeInput } from './rpc/revoke.ts';
import { sign } from './rpc/sign.ts';
import { status, statusOf } from './rpc/status.ts';
import { issueSelfIdentity, type SelfIdentity } from './self-identity.ts';
import { signSnapshot } from './snapshot.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { Store } from './store.ts';
import { toServiceError } from './status.ts';
import { LiveCertificates } from './tls.ts';
import { createJoinToken, loadOrCreateTokenKey } from './token.ts';
import { createControlPlaneMetrics } from '../common/metrics.ts';
import { startHealthServer, type HealthServer } from '../common/health-server.ts';
import { isMailmeshError } from '../common/errors.ts';

/** In-process options of {@link startControlPlane}. */
export interface StartOptions {
  clock?: Clock;
  log?: Logger;
  /** Replace the embedded SQLite store (e.g. a shared SQL store). */
  store?: Store;
  /** Watch the policy directory (default true); SIGHUP-style reloads go through `reloadPolicy()`. */
  watchPolicy?: boolean;
  /** Policy reload debounce (default 250 ms). */
  debounceMs?: number;
}

/** A running control plane. */
export interface ControlPlane {
  /** `host:port` it listens on (the real port when the config said 0). */
  address: string;
  trustDomain: string;
  /** `spiffe://TD/control-plane`. */
  spiffeId: string;
  /** Join-token audience. */
  audience: string;
  /** The trust bundle clients need, PEM (every root of bundle.pem; changes with `reloadCa()`). */
  readonly bundlePem: string;
  /** The snapshot revision being served. */
  revision(): string;
  /** The control plane's own certificate. */
  identity(): { serial: string; notBefore: number; notAfter: number; chainPem: string };
  /** Reload the policy now (SIGHUP does this and {@link ControlPlane.reloadCa}). */
  reloadPolicy(): Promise<'changed' | 'unchanged' | 'error'>;
  /**
   * Reload the CA directory now (SIGHUP does this too): a rotated issuing CA signs new leaves and
   * a new certificate of the control plane itself, client chains are verified against the new
   * bundle, and a snapshot with the new roots and issuing CAs is pushed to every node. A CA that
   * does not load or prove itself is refused and the current one stays ('error').
   */
  reloadCa(): Promise<'changed' | 'unchanged' | 'error'>;
  /** The CA generation in use (ca.json; 0 before the first rotation). */
  caGeneration(): number;
  /** Revoke serials/identities locally (no RPC); resolves to the new revision. */
  revoke(input: RevokeInput): Promise<string>;
  /** Make a join token (what `mailmesh token create` does, without reading files). */
  createJoinToken(opts: { shard: string; node: string; ttlMs?: number }): Promise<{ token: string; spiffeId: string; jti: string; expiresAt: number }>;
  /** The same data as the Status RPC. */
  status(): Promise<StatusResponse>;
  /** Renew the control plane's certificate now (the half-life timer does this by itself). */
  renewIdentity(): Promise<void>;
  /** Open Watch streams. */
  watchers(): number;
  /** Where /metrics, /healthz and /readyz are served (`config.metrics`, port resolved). */
  metricsAddress: string | undefined;
  store: Store;
  /** Stop serving, end watch streams, close the store. */
  close(): Promise<void>;
}

type Unary<Req, Res> = (peer: Peer, req: Req) => Promise<Res>;

/**
 * Start a control plane in this process: load the CA, open the store, load and watch the policy,
 * issue its own certificate, and serve gRPC over mTLS on `config.listen`.
 *
 * @example
 * const cp = await startControlPlane({ listen: '127.0.0.1:0', caDir, policyDir, stateDir });
 * const client = new ControlPlaneClient({ address: cp.address, bundlePem: cp.bundlePem, trustDomain: cp.trustDomain });
 * await cp.close();
 */
export async function startControlPlane(config: ControlPlaneConfig, opts: StartOptions = {}): Promise<ControlPlane> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? createLogger({ component: 'control-plane' });
  const caSource = new CaSource({
    dir: config.caDir,
    log,
    clock,
    onChange: (s) => applyCa(s).catch((err: unknown) => log.error({ err }, 'applying the reloaded CA failed')),
  });
  let caState: CaState = await caSource.start();
  const ca = caState.ca;
  const trustDomain = ca.trustDomain;
  const spiffeId = controlPlaneSpiffeId(trustDomain);
  const audience = config.audience ?? spiffeId;
  const store = opts.store ?? new SqliteStore(config.stateDir);
  const tokenKey = await loadOrCreateTokenKey(config.stateDir);
  const publisher = new Publisher();
  const metrics = createControlPlaneMetrics();
  metrics.issuerExpiry.set(ca.issuer.cert.validToDate.getTime() / 1000);
  const revokedSerials = new Set<string>();
  const revokedIds = new Set<string>();
  for (const r of await store.revocations()) (r.kind === 'serial' ? revokedSerials : revokedIds).add(r.value);

  let rebuilding: Promise<string> = Promise.resolve('');
  let self: SelfIdentity;
  const policy = new PolicySource({
    dir: config.policyDir,
    log,
    clock,
    watch: opts.watchPolicy ?? true,
    debounceMs: opts.debounceMs,
    onResult: (r) => metrics.policyReloads.inc({ result: r === 'error' ? 'error' : 'ok' }),
    onChange: async () => {
      await rebuild(true).catch((err: unknown) => log.error({ err }, 'snapshot build failed'));
    },
  });

  // Serialized so that snapshots are published in the order their inputs changed.
  function rebuild(broadcast: boolean): Promise<string> {
    rebuilding = rebuilding.catch(() => '').then(async () => {
      const loaded = policy.current;
      if (!loaded || !self) return '';
      const n = revokedSerials.size + revokedIds.size;
      // A CA rotation changes what nodes trust without changing the policy: it needs a revision
      // of its own, or a node reconnecting with the old one would never be sent the new bundle.
      const gen = caState.generation;
      const revision = `${loaded.revision}${gen > 0 ? `+ca${gen}` : ''}${n > 0 ? `+r${n}` : ''}`;
      const payload: SnapshotPayload = {
        v: 1,
        revision,
        policyRevision: loaded.revision,
        trustDomain,
        issuedAt: clock.now(),
        placement: loaded.placement,
        bundlePem: caState.bundlePem,
        issuersPem: caState.issuersPem,
        revokedSerials: [...revokedSerials].sort(),
        revokedIds: [...revokedIds].sort(),
      };
      const jws = await signSnapshot(payload, { privateKey: self.keyPair.privateKey, chain: self.chain });
      publisher.publish({ revision, jws }, broadcast || publisher.current?.revision !== revision);
      metrics.setPolicyRevision(revision);
      log.info({ revision, watchers: publisher.watchers, bytes: jws.length }, 'snapshot published');
      return revision;
    });
    return rebuilding;
  }

  const ctx: ControlPlaneContext = {
    clock,
    log,
    trustDomain,
    issuer: ca.issuer,
    bundle: ca.bundle,
    bundlePem: caState.bundlePem,
    store,
    tokenKey,
    audience,
    policy,
    publisher,
    signLimiter: new RateLimiter({ ...(config.signRateLimit ?? DEFAULT_SIGN_RATE_LIMIT), clock }),
    revokedSerials,
    revokedIds,
    metrics,
    expiredRenewalGraceMs: config.expiredRenewalGraceMs,
    authContext: () => ({ bundle: ctx.bundle, issuer: ctx.issuer, intermediates: caState.issuers, trustDomain, now: clock.now(), revokedSerials, revokedIds }),
    rebuildSnapshot: () => rebuild(true),
  };

  const loaded = await policy.start().catch((err: unknown) => {
    store.close();
    throw err;
  });
  const ttlMs = loaded.policy.certificates.workloadTtlMs;
  self = issueSelfIdentity(ca.issuer, ttlMs, clock.now());
  await rebuild(true);
  const certs = new LiveCertificates(caState.bundlePem, self.chainPem, self.keyPem);

  // A reloaded CA: new leaves (and our own certificate) from the new issuing CA, client chains
  // checked against the new roots, and a snapshot carrying them pushed to every node.
  async function applyCa(next: CaState): Promise<void> {
    caState = next;
    ctx.issuer = next.ca.issuer;
    ctx.bundle = next.ca.bundle;
    ctx.bundlePem = next.bundlePem;
    metrics.issuerExpiry.set(next.ca.issuer.cert.validToDate.getTime() / 1000);
    self = issueSelfIdentity(next.ca.issuer, policy.current?.policy.certificates.workloadTtlMs ?? ttlMs, clock.now());
    certs.update(self.chainPem, self.keyPem, next.bundlePem);
    const revision = await rebuild(true);
    log.info({ revision, generation: next.generation, serial: self.serial }, 'CA change applied: control plane certificate re-issued, snapshot pushed');
  }

  let renewTimer: NodeJS.Timeout | undefined;
  async function renewIdentity(): Promise<void> {
    self = issueSelfIdentity(ctx.issuer, policy.current?.policy.certificates.workloadTtlMs ?? ttlMs, clock.now());
    certs.update(self.chainPem, self.keyPem);
    // Re-sign the current revision with the new key (watchers already have it: no push), so a
    // sidecar connecting later never receives a snapshot signed by an expired certificate.
    await rebuild(false);
    await store.pruneTokens(clock.now()).catch(() => 0);
    log.info({ serial: self.serial, notAfter: new Date(self.notAfter).toISOString() }, 'control plane certificate renewed');
  }
  function scheduleRenewal(): void {
    // Real timers drive the loop; the decision is msUntilRenewal (pure). At least 1 s apart.
    renewTimer = setTimeout(() => {
      renewIdentity().then(scheduleRenewal, (err: unknown) => {
        log.error({ err }, 'control plane certificate renewal failed; retrying in 10 s');
        renewTimer = setTimeout(scheduleRenewal, 10_000);
        renewTimer.unref();
      });
    }, Math.max(1000, msUntilRenewal(clock.now(), self.notBefore, self.notAfter)));
    renewTimer.unref();
  }
  scheduleRenewal();

  function unary<Req, Res>(method: string, fn: Unary<Req, Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      let peer: Peer = { address: call.getPeer(), role: 'anonymous' };
      Promise.resolve()
        .then(() => {
          peer = authenticate(call, ctx.authContext());
          return fn(peer, call.request);
        })
        .then(
          (res) => callback(null, res),
          (err: unknown) => {
            if (method === 'Sign') metrics.signFailures.inc({ code: isMailmeshError(err) ? err.code : 'ERR_INTERNAL' });
            callback(toServiceError(err, log, { method, peer: peer.spiffeId ?? peer.address }));
          },
        );
    };
  }

  const handlers: ControlPlaneHandlers = {
    Sign: unary('Sign', (peer, req) => sign(ctx, peer, req)),
    Report: unary('Report', (peer, req) => report(ctx, peer, req)),
    Status: unary('Status', (peer) => status(ctx, peer)),
    Revoke: unary('Revoke', (peer, req) => revoke(ctx, peer, req)),
    Watch: (call) => {
      let peer: Peer = { address: call.getPeer(), role: 'anonymous' };
      try {
        peer = authenticate(call, ctx.authContext());
        requireRole(peer, ['node', 'admin', 'control-plane'], 'Watch');
      } catch (err) {
        call.emit('error', toServiceError(err, log, { method: 'Watch', peer: peer.spiffeId ?? peer.address }));
        return;
      }
      publisher.attach(call, call.request.revision);
    },
  };

  const base = controlPlaneService();
  // The same Snapshot object goes to every watcher: encode it once.
  const service = { ...base, Watch: { ...base.Watch, responseSerialize: memoizedSerializer(base.Watch.responseSerialize) } };
  const server = new grpc.Server({ 'grpc.max_send_message_length': MAX_MESSAGE_BYTES, 'grpc.keepalive_permit_without_calls': 1 });
  server.addService(service, handlers);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(config.listen, certs.credentials(), (err, p) => (err ? reject(err) : resolve(p)));
  }).catch((err: unknown) => {
    policy.close();
    store.close();
    clearTimeout(renewTimer);
    throw err;
  });
  const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
  const address = `${host}:${port}`;
  log.info({ address, spiffeId, revision: publisher.current?.revision }, 'control plane listening');
  // Watchers come and go with streams; sample the count for the gauge.
  const sampleWatchers = setInterval(() => metrics.watchers.set(publisher.watchers), 1000);
  sampleWatchers.unref();
  let health: HealthServer | undefined;
  if (config.metrics) {
    const m = config.metrics;
    health = await startHealthServer({
      host: m.slice(0, m.lastIndexOf(':')).replace(/^\[|\]$/g, ''), port: Number(m.slice(m.lastIndexOf(':') + 1)), registry: metrics.registry,
      ready: () => ({ ok: publisher.current !== undefined, reasons: publisher.current ? [] : ['no snapshot published yet'] }),
    });
  }

  let closed = false;
  return {
    address,
    trustDomain,
    spiffeId,
    audience,
    get bundlePem() {
      return caState.bundlePem;
    },
    store,
    revision: () => publisher.current?.revision ?? '',
    identity: () => ({ serial: self.serial, notBefore: self.notBefore, notAfter: self.notAfter, chainPem: self.chainPem }),
    reloadPolicy: () => policy.reload(),
    reloadCa: () => caSource.reload(),
    caGeneration: () => caState.generation,
    revoke: (input) => revokeItems(ctx, input, 'local'),
    createJoinToken: (o) => createJoinToken({ key: tokenKey, audience, trustDomain, shard: o.shard, node: o.node, ttlMs: o.ttlMs ?? 600_000, clock }),
    status: () => statusOf(ctx),
    renewIdentity,
    watchers: () => publisher.watchers,
    metricsAddress: health ? `${config.metrics!.slice(0, config.metrics!.lastIndexOf(':'))}:${health.port}` : undefined,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(sampleWatchers);
      await health?.close();
      clearTimeout(renewTimer);
      policy.close();
      publisher.closeAll();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await rebuilding.catch(() => '');
      store.close();
    },
  };
}
