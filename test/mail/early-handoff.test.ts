// The front door opens Postfix's transaction when its sender says DATA (MAIL, RCPT and DATA go to
// Postfix while the body arrives) on a pooled session that is already open, so only the body and
// Postfix's final reply are left after the sender's final dot. A message that must not be kept
// (over SIZE, refused, too slow) is withdrawn: Postfix sees its session dropped mid-DATA and
// queues nothing. Without an idle session nothing reaches Postfix before the body is complete.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { SMTPServer } from 'smtp-server';
import { startFrontDoor } from '../../sidecar/mail/frontdoor.ts';
import { postfixHandoff } from '../../sidecar/mail/handoff.ts';
import type { Placement } from '../../sidecar/mail/deliver.ts';

const placement: Placement = () => ({ kind: 'shard', shardId: 'tokyo-1' });

/** A Postfix stand-in: records when DATA opened, what it queued, and sessions that ended mid-DATA. */
async function fakePostfix() {
  const state = { connections: 0, dataOpened: 0, queued: [] as string[], cutMidData: 0 };
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], logger: false,
    onData(stream, _session, cb) {
      state.dataOpened++;
      const chunks: Buffer[] = [];
      let ended = false;
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        ended = true;
        state.queued.push(Buffer.concat(chunks).toString());
        cb(null, '2.0.0 Ok: queued as Q' + state.queued.length);
      });
      stream.on('close', () => {
        if (!ended) state.cutMidData++;
      });
    },
  });
  server.on('error', () => {});
  server.server.on('connection', () => state.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { state, port: (server.server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A raw SMTP client: each step writes a line group and waits for a reply line matching `until`. */
async function rawClient(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.setEncoding('latin1');
  let text = '';
  socket.on('data', (d: string) => (text += d));
  const waitFor = async (re: RegExp) => {
    for (let i = 0; i < 500 && !re.test(text); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(text, re);
    const got = text;
    text = '';
    return got;
  };
  await waitFor(/^220 /m);
  socket.write('EHLO client.test\r\n');
  await waitFor(/^250 /m);
  return { socket, waitFor };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond());
}

type Fake = Awaited<ReturnType<typeof fakePostfix>>;

type Client = Awaited<ReturnType<typeof rawClient>>;

/** A front door handing off to a fake Postfix, and a client connected to it (after one complete
 * message when `warm`: the hand-off pool then holds an idle session); torn down after `fn`. */
async function withDoor(opts: { maxSize?: number; earlyHandoffMs?: number; warm?: boolean }, fn: (c: Client, pf: Fake) => Promise<void>): Promise<void> {
  const pf = await fakePostfix();
  const handoff = postfixHandoff(`127.0.0.1:${pf.port}`, 'mx.test');
  const door = await startFrontDoor({
    host: '127.0.0.1', port: 0, hostname: 'mx.mail.test', maxSize: opts.maxSize ?? 1 << 16, maxRecipients: 10, maxClients: 10, socketTimeoutMs: 10_000,
    placement, log: pino({ level: 'silent' }), handoff, earlyHandoffMs: opts.earlyHandoffMs,
  });
  const c = await rawClient(door.port);
  try {
    if (opts.warm) await warm(c, pf);
    await fn(c, pf);
  } finally {
    c.socket.destroy();
    await door.close();
    handoff.close();
    await pf.close();
  }
}

/** MAIL, RCPT and DATA in one group; resolves on the front door's 354. */
async function openData(c: Client): Promise<void> {
  c.socket.write('MAIL FROM:<a@sender.test>\r\nRCPT TO:<alice@mail.test>\r\nDATA\r\n');
  await c.waitFor(/^354 /m);
}

/** One complete message, so the hand-off pool holds an idle session to Postfix. */
async function warm(c: Client, pf: Fake): Promise<void> {
  await openData(c);
  c.socket.write('Subject: warm\r\n\r\nwarm\r\n.\r\n');
  await c.waitFor(/^250 /m);
  pf.state.queued.length = 0;
  pf.state.dataOpened = 0;
}

test('front door → Postfix: with no idle session, a sender that says DATA and sends nothing opens no Postfix session', async () => {
  await withDoor({ earlyHandoffMs: 100 }, async (c, pf) => {
    await openData(c);
    // Longer than earlyHandoffMs: had an early transaction opened, it would have been withdrawn by now.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(pf.state.connections, 0, 'no session before the body is complete');
    c.socket.write('Subject: late\r\n\r\nbody\r\n.\r\n');
    await c.waitFor(/^250 .*queued as Q1/m);
    assert.deepEqual([pf.state.connections, pf.state.cutMidData, pf.state.queued.length], [1, 0, 1]);
  });
});

test('front door → Postfix: MAIL, RCPT and DATA reach Postfix before the body; the sender hears Postfix\'s 250', async () => {
  await withDoor({ warm: true }, async (c, pf) => {
    await openData(c);
    await until(() => pf.state.dataOpened === 1);
    assert.equal(pf.state.queued.length, 0, 'nothing queued before the body');
    c.socket.write('Subject: early\r\n\r\nbody\r\n.\r\n');
    assert.match(await c.waitFor(/^250 .*queued as Q1/m), /queued as Q1/);
    assert.deepEqual(pf.state.queued, ['Subject: early\r\n\r\nbody\r\n']);
  });
});

test('front door → Postfix: an oversized message is withdrawn: 552 5.3.4 to the sender, Postfix\'s session cut mid-DATA, nothing queued', async () => {
  await withDoor({ maxSize: 200, warm: true }, async (c, pf) => {
    await openData(c);
    await until(() => pf.state.dataOpened === 1);
    c.socket.write(`Subject: big\r\n\r\n${'x'.repeat(500)}\r\n.\r\n`);
    assert.match(await c.waitFor(/^552 /m), /^552 5\.3\.4 /m);
    await until(() => pf.state.cutMidData === 1);
    assert.equal(pf.state.queued.length, 0);
    // The session goes on; the next message is queued over a new connection to Postfix.
    await openData(c);
    c.socket.write('Subject: small\r\n\r\nok\r\n.\r\n');
    await c.waitFor(/^250 .*queued as Q1/m);
    assert.equal(pf.state.queued.length, 1);
  });
});

test('front door → Postfix: a body slower than earlyHandoffMs withdraws the open transaction; the complete message is queued once', async () => {
  await withDoor({ earlyHandoffMs: 100, warm: true }, async (c, pf) => {
    await openData(c);
    c.socket.write('Subject: slow\r\n\r\nfirst half\r\n');
    // Postfix must not wait on a slow sender past its own timeout: the session is cut mid-DATA.
    await until(() => pf.state.cutMidData === 1);
    assert.equal(pf.state.queued.length, 0);
    c.socket.write('second half\r\n.\r\n');
    await c.waitFor(/^250 .*queued as Q1/m);
    assert.deepEqual(pf.state.queued, ['Subject: slow\r\n\r\nfirst half\r\nsecond half\r\n'], 'one complete copy');
  });
});
