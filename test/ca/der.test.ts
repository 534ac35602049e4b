import { test } from 'node:test';
import assert from 'node:assert/strict';
import { children, decodeOid, expect, int, oid, read, seq, time, uint, value, TAG, toPem, fromPem, tlv } from '../../ca/der.ts';

test('OIDs encode per X.690 §8.19 and decode back', () => {
  assert.equal(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
  for (const o of ['2.5.29.17', '1.3.6.1.5.5.7.3.2', '1.3.101.112', '2.999.3']) assert.equal(decodeOid(value(oid(o), read(oid(o)))), o);
});

test('INTEGERs are minimal with a sign byte when the top bit is set', () => {
  assert.equal(uint(Buffer.from([0x00, 0x00, 0x7f])).toString('hex'), '02017f');
  assert.equal(uint(Buffer.from([0x80])).toString('hex'), '02020080');
  assert.equal(int(0).toString('hex'), '020100');
  assert.equal(int(300).toString('hex'), '0202012c');
});

test('times use UTCTime before 2050 and GeneralizedTime after (RFC 5280 §4.1.2.5)', () => {
  assert.equal(time(new Date(Date.UTC(2026, 0, 2, 3, 4, 5))).toString('latin1').slice(2), '260102030405Z');
  assert.equal(time(new Date(Date.UTC(2026, 0, 1)))[0], TAG.UTC_TIME);
  const g = time(new Date(Date.UTC(2050, 0, 1)));
  assert.equal(g[0], TAG.GENERALIZED_TIME);
  assert.equal(g.subarray(2).toString('latin1'), '20500101000000Z');
});

test('long lengths round-trip and truncated input is refused', () => {
  const big = tlv(TAG.OCTET_STRING, Buffer.alloc(300, 1));
  assert.equal(big.subarray(0, 4).toString('hex'), '0482012c');
  const s = seq(big, int(5));
  const kids = children(s, expect(s, 0, TAG.SEQUENCE));
  assert.equal(kids.length, 2);
  assert.equal(value(s, kids[0]).length, 300);
  assert.throws(() => read(s.subarray(0, 10)), /truncated/);
  assert.throws(() => expect(s, 0, TAG.SET), /expected tag/);
});

test('PEM round-trips in 64-column lines', () => {
  const der = Buffer.alloc(100, 7);
  const pem = toPem('CERTIFICATE', der);
  assert.ok(pem.split('\n').every((l) => l.length <= 64));
  assert.deepEqual(fromPem(pem + pem, 'CERTIFICATE'), [der, der]);
});
