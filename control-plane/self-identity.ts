import type { X509Certificate } from 'node:crypto';
import { generateKeyPair, privateKeyToPem, type KeyPair } from '../ca/keys.ts';
import { issueLeaf } from '../ca/issue.ts';
import type { Issuer } from '../ca/issuer.ts';
import { parseCertificates } from '../ca/pem.ts';
import { controlPlaneSpiffeId } from '../ca/spiffe.ts';

/** The control plane's own certificate: it serves mTLS with it and signs snapshots with it. */
export interface SelfIdentity {
  spiffeId: string;
  keyPair: KeyPair;
  keyPem: string;
  /** Leaf then issuer. */
  chainPem: string;
  chain: X509Certificate[];
  serial: string;
  notBefore: number;
  notAfter: number;
}

/**
 * Issue the control plane's identity `spiffe://TD/control-plane` from the issuing CA with a
 * fresh P-256 key (P-256 whatever the CA uses: snapshots are then ES256, which every verifier has).
 */
export function issueSelfIdentity(issuer: Issuer, ttlMs: number, now: number): SelfIdentity {
  const keyPair = generateKeyPair('P-256');
  const spiffeId = controlPlaneSpiffeId(issuer.trustDomain);
  const leaf = issueLeaf(issuer, { publicKey: keyPair.publicKey, spiffeId, dnsNames: ['localhost'], ttlMs, now });
  return {
    spiffeId,
    keyPair,
    keyPem: privateKeyToPem(keyPair.privateKey),
    chainPem: leaf.chainPem,
    chain: parseCertificates(leaf.chainPem),
    serial: leaf.serial,
    notBefore: leaf.notBefore.getTime(),
    notAfter: leaf.notAfter.getTime(),
  };
}
