// Creating CA certificates: the offline root and the online issuing CA. Rare and slow-path, but
// the same DER writer as leaves keeps one encoder to audit.
import { X509Certificate, type KeyObject } from 'node:crypto';
import { OID } from './algorithms.ts';
import { KU, authorityKeyIdentifier, basicConstraints, buildCertificate, encodeName, floorToSecond, keyIdentifier, keyUsage, randomSerial, readCertificate, subjectKeyIdentifier } from './certificate.ts';
import { toPem } from './der.ts';
import { CaError } from './errors.ts';
import { generateKeyPair, type KeyAlgorithm } from './keys.ts';
import { BACKDATE_MS } from './issue.ts';
import { assertTrustDomain } from './spiffe.ts';

/** Default root lifetime: ten years (the root stays offline). */
export const DEFAULT_ROOT_TTL_MS = 10 * 365 * 86_400_000;
/** Default issuing CA lifetime: one year, rotated with the root key. */
export const DEFAULT_ISSUER_TTL_MS = 365 * 86_400_000;

/** A CA certificate and its key. */
export interface CaMaterial {
  cert: X509Certificate;
  certPem: string;
  privateKey: KeyObject;
}

const toMs = (now: Date | number | undefined) => (now === undefined ? Date.now() : typeof now === 'number' ? now : now.getTime());

/**
 * Make a self-signed root CA: basicConstraints CA:true pathLen 1 (root → issuing CA → leaf, no
 * deeper, RFC 5280 §4.2.1.9), keyUsage keyCertSign + cRLSign (critical).
 */
export function createRootCa(opts: { trustDomain: string; algorithm?: KeyAlgorithm; ttlMs?: number; now?: Date | number }): CaMaterial {
  assertTrustDomain(opts.trustDomain);
  const now = toMs(opts.now);
  const kp = generateKeyPair(opts.algorithm ?? 'P-256');
  const spki = kp.publicKey.export({ type: 'spki', format: 'der' });
  const serial = randomSerial();
  // A short serial suffix keeps the names of overlapping roots distinct during a rotation.
  const name = encodeName([
    { oid: OID.organizationName, value: opts.trustDomain },
    { oid: OID.commonName, value: `mailmesh root CA ${serial.subarray(0, 4).toString('hex')}` },
  ]);
  const der = buildCertificate({
    serial,
    issuerName: name,
    subjectName: name,
    notBefore: floorToSecond(now - BACKDATE_MS),
    notAfter: floorToSecond(now + (opts.ttlMs ?? DEFAULT_ROOT_TTL_MS)),
    spki,
    extensions: [basicConstraints(true, 1), keyUsage(KU.keyCertSign | KU.cRLSign), subjectKeyIdentifier(keyIdentifier(spki))],
    signingKey: kp.privateKey,
  });
  const certPem = toPem('CERTIFICATE', der);
  return { cert: new X509Certificate(der), certPem, privateKey: kp.privateKey };
}

/**
 * Make an issuing (intermediate) CA signed by the root: CA:true pathLen 0 (it signs leaves only),
 * keyUsage keyCertSign + cRLSign (critical), lifetime capped by the root's.
 */
export function createIssuingCa(opts: { root: X509Certificate; rootKey: KeyObject; trustDomain: string; algorithm?: KeyAlgorithm; ttlMs?: number; now?: Date | number }): CaMaterial {
  assertTrustDomain(opts.trustDomain);
  const now = toMs(opts.now);
  const rootNotAfter = opts.root.validToDate.getTime();
  if (now >= rootNotAfter) throw new CaError('ERR_ISSUER_EXPIRED', `the root CA expired at ${opts.root.validToDate.toISOString()}: make a new CA with mailmesh ca init`);
  if (!opts.root.checkPrivateKey(opts.rootKey)) throw new CaError('ERR_BAD_KEY', 'root.key does not belong to root.pem');
  const rootFields = readCertificate(opts.root.raw);
  const kp = generateKeyPair(opts.algorithm ?? 'P-256');
  const spki = kp.publicKey.export({ type: 'spki', format: 'der' });
  const serial = randomSerial();
  const der = buildCertificate({
    serial,
    issuerName: rootFields.subjectName,
    subjectName: encodeName([
      { oid: OID.organizationName, value: opts.trustDomain },
      { oid: OID.commonName, value: `mailmesh issuing CA ${serial.subarray(0, 4).toString('hex')}` },
    ]),
    notBefore: floorToSecond(Math.max(now - BACKDATE_MS, opts.root.validFromDate.getTime())),
    notAfter: floorToSecond(Math.min(now + (opts.ttlMs ?? DEFAULT_ISSUER_TTL_MS), rootNotAfter)),
    spki,
    extensions: [
      basicConstraints(true, 0),
      keyUsage(KU.keyCertSign | KU.cRLSign),
      subjectKeyIdentifier(keyIdentifier(spki)),
      authorityKeyIdentifier(keyIdentifier(rootFields.spki)),
    ],
    signingKey: opts.rootKey,
  });
  return { cert: new X509Certificate(der), certPem: toPem('CERTIFICATE', der), privateKey: kp.privateKey };
}
