// Replies to pipelined commands (RFC 2920) leave the front door in one write; STARTTLS is never
// held back (its 220 must be on the wire before the handshake); a pipelined MAIL/RCPT/DATA group
// through the real front door is answered in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { coalesceReplies } from '../../sidecar/mail/coalesce.ts';
import { startFrontDoor } from '../../sidecar/mail/frontdoor.ts';
import type { Placement } from '../../sidecar/mail/deliver.ts';

/** A server whose handler answers every input chunk with `replies` (synchronously), counting the
 * socket-level writes node makes (`_write` for one buffer, `_writev` for a corked batch). */
async function countingServer(replies: (input: string) => string[]) {
  const counts = { write: 0, writev: 0 };
  const server = net.createServer((socket) => {
    coalesceReplies(socket);
    const s = socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    const write = s._write.bind(socket);
    const writev = s._writev.bind(socket);
    s._write = (...a) => { counts.write++; write(...a); };
    s._writev = (...a) => { counts.writev++; writev(...a); };
    socket.on('data', (d: Buffer) => { for (const r of replies(d.toString('latin1'))) socket.write(r); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { counts, port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function exchange(port: number, send: string, expect: RegExp): Promise<string> {
  const c = net.connect(port, '127.0.0.1');
  await once(c, 'connect');
  c.write(send);
  let got = '';
  for await (const d of c) {
    got += (d as Buffer).toString('latin1');
    if (expect.test(got)) break;
  }
  c.destroy();
  return got;
}

test('replies written while one input chunk is handled go out in one write', async () => {
  const srv = await countingServer(() => ['250 a\r\n', '250 b\r\n', '354 go\r\n']);
  try {
    assert.equal(await exchange(srv.port, 'MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n', /354 go/), '250 a\r\n250 b\r\n354 go\r\n');
    assert.deepEqual(srv.counts, { write: 0, writev: 1 });
  } finally {
    await srv.close();
  }
});

test('a chunk with STARTTLS (any case) is not corked: each reply is written at once', async () => {
  const srv = await countingServer(() => ['250 ok\r\n', '220 ready for TLS\r\n']);
  try {
    await exchange(srv.port, 'NOOP\r\nStartTLS\r\n', /220 ready/);
    assert.deepEqual(srv.counts, { write: 2, writev: 0 });
  } finally {
    await srv.close();
  }
});

test('a large chunk (message data) is not corked', async () => {
  const srv = await countingServer((input) => (input.length > 4000 ? ['250 x\r\n', '250 y\r\n'] : []));
  try {
    await exchange(srv.port, 'x'.repeat(8000), /250 y/);
    assert.equal(srv.counts.writev, 0);
  } finally {
    await srv.close();
  }
});

test('front door: a pipelined MAIL/RCPT/DATA group is answered 250, 250, 354 in order, then the message 250', async () => {
  const placement: Placement = () => ({ kind: 'shard', shardId: 's1' });
  const got: string[] = [];
  const door = await startFrontDoor({
    host: '127.0.0.1', port: 0, hostname: 'mx.mail.test', maxSize: 1 << 20, maxRecipients: 10, maxClients: 10, socketTimeoutMs: 10_000,
    placement, log: pino({ level: 'silent' }),
    handoff: async (env, message) => {
      got.push(`${env.from} ${env.recipients.join(',')} ${(await message)!.toString()}`);
      return { code: 250, enhanced: '2.0.0', message: 'Ok: queued' };
    },
  });
  try {
    const c = net.connect(door.port, '127.0.0.1');
    await once(c, 'connect');
    c.setEncoding('latin1');
    let text = '';
    const until = async (re: RegExp) => {
      while (!re.test(text)) text += (await once(c, 'data'))[0] as string;
    };
    await until(/^220 /m);
    c.write('EHLO client.test\r\n');
    await until(/^250 /m);
    text = '';
    c.write('MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@mail.test>\r\nDATA\r\n');
    await until(/^354 /m);
    assert.match(text, /^250 [^\r]*\r\n250 [^\r]*\r\n354 [^\r]*\r\n$/);
    text = '';
    c.write('Subject: pipelined\r\n\r\nbody\r\n.\r\n');
    await until(/^250 /m);
    assert.match(text, /^250 2\.0\.0 Ok: queued/);
    assert.deepEqual(got, ['a@sender.test b@mail.test Subject: pipelined\r\n\r\nbody\r\n']);
    c.destroy();
  } finally {
    await door.close();
  }
});
