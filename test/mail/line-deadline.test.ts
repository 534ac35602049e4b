// hasStartTls: the line deadline stops watching a socket at a STARTTLS command line (what follows
// is a TLS handshake, not a line); it must recognise exactly the command, in any case, wherever it
// sits in a chunk of pipelined input, and nothing else (a DATA line that mentions STARTTLS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasStartTls } from '../../sidecar/mail/line-deadline.ts';

const has = (s: string) => hasStartTls(Buffer.from(s, 'latin1'));

test('hasStartTls: the command line, in any case, with CRLF or LF, alone or after other commands', () => {
  assert.equal(has('STARTTLS\r\n'), true);
  assert.equal(has('starttls\n'), true);
  assert.equal(has('StartTls\r\n\x16\x03\x01\x02\x00'), true, 'a handshake pipelined after it');
  assert.equal(has('EHLO x\r\nSTARTTLS\r\n'), true);
});

test('hasStartTls: not an incomplete line, not inside another line, not other bytes', () => {
  assert.equal(has('STARTTLS'), false, 'no line end yet');
  assert.equal(has('XSTARTTLS\r\n'), false);
  assert.equal(has('Subject: use STARTTLS\r\n'), false);
  assert.equal(has('STARTTLS now\r\n'), false);
  assert.equal(has('STARTTL\r\n'), false);
  assert.equal(has('\r\n'), false);
  assert.equal(has(''), false);
  // Bytes that equal a letter once bit 0x20 is cleared, but only for letters: 0xf3 is not 's'.
  assert.equal(hasStartTls(Buffer.from([0xd3, 0x54, 0x41, 0x52, 0x54, 0x54, 0x4c, 0x53, 0x0a])), false);
});
