// The server side of bench/mesh.bench.ts in its own thread, as in production where the ingress is
// the remote shard's sidecar (another process, another core): a sink answering every 10 KB
// request with an 8-byte reply, and a mesh ingress spliced to it. The client stays in the main
// thread for both paths, so the direct baseline (client → sink) and the mesh path
// (client → ingress → sink) put the same work on each side.
import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { TrustBundle } from '../../ca/bundle.ts';
import { systemClock } from '../../common/clock.ts';
import { buildIdentity } from '../../sidecar/identity/identity.ts';
import { startIngress } from '../../sidecar/mesh/ingress.ts';

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
  ingressPort: number;
}

const init = workerData as MeshServerInit;
const reply = Buffer.from(init.reply);

const sockets = new Set<net.Socket>();
const sink = net.createServer((s) => {
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
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
const sinkPort = (sink.address() as net.AddressInfo).port;

const identity = buildIdentity({ keyPem: init.keyPem, chainPem: init.chainPem, bundlePem: init.bundlePem });
const bundle = TrustBundle.fromPem(init.bundlePem);
const ingress = await startIngress({
  host: '127.0.0.1',
  port: 0,
  identity: () => identity,
  trustDomain: () => init.trustDomain,
  bundle: () => bundle,
  authorize: () => true,
  revoked: () => ({ serials: new Set(), ids: new Set() }),
  backends: { 'mailmesh-lmtp': `127.0.0.1:${sinkPort}` },
  clock: systemClock,
});

parentPort!.on('message', async (msg: unknown) => {
  if (msg !== 'stop') return;
  await ingress.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => sink.close(() => r()));
  parentPort!.close();
});
parentPort!.postMessage({ sinkPort, ingressPort: ingress.port } satisfies MeshServerReady);
