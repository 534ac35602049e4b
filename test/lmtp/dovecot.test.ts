import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from '../helpers/real.ts';
import { startDovecot, type DovecotInstance } from '../helpers/dovecot.ts';
import { MailClient } from '../../sidecar/lmtp/client.ts';

async function stored(dc: DovecotInstance, address: string): Promise<Buffer[]> {
  const dir = join(dc.maildirOf(address), 'new');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  return Promise.all(names.map((n) => readFile(join(dir, n))));
}

const USERS = { users: [{ address: 'alice@mail.test', password: 'a' }, { address: 'bob@mail.test', password: 'b' }] };

/**
 * Open a client to `dc`, send `body` to alice, nobody and bob, and check the replies (550 for the
 * unknown one) and both stored copies: Dovecot prepends Return-Path, Delivered-To and Received and
 * stores LF line ends (mail_save_crlf = no); the message itself must follow unchanged.
 */
async function sendToThree(dc: DovecotInstance, chunking: boolean, body: Buffer): Promise<MailClient> {
  const socket = connect(dc.lmtpPort, '127.0.0.1');
  await once(socket, 'connect');
  const client = await MailClient.open(socket, { lmtp: true, heloName: 'sidecar.test', timeoutMs: 10_000, chunking });
  const res = await client.send({ from: 'sender@x.test', recipients: ['alice@mail.test', 'nobody@mail.test', 'bob@mail.test'], body });
  assert.deepEqual(res.recipients.map((r) => [r.address, r.code, r.enhanced, r.accepted]), [
    ['alice@mail.test', 250, '2.0.0', true],
    ['nobody@mail.test', 550, '5.1.1', false],
    ['bob@mail.test', 250, '2.0.0', true],
  ]);
  const expected = body.toString('utf8').replace(/\r\n/g, '\n');
  for (const user of ['alice@mail.test', 'bob@mail.test']) {
    const copies = await stored(dc, user);
    assert.equal(copies.length, 1, user);
    const text = copies[0].toString('utf8');
    assert.ok(text.endsWith(expected), text);
    assert.match(text, /^Return-Path: <sender@x\.test>\n/);
  }
  return client;
}

test('MailClient against a real Dovecot LMTP: per-recipient replies, dot-stuffing, 8-bit, reuse', async (t) => {
  if (!requireBinary(t, 'dovecot', 'dovecot-core dovecot-lmtpd')) return;
  const dc = await startDovecot(USERS);
  try {
    const body = Buffer.from('Subject: =?UTF-8?B?5pel5pys?=\r\nMessage-ID: <dc-1@x.test>\r\n\r\n.a dotted line\r\n.\r\n日本語\r\nend\r\n', 'utf8');
    const client = await sendToThree(dc, false, body);
    assert.equal(client.capabilities.pipelining, true);
    assert.equal(client.capabilities.eightBitMime, true);
    assert.equal(client.capabilities.enhancedStatusCodes, true);

    // The same connection carries more transactions.
    for (let i = 0; i < 5; i++) {
      const r = await client.send({ from: 'sender@x.test', recipients: ['bob@mail.test'], body: Buffer.from(`Subject: n${i}\r\n\r\nx\r\n`) });
      assert.equal(r.recipients[0].code, 250);
    }
    assert.equal(client.usable, true);
    await client.quit();
    assert.equal((await stored(dc, 'bob@mail.test')).length, 6);
  } finally {
    await dc.destroy();
  }
});

test('MailClient with chunking against a real Dovecot LMTP: BDAT LAST, per-recipient replies, refusals keep the connection in step', async (t) => {
  if (!requireBinary(t, 'dovecot', 'dovecot-core dovecot-lmtpd')) return;
  const dc = await startDovecot(USERS);
  try {
    // Lines starting with a dot go as they are (no dot-stuffing with BDAT) and must be stored so.
    const body = Buffer.from('Subject: bdat\r\nMessage-ID: <dc-bdat@x.test>\r\n\r\n.\r\n..two dots\r\n.one dot\r\n日本語\r\n', 'utf8');
    const client = await sendToThree(dc, true, body);
    assert.equal(client.capabilities.chunking, true, 'Dovecot offers CHUNKING');

    // No valid recipient: Dovecot refuses the BDAT once (503); the next transactions still work.
    const none = await client.send({ from: 'sender@x.test', recipients: ['nobody@mail.test'], body: Buffer.from('Subject: none\r\n\r\nx\r\n') });
    assert.deepEqual(none.recipients.map((r) => [r.code, r.enhanced]), [[550, '5.1.1']]);
    assert.equal(client.usable, true);
    for (let i = 0; i < 3; i++) {
      const r = await client.send({ from: 'sender@x.test', recipients: ['bob@mail.test'], body: Buffer.from(`Subject: n${i}\r\n\r\nx\r\n`) });
      assert.deepEqual(r.recipients.map((x) => [x.code, x.accepted]), [[250, true]]);
    }
    await client.quit();
    assert.equal((await stored(dc, 'bob@mail.test')).length, 4);
    assert.equal((await stored(dc, 'alice@mail.test')).length, 1);
  } finally {
    await dc.destroy();
  }
});
