import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { MailClient } from '../../sidecar/lmtp/client.ts';
import { MailClientError } from '../../sidecar/lmtp/errors.ts';
import { startMaildirLmtp } from '../../sidecar/maildir/server.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Received {
  from: string;
  params: Record<string, unknown>;
  to: string[];
  data: Buffer;
}

/** An smtp-server test double; `decide` gives the per-recipient LMTP answers after DATA. */
async function startDouble(opts: Partial<SMTPServerOptions> & { decide?: (rcpts: string[]) => (string | Error)[] }): Promise<{ port: number; received: Received[] }> {
  const received: Received[] = [];
  const sockets = new Set<Socket>();
  const { decide, ...rest } = opts;
  const server = new SMTPServer({
    logger: false,
    disabledCommands: ['AUTH', 'STARTTLS'],
    authOptional: true,
    hideENHANCEDSTATUSCODES: false,
    onRcptTo(addr, _s, cb) {
      if (addr.address.startsWith('unknown')) return cb(Object.assign(new Error('No such user'), { responseCode: 550 }));
      cb();
    },
    onData(stream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const to = session.envelope.rcptTo.map((r) => r.address);
        const mailFrom = session.envelope.mailFrom;
        received.push({ from: mailFrom ? mailFrom.address : '', params: (mailFrom ? mailFrom.args : {}) || {}, to, data: Buffer.concat(chunks) });
        cb(null, decide ? decide(to) : undefined);
      });
    },
    ...rest,
  });
  server.server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  }));
  return { port: (server.server.address() as AddressInfo).port, received };
}

/** A scripted raw server: `onLine` answers each command line (or stays silent). */
async function startRaw(greeting: string | null, onLine: (line: string, socket: Socket) => void, chunks: string[] = []): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    if (greeting !== null) socket.write(greeting);
    let buf = '';
    socket.on('data', (d: Buffer) => {
      chunks.push(d.toString('latin1'));
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line === 'QUIT') socket.end('221 bye\r\n');
        else onLine(line, socket);
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return (server.address() as AddressInfo).port;
}

async function open(port: number, lmtp = true, timeoutMs = 5000): Promise<MailClient> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return MailClient.open(socket, { lmtp, heloName: 'client.test', timeoutMs });
}

describe('MailClient over LMTP', () => {
  test('reports one reply per recipient: accepted, refused at RCPT (550), failed after DATA (451)', async () => {
    const srv = await startDouble({
      lmtp: true,
      decide: (rcpts) => rcpts.map((r) => (r.startsWith('tempfail') ? Object.assign(new Error('Disk trouble'), { responseCode: 451 }) : 'stored')),
    });
    const client = await open(srv.port);
    assert.equal(client.capabilities.pipelining, true);
    assert.equal(client.capabilities.enhancedStatusCodes, true);
    const res = await client.send({ from: 'a@x.test', recipients: ['ok@y.test', 'unknown@y.test', 'tempfail@y.test'], body: Buffer.from('Subject: t\r\n\r\nhello\r\n') });
    assert.deepEqual(res.recipients.map((r) => [r.address, r.code, r.enhanced, r.accepted]), [
      ['ok@y.test', 250, '2.6.0', true],
      ['unknown@y.test', 550, '5.1.1', false],
      ['tempfail@y.test', 451, '4.3.0', false],
    ]);
    assert.equal(res.recipients[2].message, 'Disk trouble');
    assert.deepEqual(srv.received[0].to, ['ok@y.test', 'tempfail@y.test']);
    assert.equal(client.usable, true);
    await client.quit();
    assert.equal(client.usable, false);
  });

  test('a repeated recipient is sent once and reported for each occurrence', async () => {
    const srv = await startDouble({ lmtp: true, decide: (rcpts) => rcpts.map((r) => `stored for ${r}`) });
    const client = await open(srv.port);
    const res = await client.send({ from: 'a@x.test', recipients: ['ok@y.test', 'second@y.test', 'OK@y.test'], body: Buffer.from('x\r\n') });
    const after = await client.send({ from: 'a@x.test', recipients: ['third@y.test'], body: Buffer.from('y\r\n') });
    await client.quit();
    assert.deepEqual(res.recipients.map((r) => [r.address, r.code, r.message]), [
      ['ok@y.test', 250, 'stored for ok@y.test'],
      ['second@y.test', 250, 'stored for second@y.test'],
      ['OK@y.test', 250, 'stored for ok@y.test'],
    ]);
    assert.deepEqual(srv.received[0].to, ['ok@y.test', 'second@y.test']);
    assert.equal(after.recipients[0].message, 'stored for third@y.test');
  });

  test('sends no DATA when no recipient is accepted, and the connection stays usable', async () => {
    const srv = await startDouble({ lmtp: true });
    const client = await open(srv.port);
    const res = await client.send({ from: 'a@x.test', recipients: ['unknown1@y.test', 'unknown2@y.test'], body: Buffer.from('x\r\n') });
    assert.deepEqual(res.recipients.map((r) => r.code), [550, 550]);
    assert.equal(srv.received.length, 0);
    const ok = await client.send({ from: 'a@x.test', recipients: ['ok@y.test'], body: Buffer.from('x\r\n') });
    assert.equal(ok.recipients[0].code, 250);
    assert.equal(srv.received.length, 1);
    await client.quit();
  });

  test('dot-stuffs lines starting with "." and normalises bare LF: the server receives the message exactly', async () => {
    const srv = await startDouble({ lmtp: true });
    const client = await open(srv.port);
    const body = 'Subject: dots\n\n.\n..\n.leading\nmid.dle\n. \nlast';
    await client.send({ from: 'a@x.test', recipients: ['ok@y.test'], body: Buffer.from(body) });
    // A streamed body with a dot right after a chunk boundary.
    await client.send({ from: 'a@x.test', recipients: ['ok@y.test'], body: Readable.from([Buffer.from('Subject: s\r\n\r\nline\r\n'), Buffer.from('.dot\r\n'), Buffer.from('.\r\n')]) });
    await client.quit();
    assert.equal(srv.received[0].data.toString('latin1'), 'Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmid.dle\r\n. \r\nlast\r\n');
    assert.equal(srv.received[1].data.toString('latin1'), 'Subject: s\r\n\r\nline\r\n.dot\r\n.\r\n');
  });

  test('declares BODY=8BITMIME only for 8-bit content on servers that offer it', async () => {
    const srv = await startDouble({ lmtp: true });
    const client = await open(srv.port);
    assert.equal(client.capabilities.eightBitMime, true);
    const eight = Buffer.from('Subject: =?UTF-8?B?5pel5pys?=\r\n\r\n日本語のメール\r\n', 'utf8');
    await client.send({ from: 'a@x.test', recipients: ['ok@y.test'], body: eight });
    await client.send({ from: 'a@x.test', recipients: ['ok@y.test'], body: Buffer.from('Subject: ascii\r\n\r\nplain\r\n') });
    await client.quit();
    assert.equal(srv.received[0].params.BODY, '8BITMIME');
    assert.deepEqual(srv.received[0].data, eight);
    assert.equal(srv.received[1].params.BODY, undefined);

    const old = await startDouble({ lmtp: true, hide8BITMIME: true, hideSMTPUTF8: true });
    const c2 = await open(old.port);
    assert.equal(c2.capabilities.eightBitMime, false);
    await c2.send({ from: 'a@x.test', recipients: ['ok@y.test'], body: eight });
    // RFC 6531 §3.2: a UTF-8 address must not be sent to a server without SMTPUTF8.
    const utf8 = await c2.send({ from: 'a@x.test', recipients: ['用户@y.test'], body: eight });
    await c2.quit();
    assert.equal(old.received[0].params.BODY, undefined);
    assert.deepEqual(utf8.recipients.map((r) => [r.code, r.enhanced]), [[553, '5.6.7']]);
    assert.equal(old.received.length, 1);
  });

  test('sends SMTPUTF8 for a UTF-8 envelope when offered', async () => {
    const srv = await startDouble({ lmtp: true });
    const client = await open(srv.port);
    const res = await client.send({ from: 'a@x.test', recipients: ['用户@y.test'], body: Buffer.from('Subject: u\r\n\r\nx\r\n') });
    await client.quit();
    assert.equal(res.recipients[0].code, 250);
    assert.equal(srv.received[0].params.SMTPUTF8, true);
    assert.deepEqual(srv.received[0].to, ['用户@y.test']);
  });

  test('carries 50 transactions on one connection into the embedded Maildir backend, byte-exact', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mailmesh-lmtp-'));
    const lmtp = await startMaildirLmtp({ host: '127.0.0.1', port: 0, root });
    cleanups.push(async () => {
      await lmtp.close();
      await rm(root, { recursive: true, force: true });
    });
    const client = await open(lmtp.port);
    const sent: string[] = [];
    for (let i = 0; i < 50; i++) {
      const body = `Subject: n${i}\r\n\r\n.body ${i}\r\n`;
      sent.push(body);
      const res = await client.send({ from: 'a@x.test', recipients: ['pool@mail.test'], body: Buffer.from(body) });
      assert.equal(res.recipients[0].code, 250, `transaction ${i}`);
      // An explicit RSET between transactions is harmless.
      if (i % 10 === 0) await client.reset();
    }
    assert.equal(client.usable, true);
    await client.quit();
    const dir = join(lmtp.pathOf('pool@mail.test'), 'new');
    const stored = await Promise.all((await readdir(dir)).map((n) => readFile(join(dir, n), 'latin1')));
    assert.deepEqual(stored.sort(), sent.sort());
  });
});

describe('MailClient over SMTP', () => {
  test('one DATA reply covers every accepted recipient; refused ones keep their RCPT code', async () => {
    const srv = await startDouble({});
    const client = await open(srv.port, false);
    const res = await client.send({ from: '', recipients: ['a@y.test', 'unknown@y.test', 'b@y.test'], body: Buffer.from('Subject: s\r\n\r\nx\r\n') });
    await client.quit();
    assert.deepEqual(res.recipients.map((r) => [r.code, r.accepted]), [[250, true], [550, false], [250, true]]);
    assert.equal(srv.received[0].from, '');
    assert.deepEqual(srv.received[0].to, ['a@y.test', 'b@y.test']);
  });

  test('a DATA failure applies to all accepted recipients', async () => {
    const port = await startRaw('220 raw ESMTP\r\n', (line, s) => {
      if (line.startsWith('EHLO')) s.write('250-raw\r\n250 ENHANCEDSTATUSCODES\r\n');
      else if (line.startsWith('MAIL') || line.startsWith('RCPT')) s.write('250 2.1.0 ok\r\n');
      else if (line === 'DATA') s.write('354 go\r\n');
      else if (line === '.') s.write('451 4.3.0 queue trouble\r\n');
    });
    const client = await open(port, false);
    assert.equal(client.capabilities.pipelining, false);
    const res = await client.send({ from: 'a@x.test', recipients: ['a@y.test', 'b@y.test'], body: Buffer.from('x\r\n') });
    assert.deepEqual(res.recipients.map((r) => [r.code, r.enhanced, r.message, r.accepted]), [
      [451, '4.3.0', 'queue trouble', false],
      [451, '4.3.0', 'queue trouble', false],
    ]);
    await client.quit();
  });

  test('uses PIPELINING: MAIL, all RCPTs and DATA go in one write', async () => {
    const chunks: string[] = [];
    const port = await startRaw('220 raw ESMTP\r\n', (line, s) => {
      if (line.startsWith('EHLO')) s.write('250-raw\r\n250-PIPELINING\r\n250 SIZE 1000\r\n');
      else if (line.startsWith('MAIL') || line.startsWith('RCPT')) s.write('250 ok\r\n');
      else if (line === 'DATA') s.write('354 go\r\n');
      else if (line === '.') s.write('250 queued\r\n');
    }, chunks);
    const client = await open(port, false);
    assert.equal(client.capabilities.size, 1000);
    await client.send({ from: 'a@x.test', recipients: ['a@y.test', 'b@y.test'], body: Buffer.from('x\r\n') });
    await client.quit();
    assert.ok(chunks.includes('MAIL FROM:<a@x.test> SIZE=3\r\nRCPT TO:<a@y.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n'), JSON.stringify(chunks));
  });

  /** A pipelining server that answers RCPTs from `rcpt`, DATA with `data`, and records lines. */
  async function pipeliningServer(rcpt: (line: string) => string, data: string) {
    const lines: string[] = [];
    let closed = false;
    const port = await startRaw('220 raw ESMTP\r\n', (line, s) => {
      lines.push(line);
      s.once('close', () => (closed = true));
      if (line.startsWith('EHLO')) s.write('250-raw\r\n250 PIPELINING\r\n');
      else if (line.startsWith('MAIL') || line === 'RSET') s.write('250 ok\r\n');
      else if (line.startsWith('RCPT')) s.write(rcpt(line));
      else if (line === 'DATA') s.write(data);
      else if (line === '.') s.write('250 queued\r\n');
    });
    return { port, lines, closed: () => closed };
  }

  test('pipelined DATA opened (354) although a recipient was deferred (holdOnDeferral): the connection is dropped, no message', async () => {
    const srv = await pipeliningServer((l) => (l.includes('b@y') ? '451 4.3.0 later\r\n' : '250 ok\r\n'), '354 go\r\n');
    const client = await open(srv.port, false);
    const res = await client.send({ from: 'a@x.test', recipients: ['a@y.test', 'b@y.test'], body: Buffer.from('x\r\n'), holdOnDeferral: true });
    assert.deepEqual(res.recipients.map((r) => [r.code, r.enhanced]), [[451, '4.3.0'], [451, '4.3.0']]);
    assert.equal(client.usable, false, 'the transaction is aborted by closing the connection');
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!srv.lines.includes('.'), `no end of data was sent: ${JSON.stringify(srv.lines)}`);
    assert.ok(!srv.lines.includes('x'));
  });

  test('pipelined DATA refused (no valid recipients): the connection stays usable and the next transaction starts with RSET', async () => {
    let refuse = true;
    const lines: string[] = [];
    // DATA's reply depends on whether a recipient was accepted, like a real server.
    const port = await startRaw('220 raw ESMTP\r\n', (line, s) => {
      lines.push(line);
      if (line.startsWith('EHLO')) s.write('250-raw\r\n250 PIPELINING\r\n');
      else if (line.startsWith('MAIL') || line === 'RSET') s.write('250 ok\r\n');
      else if (line.startsWith('RCPT')) s.write(refuse ? '550 5.1.1 no such user\r\n' : '250 ok\r\n');
      else if (line === 'DATA') s.write(refuse ? '554 5.5.1 no valid recipients\r\n' : '354 go\r\n');
      else if (line === '.') s.write('250 queued\r\n');
    });
    const client = await open(port, false);
    const first = await client.send({ from: 'a@x.test', recipients: ['nobody@y.test'], body: Buffer.from('x\r\n') });
    assert.deepEqual(first.recipients.map((r) => [r.code, r.enhanced]), [[550, '5.1.1']]);
    assert.equal(client.usable, true);
    refuse = false;
    const second = await client.send({ from: 'a@x.test', recipients: ['a@y.test'], body: Buffer.from('x\r\n') });
    assert.equal(second.recipients[0].code, 250);
    assert.ok(lines.indexOf('RSET') > lines.indexOf('DATA'), `RSET before the second transaction: ${JSON.stringify(lines)}`);
    assert.equal(lines.filter((l) => l === '.').length, 1, 'one message delivered');
    await client.quit();
  });

  test('a server that opens DATA although it refused every recipient gets no body: the connection is dropped', async () => {
    const srv = await pipeliningServer(() => '550 5.1.1 no such user\r\n', '354 go anyway\r\n');
    const client = await open(srv.port, false);
    const res = await client.send({ from: 'a@x.test', recipients: ['nobody@y.test'], body: Buffer.from('x\r\n') });
    assert.equal(res.recipients[0].code, 550);
    assert.equal(client.usable, false);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!srv.lines.includes('.'));
  });
});

describe('MailClient with a body still arriving (a promise)', () => {
  /** A pipelining server that records lines and announces the moment it answered DATA. */
  async function recordingServer() {
    const lines: string[] = [];
    let opened!: () => void;
    const dataOpened = new Promise<void>((resolve) => (opened = resolve));
    let closed = false;
    const port = await startRaw('220 raw ESMTP\r\n', (line, s) => {
      lines.push(line);
      s.once('close', () => (closed = true));
      if (line.startsWith('EHLO')) s.write('250-raw\r\n250-8BITMIME\r\n250 PIPELINING\r\n');
      else if (line.startsWith('MAIL') || line.startsWith('RCPT') || line === 'RSET') s.write('250 ok\r\n');
      else if (line === 'DATA') {
        s.write('354 go\r\n');
        opened();
      } else if (line === '.') s.write('250 queued\r\n');
    });
    return { port, lines, dataOpened, closed: () => closed };
  }

  test('MAIL, RCPT and DATA go out before the body exists; the body follows when it resolves', async () => {
    const srv = await recordingServer();
    const client = await open(srv.port, false);
    let resolveBody!: (b: Buffer) => void;
    const sending = client.send({ from: 'a@x.test', recipients: ['b@y.test'], body: new Promise<Buffer>((r) => (resolveBody = r)), eightBit: false });
    await srv.dataOpened;
    assert.deepEqual(srv.lines, ['EHLO client.test', 'MAIL FROM:<a@x.test>', 'RCPT TO:<b@y.test>', 'DATA'], 'no SIZE (unknown yet), no BODY (the sender declared 7-bit)');
    resolveBody(Buffer.from('Subject: s\r\n\r\n.dot\r\n'));
    const res = await sending;
    assert.deepEqual(res.recipients.map((r) => [r.code, r.accepted]), [[250, true]]);
    assert.deepEqual(srv.lines.slice(4), ['Subject: s', '', '..dot', '.'], 'the body, dot-stuffed, then the end');
    assert.equal(client.usable, true);
    await client.quit();
  });

  test('a withdrawn body (undefined) after the 354: the connection is dropped, no end of data, every recipient 451 4.3.0', async () => {
    const srv = await recordingServer();
    const client = await open(srv.port, false);
    let resolveBody!: (b: Buffer | undefined) => void;
    const sending = client.send({ from: 'a@x.test', recipients: ['b@y.test', 'c@y.test'], body: new Promise<Buffer | undefined>((r) => (resolveBody = r)) });
    await srv.dataOpened;
    resolveBody(undefined);
    const res = await sending;
    assert.deepEqual(res.recipients.map((r) => [r.code, r.enhanced, r.accepted]), [[451, '4.3.0', false], [451, '4.3.0', false]]);
    assert.equal(client.usable, false);
    for (let i = 0; i < 100 && !srv.closed(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(srv.closed(), 'the server saw the connection close mid-DATA, which discards the message (RFC 5321 §4.1.1.4)');
    assert.ok(!srv.lines.includes('.'), JSON.stringify(srv.lines));
    assert.ok(srv.lines.includes('MAIL FROM:<a@x.test> BODY=8BITMIME'), 'undeclared content is declared 8-bit, as for a stream');
  });
});

describe('MailClient with chunking (BDAT, RFC 3030)', () => {
  /**
   * An LMTP server offering PIPELINING and CHUNKING that answers nothing until it holds a whole
   * BDAT chunk: a client waiting for any reply before sending the message would time out.
   */
  async function bdatServer(opts: { rcpt?: (address: string) => string; final?: (address: string) => string; chunking?: boolean } = {}) {
    const flights: string[] = [];
    const messages: Buffer[] = [];
    const lines: string[] = [];
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.write('220 bdat LMTP\r\n');
      let buf = Buffer.alloc(0);
      let pending: string[] = [];
      let accepted: string[] = [];
      let mailOk = false;
      socket.on('data', (d: Buffer) => {
        flights.push(d.toString('latin1'));
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const eol = buf.indexOf('\r\n');
          if (eol < 0) break;
          const line = buf.subarray(0, eol).toString('latin1');
          const bdat = /^BDAT (\d+) LAST$/.exec(line);
          if (bdat && buf.length < eol + 2 + Number(bdat[1])) break;
          buf = buf.subarray(eol + 2);
          lines.push(line);
          if (line.startsWith('LHLO')) socket.write(`250-bdat\r\n250-PIPELINING\r\n${opts.chunking === false ? '' : '250-CHUNKING\r\n'}250 8BITMIME\r\n`);
          else if (line === 'QUIT') socket.end('221 bye\r\n');
          else if (line === 'RSET') {
            accepted = [];
            mailOk = false;
            socket.write('250 2.0.0 ok\r\n');
          } else if (line.startsWith('MAIL')) {
            mailOk = true;
            pending.push('250 2.1.0 ok\r\n');
          } else if (line.startsWith('RCPT')) {
            const address = /<(.*)>/.exec(line)![1];
            const reply = opts.rcpt?.(address) ?? '250 2.1.5 ok\r\n';
            if (reply.startsWith('250')) accepted.push(address);
            pending.push(reply);
          } else if (bdat) {
            messages.push(Buffer.from(buf.subarray(0, Number(bdat[1]))));
            buf = buf.subarray(Number(bdat[1]));
            if (!mailOk || accepted.length === 0) pending.push('503 5.5.0 No valid recipients\r\n');
            else for (const a of accepted) pending.push(opts.final?.(a) ?? `250 2.0.0 <${a}> saved\r\n`);
            accepted = [];
            mailOk = false;
            socket.write(pending.join(''));
            pending = [];
          } else if (line === 'DATA') {
            socket.write(pending.join('') + '354 go\r\n');
            pending = [];
          } else if (line === '.') {
            for (const a of accepted) socket.write(`250 2.0.0 <${a}> saved by DATA\r\n`);
            accepted = [];
          }
        }
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }));
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(socket, 'connect');
    const client = await MailClient.open(socket, { lmtp: true, heloName: 'client.test', timeoutMs: 2000, chunking: true });
    flights.length = 0;
    return { client, flights, messages, lines };
  }

  test('MAIL, every RCPT, BDAT LAST and the message go in one write, not dot-stuffed; one reply per accepted recipient', async () => {
    const srv = await bdatServer({
      rcpt: (a) => (a.startsWith('unknown') ? '550 5.1.1 no such user\r\n' : '250 2.1.5 ok\r\n'),
      final: (a) => (a.startsWith('full') ? `452 4.2.2 <${a}> mailbox full\r\n` : `250 2.0.0 <${a}> saved\r\n`),
    });
    assert.equal(srv.client.capabilities.chunking, true);
    const body = Buffer.from('Subject: dots\r\n\r\n.\r\n..two\r\n.leading\r\n\u00e9t\u00e9\r\n', 'utf8');
    const res = await srv.client.send({ from: 'a@x.test', recipients: ['ok@y.test', 'unknown@y.test', 'full@y.test'], body });
    assert.deepEqual(res.recipients.map((r) => [r.address, r.code, r.enhanced, r.accepted]), [
      ['ok@y.test', 250, '2.0.0', true],
      ['unknown@y.test', 550, '5.1.1', false],
      ['full@y.test', 452, '4.2.2', false],
    ]);
    assert.deepEqual(srv.flights, [
      `MAIL FROM:<a@x.test> BODY=8BITMIME\r\nRCPT TO:<ok@y.test>\r\nRCPT TO:<unknown@y.test>\r\nRCPT TO:<full@y.test>\r\nBDAT ${body.length} LAST\r\n${body.toString('latin1')}`,
    ]);
    assert.ok(srv.messages[0].equals(body), 'the server holds the message byte for byte');
    // The next transaction on the same connection: no RSET needed, replies still in step.
    const next = await srv.client.send({ from: 'a@x.test', recipients: ['ok@y.test'], body: Buffer.from('x\r\n') });
    assert.deepEqual(next.recipients.map((r) => r.code), [250]);
    assert.ok(!srv.lines.includes('RSET'));
    assert.ok(!srv.lines.includes('DATA'));
    await srv.client.quit();
  });

  test('no recipient accepted: the one refusal of BDAT is read, the connection stays in step and the next transaction starts with RSET', async () => {
    let refuse = true;
    const srv = await bdatServer({ rcpt: () => (refuse ? '550 5.1.1 no such user\r\n' : '250 2.1.5 ok\r\n') });
    const first = await srv.client.send({ from: 'a@x.test', recipients: ['nobody@y.test', 'none@y.test'], body: Buffer.from('x\r\n') });
    assert.deepEqual(first.recipients.map((r) => [r.code, r.enhanced]), [[550, '5.1.1'], [550, '5.1.1']]);
    assert.equal(srv.client.usable, true);
    refuse = false;
    const second = await srv.client.send({ from: 'a@x.test', recipients: ['a@y.test'], body: Buffer.from('y\r\n') });
    assert.deepEqual(second.recipients.map((r) => [r.code, r.message]), [[250, '<a@y.test> saved']]);
    assert.deepEqual(srv.lines.slice(-4), ['RSET', 'MAIL FROM:<a@x.test>', 'RCPT TO:<a@y.test>', 'BDAT 3 LAST']);
    await srv.client.quit();
  });

  test('a body still arriving is awaited before anything is sent; withdrawn (undefined): 451 4.3.0, nothing sent, the connection stays usable', async () => {
    const srv = await bdatServer();
    let resolveBody!: (b: Buffer | undefined) => void;
    const sending = srv.client.send({ from: 'a@x.test', recipients: ['b@y.test'], body: new Promise<Buffer | undefined>((r) => (resolveBody = r)) });
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(srv.flights, [], 'no command before the message is complete');
    resolveBody(undefined);
    const res = await sending;
    assert.deepEqual(res.recipients.map((r) => [r.code, r.enhanced, r.accepted]), [[451, '4.3.0', false]]);
    assert.equal(srv.client.usable, true);
    const later = new Promise<Buffer>((r) => setTimeout(() => r(Buffer.from('z\r\n')), 10));
    const ok = await srv.client.send({ from: 'a@x.test', recipients: ['b@y.test'], body: later });
    assert.equal(ok.recipients[0].code, 250);
    assert.deepEqual(srv.flights, ['MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 3 LAST\r\nz\r\n'], 'SIZE and 8-bit known once the body is');
    await srv.client.quit();
  });

  test('a message with bare LF goes by DATA, normalised; a server without CHUNKING gets DATA', async () => {
    const srv = await bdatServer();
    await srv.client.send({ from: 'a@x.test', recipients: ['b@y.test'], body: Buffer.from('Subject: lf\n\n.dot\n') });
    assert.deepEqual(srv.lines.slice(-7), ['MAIL FROM:<a@x.test>', 'RCPT TO:<b@y.test>', 'DATA', 'Subject: lf', '', '..dot', '.']);
    await srv.client.quit();
    const plain = await bdatServer({ chunking: false });
    assert.equal(plain.client.capabilities.chunking, false);
    const res = await plain.client.send({ from: 'a@x.test', recipients: ['b@y.test'], body: Buffer.from('x\r\n') });
    assert.deepEqual(res.recipients.map((r) => [r.code, r.message]), [[250, '<b@y.test> saved by DATA']]);
    await plain.client.quit();
  });
});

describe('MailClient failures', () => {
  test('a server that stops answering gives ERR_SMTP_TIMEOUT and an unusable connection', async () => {
    const port = await startRaw('220 slow LMTP\r\n', (line, s) => {
      if (line.startsWith('LHLO')) s.write('250-slow\r\n250 PIPELINING\r\n');
      // MAIL and RCPT get answers; the final dot never does.
      else if (line.startsWith('MAIL') || line.startsWith('RCPT')) s.write('250 ok\r\n');
      else if (line === 'DATA') s.write('354 go\r\n');
    });
    const client = await open(port, true, 300);
    await assert.rejects(client.send({ from: 'a@x.test', recipients: ['a@y.test'], body: Buffer.from('x\r\n') }), (err: unknown) => err instanceof MailClientError && err.code === 'ERR_SMTP_TIMEOUT');
    assert.equal(client.usable, false);
    await assert.rejects(client.send({ from: 'a@x.test', recipients: ['a@y.test'], body: Buffer.from('x\r\n') }), (err: unknown) => err instanceof MailClientError);
  });

  test('LMTP: replies received before the connection broke stand; only the missing ones are 4xx', async () => {
    // Dovecot stored the copy for a@ and said so, then died: a@ must stay 250 or the sender's
    // retry stores a second copy for it.
    const port = await startRaw('220 flaky LMTP\r\n', (line, s) => {
      if (line.startsWith('LHLO')) s.write('250-flaky\r\n250 PIPELINING\r\n');
      else if (line.startsWith('MAIL') || line.startsWith('RCPT')) s.write('250 ok\r\n');
      else if (line === 'DATA') s.write('354 go\r\n');
      else if (line === '.') s.end('250 2.0.0 <a@y.test> saved\r\n');
    });
    const client = await open(port);
    const res = await client.send({ from: 'a@x.test', recipients: ['a@y.test', 'b@y.test'], body: Buffer.from('x\r\n') });
    assert.deepEqual(res.recipients.map((r) => [r.code, r.accepted]), [[250, true], [451, false]]);
    assert.equal(res.recipients[1].enhanced, '4.4.2');
    assert.equal(client.usable, false);
  });

  test('a silent server times out in open()', async () => {
    const port = await startRaw(null, () => {});
    await assert.rejects(open(port, true, 200), { code: 'ERR_SMTP_TIMEOUT' });
  });

  test('a server that hangs up gives ERR_SMTP_CONNECTION', async () => {
    const port = await startRaw('220 bye LMTP\r\n', (line, s) => {
      if (line.startsWith('LHLO')) s.write('250 ok\r\n');
      else s.destroy();
    });
    const client = await open(port);
    await assert.rejects(client.send({ from: 'a@x.test', recipients: ['a@y.test'], body: Buffer.from('x\r\n') }), { code: 'ERR_SMTP_CONNECTION' });
    assert.equal(client.usable, false);
  });

  test('a refused greeting is ERR_SMTP_REJECTED with the reply code', async () => {
    const port = await startRaw('554 5.3.2 not today\r\n', () => {});
    await assert.rejects(open(port), { code: 'ERR_SMTP_REJECTED', replyCode: 554 });
  });

  test('garbage instead of a reply is ERR_SMTP_PROTOCOL', async () => {
    const port = await startRaw('HTTP/1.1 400 Bad Request\r\n', () => {});
    await assert.rejects(open(port), { code: 'ERR_SMTP_PROTOCOL' });
  });

  test('addresses that would inject commands are refused locally', async () => {
    const srv = await startDouble({ lmtp: true });
    const client = await open(srv.port);
    const res = await client.send({ from: 'a@x.test', recipients: ['ok@y.test>\r\nRCPT TO:<evil@z.test', 'ok@y.test'], body: Buffer.from('x\r\n') });
    await client.quit();
    assert.deepEqual(res.recipients.map((r) => r.code), [501, 250]);
    assert.deepEqual(srv.received[0].to, ['ok@y.test']);
  });
});
