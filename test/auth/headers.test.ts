import './deny-dns.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addAuthResults, authservIdOf, prependHeaders, stripAuthResults } from '../../sidecar/auth/headers.ts';

const BODY = 'Authentication-Results: mx.mail.test; dkim=pass\r\nbody line \xff\xfe bytes\r\n';

function msg(headers: string[]): Buffer {
  return Buffer.concat([Buffer.from(headers.map((h) => h + '\r\n').join('') + '\r\n', 'utf8'), Buffer.from(BODY, 'latin1')]);
}

test('authservIdOf reads the id after CFWS, token or quoted-string', () => {
  assert.equal(authservIdOf(' mx.mail.test; spf=pass'), 'mx.mail.test');
  assert.equal(authservIdOf(' (comment (nested)) \r\n\tMX.Mail.Test 1; none'), 'MX.Mail.Test');
  assert.equal(authservIdOf(' "mx.mail.test"; none'), 'mx.mail.test');
  assert.equal(authservIdOf(' mx.mail.test;'), 'mx.mail.test');
});

test('forged A-R headers with our authserv-id are removed (case-insensitive, folded, commented); others are kept', () => {
  const input = msg([
    'Authentication-Results: MX.MAIL.TEST; dmarc=pass header.from=bank.example',
    'Received: from a by b',
    'Authentication-Results: (forged)\r\n mx.mail.test;\r\n\tspf=pass smtp.mailfrom=bank.example',
    'Authentication-Results: mx.other.example; spf=fail',
    'Authentication-Results: mx.mail.test.evil.example; spf=pass',
    'X-Mailmesh-Quarantine: nothing to see',
    'From: a@bank.example',
  ]);
  const out = stripAuthResults(input, 'mx.mail.test');
  const text = out.toString('latin1');
  const head = text.slice(0, text.indexOf('\r\n\r\n') + 2);
  assert.equal(
    head,
    'Received: from a by b\r\nAuthentication-Results: mx.other.example; spf=fail\r\nAuthentication-Results: mx.mail.test.evil.example; spf=pass\r\nFrom: a@bank.example\r\n',
  );
  // The body, including a line that looks like our header and non-UTF-8 bytes, is byte-identical.
  assert.ok(out.subarray(out.length - Buffer.byteLength(BODY, 'latin1')).equals(Buffer.from(BODY, 'latin1')));
});

test('nothing to strip returns the same buffer; prepend puts fields on top with CRLF', () => {
  const input = msg(['From: a@b.example']);
  assert.equal(stripAuthResults(input, 'mx.mail.test'), input);
  const out = prependHeaders(input, ['X-A: 1', 'X-B: 2']);
  assert.ok(out.toString('latin1').startsWith('X-A: 1\r\nX-B: 2\r\nFrom: a@b.example\r\n\r\n'));
});

test('addAuthResults strips the forgery and adds ours first, plus extra fields', () => {
  const input = msg(['Authentication-Results: mx.mail.test; dmarc=pass', 'From: a@bank.example']);
  const out = addAuthResults(input, 'mx.mail.test', 'mx.mail.test;\r\n dmarc=fail header.from=bank.example', ['X-Mailmesh-Quarantine: dmarc=fail policy=quarantine']).toString('latin1');
  assert.ok(
    out.startsWith(
      'Authentication-Results: mx.mail.test;\r\n dmarc=fail header.from=bank.example\r\nX-Mailmesh-Quarantine: dmarc=fail policy=quarantine\r\nFrom: a@bank.example\r\n\r\n',
    ),
  );
  assert.equal(out.match(/^Authentication-Results:/gim)?.length, 2); // ours + the look-alike line in the body
});

test('a message without a body separator is all header; one starting with a blank line has none', () => {
  const headersOnly = Buffer.from('Authentication-Results: mx.mail.test; x=y\r\nFrom: a@b\r\n');
  assert.equal(stripAuthResults(headersOnly, 'mx.mail.test').toString(), 'From: a@b\r\n');
  const noHeaders = Buffer.from('\r\nAuthentication-Results: mx.mail.test; x=y\r\n');
  assert.equal(stripAuthResults(noHeaders, 'mx.mail.test'), noHeaders);
});
