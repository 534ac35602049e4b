// Mesh ingress under TLS garbage: random bytes, truncated and bit-flipped ClientHellos, a TLS
// 1.2-only client, no ALPN, an unknown ALPN, plaintext LMTP on the TLS port. Proves: every such
// connection is closed by the ingress and counted in stats.rejected (one refusal per connection,
// by reason), not a byte reaches the backend, and a valid peer still gets through afterwards.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { startIngress, type Ingress } from '../../sidecar/mesh/ingress.ts';
import { startBackend, type TestBackend } from '../mesh/backend.ts';
import { ingressConfig } from '../mesh/ingress-config.ts';
import { nodeClient } from '../mesh/clients.ts';
import { issueIdentity, makeCa } from '../mesh/pki.ts';
import { Rng, fuzzSeed, iterations, pool, replayHint } from './fuzz-kit.ts';
import { summary } from './summary.ts';
import { rawSession } from './wire.ts';

const seed = fuzzSeed();
const sum = summary('mesh-ingress-fuzz');
sum.set('seed', seed);

const HANDSHAKE_TIMEOUT_MS = 800;
const ca = makeCa('mail.test');
const server = issueIdentity(ca, 's1', 'a');
const good = issueIdentity(ca, 's2', 'b');

let backend: TestBackend;
let ingress: Ingress;
let clientHello: Buffer;

/** The first flight of a real mesh client (a TLS 1.3 ClientHello with ALPN and key shares). */
async function captureClientHello(): Promise<Buffer> {
  let got: (b: Buffer) => void;
  const hello = new Promise<Buffer>((r) => (got = r));
  const srv = net.createServer((s) => s.once('data', (d: Buffer) => {
    got(d);
    s.destroy();
  }));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const c = tls.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, key: good.keyPem, cert: good.chainPem, ALPNProtocols: ['mailmesh-lmtp'], rejectUnauthorized: false });
  c.on('error', () => {});
  const b = await hello;
  c.destroy();
  await new Promise<void>((r) => srv.close(() => r()));
  return b;
}

before(async () => {
  clientHello = await captureClientHello();
  backend = await startBackend();
  ingress = await startIngress(ingressConfig(server, ca, backend.address, { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS }));
});
after(async () => {
  await ingress?.close();
  await backend?.close();
});

const totalRejected = () => Object.values(ingress.stats.rejected).reduce((a, b) => a + b, 0);

test('random bytes, truncated and mutated ClientHellos, plaintext LMTP: closed, counted, nothing reaches the backend', async () => {
  const rng = new Rng(seed);
  const before = totalRejected();
  const beforeHandshake = ingress.stats.rejected.ERR_MESH_HANDSHAKE ?? 0;
  const beforeAlpn = ingress.stats.rejected.ERR_MESH_UNKNOWN_ALPN ?? 0;
  const kinds = ['random', 'truncated-hello', 'flipped-hello', 'hello-then-garbage', 'plaintext-lmtp', 'http', 'nothing'] as const;
  const inputs = Array.from({ length: iterations(210) }, (_, i) => ({ kind: kinds[i % kinds.length], r: rng.fork() }));
  const results = await pool(inputs, 16, async ({ kind, r }, i) => {
    let bytes: Buffer;
    switch (kind) {
      case 'random':
        bytes = r.bytes(1 + r.int(2000));
        break;
      case 'truncated-hello':
        bytes = clientHello.subarray(0, r.int(clientHello.length));
        break;
      case 'flipped-hello': {
        bytes = Buffer.from(clientHello);
        for (let k = 0, n = 1 + r.int(8); k < n; k++) bytes[r.int(bytes.length)] ^= 1 << r.int(8);
        break;
      }
      case 'hello-then-garbage':
        bytes = Buffer.concat([clientHello, r.bytes(1 + r.int(500))]);
        break;
      case 'plaintext-lmtp':
        bytes = Buffer.from('LHLO attacker.test\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@mail.test>\r\nDATA\r\nhi\r\n.\r\n');
        break;
      case 'http':
        bytes = Buffer.from('GET / HTTP/1.1\r\nHost: mesh\r\n\r\n');
        break;
      default:
        bytes = Buffer.alloc(0);
    }
    const res = await rawSession({ port: ingress.port, chunks: [bytes], waitGreeting: false, deadlineMs: HANDSHAKE_TIMEOUT_MS + 4000 });
    assert.equal(res.connectError, undefined, replayHint(seed, `#${i} ${kind}: listener down`));
    assert.equal(res.serverClosed, true, replayHint(seed, `#${i} ${kind}: ingress kept the connection open`));
    assert.ok(!res.output.includes('220 backend ready'), replayHint(seed, `#${i} ${kind}: reached the backend`));
    sum.add('inputs');
    sum.add(`input_${kind}`);
    return kind;
  });
  // One refusal per connection, each a handshake failure (there is no certificate to judge) —
  // or an unknown ALPN when a flipped bit landed in the protocol name of the ClientHello.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(totalRejected() - before, results.length, JSON.stringify(ingress.stats.rejected));
  const alpn = (ingress.stats.rejected.ERR_MESH_UNKNOWN_ALPN ?? 0) - beforeAlpn;
  assert.equal((ingress.stats.rejected.ERR_MESH_HANDSHAKE ?? 0) - beforeHandshake + alpn, results.length, JSON.stringify(ingress.stats.rejected));
  assert.ok(alpn <= results.filter((k) => k === 'flipped-hello').length, `${alpn} ALPN refusals`);
  assert.equal(backend.connections, 0);
  assert.equal(ingress.stats.accepted, 0);
});

test('TLS 1.2-only client, no ALPN, unknown ALPN: refused with their reasons; then a valid peer gets through', async () => {
  const rejected = (reason: string) => ingress.stats.rejected[reason] ?? 0;
  const cases: [string, () => Promise<boolean>, string][] = [
    ['TLS 1.2 only', () => new Promise<boolean>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: ingress.port, key: good.keyPem, cert: good.chainPem, ALPNProtocols: ['mailmesh-lmtp'], rejectUnauthorized: false, maxVersion: 'TLSv1.2' });
      s.on('secureConnect', () => resolve(false));
      s.on('error', () => resolve(true));
      s.on('close', () => resolve(true));
    }), 'ERR_MESH_HANDSHAKE'],
    ['no ALPN', async () => (await nodeClient(ingress.port, { ...good, alpn: [] })).refused, 'ERR_MESH_UNKNOWN_ALPN'],
    ['unknown ALPN', async () => (await nodeClient(ingress.port, { ...good, alpn: ['h2', 'smtp'] })).refused, 'ERR_MESH_UNKNOWN_ALPN'],
    ['mesh ALPN without a backend', async () => (await nodeClient(ingress.port, { ...good, alpn: ['mailmesh-imap'] })).refused, 'ERR_MESH_UNKNOWN_ALPN'],
  ];
  for (const [name, run, reason] of cases) {
    const before = rejected(reason);
    assert.equal(await run(), true, `${name} was not refused`);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rejected(reason), before + 1, `${name}: ${JSON.stringify(ingress.stats.rejected)}`);
    sum.add(`refused_${reason}`);
  }
  assert.equal(backend.connections, 0);
  const seen = await nodeClient(ingress.port, { ...good, line: 'LHLO good' });
  assert.equal(seen.refused, false);
  assert.match(seen.data, /250 LHLO good/);
  assert.equal(ingress.stats.accepted, 1);
  sum.set('accepted_after', ingress.stats.accepted);
  for (const [k, v] of Object.entries(ingress.stats.rejected)) sum.set(`rejected_${k}`, v);
});
