import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImapResponseBoundary } from '../../sidecar/imap/boundary.ts';
import { Pop3ResponseBoundary } from '../../sidecar/pop3/boundary.ts';
import { decodeSaslPlain } from '../../sidecar/proxy/sasl-plain.ts';
import { encodeAstring } from '../../sidecar/imap/parse.ts';

test('IMAP boundary: literal bodies that look like lines are skipped, split across chunks', () => {
  const b = new ImapResponseBoundary();
  const body = 'Subject: x\r\n\r\n* BYE fake\r\n';
  const resp = `* 1 FETCH (BODY[] {${Buffer.byteLength(body)}}\r\n${body})\r\na OK done\r\n`;
  const bytes = Buffer.from(resp);
  const atEach: boolean[] = [];
  for (let i = 0; i < bytes.length; i += 7) {
    b.fromBackend(bytes.subarray(i, i + 7));
    atEach.push(b.atBoundary());
  }
  assert.equal(b.atBoundary(), true);
  // Inside the literal (which ends in CRLF) the tracker must not report a boundary.
  const mid = new ImapResponseBoundary();
  mid.fromBackend(Buffer.from(`* 1 FETCH (BODY[] {${Buffer.byteLength(body)}}\r\n${body}`));
  assert.equal(mid.atBoundary(), false);
  mid.fromBackend(Buffer.from(')\r\n'));
  assert.equal(mid.atBoundary(), true);
  assert.ok(atEach.includes(false));
});

test('POP3 boundary: multi-line RETR ends at the lone dot, not at a stuffed one', () => {
  const b = new Pop3ResponseBoundary();
  b.fromClient(Buffer.from('RETR 1\r\nDELE 1\r\n'));
  assert.equal(b.atBoundary(), false);
  b.fromBackend(Buffer.from('+OK 30 octets\r\nline\r\n..stuffed\r\n'));
  assert.equal(b.atBoundary(), false);
  b.fromBackend(Buffer.from('.\r\n'));
  assert.equal(b.atBoundary(), false); // DELE still owed
  b.fromBackend(Buffer.from('+OK Marked'));
  assert.equal(b.atBoundary(), false);
  b.fromBackend(Buffer.from(' to be deleted.\r\n'));
  assert.equal(b.atBoundary(), true);
  b.fromClient(Buffer.from('RETR 9\r\n'));
  b.fromBackend(Buffer.from('-ERR There is no message 9.\r\n'));
  assert.equal(b.atBoundary(), true);
});

test('SASL PLAIN decoding and IMAP string encoding', () => {
  assert.deepEqual(decodeSaslPlain(Buffer.from('\0bob@mail.test\0pw').toString('base64'))?.login, 'bob@mail.test');
  assert.equal(decodeSaslPlain(Buffer.from('admin\0bob\0pw').toString('base64'))?.login, 'admin');
  assert.equal(decodeSaslPlain('not base64!'), undefined);
  assert.equal(decodeSaslPlain(Buffer.from('only\0two').toString('base64')), undefined);
  assert.equal(encodeAstring('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(encodeAstring('pässword'), '{9+}\r\npässword');
});
