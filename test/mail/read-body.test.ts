// readBounded: the whole message under the limit, undefined over it (the rest drained, nothing
// kept), and a rejection when the stream dies before its end (a session cut mid-DATA).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { readBounded } from '../../sidecar/mail/read-body.ts';

test('readBounded: under the limit the bytes, over it undefined, cut short a rejection', async () => {
  const a = new PassThrough();
  const pa = readBounded(a, 10);
  a.write('hello ');
  a.end('world');
  assert.equal(await pa, undefined, '11 bytes over a 10-byte limit');

  const b = new PassThrough();
  const pb = readBounded(b, 11);
  b.write('hello ');
  b.end('world');
  assert.equal((await pb)?.toString(), 'hello world');

  // One chunk: the bytes themselves, not a copy; several: one buffer of them all.
  const d = new PassThrough();
  const pd = readBounded(d, 100);
  const one = Buffer.from('one chunk');
  d.end(one);
  assert.equal(await pd, one);
  const e = new PassThrough();
  const pe = readBounded(e, 100);
  e.write('two ');
  e.end('chunks');
  assert.equal((await pe)?.toString(), 'two chunks');

  const c = new PassThrough();
  const pc = readBounded(c, 100);
  c.write('partial');
  c.destroy();
  await assert.rejects(pc, /closed before its end/);
});
