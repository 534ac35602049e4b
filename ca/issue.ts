import { sign, type KeyObject } from 'node:crypto';
import { bitString, ctx, int, seq, time, toPem, uint } from './der.ts';
import { floorToSecond, keyIdentifier, randomSerial, serialHex, subjectAltName, subjectKeyIdentifier } from './certificate.ts';
import { readCsr } from './csr.ts';
import { CaError } from './errors.ts';
import type { Issuer } from './issuer.ts';
import { keyAlgorithmOf } from './keys.ts';
import { parseSpiffeId } from './spiffe.ts';

/** Clock-skew allowance: leaves start 60 s in the past so a peer whose clock runs a little
 * behind still accepts them (DESIGN.md identity lifecycle). */
export const BACKDATE_MS = 60_000;

/** What to issue. Exactly one of `csr` or `publicKey`. */
export interface IssueRequest {
  /** PKCS#10 request (DER or PEM); its signature is verified, its subject ignored. */
  csr?: Uint8Array | string;
  /** A public key the caller already proved possession of (e.g. generated in-process). */
  publicKey?: KeyObject;
  /** The identity, chosen by the caller (never from the CSR). Must be in the issuer's trust domain. */
  spiffeId: string;
  /** Extra DNS SANs (for Postfix/Dovecot peers that check host names). */
  dnsNames?: readonly string[];
  /** Requested lifetime; capped by the issuing CA's own notAfter. */
  ttlMs: number;
  /** Issue as of this time (default: now). */
  now?: Date | number;
}

/** An issued leaf certificate. */
export interface IssuedLeaf {
  /** The leaf alone, PEM. */
  certPem: string;
  /** Leaf then issuing CA, PEM: what a TLS endpoint presents and Postfix/Dovecot read. */
  chainPem: string;
  /** The leaf DER. */
  der: Buffer;
  /** Uppercase hex, as node's `X509Certificate.serialNumber` prints it. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  spiffeId: string;
  dnsNames: string[];
}

const VERSION_3 = ctx(0, true, int(2));
const EMPTY_NAME = seq();
// RFC 1035 §2.3.1 / RFC 5280 §4.2.1.6: preferred name syntax, optionally one leading wildcard label.
const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * Issue an X.509-SVID leaf certificate (SPIFFE X509-SVID spec): empty subject, the SPIFFE ID as
 * the only URI SAN (critical, since the subject is empty), EKU serverAuth + clientAuth,
 * keyUsage digitalSignature (critical), CA:false, a 128-bit random serial, notBefore backdated
 * 60 s and notAfter capped by the issuer's. Synchronous: one signature plus encoding.
 *
 * @example
 * const leaf = issueLeaf(ca.issuer, { csr, spiffeId: nodeSpiffeId(td, 'tokyo-1', 'a'), ttlMs: 3_600_000 });
 * await writeFileAtomic('node.crt', leaf.chainPem);
 */
export function issueLeaf(issuer: Issuer, req: IssueRequest): IssuedLeaf {
  if (!Number.isFinite(req.ttlMs) || req.ttlMs <= 0) throw new CaError('ERR_BAD_TTL', `invalid TTL ${req.ttlMs} ms: use a positive duration such as 1h`);
  const id = parseSpiffeId(req.spiffeId);
  if (id.trustDomain !== issuer.trustDomain) {
    throw new CaError('ERR_WRONG_TRUST_DOMAIN', `SPIFFE ID ${req.spiffeId} is outside trust domain ${issuer.trustDomain}: use spiffe://${issuer.trustDomain}/…`);
  }
  if (id.path === '') throw new CaError('ERR_NOT_SPIFFE', `SPIFFE ID ${req.spiffeId} names the trust domain itself: a workload ID needs a path`);
  const dnsNames = [...(req.dnsNames ?? [])];
  for (const d of dnsNames) {
    if (d.length > 253 || !DNS_NAME.test(d)) throw new CaError('ERR_BAD_DNS_NAME', `invalid DNS name "${d}": use a host name such as mx1.mail.example`);
  }
  let spki: Buffer;
  if (req.csr !== undefined) {
    if (req.publicKey) throw new CaError('ERR_CSR_INVALID', 'pass either a CSR or a public key, not both');
    spki = readCsr(req.csr).spki;
  } else if (req.publicKey) {
    keyAlgorithmOf(req.publicKey);
    spki = req.publicKey.export({ type: 'spki', format: 'der' });
  } else {
    throw new CaError('ERR_CSR_INVALID', 'no CSR and no public key to certify');
  }

  const nowMs = req.now === undefined ? Date.now() : typeof req.now === 'number' ? req.now : req.now.getTime();
  if (nowMs >= issuer.notAfter.getTime()) {
    throw new CaError('ERR_ISSUER_EXPIRED', `the issuing CA expired at ${issuer.notAfter.toISOString()}: rotate it with the root key`);
  }
  const notBefore = floorToSecond(Math.max(nowMs - BACKDATE_MS, issuer.notBefore.getTime()));
  const notAfter = floorToSecond(Math.min(nowMs + req.ttlMs, issuer.notAfter.getTime()));
  const serial = randomSerial();

  const extensions = seq(
    issuer.leafFixedExtensions,
    subjectKeyIdentifier(keyIdentifier(spki)),
    // SPIFFE X509-SVID §2 and RFC 5280 §4.2.1.6: the subject is empty, so the SAN is critical.
    subjectAltName([id.id], dnsNames, true),
  );
  const tbs = seq(VERSION_3, uint(serial), issuer.scheme.algorithmIdentifier, issuer.issuerName, seq(time(notBefore), time(notAfter)), EMPTY_NAME, spki, ctx(3, true, extensions));
  const der = seq(tbs, issuer.scheme.algorithmIdentifier, bitString(sign(issuer.scheme.hash, tbs, issuer.key)));
  const certPem = toPem('CERTIFICATE', der);
  return { certPem, chainPem: certPem + issuer.certPem, der, serial: serialHex(serial), notBefore, notAfter, spiffeId: id.id, dnsNames };
}
