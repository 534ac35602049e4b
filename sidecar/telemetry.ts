import type { ControlPlaneClient } from '../api/client.ts';
import type { Logger } from '../common/log.ts';
import type { SidecarMetrics } from '../common/metrics.ts';
import type { IdentityRotator } from './identity/rotator.ts';
import type { Ingress } from './mesh/ingress.ts';
import type { MeshDialer } from './mesh/dialer.ts';
import type { MeshView } from './view.ts';

/** Configuration of {@link startTelemetry}. */
export interface TelemetryConfig {
  ingress: Ingress;
  dialer: MeshDialer;
  metrics: SidecarMetrics;
  client: ControlPlaneClient;
  rotator: IdentityRotator;
  view: MeshView;
  log: Logger;
  /** How often the mesh counters are copied into Prometheus (default 2 s). */
  syncMs?: number;
  /** How often node status goes to the control plane (default 60 s). */
  reportMs?: number;
  /** Offsets beyond this are logged as a warning: certificates are backdated only 60 s. */
  maxClockOffsetMs?: number;
}

/** Add to counter `inc` whatever `now` has gained over `seen` per key; remember `now`. */
function syncCounts(now: Record<string, number>, seen: Map<string, number>, inc: (key: string, by: number) => void): void {
  for (const [key, n] of Object.entries(now)) {
    const by = n - (seen.get(key) ?? 0);
    if (by > 0) inc(key, by);
    seen.set(key, n);
  }
}

/**
 * Keep the sidecar observable: copy the mesh's own counters (refusals by reason, negotiated key
 * exchange groups on both sides — e.g. X25519MLKEM768, failed renewals) into Prometheus, and report node status
 * to the control plane on a timer with the measured clock offset (a node whose clock is off by
 * more than the 60 s backdating sees fresh certificates as not yet valid). Returns a stop function.
 */
export function startTelemetry(cfg: TelemetryConfig): () => void {
  const { ingress, dialer, metrics, client, rotator, view, log } = cfg;
  const maxOffset = cfg.maxClockOffsetMs ?? 30_000;
  const seenRejected = new Map<string, number>();
  const seenIn = new Map<string, number>();
  const seenOut = new Map<string, number>();
  const seenFailures = new Map<string, number>();
  const sync = () => {
    syncCounts({ error: rotator.stats.failures }, seenFailures, (result, by) => metrics.rotations.inc({ result }, by));
    syncCounts(ingress.stats.rejected, seenRejected, (reason, by) => metrics.handshakeFailures.inc({ reason }, by));
    syncCounts(ingress.stats.groups, seenIn, (group, by) => metrics.meshConnections.inc({ direction: 'inbound', group }, by));
    syncCounts(dialer.stats().groups, seenOut, (group, by) => metrics.meshConnections.inc({ direction: 'outbound', group }, by));
  };
  let offset = 0;
  const report = async () => {
    const id = rotator.current();
    if (!id || !view.revision || rotator.state() !== 'valid') return;
    try {
      const r = await client.report({ revision: view.revision, certSerial: id.serial, certNotAfter: id.notAfter.getTime(), clockOffsetMs: offset });
      offset = r.clockOffsetMs;
      if (Math.abs(offset) > maxOffset) log.warn({ event: 'clock.offset', offsetMs: offset }, 'clock differs from the control plane: fix NTP on this node');
    } catch (err) {
      log.debug({ event: 'report.failed', err: (err as Error).message }, 'status report failed; will retry');
    }
  };
  const syncTimer = setInterval(sync, cfg.syncMs ?? 2000);
  const reportTimer = setInterval(() => void report(), cfg.reportMs ?? 60_000);
  syncTimer.unref();
  reportTimer.unref();
  return () => {
    clearInterval(syncTimer);
    clearInterval(reportTimer);
    sync();
  };
}
