import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DotStuffer, isCrlfMessage } from '../../sidecar/lmtp/dot-stuff.ts';
import { parseReply } from '../../sidecar/lmtp/reply.ts';

function stuff(chunks: string[]): string {
  const s = new DotStuffer();
  return Buffer.concat([...chunks.map((c) => s.push(Buffer.from(c, 'latin1'))), s.end()]).toString('latin1');
}

test('dot-stuffing doubles a leading dot on every line (RFC 5321 §4.5.2)', () => {
  assert.equal(stuff(['.a\r\nb.\r\n..c\r\n']), '..a\r\nb.\r\n...c\r\n.\r\n');
});

test('a lone dot line in the message cannot end the data', () => {
  assert.equal(stuff(['a\r\n.\r\nb\r\n']), 'a\r\n..\r\nb\r\n.\r\n');
});

test('bare LF and bare CR become CRLF, so \\n.\\n cannot smuggle an end of data', () => {
  assert.equal(stuff(['a\n.\nb\rc']), 'a\r\n..\r\nb\r\nc\r\n.\r\n');
});

test('state carries across chunk boundaries (CR|LF split, dot after a boundary)', () => {
  assert.equal(stuff(['a\r', '\n', '.b\r', '.c\n', '.']), 'a\r\n..b\r\n..c\r\n..\r\n.\r\n');
});

test('a message without a final line break gets one before the terminator', () => {
  assert.equal(stuff(['abc']), 'abc\r\n.\r\n');
  assert.equal(stuff([]), '.\r\n');
});

test('8-bit bytes pass through untouched', () => {
  const s = new DotStuffer();
  const input = Buffer.from([0xe6, 0x97, 0xa5, 0x0a, 0x2e, 0xff]);
  assert.deepEqual(Buffer.concat([s.push(input), s.end()]), Buffer.from([0xe6, 0x97, 0xa5, 0x0d, 0x0a, 0x2e, 0x2e, 0xff, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a]));
});

test('reply parsing extracts RFC 3463 codes only when the class matches', () => {
  assert.deepEqual(parseReply(550, ['5.1.1 <x@y>: no such user']), { code: 550, enhanced: '5.1.1', lines: ['<x@y>: no such user'], message: '<x@y>: no such user' });
  assert.equal(parseReply(451, ['5.1.1 mismatched class']).enhanced, undefined);
  assert.deepEqual(parseReply(250, ['2.0.0 first', '2.0.0 second']).lines, ['first', 'second']);
});

test('clean chunks take the pass-through path and still agree with the byte-by-byte rewrite, however split', () => {
  // Reference: the RFC 5321 rules applied to the whole message at once.
  const reference = (text: string) => {
    const lines = text.replace(/\r\n|\r|\n/g, '\n').split('\n');
    const last = lines.pop()!;
    const body = [...lines, ...(last === '' ? [] : [last])].map((l) => (l.startsWith('.') ? '.' + l : l) + '\r\n').join('');
    return body + '.\r\n';
  };
  let seed = Number(process.env.MAILMESH_FUZZ_SEED ?? 20261127);
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  const atoms = ['abc', 'x.y', '\r\n', '\r\n.', '.', '\n', '\r', '\r\n\r\n', 'é', 'line of text\r\n'];
  for (let round = 0; round < 500; round++) {
    let text = '';
    for (let k = rand(20); k > 0; k--) text += atoms[rand(atoms.length)];
    const bytes = Buffer.from(text, 'latin1');
    const chunks: string[] = [];
    for (let at = 0; at < bytes.length; ) {
      const n = 1 + rand(Math.max(1, bytes.length - at));
      chunks.push(bytes.subarray(at, at + n).toString('latin1'));
      at += n;
    }
    assert.equal(stuff(chunks), reference(text), `chunks ${JSON.stringify(chunks)}`);
  }
  // A clean chunk is passed through without a copy.
  const clean = Buffer.from('Subject: x\r\n\r\nhello\r\n');
  assert.equal(new DotStuffer().push(clean), clean);
});

test('isCrlfMessage: a message fit for BDAT as it is has CRLF line ends only, the last line included', () => {
  const cases: [string, boolean][] = [
    ['', true],
    ['Subject: x\r\n\r\n.leading dot\r\n..two\r\n', true],
    ['Subject: x\r\n\r\nno final line end', false],
    ['Subject: x\n\r\nbare LF\r\n', false],
    ['Subject: x\r\n\r\nbare\rCR\r\n', false],
    ['ends with a bare CR\r', false],
    ['\n', false],
    ['\r\n', true],
  ];
  for (const [text, fit] of cases) assert.equal(isCrlfMessage(Buffer.from(text, 'latin1')), fit, JSON.stringify(text));
});
