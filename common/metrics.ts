import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { systemClock, type Clock } from './clock.ts';

/**
 * Prometheus metrics for mailmesh processes. Each factory returns its own {@link Registry}
 * (never prom-client's global one), so a test or a demo can run a control plane and three
 * sidecars in one process without their series colliding. Names and labels are a contract:
 * dashboards and the alerts in docs/operator-guide.md depend on them.
 */

/** Outcome label values; free strings in prom-client, narrowed here so call sites stay consistent. */
export type Result = 'ok' | 'error';

/** The metrics a sidecar exports, all registered on {@link SidecarMetrics.registry}. */
export interface SidecarMetrics {
  /** The registry to serve on `/metrics` (includes default process metrics). */
  readonly registry: Registry;
  /** `mailmesh_certificate_expiry_timestamp_seconds`: notAfter of the current mesh certificate. */
  readonly certificateExpiry: Gauge;
  /** `mailmesh_rotations_total{result}`: certificate renewals (`ok` / `error`). */
  readonly rotations: Counter<'result'>;
  /** `mailmesh_mesh_handshake_failures_total{reason}`: rejected or failed mesh TLS handshakes. */
  readonly handshakeFailures: Counter<'reason'>;
  /** `mailmesh_mesh_connections_total{direction,group}`: mesh connections opened
   * (`direction` = `inbound`/`outbound`, `group` = the peer shard). */
  readonly meshConnections: Counter<'direction' | 'group'>;
  /** `mailmesh_messages_total{result,shard}`: per-recipient delivery outcomes by owning shard. */
  readonly messages: Counter<'result' | 'shard'>;
  /** `mailmesh_auth_results_total{method,result}`: SPF/DKIM/DMARC/ARC verdicts (RFC 8601 words). */
  readonly authResults: Counter<'method' | 'result'>;
  /** `mailmesh_policy_revision_info{revision}`: 1 for the revision in use; see {@link setPolicyRevision}. */
  readonly policyRevision: Gauge<'revision'>;
  /** `mailmesh_snapshot_age_seconds`: seconds since the snapshot in use was issued, computed at scrape. */
  readonly snapshotAge: Gauge;
  /** `mailmesh_proxy_sessions{protocol}`: IMAP/POP3/SMTP sessions open right now. */
  readonly proxySessions: Gauge<'protocol'>;
  /** Record the certificate now in use. */
  setCertificateExpiry(notAfter: Date): void;
  /** Mark `revision` as the one in use; the previous revision's series is removed. */
  setPolicyRevision(revision: string): void;
  /** Record when the snapshot in use was created (ms since epoch); `undefined` = no snapshot yet. */
  setSnapshotTime(createdAtMs: number | undefined): void;
}

/** The metrics the control plane exports, all registered on {@link ControlPlaneMetrics.registry}. */
export interface ControlPlaneMetrics {
  /** The registry to serve on `/metrics` (includes default process metrics). */
  readonly registry: Registry;
  /** `mailmesh_certificates_issued_total{kind}`: certificates signed (`join` / `renew`). */
  readonly certificatesIssued: Counter<'kind'>;
  /** `mailmesh_sign_failures_total{code}`: refused Sign calls by error code (`ERR_TOKEN_REUSED` …). */
  readonly signFailures: Counter<'code'>;
  /** `mailmesh_policy_reload_total{result}`: policy reloads (`ok` / `error`: the last good one stays). */
  readonly policyReloads: Counter<'result'>;
  /** `mailmesh_policy_revision_info{revision}`: 1 for the revision served; see {@link setPolicyRevision}. */
  readonly policyRevision: Gauge<'revision'>;
  /** `mailmesh_watchers`: sidecars streaming snapshots right now. */
  readonly watchers: Gauge;
  /** `mailmesh_issued_certificate_expiry_timestamp_seconds`: notAfter of the last certificate issued. */
  readonly issuedCertificateExpiry: Gauge;
  /** `mailmesh_issuer_certificate_expiry_timestamp_seconds`: notAfter of the issuing CA certificate. */
  readonly issuerExpiry: Gauge;
  /** Mark `revision` as the one served; the previous revision's series is removed. */
  setPolicyRevision(revision: string): void;
}

/** A registry with Node's default process metrics (CPU, memory, event loop lag, GC) and
 * `mailmesh_event_loop_active_seconds_total`. */
function newRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  eventLoopActive(registry);
  return registry;
}

/**
 * `mailmesh_event_loop_active_seconds_total`: wall-clock seconds the event loop spent outside its
 * wait for I/O (Node's event-loop utilization, cumulative). `rate()` of it is the share of time
 * the loop was busy: near 1, every connection of the process waits behind the others, whatever
 * the CPU figures say. Compare with `rate(process_cpu_seconds_total)`: busy time well above CPU
 * time means the loop was runnable but waiting for a CPU (a machine oversubscribed by other
 * processes). A counter, computed when scraped, so any number of scrapers read the same series.
 */
function eventLoopActive(registry: Registry): void {
  let reported = 0;
  new Counter({
    name: 'mailmesh_event_loop_active_seconds_total',
    help: 'Seconds the event loop was busy (not waiting for I/O) since the process started; rate() is the event-loop utilization',
    registers: [registry],
    collect() {
      const active = performance.eventLoopUtilization().active / 1000;
      if (active > reported) {
        this.inc(active - reported);
        reported = active;
      }
    },
  });
}

/** An "info" gauge: exactly one series, the current value, at 1. Resetting first removes the old
 * label so a dashboard never shows two revisions as current at once. */
function revisionGauge(registry: Registry, help: string): { gauge: Gauge<'revision'>; set: (r: string) => void } {
  const gauge = new Gauge({ name: 'mailmesh_policy_revision_info', help, labelNames: ['revision'], registers: [registry] });
  return {
    gauge,
    set: (revision) => {
      gauge.reset();
      gauge.set({ revision }, 1);
    },
  };
}

/**
 * Create the sidecar's metrics. The clock drives `mailmesh_snapshot_age_seconds`, which is
 * computed when scraped rather than by a timer, so it is exact and costs nothing between scrapes.
 *
 * @example
 * const m = createSidecarMetrics();
 * m.messages.inc({ result: 'delivered', shard: 'tokyo-1' });
 * m.setPolicyRevision('4f2a9c1');
 */
export function createSidecarMetrics(opts: { clock?: Clock } = {}): SidecarMetrics {
  const clock = opts.clock ?? systemClock;
  const registry = newRegistry();
  const registers = [registry];
  let snapshotAt: number | undefined;
  const revision = revisionGauge(registry, 'Policy snapshot revision in use (value is always 1)');
  const certificateExpiry = new Gauge({
    name: 'mailmesh_certificate_expiry_timestamp_seconds',
    help: 'notAfter of the mesh certificate in use, seconds since the epoch (0 = none yet)',
    registers,
  });
  return {
    registry,
    certificateExpiry,
    rotations: new Counter({ name: 'mailmesh_rotations_total', help: 'Certificate renewals by result', labelNames: ['result'], registers }),
    handshakeFailures: new Counter({
      name: 'mailmesh_mesh_handshake_failures_total',
      help: 'Mesh TLS handshakes that failed or were refused, by reason',
      labelNames: ['reason'],
      registers,
    }),
    meshConnections: new Counter({
      name: 'mailmesh_mesh_connections_total',
      help: 'Mesh connections opened, by direction and peer shard',
      labelNames: ['direction', 'group'],
      registers,
    }),
    messages: new Counter({
      name: 'mailmesh_messages_total',
      help: 'Per-recipient delivery outcomes, by result and owning shard',
      labelNames: ['result', 'shard'],
      registers,
    }),
    authResults: new Counter({
      name: 'mailmesh_auth_results_total',
      help: 'Mail authentication verdicts (RFC 8601 result words), by method',
      labelNames: ['method', 'result'],
      registers,
    }),
    policyRevision: revision.gauge,
    snapshotAge: new Gauge({
      name: 'mailmesh_snapshot_age_seconds',
      help: 'Seconds since the policy snapshot in use was created (+Inf before the first snapshot)',
      registers,
      // Computed per scrape from the injected clock; +Inf rather than 0 before the first snapshot,
      // so an "older than N" alert fires for a sidecar that never got one.
      collect() {
        this.set(snapshotAt === undefined ? Infinity : Math.max(0, (clock.now() - snapshotAt) / 1000));
      },
    }),
    proxySessions: new Gauge({ name: 'mailmesh_proxy_sessions', help: 'Proxy sessions open now, by protocol', labelNames: ['protocol'], registers }),
    setCertificateExpiry: (notAfter) => certificateExpiry.set(notAfter.getTime() / 1000),
    setPolicyRevision: revision.set,
    setSnapshotTime: (createdAtMs) => {
      snapshotAt = createdAtMs;
    },
  };
}

/**
 * Create the control plane's metrics.
 *
 * @example
 * const m = createControlPlaneMetrics();
 * m.certificatesIssued.inc({ kind: 'join' });
 * m.signFailures.inc({ code: 'ERR_TOKEN_REUSED' });
 */
export function createControlPlaneMetrics(): ControlPlaneMetrics {
  const registry = newRegistry();
  const registers = [registry];
  const revision = revisionGauge(registry, 'Policy revision served to sidecars (value is always 1)');
  return {
    registry,
    certificatesIssued: new Counter({
      name: 'mailmesh_certificates_issued_total',
      help: 'Certificates issued, by kind (join, renew)',
      labelNames: ['kind'],
      registers,
    }),
    signFailures: new Counter({ name: 'mailmesh_sign_failures_total', help: 'Refused Sign calls, by error code', labelNames: ['code'], registers }),
    policyReloads: new Counter({ name: 'mailmesh_policy_reload_total', help: 'Policy reloads, by result', labelNames: ['result'], registers }),
    policyRevision: revision.gauge,
    watchers: new Gauge({ name: 'mailmesh_watchers', help: 'Sidecars currently watching snapshots', registers }),
    issuedCertificateExpiry: new Gauge({
      name: 'mailmesh_issued_certificate_expiry_timestamp_seconds',
      help: 'notAfter of the most recently issued certificate, seconds since the epoch',
      registers,
    }),
    issuerExpiry: new Gauge({
      name: 'mailmesh_issuer_certificate_expiry_timestamp_seconds',
      help: 'notAfter of the issuing CA certificate, seconds since the epoch',
      registers,
    }),
    setPolicyRevision: revision.set,
  };
}
