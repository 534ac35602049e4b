import type { X509Certificate } from 'node:crypto';
import { OID } from './algorithms.ts';
import { decodeSubjectAltName, readCertificate } from './certificate.ts';
import { keyAlgorithmOf } from './keys.ts';

/**
 * What `mailmesh ca inspect --json` prints for one certificate. The keys are a stable contract
 * (DESIGN.md: `--json` output is stable and documented); add keys, never rename them.
 */
export interface CertificateInfo {
  /** The SPIFFE ID (first `spiffe://` URI SAN), or null for CA and foreign certificates. */
  spiffeId: string | null;
  dnsNames: string[];
  /** Uppercase hex, as node and `mailmesh ca revoke` use it. */
  serial: string;
  /** ISO 8601. */
  notBefore: string;
  notAfter: string;
  /** Distinguished names as `O=…, CN=…`; `''` for the empty subject of an X.509-SVID. */
  issuer: string;
  subject: string;
  isCa: boolean;
  /** `P-256`, `P-384`, `Ed25519`, or node's key type (e.g. `rsa`) for anything else. */
  keyAlgorithm: string;
  /** SHA-256 fingerprint, colon-separated uppercase hex. */
  fingerprint256: string;
}

// node leaves `subject` undefined for an empty Name (X.509-SVIDs have one).
const dn = (s: string | undefined) => (s ?? '').split('\n').filter(Boolean).join(', ');

/** Describe a certificate for people and scripts. */
export function describeCertificate(cert: X509Certificate): CertificateInfo {
  let spiffeId: string | null = null;
  let dnsNames: string[] = [];
  try {
    const san = readCertificate(cert.raw).extensions.get(OID.subjectAltName);
    if (san) {
      const names = decodeSubjectAltName(san.value);
      spiffeId = names.uris.find((u) => u.startsWith('spiffe://')) ?? null;
      dnsNames = names.dnsNames;
    }
  } catch {
    // A certificate node parsed but our reader did not: show what node knows.
  }
  let keyAlgorithm: string;
  try {
    keyAlgorithm = keyAlgorithmOf(cert.publicKey);
  } catch {
    keyAlgorithm = cert.publicKey.asymmetricKeyType ?? 'unknown';
  }
  return {
    spiffeId,
    dnsNames,
    serial: cert.serialNumber,
    notBefore: cert.validFromDate.toISOString(),
    notAfter: cert.validToDate.toISOString(),
    issuer: dn(cert.issuer),
    subject: dn(cert.subject),
    isCa: cert.ca,
    keyAlgorithm,
    fingerprint256: cert.fingerprint256,
  };
}
