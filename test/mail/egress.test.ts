// The egress is Postfix's LMTP next hop: one reply per accepted RCPT after the final dot
// (RFC 2033 §4.2), even when Postfix sends the same recipient twice in one transaction (two
// aliases expanding to one address keep distinct original recipients, so Postfix keeps both).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startEgress } from '../../sidecar/mail/egress.ts';
import { MailClient } from '../../sidecar/lmtp/client.ts';
import { lmtpNexthop } from '../../sidecar/postfix/lookups.ts';
import { Deliverer, type Body, type Envelope, type Placement } from '../../sidecar/mail/deliver.ts';

const placement: Placement = () => ({ kind: 'shard', shardId: 'osaka-1' });

/** Speak LMTP by hand and collect every reply line after the final dot for `expect` ms. */
async function lmtpSession(port: number, rcpts: string[], body: string): Promise<string[]> {
  const socket = net.connect(port, '127.0.0.1');
  let buf = '';
  socket.on('data', (c) => (buf += c.toString('latin1')));
  const waitFor = async (n: number) => {
    for (let i = 0; i < 200 && buf.split('\r\n').filter(Boolean).length < n; i++) await new Promise((r) => setTimeout(r, 10));
  };
  await waitFor(1);
  socket.write('LHLO postfix.test\r\n');
  await new Promise((r) => setTimeout(r, 100));
  const before = buf.length;
  socket.write(`MAIL FROM:<a@sender.test>\r\n${rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join('')}`);
  await new Promise((r) => setTimeout(r, 100));
  socket.write('DATA\r\n');
  await new Promise((r) => setTimeout(r, 100));
  const afterData = buf.length;
  socket.write(`${body}\r\n.\r\n`);
  await new Promise((r) => setTimeout(r, 500));
  const replies = buf.slice(afterData).split('\r\n').filter(Boolean);
  assert.ok(buf.slice(before, afterData).includes('354'));
  socket.destroy();
  return replies;
}

test('egress: a recipient sent twice gets two LMTP replies, and is delivered once', async () => {
  const sent: Envelope[] = [];
  const sender = {
    send: async (_shard: string, env: Envelope) => {
      sent.push(env);
      return env.recipients.map(() => ({ code: 250, enhanced: '2.0.0', message: 'stored' }));
    },
  };
  const egress = await startEgress({
    host: '127.0.0.1', port: 0, hostname: 'egress.test', maxSize: 1 << 16, placement, log: pino({ level: 'silent' }),
    deliverer: new Deliverer({ placement, localShard: 'tokyo-1', local: sender, remote: sender }),
  });
  try {
    const replies = await lmtpSession(egress.port, ['bob@mail.test', 'carol@mail.test', 'Bob@mail.test'], 'Subject: x\r\n\r\nhi');
    assert.deepEqual(replies.map((l) => l.slice(0, 3)), ['250', '250', '250']);
    assert.equal(sent.flatMap((e) => e.recipients).filter((r) => r.toLowerCase() === 'bob@mail.test').length, 1);
  } finally {
    await egress.close();
  }
});

test('egress: an oversized message gets one 552 per accepted RCPT, duplicates included; the owner never gets it', async () => {
  // The owner's transaction opens at DATA, while Postfix sends the body; an oversized body is
  // withdrawn (undefined), so nothing is stored there.
  const stored: Buffer[] = [];
  let opened = 0;
  const sender = {
    send: async (_s: string, env: Envelope, body: Body) => {
      opened++;
      const got = await body;
      if (!got) return env.recipients.map(() => ({ code: 451, enhanced: '4.3.0', message: 'withdrawn' }));
      stored.push(got);
      return env.recipients.map(() => ({ code: 250, enhanced: '2.0.0', message: 'stored' }));
    },
  };
  const egress = await startEgress({
    host: '127.0.0.1', port: 0, hostname: 'egress.test', maxSize: 100, placement, log: pino({ level: 'silent' }),
    deliverer: new Deliverer({ placement, localShard: 'tokyo-1', local: sender, remote: sender }),
  });
  try {
    const replies = await lmtpSession(egress.port, ['bob@mail.test', 'bob@mail.test'], `Subject: x\r\n\r\n${'a'.repeat(300)}`);
    assert.deepEqual(replies.map((l) => l.slice(0, 3)), ['552', '552']);
    assert.equal(opened, 1, 'the owner\'s transaction opened at DATA');
    assert.equal(stored.length, 0);
  } finally {
    await egress.close();
  }
});

test('egress on a Unix socket: mode 0666, per-recipient replies, a dead socket file replaced, a live one kept, removed on close', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mm-egress-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'egress.sock');
  // What a sidecar killed with SIGKILL leaves behind: a socket file nobody answers on.
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`], { timeout: 10_000 });
  assert.ok(existsSync(path), 'a dead socket file is in the way');

  const stored: Envelope[] = [];
  const sender = {
    send: async (_s: string, env: Envelope) => {
      stored.push(env);
      return env.recipients.map((r) => (r.startsWith('bob') ? { code: 250, enhanced: '2.0.0', message: 'stored' } : { code: 451, enhanced: '4.4.1', message: 'owner down' }));
    },
  };
  const cfg = { path, hostname: 'egress.test', maxSize: 1 << 16, placement, log: pino({ level: 'silent' }), deliverer: new Deliverer({ placement, localShard: 'tokyo-1', local: sender, remote: sender }) };
  const egress = await startEgress(cfg);
  try {
    assert.equal(egress.address, `unix:${path}`);
    assert.equal((await stat(path)).mode & 0o777, 0o666);
    const deliver = async (rcpts: string[]) => {
      const socket = net.connect(path);
      await once(socket, 'connect');
      try {
        const client = await MailClient.open(socket, { lmtp: true, heloName: 'postfix.test', timeoutMs: 5_000 });
        const res = await client.send({ from: 'a@sender.test', recipients: rcpts, body: Buffer.from('Subject: x\r\n\r\nhi\r\n') });
        await client.quit();
        return res.recipients.map((r) => r.code);
      } finally {
        socket.destroy();
      }
    };
    assert.deepEqual(await deliver(['bob@mail.test', 'carol@mail.test']), [250, 451]);
    assert.deepEqual(stored.map((e) => e.recipients), [['bob@mail.test', 'carol@mail.test']]);
    // A second egress on the same path while the first answers: refused, and the first one still
    // serves on its socket (the second neither unlinked nor replaced it).
    await assert.rejects(startEgress(cfg), { code: 'EADDRINUSE' });
    assert.deepEqual(await deliver(['bob@mail.test']), [250]);
    assert.equal(stored.length, 2);
  } finally {
    await egress.close();
  }
  assert.equal(existsSync(path), false, 'the socket file is removed on close');
});

test('egress on IPv6 loopback: its address is bracketed, as a Postfix next hop and lmtpNexthop take it', async (t) => {
  const sender = { send: async (_s: string, env: Envelope) => env.recipients.map(() => ({ code: 250, enhanced: '2.0.0', message: 'stored' })) };
  let egress;
  try {
    egress = await startEgress({ host: '::1', port: 0, hostname: 'egress.test', maxSize: 1 << 16, placement, log: pino({ level: 'silent' }), deliverer: new Deliverer({ placement, localShard: 'tokyo-1', local: sender, remote: sender }) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL' && process.env.CI !== 'true') return t.skip('no IPv6 loopback on this machine');
    throw err;
  }
  try {
    assert.equal(egress.address, `[::1]:${egress.port}`);
    assert.equal(lmtpNexthop(egress.address), `lmtp:inet:[::1]:${egress.port}`);
  } finally {
    await egress.close();
  }
});
