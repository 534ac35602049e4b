// Building and reading X.509 certificates (RFC 5280 §4.1) with the DER helpers in der.ts.
import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import { OID, schemeFor } from './algorithms.ts';
import { TAG, bitString, bool, children, ctx, decodeOid, expect, int, octetString, oid, read, seq, set, time, uint, utf8, value, whole } from './der.ts';

/** One extension (RFC 5280 §4.1: extnID, critical DEFAULT FALSE, extnValue OCTET STRING). */
export function extension(id: string, critical: boolean, der: Uint8Array): Buffer {
  return critical ? seq(oid(id), bool(true), octetString(der)) : seq(oid(id), octetString(der));
}

/** An X.501 Name from (OID, UTF8 value) pairs, one attribute per RDN. Empty list → empty Name. */
export function encodeName(attrs: { oid: string; value: string }[]): Buffer {
  return seq(...attrs.map((a) => set(seq(oid(a.oid), utf8(a.value)))));
}

/** Subject key identifier, RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Uint8Array): Buffer {
  const outer = read(spki, 0);
  const [, bits] = children(spki, outer);
  return createHash('sha1').update(value(spki, bits).subarray(1)).digest();
}

/** A 128-bit random serial (CA/B BR §7.1 asks for >= 64 bits of CSPRNG output). Returned as the
 * positive INTEGER magnitude (RFC 5280 §4.1.2.2: positive, at most 20 octets). */
export function randomSerial(): Buffer {
  const b = randomBytes(16);
  if (b[0] === 0) b[0] = 1; // keep 16 significant bytes so every serial prints at the same width
  return b;
}

/** Serial magnitude as node's `X509Certificate.serialNumber` prints it: uppercase hex, no sign byte. */
export function serialHex(magnitude: Uint8Array): string {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  return Buffer.from(magnitude.subarray(i)).toString('hex').toUpperCase();
}

/** Floor a date to whole seconds, the precision of X.509 Time. */
export function floorToSecond(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

/** Ingredients of a certificate. */
export interface CertificateTemplate {
  serial: Uint8Array;
  issuerName: Buffer;
  subjectName: Buffer;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  extensions: Buffer[];
  signingKey: KeyObject;
}

/** Encode the TBSCertificate, sign it and return the certificate DER. */
export function buildCertificate(t: CertificateTemplate): Buffer {
  const scheme = schemeFor(t.signingKey);
  const tbs = seq(
    ctx(0, true, int(2)), // version v3 (RFC 5280 §4.1.2.1)
    uint(t.serial),
    scheme.algorithmIdentifier,
    t.issuerName,
    seq(time(t.notBefore), time(t.notAfter)),
    t.subjectName,
    t.spki,
    ctx(3, true, seq(...t.extensions)),
  );
  return seq(tbs, scheme.algorithmIdentifier, bitString(sign(scheme.hash, tbs, t.signingKey)));
}

/** basicConstraints (RFC 5280 §4.2.1.9), always critical in this CA. */
export function basicConstraints(ca: boolean, pathLen?: number): Buffer {
  const body = ca ? (pathLen === undefined ? seq(bool(true)) : seq(bool(true), int(pathLen))) : seq();
  return extension(OID.basicConstraints, true, body);
}

/** keyUsage bits (RFC 5280 §4.2.1.3). */
export const KU = { digitalSignature: 0x80, keyCertSign: 0x04, cRLSign: 0x02 } as const;

/** keyUsage, critical, from a one-byte bit mask (DER: trailing zero bits are dropped, X.690 §11.2.2). */
export function keyUsage(mask: number): Buffer {
  let unused = 0;
  while (unused < 7 && !(mask & (1 << unused))) unused++;
  return extension(OID.keyUsage, true, bitString(Buffer.from([mask]), unused));
}

/** extKeyUsage with serverAuth and clientAuth: every mesh peer is both. */
export function extKeyUsageBoth(): Buffer {
  return extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth)));
}

/** subjectAltName with one URI and any DNS names; critical when the subject is empty (RFC 5280 §4.2.1.6). */
export function subjectAltName(uris: string[], dnsNames: string[], critical: boolean): Buffer {
  // GeneralName: dNSName [2] IA5String, uniformResourceIdentifier [6] IA5String (IMPLICIT).
  const names = [...uris.map((u) => ctx(6, false, Buffer.from(u, 'ascii'))), ...dnsNames.map((d) => ctx(2, false, Buffer.from(d, 'ascii')))];
  return extension(OID.subjectAltName, critical, seq(...names));
}

/** subjectKeyIdentifier (RFC 5280 §4.2.1.2). */
export function subjectKeyIdentifier(ski: Uint8Array): Buffer {
  return extension(OID.subjectKeyIdentifier, false, octetString(ski));
}

/** authorityKeyIdentifier with keyIdentifier [0] only (RFC 5280 §4.2.1.1). */
export function authorityKeyIdentifier(ski: Uint8Array): Buffer {
  return extension(OID.authorityKeyIdentifier, false, seq(ctx(0, false, ski)));
}


/** What the reader pulls out of a certificate's DER. */
export interface CertificateFields {
  serial: string;
  issuerName: Buffer;
  subjectName: Buffer;
  spki: Buffer;
  /** extnID → { critical, extnValue contents }. */
  extensions: Map<string, { critical: boolean; value: Buffer }>;
}

/** Read the fields the CA needs from a certificate DER. Throws DerError on malformed input. */
export function readCertificate(der: Uint8Array): CertificateFields {
  const outer = expect(der, 0, TAG.SEQUENCE);
  const tbs = expect(der, outer.valueStart, TAG.SEQUENCE, outer.end);
  const parts = children(der, tbs);
  let i = 0;
  if (parts[i]?.tag === 0xa0) i++; // version
  const serialTlv = parts[i++];
  i++; // signature
  const issuer = parts[i++];
  i++; // validity
  const subject = parts[i++];
  const spki = parts[i++];
  if (!serialTlv || serialTlv.tag !== TAG.INTEGER || !issuer || !subject || !spki) throw new Error('truncated TBSCertificate');
  const extensions = new Map<string, { critical: boolean; value: Buffer }>();
  for (; i < parts.length; i++) {
    if (parts[i].tag !== 0xa3) continue;
    const list = expect(der, parts[i].valueStart, TAG.SEQUENCE, parts[i].end);
    for (const ext of children(der, list)) {
      const f = children(der, ext);
      const id = decodeOid(value(der, f[0]));
      const critical = f.length === 3 && f[1].tag === TAG.BOOLEAN && der[f[1].valueStart] !== 0;
      extensions.set(id, { critical, value: value(der, f[f.length - 1]) });
    }
  }
  return {
    serial: serialHex(value(der, serialTlv)),
    issuerName: whole(der, issuer),
    subjectName: whole(der, subject),
    spki: whole(der, spki),
    extensions,
  };
}

/** Decode a basicConstraints extnValue. */
export function decodeBasicConstraints(v: Buffer): { ca: boolean; pathLen?: number } {
  const s = expect(v, 0, TAG.SEQUENCE);
  const f = children(v, s);
  let ca = false;
  let pathLen: number | undefined;
  for (const t of f) {
    if (t.tag === TAG.BOOLEAN) ca = v[t.valueStart] !== 0;
    else if (t.tag === TAG.INTEGER) pathLen = value(v, t).reduce((a, b) => a * 256 + b, 0);
  }
  return { ca, pathLen };
}

/** Decode a subjectAltName extnValue into URIs and DNS names (other name types are counted as other). */
export function decodeSubjectAltName(v: Buffer): { uris: string[]; dnsNames: string[] } {
  const s = expect(v, 0, TAG.SEQUENCE);
  const uris: string[] = [];
  const dnsNames: string[] = [];
  for (const t of children(v, s)) {
    if (t.tag === 0x86) uris.push(value(v, t).toString('latin1'));
    else if (t.tag === 0x82) dnsNames.push(value(v, t).toString('latin1'));
  }
  return { uris, dnsNames };
}

/** Decode an extKeyUsage extnValue into OIDs. */
export function decodeExtKeyUsage(v: Buffer): string[] {
  const s = expect(v, 0, TAG.SEQUENCE);
  return children(v, s).map((t) => decodeOid(value(v, t)));
}

/** Decode a keyUsage extnValue into its first byte of bits (digitalSignature … cRLSign). */
export function decodeKeyUsage(v: Buffer): number {
  const t = expect(v, 0, TAG.BIT_STRING);
  return t.end - t.valueStart > 1 ? v[t.valueStart + 1] : 0;
}

/** Decode an authority/subject key identifier extnValue to its key id bytes. */
export function decodeKeyId(v: Buffer, authority: boolean): Buffer | undefined {
  if (!authority) return value(v, expect(v, 0, TAG.OCTET_STRING));
  const s = expect(v, 0, TAG.SEQUENCE);
  const k = children(v, s).find((t) => t.tag === 0x80);
  return k ? value(v, k) : undefined;
}
