import { X509Certificate, createPrivateKey } from 'node:crypto';
import { IdentityError } from './errors.ts';

/**
 * The sidecar's current mesh identity: its key, its certificate and what it trusts. Handed to the
 * mesh ingress and dialer (which build TLS contexts from it) and written out for Postfix/Dovecot.
 */
export interface Identity {
  /** The leaf certificate alone (PEM). */
  certPem: string;
  /** The private key, PKCS#8 PEM. Never logged, never sent. */
  keyPem: string;
  /** Leaf then issuer (PEM): what a TLS endpoint presents. */
  chainPem: string;
  /** The trust bundle (one or more roots, PEM) that came with the certificate. */
  bundlePem: string;
  /** `spiffe://<td>/shard/<shard>/node/<node>`. */
  spiffeId: string;
  /** Uppercase hex, as node's `X509Certificate.serialNumber` prints it. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** `valid`: a certificate within its validity; `expired`: past notAfter; `none`: never joined. */
export type IdentityState = 'valid' | 'expired' | 'none';

/** The state of an identity at `now` (ms since epoch). */
export function identityState(identity: Identity | undefined, now: number): IdentityState {
  if (!identity) return 'none';
  return now >= identity.notAfter.getTime() ? 'expired' : 'valid';
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\s*/g;

/** Every certificate block of a PEM text, each normalised to end with a newline. */
export function splitPemCertificates(pem: string): string[] {
  return [...pem.matchAll(PEM_CERT)].map((m) => m[0].trim() + '\n');
}

/** The first `URI:` entry of a certificate's subjectAltName, or undefined. */
export function uriSanOf(cert: X509Certificate): string | undefined {
  const san = cert.subjectAltName ?? '';
  for (const part of san.split(/,\s*/)) {
    if (part.startsWith('URI:')) return part.slice(4);
  }
  return undefined;
}

/**
 * Build an {@link Identity} from what the control plane returned (or what was on disk): checks
 * that the chain parses, that the leaf carries a URI SAN, and that the key belongs to the leaf —
 * a mismatched pair would otherwise only show up as failed handshakes.
 *
 * @throws IdentityError `ERR_IDENTITY_BAD_CERT` or `ERR_IDENTITY_KEY_MISMATCH`.
 */
export function buildIdentity(input: { keyPem: string; chainPem: string; bundlePem: string }): Identity {
  const certs = splitPemCertificates(input.chainPem);
  if (certs.length === 0) throw new IdentityError('ERR_IDENTITY_BAD_CERT', 'the certificate chain holds no PEM certificate');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certs[0]);
  } catch (err) {
    throw new IdentityError('ERR_IDENTITY_BAD_CERT', `cannot parse the leaf certificate: ${(err as Error).message}`, { cause: err });
  }
  const spiffeId = uriSanOf(leaf);
  if (!spiffeId) throw new IdentityError('ERR_IDENTITY_BAD_CERT', 'the leaf certificate has no URI SAN (SPIFFE ID)');
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(input.keyPem));
  } catch (err) {
    throw new IdentityError('ERR_IDENTITY_KEY_MISMATCH', `cannot read the private key: ${(err as Error).message}`, { cause: err });
  }
  if (!matches) throw new IdentityError('ERR_IDENTITY_KEY_MISMATCH', 'the certificate does not belong to the private key');
  return {
    certPem: certs[0],
    keyPem: input.keyPem,
    chainPem: certs.join(''),
    bundlePem: input.bundlePem,
    spiffeId,
    serial: leaf.serialNumber.toUpperCase(),
    notBefore: leaf.validFromDate,
    notAfter: leaf.validToDate,
  };
}
