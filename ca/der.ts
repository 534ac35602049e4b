// A minimal DER (ITU-T X.690 §10) writer and reader: just what X.509 certificates and PKCS#10
// requests need. Hand-rolled because issuance is on a hot path (DESIGN.md "keep encoding cheap"):
// a generic ASN.1 library costs more than the ECDSA signature itself.

/** ASN.1 universal tags used by X.509 (X.680 §8.4). */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Encode a DER length (X.690 §8.1.3: short form below 128, long form otherwise). */
function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n < 0x1000000) return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  throw new RangeError('DER value too long');
}

/** A tag-length-value with the given tag byte and concatenated contents. */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

/** SEQUENCE of already-encoded elements. */
export const seq = (...parts: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, ...parts);
/** SET of already-encoded elements (callers pass them in DER order). */
export const set = (...parts: Uint8Array[]): Buffer => tlv(TAG.SET, ...parts);
/** OCTET STRING. */
export const octetString = (b: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, b);
/** BIT STRING with `unused` padding bits in the last byte (X.690 §8.6). */
export const bitString = (b: Uint8Array, unused = 0): Buffer => tlv(TAG.BIT_STRING, Buffer.from([unused]), b);
/** BOOLEAN (DER: TRUE is 0xff, X.690 §11.1). */
export const bool = (v: boolean): Buffer => Buffer.from([TAG.BOOLEAN, 1, v ? 0xff : 0]);
/** NULL. */
export const nul = (): Buffer => Buffer.from([TAG.NULL, 0]);
/** UTF8String. */
export const utf8 = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
/** IA5String (ASCII; used for URI and dNSName GeneralNames). */
export const ia5 = (s: string): Buffer => tlv(TAG.IA5_STRING, Buffer.from(s, 'ascii'));
/** A context-specific tag `[n]`; constructed for EXPLICIT tagging or IMPLICIT SEQUENCE/SET. */
export const ctx = (n: number, constructed: boolean, ...parts: Uint8Array[]): Buffer => tlv((constructed ? 0xa0 : 0x80) | n, ...parts);

/** INTEGER from a non-negative magnitude (big-endian bytes): minimal, with a 0x00 sign byte when
 * the top bit is set (X.690 §8.3.2). */
export function uint(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return m[0] & 0x80 ? tlv(TAG.INTEGER, Buffer.from([0]), m) : tlv(TAG.INTEGER, m);
}

/** INTEGER from a small non-negative number. */
export function int(n: number): Buffer {
  const bytes: number[] = [];
  do {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  } while (n > 0);
  return uint(Uint8Array.from(bytes));
}

const oidCache = new Map<string, Buffer>();
/** OBJECT IDENTIFIER from dotted form (X.690 §8.19); encodings are cached. */
export function oid(dotted: string): Buffer {
  const hit = oidCache.get(dotted);
  if (hit) return hit;
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [];
  const first = [arcs[0] * 40 + arcs[1], ...arcs.slice(2)];
  for (const arc of first) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  const enc = tlv(TAG.OID, Uint8Array.from(out));
  oidCache.set(dotted, enc);
  return enc;
}

/** Decode an OBJECT IDENTIFIER's contents to dotted form. */
export function decodeOid(value: Uint8Array): string {
  const arcs: number[] = [];
  let v = 0;
  for (const b of value) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (arcs.length === 0) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
    }
  }
  return arcs.join('.');
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** X.509 Time (RFC 5280 §4.1.2.5): UTCTime through 2049, GeneralizedTime from 2050, always in
 * seconds and `Z`. Milliseconds are dropped, so callers floor their dates first. */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${pad(y % 100)}${rest}`, 'ascii'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${pad(y, 4)}${rest}`, 'ascii'));
}

/** One decoded TLV: positions into the buffer it was read from. */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  valueStart: number;
  /** Offset just past the contents. */
  end: number;
}

/** Thrown by the reader on malformed DER; callers translate it to their own error code. */
export class DerError extends Error {}

/** Read one TLV at `offset`, bounded by `limit`. Only definite lengths (DER, X.690 §10.1). */
export function read(buf: Uint8Array, offset = 0, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerError('truncated');
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not supported');
  let len = buf[offset + 1];
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > limit) throw new DerError('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++];
  }
  if (p + len > limit) throw new DerError('truncated');
  return { tag, start: offset, valueStart: p, end: p + len };
}

/** The children of a constructed TLV, in order. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.valueStart; p < parent.end; ) {
    const t = read(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

/** Read one TLV and insist on its tag. */
export function expect(buf: Uint8Array, offset: number, tag: number, limit = buf.length): Tlv {
  const t = read(buf, offset, limit);
  if (t.tag !== tag) throw new DerError(`expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
  return t;
}

/** The contents of a TLV as a Buffer view (no copy). */
export function value(buf: Uint8Array, t: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + t.valueStart, t.end - t.valueStart);
}

/** The whole TLV (header and contents) as a Buffer view (no copy). */
export function whole(buf: Uint8Array, t: Tlv): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start);
}

/** PEM-armour DER (RFC 7468 §2: base64 in 64-character lines). */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + '\n';
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/** Every PEM block with the given label, decoded (RFC 7468 §3, lax about whitespace). */
export function fromPem(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  const out: Buffer[] = [];
  for (const m of text.matchAll(re)) out.push(Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
  return out;
}
