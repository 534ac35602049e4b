import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { TrustBundle } from '../../ca/bundle.ts';
import { chainFromPeerCertificate, parseCertificates } from '../../ca/pem.ts';

const MAX_REMEMBERED = 64;

/**
 * Candidate intermediates for completing a peer's chain. Two cases need it: on a resumed TLS 1.3
 * session the peer sends no certificates (OpenSSL restores only the leaf from the ticket), and
 * on the SERVER side node 24's `getPeerCertificate(true)` / `getPeerX509Certificate()` return the
 * client's leaf without the intermediate the client did send (checked: OpenSSL's own verification
 * sees it, node's API does not). So we remember intermediates from our own chain (the mesh's
 * issuing CA) and from verified chains, append a matching one, and still run the complete
 * verification (signatures up to a root, validity, revocation) on every connection.
 */
export class IntermediateCache {
  private readonly byFingerprint = new Map<string, X509Certificate>();

  /** Remember the non-leaf certificates of a verified chain. */
  remember(chain: readonly X509Certificate[]): void {
    this.add(chain.slice(1));
  }

  /** Remember candidate intermediates (they are verified like any presented certificate). */
  add(certs: readonly X509Certificate[]): void {
    for (const c of certs) {
      if (this.byFingerprint.has(c.fingerprint256)) continue;
      if (this.byFingerprint.size >= MAX_REMEMBERED) this.byFingerprint.clear();
      this.byFingerprint.set(c.fingerprint256, c);
    }
  }

  /** Remember the intermediates of our own chain (PEM, leaf first). */
  rememberPem(chainPem: string): void {
    this.remember(parseCertificates(chainPem, 'own certificate chain'));
  }

  /** The chain, with a remembered issuer appended when the last certificate's issuer is missing
   * and is not a root of the bundle. Verification decides trust; this only supplies candidates. */
  complete(chain: X509Certificate[], bundle: TrustBundle): X509Certificate[] {
    const last = chain[chain.length - 1];
    if (!last || bundle.anchorFor(last)) return chain;
    for (const c of this.byFingerprint.values()) {
      if (c.fingerprint256 !== last.fingerprint256 && last.checkIssued(c)) return [...chain, c];
    }
    return chain;
  }
}

/** The chain the peer of a TLS socket presented, leaf first (empty when it sent none). */
export function peerChainOf(socket: TLSSocket): X509Certificate[] {
  const peer = socket.getPeerCertificate(true);
  if (peer && peer.raw) return chainFromPeerCertificate(peer);
  const leaf = socket.getPeerX509Certificate();
  return leaf ? [leaf] : [];
}
