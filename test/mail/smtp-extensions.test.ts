// The front door's SMTP extensions: 8BITMIME bodies pass byte for byte, SMTPUTF8 addresses are
// accepted and routed (RFC 6531), CHUNKING is not advertised (smtp-server has no BDAT), and a
// recipient limit is answered 452 4.5.3 (RFC 5321 §4.5.3.1.8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startMaildirLmtp } from '../../sidecar/maildir/server.ts';
import { startFrontDoor } from '../../sidecar/mail/frontdoor.ts';
import { Deliverer, type Placement } from '../../sidecar/mail/deliver.ts';
import { embeddedHandoff } from '../../sidecar/mail/handoff.ts';
import { LmtpSender } from '../../sidecar/mail/lmtp-sender.ts';
import { TcpPool } from '../../sidecar/mail/lease.ts';
import { MailClient } from '../../sidecar/lmtp/client.ts';

const placement: Placement = (address) => (address.toLowerCase().endsWith('@mail.test') ? { kind: 'shard', shardId: 'tokyo-1' } : { kind: 'not-hosted' });

test('8BITMIME byte-exact, SMTPUTF8 accepted, no CHUNKING, recipient limit 452', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'mm-ext-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const store = await startMaildirLmtp({ host: '127.0.0.1', port: 0, root });
  const pool = new TcpPool(`127.0.0.1:${store.port}`);
  const sender = new LmtpSender({ connect: () => pool.acquire(), heloName: 'tokyo-1a' });
  const door = await startFrontDoor({
    host: '127.0.0.1', port: 0, hostname: 'mx.mail.test', maxSize: 1 << 20, maxRecipients: 3, maxClients: 10, socketTimeoutMs: 10_000,
    placement, handoff: embeddedHandoff(new Deliverer({ placement, localShard: 'tokyo-1', local: sender, remote: sender })), log: pino({ level: 'silent' }),
  });
  const socket = net.connect(door.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const client = await MailClient.open(socket, { lmtp: false, heloName: 'sender.test', timeoutMs: 10_000 });
  try {
    assert.ok(client.capabilities.eightBitMime, '8BITMIME advertised');
    assert.ok(client.capabilities.smtpUtf8, 'SMTPUTF8 advertised');
    assert.ok(!client.capabilities.keywords.some((k) => k.startsWith('CHUNKING')), 'CHUNKING not advertised');

    const body = Buffer.concat([Buffer.from('From: é@sender.test\r\nSubject: =?UTF-8?B?5pel5pys?=\r\n\r\n'), Buffer.from('日本語の本文 — 8-bit\r\n', 'utf8'), Buffer.from([0xe9, 0x0d, 0x0a])]);
    const res = await client.send({ from: 'sender@sender.test', recipients: ['ユーザー@mail.test'], body });
    assert.equal(res.recipients[0].code, 250, res.recipients[0].message);
    const dir = join(store.pathOf('ユーザー@mail.test'), 'new');
    const [file] = await readdir(dir);
    assert.deepEqual(await readFile(join(dir, file)), body, 'stored byte for byte');

    const many = await client.send({ from: 'sender@sender.test', recipients: ['a@mail.test', 'b@mail.test', 'c@mail.test', 'd@mail.test'], body: Buffer.from('Subject: x\r\n\r\nx\r\n') });
    assert.deepEqual(many.recipients.map((r) => r.code), [250, 250, 250, 452]);
    assert.equal(many.recipients[3].enhanced, '4.5.3');
  } finally {
    await client.quit();
    await door.close();
    pool.close();
    await store.close();
  }
});
