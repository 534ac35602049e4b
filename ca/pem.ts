import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate } from 'node:tls';
import { fromPem } from './der.ts';
import { CaError } from './errors.ts';

/**
 * Every certificate in a PEM text, in order (a chain file is leaf first). `ERR_BAD_CERT` when
 * there is none or one does not parse.
 *
 * @example const [leaf, issuer] = parseCertificates(readFileSync('node.crt', 'utf8'));
 */
export function parseCertificates(pem: string | Buffer, what = 'certificate file'): X509Certificate[] {
  const ders = fromPem(typeof pem === 'string' ? pem : pem.toString('latin1'), 'CERTIFICATE');
  if (ders.length === 0) throw new CaError('ERR_BAD_CERT', `no "BEGIN CERTIFICATE" block in ${what}: expected PEM certificates`);
  return ders.map((der, i) => {
    try {
      return new X509Certificate(der);
    } catch (err) {
      throw new CaError('ERR_BAD_CERT', `certificate #${i + 1} in ${what} does not parse: ${(err as Error).message}`, { cause: err });
    }
  });
}

/** PEM of a list of certificates, concatenated in the given order. */
export function certificatesToPem(certs: readonly X509Certificate[]): string {
  return certs.map((c) => c.toString()).join('');
}

/**
 * The chain a TLS peer presented, leaf first, from `socket.getPeerCertificate(true)`. Stops at a
 * self-signed certificate (node links it to itself) and ignores anything node added from the
 * local CA store: {@link verifyPeerChain} decides trust, not this.
 */
export function chainFromPeerCertificate(peer: DetailedPeerCertificate | undefined): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>();
  for (let c = peer; c && c.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    out.push(new X509Certificate(c.raw));
  }
  return out;
}
