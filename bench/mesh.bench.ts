// Mesh overhead: a request/response protocol (10 KB request, 8-byte reply) through
// dialer → ingress → sink over pooled mTLS connections, against the same client talking to the
// same sink over plain loopback TCP. Figures only; never a pass/fail.
// Placement as in production: the client (and its dialer) in this thread, the ingress and the
// sink in a worker thread standing in for the remote shard's sidecar, for both paths.
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

/** Alternate direct and mesh windows so that load from other processes on a shared machine
 * falls on both paths alike; figures are totals over all windows. */
async function compare(rounds: number, loops: number, ms: number, direct: () => Promise<void>, mesh: () => Promise<void>, serverElu: () => EventLoopUtilization) {
  const tally = (): Tally => ({ n: 0, ms: 0, latencies: [], serverBusyMs: 0, cpuUs: 0 });
  const d = tally();
  const m = tally();
  for (let i = 0; i < rounds; i++) {
    await drive(loops, ms / rounds, direct, d, serverElu);
    await drive(loops, ms / rounds, mesh, m, serverElu);
  }
  return { direct: d, mesh: m };
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
  const dialer = new MeshDialer({
    identity: () => client,
    bundle: () => ca.bundle,
    trustDomain: () => 'mail.test',
    resolveShard: () => `127.0.0.1:${servers.ingressPort}`,
    clock: systemClock,
  });
  // Direct: a small pool of plain TCP connections, taken and returned per message like the mesh's.
  const directIdle: net.Socket[] = [];
  const directSend = async () => {
    let s = directIdle.pop();
    if (!s) {
      s = net.connect(servers.sinkPort, '127.0.0.1');
      await new Promise<void>((r) => s!.once('connect', () => r()));
    }
    await roundTrip(s);
    directIdle.push(s);
  };
  const meshSend = async () => {
    const lease = await dialer.acquire('s1', 'mailmesh-lmtp');
    await roundTrip(lease.socket);
    lease.release(true);
  };
  try {
    // Warm up both paths (JIT, pool, first handshake).
    await compare(1, 4, 600, directSend, meshSend, servers.elu);
    const before = dialer.stats();
    const rounds = quick ? 2 : 4;
    const tput = await compare(rounds, 8, ms, directSend, meshSend, servers.elu);
    const lat = await compare(rounds, 1, ms / 2, directSend, meshSend, servers.elu);
    const after = dialer.stats();
    const messages = tput.mesh.n + lat.mesh.n;
    const handshakes = after.handshakes - before.handshakes;
    const p50 = percentile(lat.mesh.latencies, 50) - percentile(lat.direct.latencies, 50);
    const p99 = percentile(lat.mesh.latencies, 99) - percentile(lat.direct.latencies, 99);
    const busy = (t: Tally) => (100 * t.serverBusyMs) / t.ms;
    return [
      result('mesh.throughput', perSecond(tput.mesh), 'msg/s', perSecond(tput.direct), 'same client → sink over plain TCP', '>= 50% of direct'),
      result('mesh.latency.p50.added', p50, 'ms', null, undefined, '<= 1 ms'),
      result('mesh.latency.p99.added', p99, 'ms', null, undefined, '<= 3 ms'),
      result('mesh.handshakesPer1000', (handshakes / Math.max(1, messages)) * 1000, 'handshakes', null, undefined, '<= 10 per 1,000 messages'),
      // Where the time goes: the server thread (ingress + sink) busy share during the throughput
      // windows, against the sink alone on the direct path.
      result('mesh.serverThreadBusy', busy(tput.mesh), '%', busy(tput.direct), 'sink thread busy, direct path'),
      // CPU per message over both threads and the kernel: what the path costs, whatever else
      // runs on the machine. On a CPU-bound host, throughput ratio ≈ the inverse of this ratio.
      result('mesh.cpuPerMessage', tput.mesh.cpuUs / tput.mesh.n, 'µs', tput.direct.cpuUs / tput.direct.n, 'direct path, same client and sink'),
    ];
  } finally {
    dialer.close();
    for (const s of directIdle) s.destroy();
    await servers.stop();
  }
};
