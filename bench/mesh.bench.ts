// Mesh overhead: a request/response protocol (10 KB request, 8-byte reply) through
// dialer → ingress → sink over pooled mTLS connections, against the same client talking to the
// same sink over plain loopback TCP. Figures only; never a pass/fail.
// Placement as in production: the client (and its dialer) in this thread, the ingresses and the
// sink in a worker thread standing in for the remote shard's sidecar, for every path.
// Two mesh paths, as the sidecar runs them: `mesh.throughput` with the ingress handing sessions
// to the sink in-process (how embedded mode serves its Maildir store), and
// `mesh.throughput.unixBackend` with the ingress splicing them to the sink's Unix socket (how a
// sidecar reaches Dovecot's LMTP socket): the second adds a local hop the mesh cannot remove.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { systemClock } from '../common/clock.ts';
import { MeshDialer } from '../sidecar/mesh/dialer.ts';
import { issueIdentity, makeCa } from '../test/mesh/pki.ts';
import { percentile, result, type BenchFn } from './harness.ts';
import type { MeshServerInit, MeshServerReady } from './workers/mesh-server.ts';

const REQUEST = Buffer.alloc(10 * 1024, 0x61);
const REPLY = Buffer.from('250 ok\r\n');

/** Start the sink and the ingress in a worker thread (bench/workers/mesh-server.ts). */
async function startServerThread(init: MeshServerInit): Promise<MeshServerReady & { elu: () => EventLoopUtilization; stop: () => Promise<void> }> {
  const worker = new Worker(new URL('./workers/mesh-server.ts', import.meta.url), { workerData: init });
  const ready = await new Promise<MeshServerReady>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`mesh server thread exited with code ${code}`)));
  });
  return {
    ...ready,
    elu: () => worker.performance.eventLoopUtilization(),
    stop: async () => {
      const exited = new Promise<void>((r) => worker.once('exit', () => r()));
      worker.postMessage('stop');
      // A thread that does not wind down in time is terminated: a benchmark must not hang.
      const timer = setTimeout(() => void worker.terminate(), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Send one request and wait for its reply. */
function roundTrip(socket: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= REPLY.length) {
        socket.off('data', onData);
        socket.off('error', reject);
        socket.pause();
        resolve();
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.resume();
    socket.write(REQUEST);
  });
}

/** Messages, elapsed time and per-message latencies of one path, summed over windows. */
interface Tally {
  n: number;
  ms: number;
  latencies: number[];
  /** Busy time of the server thread's event loop (ms), to see which side is saturated. */
  serverBusyMs: number;
  /** CPU time of the whole process (every thread, user + kernel), µs. */
  cpuUs: number;
}

/** Run `loops` concurrent loops for `ms`, each message one `send()`; adds into `into`. */
async function drive(loops: number, ms: number, send: () => Promise<void>, into: Tally, serverElu: () => EventLoopUtilization): Promise<void> {
  const elu0 = serverElu();
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await send();
        into.latencies.push(performance.now() - t);
        into.n++;
      }
    }),
  );
  into.ms += performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  into.cpuUs += cpu.user + cpu.system;
  const elu1 = serverElu();
  into.serverBusyMs += elu1.active - elu0.active;
}

/** Alternate the paths' windows so that load from other processes on a shared machine falls on
 * every path alike; figures are totals over all windows. */
async function compare<K extends string>(rounds: number, loops: number, ms: number, paths: Record<K, () => Promise<void>>, serverElu: () => EventLoopUtilization): Promise<Record<K, Tally>> {
  const names = Object.keys(paths) as K[];
  const out = {} as Record<K, Tally>;
  for (const k of names) out[k] = { n: 0, ms: 0, latencies: [], serverBusyMs: 0, cpuUs: 0 };
  for (let i = 0; i < rounds; i++) {
    for (const k of i % 2 === 0 ? names : [...names].reverse()) await drive(loops, ms / rounds, paths[k], out[k], serverElu);
  }
  return out;
}

const perSecond = (t: Tally) => t.n / (t.ms / 1000);

export const run: BenchFn = async ({ quick }) => {
  const ms = quick ? 1000 : 4000;
  const ca = makeCa('mail.test');
  const server = issueIdentity(ca, 's1', 'a');
  const client = issueIdentity(ca, 's2', 'b');
  const servers = await startServerThread({
    keyPem: server.keyPem,
    chainPem: server.chainPem,
    bundlePem: ca.bundlePem,
    trustDomain: 'mail.test',
    requestBytes: REQUEST.length,
    reply: REPLY.toString(),
  });
  const dialerTo = (port: number) =>
    new MeshDialer({
      identity: () => client,
      bundle: () => ca.bundle,
      trustDomain: () => 'mail.test',
      resolveShard: () => `127.0.0.1:${port}`,
      clock: systemClock,
    });
  const dialer = dialerTo(servers.ingressPort);
  const unixDialer = dialerTo(servers.unixIngressPort);
  // Direct: a small pool of plain TCP connections, taken and returned per message like the mesh's.
  const directIdle: net.Socket[] = [];
  const direct = async () => {
    let s = directIdle.pop();
    if (!s) {
      s = net.connect(servers.sinkPort, '127.0.0.1');
      await new Promise<void>((r) => s!.once('connect', () => r()));
    }
    await roundTrip(s);
    directIdle.push(s);
  };
  const through = (d: MeshDialer) => async () => {
    const lease = await d.acquire('s1', 'mailmesh-lmtp');
    await roundTrip(lease.socket);
    lease.release(true);
  };
  const paths = { direct, mesh: through(dialer), unix: through(unixDialer) };
  try {
    // Warm up every path (JIT, pool, first handshake).
    await compare(1, 4, 900, paths, servers.elu);
    const handshakes0 = dialer.stats().handshakes + unixDialer.stats().handshakes;
    const rounds = quick ? 2 : 4;
    const tput = await compare(rounds, 8, ms * 1.5, paths, servers.elu);
    const lat = await compare(rounds, 1, ms * 0.75, paths, servers.elu);
    const messages = tput.mesh.n + lat.mesh.n + tput.unix.n + lat.unix.n;
    const handshakes = dialer.stats().handshakes + unixDialer.stats().handshakes - handshakes0;
    const added = (k: 'mesh' | 'unix', p: number) => percentile(lat[k].latencies, p) - percentile(lat.direct.latencies, p);
    const busy = (t: Tally) => (100 * t.serverBusyMs) / t.ms;
    const direct_ = 'same client → sink over plain TCP';
    return [
      result('mesh.throughput', perSecond(tput.mesh), 'msg/s', perSecond(tput.direct), direct_, '>= 50% of direct'),
      result('mesh.latency.p50.added', added('mesh', 50), 'ms', null, undefined, '<= 1 ms'),
      result('mesh.latency.p99.added', added('mesh', 99), 'ms', null, undefined, '<= 3 ms'),
      result('mesh.handshakesPer1000', (handshakes / Math.max(1, messages)) * 1000, 'handshakes', null, undefined, '<= 10 per 1,000 messages'),
      // The same behind a Unix-socket backend (a sidecar in front of Dovecot): one more local hop.
      result('mesh.throughput.unixBackend', perSecond(tput.unix), 'msg/s', perSecond(tput.direct), direct_),
      result('mesh.latency.p50.added.unixBackend', added('unix', 50), 'ms', null),
      result('mesh.latency.p99.added.unixBackend', added('unix', 99), 'ms', null),
      // Where the time goes: the server thread (ingress + sink) busy share during the throughput
      // windows, against the sink alone on the direct path.
      result('mesh.serverThreadBusy', busy(tput.mesh), '%', busy(tput.direct), 'sink thread busy, direct path'),
      // CPU per message over both threads and the kernel: what the path costs, whatever else
      // runs on the machine. On a CPU-bound host, throughput ratio ≈ the inverse of this ratio.
      result('mesh.cpuPerMessage', tput.mesh.cpuUs / tput.mesh.n, 'µs', tput.direct.cpuUs / tput.direct.n, 'direct path, same client and sink'),
      result('mesh.cpuPerMessage.unixBackend', tput.unix.cpuUs / tput.unix.n, 'µs', tput.direct.cpuUs / tput.direct.n, 'direct path, same client and sink'),
    ];
  } finally {
    dialer.close();
    unixDialer.close();
    for (const s of directIdle) s.destroy();
    await servers.stop();
  }
};
