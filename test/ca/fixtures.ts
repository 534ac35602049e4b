// Test-only builders for certificates the CA would never issue (bad EKU, two URIs, CA leaves…),
// made with the same DER helpers so each negative case differs from a good leaf in one respect.
import { X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OID } from '../../ca/algorithms.ts';
import { KU, authorityKeyIdentifier, basicConstraints, buildCertificate, encodeName, extension, keyIdentifier, keyUsage, randomSerial, readCertificate, subjectAltName, subjectKeyIdentifier } from '../../ca/certificate.ts';
import { oid, seq, toPem } from '../../ca/der.ts';
import type { Issuer } from '../../ca/issuer.ts';
import { generateKeyPair } from '../../ca/keys.ts';

export const TD = 'mail.example';
export const HOUR = 3_600_000;

/** A temp dir removed by the returned function. */
export function tempDir(prefix = 'mailmesh-ca-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Options for a hand-made leaf; defaults make a good one. */
export interface LeafOptions {
  uris?: string[];
  dnsNames?: string[];
  ca?: boolean;
  eku?: string[] | null;
  ku?: number | null;
  notBefore?: Date;
  notAfter?: Date;
  extra?: Buffer[];
}

/** Sign a leaf with any issuer cert/key (or self-sign when `issuerCert` is omitted). */
export function makeLeaf(signer: { cert?: X509Certificate; key: KeyObject }, publicKey: KeyObject, o: LeafOptions = {}): X509Certificate {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const issuerFields = signer.cert ? readCertificate(signer.cert.raw) : undefined;
  const subject = signer.cert ? seq() : encodeName([{ oid: OID.commonName, value: 'self' }]);
  const exts = [
    basicConstraints(o.ca ?? false, o.ca ? 0 : undefined),
    ...(o.ku === null ? [] : [keyUsage(o.ku ?? KU.digitalSignature)]),
    ...(o.eku === null ? [] : [extension(OID.extKeyUsage, false, seq(...(o.eku ?? [OID.serverAuth, OID.clientAuth]).map((e) => oid(e))))]),
    subjectKeyIdentifier(keyIdentifier(spki)),
    ...(issuerFields ? [authorityKeyIdentifier(keyIdentifier(issuerFields.spki))] : []),
    subjectAltName(o.uris ?? [`spiffe://${TD}/shard/s1/node/n1`], o.dnsNames ?? [], true),
    ...(o.extra ?? []),
  ];
  const now = Date.now();
  const der = buildCertificate({
    serial: randomSerial(),
    issuerName: issuerFields ? issuerFields.subjectName : subject,
    subjectName: subject,
    notBefore: o.notBefore ?? new Date(Math.floor(now / 1000) * 1000 - 60_000),
    notAfter: o.notAfter ?? new Date(Math.floor(now / 1000) * 1000 + HOUR),
    spki,
    extensions: exts,
    signingKey: signer.key,
  });
  return new X509Certificate(toPem('CERTIFICATE', der));
}

/** A leaf signed by the real issuer with deviations. */
export function badLeaf(issuer: Issuer, o: LeafOptions = {}): X509Certificate {
  return makeLeaf({ cert: issuer.cert, key: issuer.key }, generateKeyPair().publicKey, o);
}
