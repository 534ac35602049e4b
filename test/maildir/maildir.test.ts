import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailClient } from '../../sidecar/lmtp/client.ts';
import { startMaildirLmtp, type MaildirLmtp } from '../../sidecar/maildir/server.ts';
import { maildirPath } from '../../sidecar/maildir/paths.ts';
import { deliverOnce } from '../../sidecar/maildir/store.ts';

async function open(port: number): Promise<MailClient> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return MailClient.open(socket, { lmtp: true, heloName: 'test.client', timeoutMs: 5000 });
}

async function files(dir: string): Promise<string[]> {
  try {
    return await readdir(join(dir, 'new'));
  } catch {
    return [];
  }
}

const USERS = new Set(['alice@mail.test', 'bob@mail.test', 'carol@mail.test', 'erin@mail.test']);

describe('embedded Maildir LMTP backend', () => {
  let root: string;
  let lmtp: MaildirLmtp;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mailmesh-maildir-'));
    lmtp = await startMaildirLmtp({ host: '127.0.0.1', port: 0, root, accept: (a) => USERS.has(a.toLowerCase()), maxSize: 10_000 });
  });
  after(async () => {
    await lmtp.close();
    await rm(root, { recursive: true, force: true });
  });

  test('stores each recipient copy byte-exact in Maildir/new', async () => {
    const body = Buffer.from('From: a@x.test\r\nSubject: hi\r\n\r\n.leading dot\r\nline two\r\n..two dots\r\n');
    const client = await open(lmtp.port);
    const res = await client.send({ from: 'a@x.test', recipients: ['alice@mail.test', 'bob@mail.test'], body });
    await client.quit();
    assert.deepEqual(res.recipients.map((r) => [r.address, r.code, r.accepted]), [
      ['alice@mail.test', 250, true],
      ['bob@mail.test', 250, true],
    ]);
    for (const user of ['alice@mail.test', 'bob@mail.test']) {
      const dir = lmtp.pathOf(user);
      assert.equal(dir, join(root, 'mail.test', user.split('@')[0], 'Maildir'));
      const names = await files(dir);
      assert.equal(names.length, 1);
      assert.match(names[0], /^\d+\.M\d+P\d+_\d+\.[^/:]+,S=\d+$/);
      assert.deepEqual(await readFile(join(dir, 'new', names[0])), body);
      assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    }
  });

  test('accept(): a session handed over in-process (as the mesh ingress does) is served like a connection', async () => {
    // A socket of another listener stands in for the ingress's decrypted TLS session.
    const handover = createServer((socket) => lmtp.accept(socket));
    await new Promise<void>((r) => handover.listen(0, '127.0.0.1', r));
    try {
      const client = await open((handover.address() as AddressInfo).port);
      const body = Buffer.from('From: a@x.test\r\nSubject: handed over\r\n\r\nbody\r\n');
      const res = await client.send({ from: 'a@x.test', recipients: ['erin@mail.test', 'nobody@mail.test'], body });
      await client.quit();
      assert.deepEqual(res.recipients.map((r) => [r.address, r.code]), [['erin@mail.test', 250], ['nobody@mail.test', 550]]);
      const names = await files(lmtp.pathOf('erin@mail.test'));
      assert.equal(names.length, 1);
      assert.deepEqual(await readFile(join(lmtp.pathOf('erin@mail.test'), 'new', names[0])), body);
    } finally {
      await new Promise<void>((r) => handover.close(() => r()));
    }
  });

  test('unknown user is refused at RCPT with 550 5.1.1, the others still get their copy', async () => {
    const client = await open(lmtp.port);
    const body = Buffer.from('Subject: unknown\r\n\r\nbody\r\n');
    const res = await client.send({ from: 'a@x.test', recipients: ['nobody@mail.test', 'carol@mail.test'], body });
    await client.quit();
    assert.equal(res.recipients[0].code, 550);
    assert.equal(res.recipients[0].enhanced, '5.1.1');
    assert.equal(res.recipients[0].accepted, false);
    assert.equal(res.recipients[1].code, 250);
    assert.equal((await files(maildirPath(root, 'nobody@mail.test'))).length, 0);
    assert.equal((await files(lmtp.pathOf('carol@mail.test'))).length, 1);
  });

  test('re-delivery of the same message to the same recipient stores no second copy, even after a restart', async () => {
    const body = Buffer.from(`Message-ID: <idem@x.test>\r\nSubject: once\r\n\r\nexactly once ${Date.now()}\r\n`);
    const dir = lmtp.pathOf('alice@mail.test');
    const before = (await files(dir)).length;
    const c1 = await open(lmtp.port);
    const r1 = await c1.send({ from: 'a@x.test', recipients: ['alice@mail.test'], body });
    const r2 = await c1.send({ from: 'a@x.test', recipients: ['alice@mail.test'], body });
    await c1.quit();
    assert.equal(r1.recipients[0].code, 250);
    assert.equal(r2.recipients[0].code, 250);
    assert.equal((await files(dir)).length, before + 1);

    const restarted = await startMaildirLmtp({ host: '127.0.0.1', port: 0, root, accept: (a) => USERS.has(a) });
    try {
      const c2 = await open(restarted.port);
      // Same message, one already-delivered recipient and one new one.
      const r3 = await c2.send({ from: 'a@x.test', recipients: ['alice@mail.test', 'bob@mail.test'], body });
      await c2.quit();
      assert.deepEqual(r3.recipients.map((r) => r.code), [250, 250]);
    } finally {
      await restarted.close();
    }
    assert.equal((await files(dir)).length, before + 1);
    const bobCopies = await Promise.all((await files(lmtp.pathOf('bob@mail.test'))).map((n) => readFile(join(lmtp.pathOf('bob@mail.test'), 'new', n))));
    assert.equal(bobCopies.filter((b) => b.equals(body)).length, 1);
  });

  test('concurrent deliveries of the same copy write it once', async () => {
    const body = Buffer.from(`Subject: race ${Date.now()}\r\n\r\nx\r\n`);
    const dir = maildirPath(root, 'carol@mail.test');
    const beforeCount = (await files(dir)).length;
    const outcomes = await Promise.all([deliverOnce(root, 'carol@mail.test', body), deliverOnce(root, 'carol@mail.test', body)]);
    assert.deepEqual(outcomes.sort(), ['delivered', 'duplicate']);
    assert.equal((await files(dir)).length, beforeCount + 1);
  });

  test('a message over the size limit gets 552 5.3.4 and is not stored', async () => {
    const client = await open(lmtp.port);
    assert.equal(client.capabilities.size, 10_000);
    const body = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(20_000, 'a')]);
    const dir = lmtp.pathOf('bob@mail.test');
    const beforeCount = (await files(dir)).length;
    // Declared size: refused at MAIL FROM (RFC 1870 §6.2).
    const declared = await client.send({ from: 'a@x.test', recipients: ['bob@mail.test'], body });
    assert.equal(declared.recipients[0].code, 552);
    assert.equal(declared.recipients[0].enhanced, '5.3.4');
    // Understated size: refused after the data (RFC 1870 §6.3), once per recipient in LMTP.
    const streamed = await client.send({ from: 'a@x.test', recipients: ['bob@mail.test', 'carol@mail.test'], body, size: 100 });
    assert.deepEqual(streamed.recipients.map((r) => [r.code, r.enhanced, r.accepted]), [
      [552, '5.3.4', false],
      [552, '5.3.4', false],
    ]);
    // The connection still carries mail after the refusals.
    const ok = await client.send({ from: 'a@x.test', recipients: ['bob@mail.test'], body: Buffer.from(`Subject: small ${Date.now()}\r\n\r\nok\r\n`) });
    assert.equal(ok.recipients[0].code, 250);
    await client.quit();
    assert.equal((await files(dir)).length, beforeCount + 1);
  });

  test('a write failure is 451 4.3.0 for that recipient only', async () => {
    // A regular file where the Maildir should be makes every write fail, even for root.
    const dave = maildirPath(root, 'dave@mail.test');
    await mkdir(join(dave, '..'), { recursive: true });
    await writeFile(dave, 'not a directory');
    const server = await startMaildirLmtp({ host: '127.0.0.1', port: 0, root });
    try {
      const client = await open(server.port);
      const res = await client.send({ from: 'a@x.test', recipients: ['dave@mail.test', 'alice@mail.test'], body: Buffer.from(`Subject: w ${Date.now()}\r\n\r\nx\r\n`) });
      await client.quit();
      assert.deepEqual(res.recipients.map((r) => [r.code, r.enhanced, r.accepted]), [[451, '4.3.0', false], [250, '2.6.0', true]]);
    } finally {
      await server.close();
    }
  });
});
