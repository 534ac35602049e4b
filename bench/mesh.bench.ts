// Mesh overhead: a request/response protocol (10 KB request, 8-byte reply) through
// dialer → ingress → sink over pooled mTLS connections, against the same client talking to the
// same sink over plain loopback TCP. Figures only; never a pass/fail.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { systemClock } from '../common/clock.ts';
import { MeshDialer } from '../sidecar/mesh/dialer.ts';
import { startIngress } from '../sidecar/mesh/ingress.ts';
import { issueIdentity, makeCa } from '../test/mesh/pki.ts';
import { percentile, result, type BenchFn } from './harness.ts';

const REQUEST = Buffer.alloc(10 * 1024, 0x61);
const REPLY = Buffer.from('250 ok\r\n');

/** A sink that answers every 10 KB request with an 8-byte reply. */
async function startSink(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    let pending = 0;
    s.on('data', (d: Buffer) => {
      pending += d.length;
      while (pending >= REQUEST.length) {
        pending -= REQUEST.length;
        s.write(REPLY);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
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

/** Run `workers` loops for `ms`; each message is one `send()`. Returns messages/s and latencies. */
async function drive(workers: number, ms: number, send: () => Promise<void>): Promise<{ rate: number; latencies: number[] }> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  const start = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await send();
        latencies.push(performance.now() - t);
        n++;
      }
    }),
  );
  return { rate: n / ((performance.now() - start) / 1000), latencies };
}

export const run: BenchFn = async ({ quick }) => {
  const ms = quick ? 1000 : 4000;
  const ca = makeCa('mail.test');
  const server = issueIdentity(ca, 's1', 'a');
  const client = issueIdentity(ca, 's2', 'b');
  const sink = await startSink();
  const ingress = await startIngress({
    host: '127.0.0.1',
    port: 0,
    identity: () => server,
    trustDomain: () => 'mail.test',
    bundle: () => ca.bundle,
    authorize: () => true,
    revoked: () => ({ serials: new Set(), ids: new Set() }),
    backends: { 'mailmesh-lmtp': `127.0.0.1:${sink.port}` },
    clock: systemClock,
  });
  const dialer = new MeshDialer({
    identity: () => client,
    bundle: () => ca.bundle,
    trustDomain: () => 'mail.test',
    resolveShard: () => `127.0.0.1:${ingress.port}`,
    clock: systemClock,
  });
  // Direct: a small pool of plain TCP connections, taken and returned per message like the mesh's.
  const directIdle: net.Socket[] = [];
  const directSend = async () => {
    let s = directIdle.pop();
    if (!s) {
      s = net.connect(sink.port, '127.0.0.1');
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
    await drive(4, 300, directSend);
    await drive(4, 300, meshSend);
    const before = dialer.stats();
    const directTput = await drive(8, ms, directSend);
    const meshTput = await drive(8, ms, meshSend);
    const directLat = await drive(1, ms / 2, directSend);
    const meshLat = await drive(1, ms / 2, meshSend);
    const after = dialer.stats();
    const messages = meshTput.latencies.length + meshLat.latencies.length;
    const handshakes = after.handshakes - before.handshakes;
    const p50 = percentile(meshLat.latencies, 50) - percentile(directLat.latencies, 50);
    const p99 = percentile(meshLat.latencies, 99) - percentile(directLat.latencies, 99);
    return [
      result('mesh.throughput', meshTput.rate, 'msg/s', directTput.rate, 'same client → sink over plain TCP', '>= 50% of direct'),
      result('mesh.latency.p50.added', p50, 'ms', null, undefined, '<= 1 ms'),
      result('mesh.latency.p99.added', p99, 'ms', null, undefined, '<= 3 ms'),
      result('mesh.handshakesPer1000', (handshakes / Math.max(1, messages)) * 1000, 'handshakes', null, undefined, '<= 10 per 1,000 messages'),
    ];
  } finally {
    dialer.close();
    for (const s of directIdle) s.destroy();
    await ingress.close();
    await sink.close();
  }
};
