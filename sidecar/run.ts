import { readFile } from 'node:fs/promises';
import { TrustBundle } from '../ca/bundle.ts';
import { ControlPlaneClient, identitySourceFor } from '../api/client.ts';
import { verifySnapshot, type SnapshotPayload } from '../api/snapshot.ts';
import { systemClock, type Clock } from '../common/clock.ts';
import { createLogger, type Logger } from '../common/log.ts';
import { createSidecarMetrics, type SidecarMetrics } from '../common/metrics.ts';
import { certificateAndSnapshotReadiness, startHealthServer } from '../common/health-server.ts';
import { type SidecarConfig, splitAddress } from './config.ts';
import { IdentityRotator } from './identity/rotator.ts';
import { loadIdentity } from './identity/store.ts';
import { loadCachedSnapshot, saveSnapshot } from './identity/snapshot-cache.ts';
import { startIngress, type IngressStats, type LocalBackend } from './mesh/ingress.ts';
import { MeshDialer } from './mesh/dialer.ts';
import { parseEndpoint } from './mesh/address.ts';
import { startMaildirLmtp } from './maildir/server.ts';
import { Deliverer } from './mail/deliver.ts';
import { LmtpSender } from './mail/lmtp-sender.ts';
import { TcpPool } from './mail/lease.ts';
import { embeddedHandoff, postfixHandoff, type Handoff } from './mail/handoff.ts';
import { startFrontDoor } from './mail/frontdoor.ts';
import { startEgress } from './mail/egress.ts';
import { startFilter } from './mail/filter.ts';
import { startSocketmapServer } from './postfix/socketmap.ts';
import { makePostfixLookups } from './postfix/lookups.ts';
import { isOk } from './mail/reply.ts';
import { MeshView } from './view.ts';
import { trustDomainOf } from './trust-domain.ts';
import { startMailProxies } from './proxy-wiring.ts';
import { startTelemetry } from './telemetry.ts';

/** Mail authentication and signing (mailauth and its public-suffix, charset and DNS tables: about
 * a third of a sidecar's heap), loaded only by a sidecar that checks or signs mail: the others
 * (`mailAuth: false`, no outbound filter) do not carry it, and every major GC marks less. */
const mailAuth = () => import('./auth-wiring.ts');

/** Extra bytes allowed on internal hops for headers added after the front door's SIZE check. */
export const INTERNAL_HEADROOM_BYTES = 64 * 1024;

/** Options of {@link startSidecar}. */
export interface SidecarOptions {
  clock?: Clock;
  log?: Logger;
  /** Lifecycle events (`listening`, `ready`, `snapshot`, `rotated`), printed as JSON lines by the CLI. */
  emit?: (event: Record<string, unknown>) => void;
}

/** A running sidecar. */
export interface Sidecar {
  view: MeshView;
  rotator: IdentityRotator;
  metrics: SidecarMetrics;
  /** Mesh ingress counters (accepted, refused by reason code). */
  ingressStats: IngressStats;
  /** Actual bound addresses (ports resolved). */
  addresses: Record<string, string>;
  ready(): boolean;
  close(): Promise<void>;
}

/**
 * Start everything a node runs beside its Postfix/Dovecot: identity rotation, the snapshot watch,
 * the mesh ingress and dialer, the SMTP front door, the Postfix-facing egress/socketmap/filter, the
 * IMAP/POP3 proxies and the health/metrics endpoint. The control plane being down does not stop
 * it: the cached certificate and snapshot keep it serving (fail closed once the certificate
 * expires).
 */
export async function startSidecar(cfg: SidecarConfig, opts: SidecarOptions = {}): Promise<Sidecar> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? createLogger({ component: 'sidecar', shard: cfg.shard, node: cfg.node });
  const emit = opts.emit ?? (() => {});
  const metrics = createSidecarMetrics({ clock });
  const closers: (() => Promise<void> | void)[] = [];
  const close = async () => {
    // Last started, first stopped; each closer runs once even if close() is called again.
    for (const c of closers.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
  };
  try {
    const bootBundle = TrustBundle.fromPem(await readFile(cfg.caBundle));
    const existing = await loadIdentity(cfg.stateDir);
    const trustDomain = await trustDomainOf(existing, existing ? undefined : cfg.joinTokenFile);
    const view = new MeshView(trustDomain, bootBundle);

    // Identity: the key is made here and never leaves; renewals go over mTLS.
    const client = new ControlPlaneClient({ address: cfg.controlPlane, bundlePem: bootBundle.toPem(), trustDomain, clock });
    closers.push(() => client.close());
    const joinToken = existing || !cfg.joinTokenFile ? undefined : (await readFile(cfg.joinTokenFile, 'utf8')).trim();
    const rotator = new IdentityRotator({
      source: identitySourceFor(client), clock, stateDir: cfg.stateDir, tlsDir: cfg.tlsDir, reloadCommand: cfg.reloadCommand, joinToken, log,
    });
    closers.push(() => rotator.stop());

    // Snapshot: the cached one first (verified: a restart works with the control plane down).
    const verify = (jws: string) => verifySnapshot(jws, view.bundle, trustDomain, { now: clock.now() });
    const applySnapshot = (snap: SnapshotPayload, source: string) => {
      const before = view.bundle;
      view.apply(snap);
      // New roots (a root rotation): trust them for the control plane too, which may soon present
      // a certificate from the new root.
      if (view.bundle !== before) client.setTrustBundle(view.bundle.toPem());
      metrics.setPolicyRevision(snap.revision);
      metrics.setSnapshotTime(snap.issuedAt);
      log.info({ event: 'snapshot', revision: snap.revision, source }, 'policy snapshot applied');
      emit({ event: 'snapshot', revision: snap.revision, source });
    };
    const cached = await loadCachedSnapshot(cfg.stateDir, (jws) => verifySnapshot(jws, bootBundle, trustDomain, { now: clock.now() }).catch(() =>
      // The control plane's own certificate may have expired while we were down; the cache is
      // still ours and was verified when written, so accept it as of its own issue time.
      verifySnapshot(jws, bootBundle, trustDomain, { now: JSON.parse(Buffer.from(jws.split('.')[1], 'base64url').toString()).issuedAt as number })), log);
    if (cached) applySnapshot(cached, 'cache');

    // Hops behind the front door take a little more than the public SIZE limit: the front door
    // and Postfix add headers (Authentication-Results, Received, DKIM-Signature) to a message
    // that was accepted at the limit, and refusing it there would bounce mail already accepted.
    const internalMax = cfg.limits.maxMessageBytes + INTERNAL_HEADROOM_BYTES;
    // Mesh: ingress for other shards' deliveries and proxied sessions, dialer for ours.
    let localLmtp = cfg.backends.lmtp;
    let meshLmtp: string | LocalBackend | undefined = localLmtp;
    if (cfg.mode === 'embedded') {
      const store = await startMaildirLmtp({ host: '127.0.0.1', port: 0, root: cfg.backends.maildir!, maxSize: internalMax });
      closers.push(() => store.close());
      localLmtp = `127.0.0.1:${store.port}`;
      // Deliveries from other shards go straight into the store: no loopback hop behind the mesh.
      meshLmtp = (session) => store.accept(session);
    }
    const mesh = splitAddress(cfg.listen.mesh);
    const ingress = await startIngress({
      host: mesh.host, port: mesh.port, clock, log, groups: cfg.tlsGroups,
      identity: () => (rotator.state() === 'valid' ? rotator.current() : undefined),
      trustDomain: () => trustDomain,
      bundle: () => view.bundle,
      authorize: (peer) => view.authorized(peer, cfg.shard),
      revoked: view.revocations,
      intermediates: () => view.issuers,
      backends: { 'mailmesh-lmtp': meshLmtp!, ...(cfg.backends.imap ? { 'mailmesh-imap': cfg.backends.imap } : {}), ...(cfg.backends.pop3 ? { 'mailmesh-pop3': cfg.backends.pop3 } : {}) },
    });
    closers.push(() => ingress.close());
    // Every new snapshot (revocations, roots, authorization) also applies to sessions already open.
    view.onChange(() => ingress.recheck());
    const dialer = new MeshDialer({
      identity: () => (rotator.state() === 'valid' ? rotator.current() : undefined),
      bundle: () => view.bundle, trustDomain: () => trustDomain, resolveShard: view.meshAddress, revoked: view.revocations, clock, log, groups: cfg.tlsGroups,
    });
    closers.push(() => dialer.close());

    rotator.onRotate((id) => {
      client.setCertificate({ certPem: id.chainPem, keyPem: id.keyPem });
      ingress.updateIdentity();
      dialer.updateIdentity();
      metrics.setCertificateExpiry(id.notAfter);
      metrics.rotations.inc({ result: 'ok' });
      emit({ event: 'rotated', spiffeId: id.spiffeId, serial: id.serial, notAfter: id.notAfter.toISOString() });
    });

    // Mail path.
    const localPool = new TcpPool(localLmtp!);
    closers.push(() => localPool.close());
    const local = new LmtpSender({ connect: () => localPool.acquire(), heloName: cfg.hostname });
    const remote = new LmtpSender({ connect: (shardId) => dialer.acquire(shardId, 'mailmesh-lmtp'), heloName: cfg.hostname });
    const deliverer = new Deliverer({ placement: view.placement, localShard: cfg.shard, local, remote });
    const addresses: Record<string, string> = { mesh: `${mesh.host}:${ingress.port}` };
    const countReplies = (replies: { code: number }[], recipients: string[]) => {
      replies.forEach((r, i) => {
        const where = view.placement(recipients[i]);
        metrics.messages.inc({ result: isOk(r as never) ? 'delivered' : r.code >= 500 ? 'rejected' : 'deferred', shard: where.kind === 'shard' ? where.shardId : 'none' });
      });
    };

    if (cfg.listen.smtp) {
      const smtp = splitAddress(cfg.listen.smtp);
      let handoff: Handoff = embeddedHandoff(deliverer);
      if (cfg.mode === 'postfix') {
        const toPostfix = postfixHandoff(cfg.backends.postfix!, cfg.hostname);
        // Its pooled sessions to Postfix would keep the process alive after close().
        closers.push(() => toPostfix.close());
        handoff = toPostfix;
      }
      const publicTls = cfg.publicTls ? { key: await readFile(cfg.publicTls.key), cert: await readFile(cfg.publicTls.cert) } : undefined;
      const door = await startFrontDoor({
        host: smtp.host, port: smtp.port, hostname: cfg.hostname, tls: publicTls,
        maxSize: cfg.limits.maxMessageBytes, maxRecipients: cfg.limits.maxRecipients, maxClients: cfg.limits.maxClients, socketTimeoutMs: 120_000,
        placement: view.placement, isKnownUser: view.knownUser, log, handoff,
        check: cfg.mailAuth === false ? undefined : (await mailAuth()).mailAuthCheck(cfg, view, metrics),
        onResult: (result, recipients) => recipients.forEach((rcpt) => {
          const where = view.placement(rcpt);
          metrics.messages.inc({ result, shard: where.kind === 'shard' ? where.shardId : 'none' });
        }),
      });
      closers.push(() => door.close());
      addresses.smtp = `${smtp.host}:${door.port}`;
    }
    if (cfg.listen.egress) {
      // Loopback TCP, or a Unix socket (cheaper for Postfix's LMTP client, and only who may enter
      // its directory can hand mail to the mesh).
      const where = parseEndpoint(cfg.listen.egress);
      const egress = await startEgress({ ...where, hostname: cfg.hostname, maxSize: internalMax, placement: view.placement, deliverer, log, onResult: countReplies });
      closers.push(() => egress.close());
      addresses.egress = egress.address;
    }
    if (cfg.listen.socketmap && cfg.listen.egress && localLmtp) {
      const a = splitAddress(cfg.listen.socketmap);
      const lookup = makePostfixLookups({ route: view.placement, isKnownUser: view.knownUser, localShard: cfg.shard, localLmtp, egress: addresses.egress, recipientDelimiter: '+' });
      const sm = await startSocketmapServer({ host: a.host, port: a.port, lookup: async (name, key) => {
        // Before the first snapshot nothing can be placed: TEMP, so Postfix defers, never bounces.
        if (!view.compiled) return { kind: 'temp', reason: 'no policy snapshot yet' };
        return lookup(name, key);
      } });
      closers.push(() => sm.close());
      addresses.socketmap = `${a.host}:${sm.port}`;
    }
    if (cfg.listen.filter && cfg.backends.postfix) {
      const a = splitAddress(cfg.listen.filter);
      const reinject = postfixHandoff(cfg.backends.postfix, cfg.hostname);
      closers.push(() => reinject.close());
      const filter = await startFilter({ host: a.host, port: a.port, hostname: cfg.hostname, maxSize: internalMax, sign: await (await mailAuth()).outboundSigner(cfg), reinject, log });
      closers.push(() => filter.close());
      addresses.filter = `${a.host}:${filter.port}`;
    }
    Object.assign(addresses, await startMailProxies(cfg, view, dialer, metrics, log, closers));

    const ready = () => rotator.state() === 'valid' && view.compiled !== undefined;
    if (cfg.listen.metrics) {
      const a = splitAddress(cfg.listen.metrics);
      const health = await startHealthServer({
        host: a.host, port: a.port, registry: metrics.registry,
        ready: () => certificateAndSnapshotReadiness({ now: clock.now(), certificateNotAfter: rotator.current()?.notAfter, snapshotRevision: view.compiled ? view.revision : undefined }),
      });
      closers.push(() => health.close());
      addresses.metrics = `${a.host}:${health.port}`;
    }
    emit({ event: 'listening', shard: cfg.shard, node: cfg.node, addresses });

    // Join/renew, then watch snapshots over mTLS and report status.
    await rotator.start();
    let announced = false;
    const maybeReady = () => {
      if (!announced && ready()) {
        announced = true;
        emit({ event: 'ready', shard: cfg.shard, revision: view.revision, spiffeId: rotator.current()?.spiffeId });
      }
    };
    let snapshots: Promise<void> = Promise.resolve();
    const watch = client.watch({
      revision: view.revision || undefined,
      // Snapshots are handled one after another, in the order they arrived.
      onSnapshot: (msg) => {
        snapshots = snapshots
          .then(() => verify(msg.jws))
          .then(async (snap) => {
            applySnapshot(snap, 'control-plane');
            await saveSnapshot(cfg.stateDir, msg.jws);
            maybeReady();
            const id = rotator.current();
            await client.report({ revision: snap.revision, certSerial: id?.serial, certNotAfter: id?.notAfter.getTime() }).catch(() => {});
          })
          .catch((err: Error) => log.warn({ event: 'snapshot.refused', err: err.message }, 'snapshot refused: keeping the last good one'));
      },
      onError: (err, retryInMs) => log.warn({ event: 'watch.error', code: err.code, retryInMs }, 'snapshot stream lost, reconnecting'),
    });
    closers.push(() => watch.close());
    closers.push(startTelemetry({ ingress, dialer, metrics, client, rotator, view, log }));
    rotator.onRotate(() => maybeReady());
    maybeReady();
    return { view, rotator, metrics, ingressStats: ingress.stats, addresses, ready, close };
  } catch (err) {
    await close();
    throw err;
  }
}
