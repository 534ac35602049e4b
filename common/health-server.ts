import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Whether a process should receive traffic, and if not, why (shown to operators on `/readyz`). */
export interface Readiness {
  ok: boolean;
  reasons: string[];
}

/** Options of {@link startHealthServer}. */
export interface HealthServerOptions {
  /** Address to bind, e.g. `0.0.0.0` in a pod, `127.0.0.1` in tests. */
  host: string;
  /** Port to bind; 0 picks a free one (see {@link HealthServer.port}). */
  port: number;
  /** Served as Prometheus text on `/metrics`. */
  registry: Registry;
  /** Asked on every `/readyz`; must be cheap and must not block. */
  ready: () => Readiness;
  /** Asked on every `/healthz`; defaults to "alive" (the process answering is the proof). */
  live?: () => boolean;
}

/** A running health server. */
export interface HealthServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** Stop listening and drop open keep-alive connections. */
  close(): Promise<void>;
}

/**
 * Serve `/metrics`, `/healthz` and `/readyz` over plain HTTP for Prometheus and the kubelet.
 * `/healthz` is 200 while `live()` is true (a failing liveness probe restarts the container, so it
 * must only fail when a restart helps); `/readyz` is 200 only when `ready().ok`, otherwise 503 with
 * `{ ok, reasons }` as JSON so `kubectl describe` and curl show why.
 *
 * @example
 * const h = await startHealthServer({ host: '0.0.0.0', port: 9464, registry: m.registry,
 *   ready: () => certificateAndSnapshotReadiness({ now: Date.now(), certificateNotAfter, snapshotRevision }) });
 */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const server = createServer((req, res) => {
    handle(opts, req, res).catch((err: unknown) => {
      send(res, 500, 'text/plain; charset=utf-8', `internal error: ${(err as Error).message}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function handle(opts: HealthServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/metrics':
      send(res, 200, opts.registry.contentType, await opts.registry.metrics());
      return;
    case '/healthz': {
      const alive = opts.live ? safe(opts.live, false) : true;
      send(res, alive ? 200 : 503, 'text/plain; charset=utf-8', alive ? 'ok\n' : 'not live\n');
      return;
    }
    case '/readyz': {
      // A throwing readiness callback means "not ready", never a crashed probe endpoint.
      const r = safe(opts.ready, (err) => ({ ok: false, reasons: [`readiness check failed: ${(err as Error).message}`] }));
      send(res, r.ok ? 200 : 503, 'application/json', `${JSON.stringify({ ok: r.ok, reasons: r.reasons })}\n`);
      return;
    }
    default:
      send(res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics, /healthz or /readyz\n');
  }
}

function safe<T>(fn: () => T, fallback: T | ((err: unknown) => T)): T {
  try {
    return fn();
  } catch (err) {
    return typeof fallback === 'function' ? (fallback as (err: unknown) => T)(err) : fallback;
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

/**
 * The sidecar's readiness rule: it may take traffic only with an unexpired mesh certificate and a
 * policy snapshot (without one it cannot route, without the other it cannot reach any shard).
 * Pure, so the rule is tested without a server.
 */
export function certificateAndSnapshotReadiness(state: {
  now: number;
  certificateNotAfter?: Date;
  snapshotRevision?: string;
}): Readiness {
  const reasons: string[] = [];
  if (!state.certificateNotAfter) reasons.push('no mesh certificate yet (join pending: check the join token and the control plane)');
  else if (state.certificateNotAfter.getTime() <= state.now)
    reasons.push(`mesh certificate expired at ${state.certificateNotAfter.toISOString()} (renewal failing: check the control plane)`);
  if (!state.snapshotRevision) reasons.push('no policy snapshot yet (waiting for the control plane)');
  return { ok: reasons.length === 0, reasons };
}
