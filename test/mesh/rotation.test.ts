// Rotation under traffic: server and client rotate several times (IdentityRotator driven by a
// ManualClock, certificates from a real test CA through a fake control plane) while a session
// stays open and keeps carrying traffic; every new handshake uses the newest certificates.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ManualClock } from '../../common/clock.ts';
import { IdentityRotator } from '../../sidecar/identity/rotator.ts';
import { MeshDialer } from '../../sidecar/mesh/dialer.ts';
import { isMeshError } from '../../sidecar/mesh/errors.ts';
import { startIngress, type AcceptedSession } from '../../sidecar/mesh/ingress.ts';
import { readUntil, startBackend } from './backend.ts';
import { ingressConfig } from './ingress-config.ts';
import { FakeSource, makeCa } from './pki.ts';

const H = 3_600_000;

test('rotation under traffic: no session fails, new handshakes present the new certificates; fail closed and recovery', async () => {
  const clock = new ManualClock(Date.now());
  const ca = makeCa('mail.test', clock.now());
  const dir = await mkdtemp(join(tmpdir(), 'mm-rotation-'));
  const serverSource = new FakeSource(ca, 'spiffe://mail.test/shard/s1/node/a', () => clock.now(), H);
  const clientSource = new FakeSource(ca, 'spiffe://mail.test/shard/s2/node/b', () => clock.now(), H);
  const serverRot = new IdentityRotator({ source: serverSource, clock, stateDir: join(dir, 'server'), joinToken: 'ts', random: () => 0.5 });
  const clientRot = new IdentityRotator({ source: clientSource, clock, stateDir: join(dir, 'client'), joinToken: 'tc', random: () => 0.3 });
  const backend = await startBackend();
  const accepted: AcceptedSession[] = [];
  const ingress = await startIngress(ingressConfig(() => serverRot.current(), ca, backend.address, {
    authorize: (id) => id.startsWith('spiffe://mail.test/shard/s2/'),
    clock,
    onAccept: (s) => accepted.push(s),
  }));
  const dialer = new MeshDialer({
    identity: () => clientRot.current(),
    bundle: () => ca.bundle,
    trustDomain: () => 'mail.test',
    resolveShard: () => `127.0.0.1:${ingress.port}`,
    clock,
  });
  serverRot.onRotate(() => ingress.updateIdentity());
  clientRot.onRotate(() => dialer.updateIdentity());
  try {
    await serverRot.tick();
    await clientRot.tick();
    const longLived = await dialer.acquire('s1', 'mailmesh-lmtp');
    await readUntil(longLived.socket, /220 backend ready\r\n/);
    let n = 0;
    const send = async (socket: typeof longLived.socket) => {
      const line = `DATA ${n++}`;
      socket.write(`${line}\r\n`);
      await readUntil(socket, new RegExp(`250 ${line}\\r\\n`));
    };
    await send(longLived.socket);

    const serverSerials = new Set<string>([serverRot.current()!.serial]);
    const clientSerials = new Set<string>([clientRot.current()!.serial]);
    for (let round = 0; round < 4; round++) {
      clock.set(Math.max(serverRot.nextDueAt(), clientRot.nextDueAt()));
      await serverRot.tick();
      await clientRot.tick();
      const sNow = serverRot.current()!;
      const cNow = clientRot.current()!;
      assert.ok(!serverSerials.has(sNow.serial) && !clientSerials.has(cNow.serial), `round ${round}: both rotated`);
      serverSerials.add(sNow.serial);
      clientSerials.add(cNow.serial);
      // The long-lived session keeps working across the rotation.
      await send(longLived.socket);
      // A new handshake uses the new certificates on both sides.
      const fresh = await dialer.acquire('s1', 'mailmesh-lmtp');
      assert.equal(fresh.reused, false);
      assert.equal(fresh.peer.serial, sNow.serial, 'client saw the server\'s new certificate');
      await readUntil(fresh.socket, /220 backend ready\r\n/);
      assert.equal(accepted.at(-1)!.serial, cNow.serial, 'server saw the client\'s new certificate');
      await send(fresh.socket);
      fresh.release(false);
    }
    assert.equal(serverRot.stats.rotations, 5);
    assert.equal(clientRot.stats.rotations, 5);
    assert.equal(ingress.stats.rejected['ERR_CERT_EXPIRED'] ?? 0, 0);

    // Control plane down: both keep their certificates until expiry, then fail closed.
    serverSource.down = true;
    clientSource.down = true;
    const lastClient = clientRot.current()!;
    clock.set(lastClient.notAfter.getTime() + 1);
    await clientRot.tick();
    await serverRot.tick();
    assert.equal(clientRot.state(), 'expired');
    await assert.rejects(dialer.acquire('s1', 'mailmesh-lmtp'), (err) => isMeshError(err, 'ERR_MESH_IDENTITY_EXPIRED'));

    // Control plane back: the next due tick renews and the mesh works again.
    serverSource.down = false;
    clientSource.down = false;
    clock.set(Math.max(clock.now(), serverRot.nextDueAt(), clientRot.nextDueAt()));
    await serverRot.tick();
    await clientRot.tick();
    assert.equal(clientRot.state(), 'valid');
    assert.equal(serverRot.state(), 'valid');
    const again = await dialer.acquire('s1', 'mailmesh-lmtp');
    await readUntil(again.socket, /220 backend ready\r\n/);
    await send(again.socket);
    again.release(false);
    assert.equal(accepted.at(-1)!.serial, clientRot.current()!.serial);
    longLived.release(false);
  } finally {
    dialer.close();
    await ingress.close();
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  }
});
