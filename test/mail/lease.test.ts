// The local pool reaches Dovecot's LMTP socket as well as a TCP port, and keeps as many idle
// connections as Postfix delivers in parallel (every closed one would be reopened on the next burst).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TcpPool } from '../../sidecar/mail/lease.ts';
import { loadSidecarConfig } from '../../sidecar/config.ts';

test('TcpPool over unix:/path: connections are made once and reused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mm-pool-'));
  const serverSockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    serverSockets.add(s);
    s.on('data', (d) => s.write(d));
  });
  await new Promise<void>((r) => server.listen(join(dir, 'lmtp'), r));
  const pool = new TcpPool(`unix:${join(dir, 'lmtp')}`);
  const ping = (socket: NodeJS.ReadWriteStream, text: string) =>
    new Promise<string>((resolve) => {
      socket.once('data', (d: Buffer) => resolve(d.toString()));
      socket.write(text);
    });
  try {
    const first = await Promise.all(Array.from({ length: 20 }, () => pool.acquire()));
    // An echo proves the server holds that connection, so the count below is complete.
    for (const [i, l] of first.entries()) assert.equal(await ping(l.socket, `a${i}`), `a${i}`);
    assert.equal(serverSockets.size, 20);
    for (const l of first) l.release(true);
    const again = await Promise.all(Array.from({ length: 20 }, () => pool.acquire()));
    for (const [i, l] of again.entries()) assert.equal(await ping(l.socket, `b${i}`), `b${i}`);
    assert.equal(serverSockets.size, 20, 'the second burst of 20 reuses the first 20 connections');
    for (const l of again) l.release(false);
  } finally {
    pool.close();
    for (const s of serverSockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  }
});

test('sidecar config: backends.lmtp, backends.postfix and listen.egress may be unix:/absolute/path, not a relative one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mm-cfg-'));
  const write = async (lmtp: string, egress = '127.0.0.1:10030', postfix = '127.0.0.1:10025') => {
    const file = join(dir, 'sidecar.yaml');
    await writeFile(file, [
      'shard: tokyo-1', 'node: tokyo-1a', 'controlPlane: 127.0.0.1:7443', `caBundle: ${join(dir, 'bundle.pem')}`, `stateDir: ${dir}`,
      'mode: postfix', 'listen:', '  mesh: 127.0.0.1:8443', `  egress: ${egress}`, 'backends:', `  postfix: ${postfix}`, `  lmtp: ${lmtp}`, '',
    ].join('\n'));
    return file;
  };
  try {
    assert.equal(loadSidecarConfig(await write('127.0.0.1:24', 'unix:/var/spool/postfix/mailmesh/egress')).listen.egress, 'unix:/var/spool/postfix/mailmesh/egress');
    assert.equal(loadSidecarConfig(await write('127.0.0.1:24')).listen.egress, '127.0.0.1:10030');
    const reinject = await write('127.0.0.1:24', '127.0.0.1:10030', 'unix:/var/spool/postfix/private/reinject');
    assert.equal(loadSidecarConfig(reinject).backends.postfix, 'unix:/var/spool/postfix/private/reinject');
    for (const bad of ['unix:egress.sock', 'unix:10030']) {
      const file = await write('127.0.0.1:24', bad);
      assert.throws(() => loadSidecarConfig(file), { code: 'ERR_SIDECAR_CONFIG' }, bad);
    }
    assert.equal(loadSidecarConfig(await write('unix:/run/dovecot/lmtp')).backends.lmtp, 'unix:/run/dovecot/lmtp');
    assert.equal(loadSidecarConfig(await write('127.0.0.1:24')).backends.lmtp, '127.0.0.1:24');
    assert.throws(() => loadSidecarConfig(join(dir, 'x')), { code: 'ERR_SIDECAR_CONFIG' });
    const bad = await write('unix:run/dovecot/lmtp');
    assert.throws(() => loadSidecarConfig(bad), { code: 'ERR_SIDECAR_CONFIG' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
