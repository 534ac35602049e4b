import { CaError } from './errors.ts';
import type { TrustBundle } from './bundle.ts';
import { issueLeaf } from './issue.ts';
import type { Issuer } from './issuer.ts';
import { generateKeyPair } from './keys.ts';
import { parseCertificates } from './pem.ts';
import { verifyPeerChain } from './verify.ts';

/**
 * A new issuing CA proves itself before use (after spire pkg/server/ca/validation.go): it signs a
 * throwaway leaf and that leaf must verify against the bundle as both client and server.
 * Throws `ERR_ISSUER_SELFTEST` with the underlying error as `cause`.
 */
export function proveIssuer(issuer: Issuer, bundle: TrustBundle, now?: Date | number): void {
  try {
    const kp = generateKeyPair('P-256');
    const leaf = issueLeaf(issuer, { publicKey: kp.publicKey, spiffeId: `spiffe://${issuer.trustDomain}/mailmesh/selftest`, ttlMs: 60_000, now });
    const chain = parseCertificates(leaf.chainPem);
    const at = (now === undefined ? Date.now() : typeof now === 'number' ? now : now.getTime());
    for (const usage of ['client', 'server'] as const) verifyPeerChain(chain, { bundle, trustDomain: issuer.trustDomain, usage, now: at });
  } catch (err) {
    const detail = err instanceof CaError ? `${err.code}: ${err.message}` : (err as Error).message;
    throw new CaError('ERR_ISSUER_SELFTEST', `the issuing CA failed its self-test (${detail}): check issuer.pem, issuer.key and bundle.pem belong to the same CA`, { cause: err });
  }
}
