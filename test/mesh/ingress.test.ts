import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TrustBundle } from '../../ca/bundle.ts';
import { startIngress, type Ingress, type LocalBackend } from '../../sidecar/mesh/ingress.ts';
import { requireBinary } from '../helpers/real.ts';
import { readUntil, startBackend, type TestBackend } from './backend.ts';
import { ingressConfig } from './ingress-config.ts';
import tls from 'node:tls';
import { nodeClient, opensslClient } from './clients.ts';
import { badLeaf, issueIdentity, makeCa } from './pki.ts';

const H = 3_600_000;
const ca = makeCa('mail.test');
const otherCa = makeCa('mail.test');
const otherTd = makeCa('other.test');
const server = issueIdentity(ca, 's1', 'a');
const good = issueIdentity(ca, 's2', 'b');
const revokedSerial = issueIdentity(ca, 's2', 'c');
const revokedId = issueIdentity(ca, 's2', 'd');
const stranger = issueIdentity(ca, 's3', 'x');
const unauthorized = new Set([stranger.spiffeId]);

describe('mesh ingress', () => {
  let backend: TestBackend;
  let ingress: Ingress;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mm-ingress-'));
    backend = await startBackend();
    ingress = await startIngress(ingressConfig(server, ca, backend.address, {
      // The other trust domain's root is trusted as an anchor, so its leaves reach the TD check.
      bundle: () => new TrustBundle([...ca.bundle.roots, ...otherTd.bundle.roots]),
      intermediates: () => [otherTd.issuer.cert],
      authorize: (id) => !unauthorized.has(id),
      revoked: () => ({ serials: new Set([revokedSerial.serial]), ids: new Set([revokedId.spiffeId]) }),
    }));
  });
  after(async () => {
    await ingress?.close();
    await backend?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const refusedCases: [string, () => { keyPem?: string; chainPem?: string }, string][] = [
    ['no client certificate', () => ({}), 'ERR_NO_CHAIN'],
    ['self-signed', () => badLeaf(ca, 'self-signed'), 'ERR_UNKNOWN_AUTHORITY'],
    ['other CA', () => issueIdentity(otherCa, 's2', 'b'), 'ERR_UNKNOWN_AUTHORITY'],
    ['expired', () => issueIdentity(ca, 's2', 'old', { now: Date.now() - 3 * H, ttlMs: H }), 'ERR_CERT_EXPIRED'],
    ['not yet valid', () => issueIdentity(ca, 's2', 'new', { now: Date.now() + 3 * H, ttlMs: H }), 'ERR_CERT_NOT_YET_VALID'],
    ['wrong trust domain', () => issueIdentity(otherTd, 's2', 'b'), 'ERR_WRONG_TRUST_DOMAIN'],
    ['revoked serial', () => revokedSerial, 'ERR_REVOKED_SERIAL'],
    ['revoked identity', () => revokedId, 'ERR_REVOKED_IDENTITY'],
    ['identity not authorized for this shard', () => stranger, 'ERR_MESH_NOT_AUTHORIZED'],
    ['leaf marked CA', () => badLeaf(ca, 'leaf-ca'), 'ERR_LEAF_IS_CA'],
    ['wrong EKU (serverAuth only)', () => badLeaf(ca, 'server-eku-only'), 'ERR_MISSING_EKU'],
  ];

  for (const [name, material, reason] of refusedCases) {
    test(`node client refused: ${name} → ${reason}`, async () => {
      const before = ingress.stats.rejected[reason] ?? 0;
      const lines = backend.lines.length;
      const seen = await nodeClient(ingress.port, { ...material(), line: 'HELLO' });
      assert.equal(seen.refused, true, `peer must not reach the backend; saw ${JSON.stringify(seen.data)}`);
      assert.equal(seen.data, '');
      assert.equal(ingress.stats.rejected[reason], before + 1);
      assert.equal(backend.lines.length, lines, 'nothing reached the backend');
    });
  }

  test('node client accepted: data flows both ways, negotiated group recorded', async () => {
    const accepted = ingress.stats.accepted;
    const seen = await nodeClient(ingress.port, { ...good, line: 'LHLO node' });
    assert.equal(seen.refused, false);
    assert.match(seen.data, /250 LHLO node/);
    assert.ok(backend.lines.includes('LHLO node'));
    assert.equal(ingress.stats.accepted, accepted + 1);
    assert.ok((ingress.stats.groups['X25519MLKEM768'] ?? 0) >= 1, `groups: ${JSON.stringify(ingress.stats.groups)}`);
  });

  test('unknown ALPN is refused with ERR_MESH_UNKNOWN_ALPN', async () => {
    const before = ingress.stats.rejected['ERR_MESH_UNKNOWN_ALPN'] ?? 0;
    const seen = await nodeClient(ingress.port, { ...good, alpn: ['smtp'] });
    assert.equal(seen.refused, true);
    assert.equal(ingress.stats.rejected['ERR_MESH_UNKNOWN_ALPN'], before + 1);
    const seen2 = await nodeClient(ingress.port, { ...good, alpn: [] });
    assert.equal(seen2.refused, true);
    assert.equal(ingress.stats.rejected['ERR_MESH_UNKNOWN_ALPN'], before + 2);
  });

  const opensslCases: [string, () => { keyPem?: string; chainPem?: string }, string | null][] = [
    ['no client certificate', () => ({}), 'ERR_NO_CHAIN'],
    ['other CA', () => issueIdentity(otherCa, 's2', 'b'), 'ERR_UNKNOWN_AUTHORITY'],
    ['revoked serial', () => revokedSerial, 'ERR_REVOKED_SERIAL'],
    ['not authorized', () => stranger, 'ERR_MESH_NOT_AUTHORIZED'],
    ['valid mesh identity', () => good, null],
  ];
  for (const [name, material, reason] of opensslCases) {
    test(`openssl s_client: ${name} → ${reason ?? 'spliced to the backend'}`, async (t) => {
      const openssl = requireBinary(t, 'openssl');
      if (!openssl) return;
      const before = reason ? (ingress.stats.rejected[reason] ?? 0) : ingress.stats.accepted;
      const line = `NOOP ${name.replace(/\W+/g, '-')}`;
      const seen = await opensslClient(openssl, dir, ingress.port, { ...material(), caPem: ca.bundlePem, line });
      if (reason) {
        assert.equal(seen.refused, true, `openssl saw ${JSON.stringify(seen.data)}`);
        assert.equal(ingress.stats.rejected[reason], before + 1);
        assert.ok(!backend.lines.includes(line));
      } else {
        assert.match(seen.data, /220 backend ready/);
        assert.match(seen.data, new RegExp(`250 ${line}`));
        assert.ok(backend.lines.includes(line));
        assert.equal(ingress.stats.accepted, before + 1);
      }
    });
  }
});

test('ingress refuses new connections once its own certificate is expired (fail closed)', async () => {
  const expiredOwn = issueIdentity(ca, 's1', 'a', { now: Date.now() - 3 * H, ttlMs: H });
  const backend = await startBackend();
  const ingress = await startIngress(ingressConfig(expiredOwn, ca, backend.address));
  try {
    const seen = await nodeClient(ingress.port, { ...good, line: 'HELLO' });
    assert.equal(seen.refused, true);
    assert.equal(ingress.stats.rejected['ERR_MESH_IDENTITY_EXPIRED'], 1);
    assert.equal(backend.connections, 0);
  } finally {
    await ingress.close();
    await backend.close();
  }
});

test('recheck() closes spliced sessions whose peer a new snapshot revoked; others keep running', async () => {
  const backend = await startBackend();
  const revokedSerials = new Set<string>();
  const ingress = await startIngress(ingressConfig(server, ca, backend.address, { revoked: () => ({ serials: revokedSerials, ids: new Set() }) }));
  const other = issueIdentity(ca, 's2', 'e');
  const open = async (id: { keyPem: string; chainPem: string }) => {
    const socket = tls.connect({ port: ingress.port, host: '127.0.0.1', key: id.keyPem, cert: id.chainPem, ca: ca.bundlePem, ALPNProtocols: ['mailmesh-lmtp'], checkServerIdentity: () => undefined });
    await readUntil(socket, /220 backend ready/);
    return socket;
  };
  const a = await open(good);
  const b = await open(other);
  try {
    assert.equal(ingress.activeSessions(), 2);
    assert.equal(ingress.recheck(), 0, 'nothing changed: nothing closed');
    revokedSerials.add(good.serial);
    const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
    assert.equal(ingress.recheck(), 1);
    await closed;
    assert.equal(ingress.activeSessions(), 1);
    assert.equal(ingress.stats.closed['ERR_REVOKED_SERIAL'], 1);
    assert.deepEqual(ingress.stats.rejected, {}, 'no handshake was refused');
    b.write('STILL HERE\r\n');
    assert.match(await readUntil(b, /250 STILL HERE/), /250 STILL HERE/);
  } finally {
    a.destroy();
    b.destroy();
    await ingress.close();
    await backend.close();
  }
});

describe('ingress backends other than loopback TCP', () => {
  const opts = (backend: string | LocalBackend, revoked = new Set<string>()) =>
    ingressConfig(server, ca, backend, { authorize: (id) => !unauthorized.has(id), revoked: () => ({ serials: revoked, ids: new Set<string>() }) });
  const open = (port: number, id: { keyPem: string; chainPem: string }) =>
    tls.connect({ port, host: '127.0.0.1', key: id.keyPem, cert: id.chainPem, ca: ca.bundlePem, ALPNProtocols: ['mailmesh-lmtp'], checkServerIdentity: () => undefined });

  test('unix:/path backend: sessions are spliced to a Unix-domain socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mm-ingress-unix-'));
    const backend = await startBackend('220 unix backend', { unixPath: join(dir, 'lmtp.sock') });
    const ingress = await startIngress(opts(backend.address));
    const socket = open(ingress.port, good);
    try {
      await readUntil(socket, /220 unix backend/);
      socket.write('LHLO over-unix\r\n');
      await readUntil(socket, /250 LHLO over-unix/);
      assert.deepEqual(backend.lines, ['LHLO over-unix']);
      assert.equal(backend.connections, 1);
    } finally {
      socket.destroy();
      await ingress.close();
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a backend address that is neither host:port nor unix:/absolute is refused at start', async () => {
    await assert.rejects(startIngress(opts('unix:relative.sock')), { code: 'ERR_MESH_BAD_ADDRESS' });
    await assert.rejects(startIngress(opts('localhost')), { code: 'ERR_MESH_BAD_ADDRESS' });
  });

  test('in-process backend: gets the checked session itself; refused peers never reach it; recheck and close cut it', async () => {
    const backend = await startBackend('220 in-process'); // its TCP listener stays unused
    const revoked = new Set<string>();
    const ingress = await startIngress(opts((session) => backend.serve(session), revoked));
    const a = open(ingress.port, good);
    try {
      await readUntil(a, /220 in-process/);
      a.write('LHLO in-process\r\n');
      await readUntil(a, /250 LHLO in-process/);
      assert.deepEqual(backend.lines, ['LHLO in-process']);
      assert.equal(backend.connections, 1);
      assert.equal(ingress.activeSessions(), 1);

      const refused = await nodeClient(ingress.port, { ...stranger, line: 'SNEAK' });
      assert.equal(refused.refused, true);
      assert.equal(ingress.stats.rejected['ERR_MESH_NOT_AUTHORIZED'], 1);
      assert.equal(backend.connections, 1, 'a refused peer is never handed to the backend');

      revoked.add(good.serial);
      const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
      assert.equal(ingress.recheck(), 1);
      await closed;
      assert.equal(ingress.activeSessions(), 0);

      const b = open(ingress.port, issueIdentity(ca, 's2', 'f'));
      await readUntil(b, /220 in-process/);
      const bClosed = new Promise<void>((resolve) => b.once('close', () => resolve()));
      await ingress.close();
      await bClosed;
    } finally {
      a.destroy();
      await ingress.close();
      await backend.close();
    }
  });
});
