// The server side of bench/mesh.bench.ts in its own thread, as in production where the ingress is
// the remote shard's sidecar (another process, another core): a sink answering every 10 KB
// request with an 8-byte reply, listening on loopback TCP (the direct path) and on a Unix socket,
// and two mesh ingresses in front of it: one hands its sessions to the sink in-process (as the
// embedded Maildir store is served), one splices them to the sink's Unix socket (as to Dovecot's
// LMTP socket). The client stays in the main thread for every path, so the direct baseline
// (client → sink) and the mesh paths (client → ingress → sink) put the same work on each side.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { TrustBundle } from '../../ca/bundle.ts';
import { systemClock } from '../../common/clock.ts';
import { buildIdentity } from '../../sidecar/identity/identity.ts';
import { startIngress, type LocalBackend } from '../../sidecar/mesh/ingress.ts';

/** What the main thread sends: the ingress's key and chain, and the trust bundle (PEM). */
export interface MeshServerInit {
  keyPem: string;
  chainPem: string;
  bundlePem: string;
  trustDomain: string;
  requestBytes: number;
  reply: string;
}

/** What the worker answers once listening. */
export interface MeshServerReady {
  sinkPort: number;
  /** Ingress whose backend is the sink in this thread (in-process hand-over). */
  ingressPort: number;
  /** Ingress whose backend is the sink's Unix socket. */
  unixIngressPort: number;
}

const init = workerData as MeshServerInit;
const reply = Buffer.from(init.reply);

const sockets = new Set<net.Socket>();
const serveSink = (s: net.Socket) => {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
  s.on('error', () => s.destroy());
  let pending = 0;
  s.on('data', (d: Buffer) => {
    pending += d.length;
    while (pending >= init.requestBytes) {
      pending -= init.requestBytes;
      s.write(reply);
    }
  });
};
const sink = net.createServer(serveSink);
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
const sinkPort = (sink.address() as net.AddressInfo).port;
const sockDir = mkdtempSync(join(tmpdir(), 'mailmesh-bench-'));
const unixSink = net.createServer(serveSink);
await new Promise<void>((r) => unixSink.listen(join(sockDir, 'sink.sock'), r));

const identity = buildIdentity({ keyPem: init.keyPem, chainPem: init.chainPem, bundlePem: init.bundlePem });
const bundle = TrustBundle.fromPem(init.bundlePem);
const ingressTo = (backend: string | LocalBackend) =>
  startIngress({
    host: '127.0.0.1',
    port: 0,
    identity: () => identity,
    trustDomain: () => init.trustDomain,
    bundle: () => bundle,
    authorize: () => true,
    revoked: () => ({ serials: new Set(), ids: new Set() }),
    backends: { 'mailmesh-lmtp': backend },
    clock: systemClock,
  });
const ingress = await ingressTo(serveSink);
const unixIngress = await ingressTo(`unix:${join(sockDir, 'sink.sock')}`);

parentPort!.on('message', async (msg: unknown) => {
  if (msg !== 'stop') return;
  await ingress.close();
  await unixIngress.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => sink.close(() => r()));
  await new Promise<void>((r) => unixSink.close(() => r()));
  rmSync(sockDir, { recursive: true, force: true });
  parentPort!.close();
});
parentPort!.postMessage({ sinkPort, ingressPort: ingress.port, unixIngressPort: unixIngress.port } satisfies MeshServerReady);
