import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ManualClock, systemClock } from '../../common/clock.ts';
import { MeshDialer } from '../../sidecar/mesh/dialer.ts';
import { isMeshError } from '../../sidecar/mesh/errors.ts';
import { startIngress, type AcceptedSession, type Ingress } from '../../sidecar/mesh/ingress.ts';
import { readUntil, startBackend, type TestBackend } from './backend.ts';
import { ingressConfig } from './ingress-config.ts';
import { issueIdentity, makeCa } from './pki.ts';

const ca = makeCa('mail.test');
const server = issueIdentity(ca, 's1', 'a');
const client = issueIdentity(ca, 's2', 'b');

describe('mesh dialer', () => {
  let backend: TestBackend;
  let ingress: Ingress;
  const accepted: AcceptedSession[] = [];
  before(async () => {
    backend = await startBackend();
    ingress = await startIngress(ingressConfig(server, ca, backend.address, { onAccept: (s) => accepted.push(s) }));
  });
  after(async () => {
    await ingress?.close();
    await backend?.close();
  });

  const dialerFor = (over: Partial<ConstructorParameters<typeof MeshDialer>[0]> = {}) =>
    new MeshDialer({
      identity: () => client,
      bundle: () => ca.bundle,
      trustDomain: () => 'mail.test',
      resolveShard: () => `127.0.0.1:${ingress.port}`,
      clock: systemClock,
      ...over,
    });

  test('N messages over one shard cost one handshake; after the idle connection is dropped the next handshake is resumed', async () => {
    const dialer = dialerFor();
    try {
      const N = 25;
      for (let i = 0; i < N; i++) {
        const lease = await dialer.acquire('s1', 'mailmesh-lmtp');
        if (!lease.reused) await readUntil(lease.socket, /220 backend ready\r\n/);
        assert.equal(lease.peer.spiffeId, server.spiffeId);
        lease.socket.write(`MSG ${i}\r\n`);
        await readUntil(lease.socket, new RegExp(`250 MSG ${i}\\r\\n`));
        lease.release(true);
      }
      assert.deepEqual({ ...dialer.stats(), groups: undefined }, { handshakes: 1, resumed: 0, reused: N - 1, groups: undefined });
      assert.equal(dialer.idleCount('s1', 'mailmesh-lmtp'), 1);
      dialer.closeIdle();
      assert.equal(dialer.idleCount(), 0);
      const lease = await dialer.acquire('s1', 'mailmesh-lmtp');
      assert.equal(lease.reused, false);
      assert.equal(lease.resumed, true, 'the session ticket from the first connection was used');
      assert.equal(lease.peer.serial, server.serial, 'server verified again on resumption');
      await readUntil(lease.socket, /220 backend ready\r\n/);
      lease.release(false);
      assert.equal(dialer.stats().handshakes, 2);
      assert.equal(dialer.stats().resumed, 1);
      assert.equal(accepted.at(-1)!.resumed, true, 'the ingress saw a resumed session');
      assert.equal(accepted.at(-1)!.serial, client.serial);
      assert.ok((dialer.stats().groups['X25519MLKEM768'] ?? 0) >= 1, JSON.stringify(dialer.stats().groups));
    } finally {
      dialer.close();
    }
  });

  test('a connection released as not reusable is closed, not pooled', async () => {
    const dialer = dialerFor();
    try {
      const lease = await dialer.acquire('s1', 'mailmesh-lmtp');
      lease.release(false);
      assert.equal(lease.socket.destroyed, true);
      assert.equal(dialer.idleCount(), 0);
    } finally {
      dialer.close();
    }
  });

  test('a server that is not a node of the requested shard is refused (ERR_MESH_PEER_REFUSED)', async () => {
    const dialer = dialerFor();
    try {
      await assert.rejects(dialer.acquire('s9', 'mailmesh-lmtp'), (err) => isMeshError(err, 'ERR_MESH_PEER_REFUSED') && err.reason === 'ERR_MESH_WRONG_SHARD');
    } finally {
      dialer.close();
    }
  });

  test('a server from another CA is refused with the ca/ reason', async () => {
    const other = makeCa('mail.test');
    const dialer = dialerFor({ bundle: () => other.bundle });
    try {
      await assert.rejects(dialer.acquire('s1', 'mailmesh-lmtp'), (err) => isMeshError(err, 'ERR_MESH_PEER_REFUSED') && err.reason === 'ERR_UNKNOWN_AUTHORITY');
    } finally {
      dialer.close();
    }
  });

  test('our own expired certificate fails closed with ERR_MESH_IDENTITY_EXPIRED, pooled connections included', async () => {
    const clock = new ManualClock(Date.now());
    const dialer = dialerFor({ clock });
    try {
      const lease = await dialer.acquire('s1', 'mailmesh-lmtp');
      lease.release(true);
      clock.set(client.notAfter.getTime() + 1);
      await assert.rejects(dialer.acquire('s1', 'mailmesh-lmtp'), (err) => isMeshError(err, 'ERR_MESH_IDENTITY_EXPIRED'));
      assert.equal(dialer.stats().reused, 0);
    } finally {
      dialer.close();
    }
  });

  test('no identity → ERR_MESH_NO_IDENTITY; closed port → ERR_MESH_UNREACHABLE', async () => {
    const none = dialerFor({ identity: () => undefined });
    await assert.rejects(none.acquire('s1', 'mailmesh-lmtp'), (err) => isMeshError(err, 'ERR_MESH_NO_IDENTITY'));
    none.close();
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const dialer = dialerFor({ resolveShard: () => `127.0.0.1:${port}` });
    await assert.rejects(dialer.acquire('s1', 'mailmesh-lmtp'), (err) => isMeshError(err, 'ERR_MESH_UNREACHABLE'));
    dialer.close();
  });
  test('an unreachable shard fails at once for unreachableRetryMs, then one probe at a time; healed, it is used again', async () => {
    // A black hole: accepts TCP, never answers the TLS handshake (a shard that swallows traffic).
    let holes = 0;
    const hole = net.createServer((s) => {
      holes++;
      s.on('error', () => {});
      s.resume(); // swallows the ClientHello, answers nothing
    });
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    let address = `127.0.0.1:${(hole.address() as net.AddressInfo).port}`;
    const clock = new ManualClock(Date.now());
    const dialer = dialerFor({ resolveShard: () => address, clock, connectTimeoutMs: 200, unreachableRetryMs: 5000 });
    try {
      await assert.rejects(dialer.acquire('s1', 'mailmesh-lmtp'), (err) => isMeshError(err, 'ERR_MESH_UNREACHABLE') && /timed out/.test((err as Error).message));
      assert.equal(holes, 1);
      // Within the window: refused at once, for IMAP too, without a connection attempt.
      await assert.rejects(dialer.acquire('s1', 'mailmesh-imap'), (err) => isMeshError(err, 'ERR_MESH_UNREACHABLE') && /unreachable .*next attempt in 5 s/.test((err as Error).message));
      assert.equal(holes, 1);
      // After the window one probe goes out; while it waits, others are still refused at once.
      clock.advance(5001);
      const probe = dialer.acquire('s1', 'mailmesh-lmtp');
      await assert.rejects(dialer.acquire('s1', 'mailmesh-lmtp'), (err) => isMeshError(err, 'ERR_MESH_UNREACHABLE') && /once the current attempt ends/.test((err as Error).message));
      await assert.rejects(probe, (err) => isMeshError(err, 'ERR_MESH_UNREACHABLE'));
      assert.equal(holes, 2);
      // Healed (the shard answers at its address again): the next probe connects and clears the state.
      address = `127.0.0.1:${ingress.port}`;
      clock.advance(5001);
      const lease = await dialer.acquire('s1', 'mailmesh-lmtp');
      assert.equal(lease.peer.spiffeId, server.spiffeId);
      lease.release(false);
      (await dialer.acquire('s1', 'mailmesh-lmtp')).release(false);
    } finally {
      dialer.close();
      await new Promise<void>((r) => hole.close(() => r()));
    }
  });

  test('a refused connection fails fast by itself: the next attempt connects again (a restarted shard is used at once)', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const closedPort = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    let address = `127.0.0.1:${closedPort}`;
    const dialer = dialerFor({ resolveShard: () => address, clock: new ManualClock(Date.now()) });
    try {
      await assert.rejects(dialer.acquire('s1', 'mailmesh-lmtp'), (err) => isMeshError(err, 'ERR_MESH_UNREACHABLE') && /cannot reach shard s1/.test((err as Error).message));
      address = `127.0.0.1:${ingress.port}`;
      const lease = await dialer.acquire('s1', 'mailmesh-lmtp');
      assert.equal(lease.peer.spiffeId, server.spiffeId);
      lease.release(false);
    } finally {
      dialer.close();
    }
  });

  test('a pooled connection to a server revoked since it was verified is not handed out again', async () => {
    const serials = new Set<string>();
    const dialer = dialerFor({ revoked: () => ({ serials, ids: new Set() }) });
    try {
      const lease = await dialer.acquire('s1', 'mailmesh-lmtp');
      await readUntil(lease.socket, /220 backend ready\r\n/);
      lease.release(true);
      assert.equal(dialer.idleCount('s1', 'mailmesh-lmtp'), 1);
      serials.add(server.serial); // a new snapshot revokes the server's certificate
      await assert.rejects(dialer.acquire('s1', 'mailmesh-lmtp'), (err) => isMeshError(err, 'ERR_MESH_PEER_REFUSED'));
      assert.equal(dialer.stats().reused, 0);
    } finally {
      dialer.close();
    }
  });
});
