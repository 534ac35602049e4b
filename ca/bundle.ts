import { X509Certificate, type KeyObject } from 'node:crypto';
import { OID } from './algorithms.ts';
import { decodeBasicConstraints, readCertificate } from './certificate.ts';
import { CaError } from './errors.ts';
import { certificatesToPem, parseCertificates } from './pem.ts';

/** A trust anchor with what verification needs parsed once. */
export interface TrustAnchor {
  cert: X509Certificate;
  publicKey: KeyObject;
  /** basicConstraints pathLenConstraint, or undefined for no limit. */
  pathLen: number | undefined;
}

/** An intermediate that was verified against an anchor before (the cache key is its SHA-256). */
interface VerifiedIntermediate {
  anchor: TrustAnchor;
  pathLen: number | undefined;
  publicKey: KeyObject;
}

const MAX_CACHED_INTERMEDIATES = 256;

/**
 * The set of root certificates a mesh trusts. Holds several during a root rotation (old and new
 * overlap). Immutable: {@link TrustBundle.with} returns a new bundle. Verification is on the path
 * of every mesh handshake, so anchors are parsed once here and intermediates already proven
 * against an anchor are remembered by fingerprint.
 *
 * @example const bundle = TrustBundle.fromPem(readFileSync('bundle.pem', 'utf8'));
 */
export class TrustBundle {
  /** The root certificates, in file order. */
  readonly roots: readonly X509Certificate[];
  readonly anchors: readonly TrustAnchor[];
  private readonly intermediates = new Map<string, VerifiedIntermediate>();

  constructor(roots: Iterable<X509Certificate>) {
    const list: X509Certificate[] = [];
    const seen = new Set<string>();
    for (const r of roots) {
      if (seen.has(r.fingerprint256)) continue;
      seen.add(r.fingerprint256);
      list.push(r);
    }
    if (list.length === 0) throw new CaError('ERR_BAD_CERT', 'a trust bundle needs at least one root certificate');
    this.roots = list;
    this.anchors = list.map((cert) => {
      if (!cert.ca) throw new CaError('ERR_BAD_CERT', `trust bundle entry ${cert.subject.replace(/\n/g, ', ')} is not a CA certificate`);
      const bc = readCertificate(cert.raw).extensions.get(OID.basicConstraints);
      return { cert, publicKey: cert.publicKey, pathLen: bc ? decodeBasicConstraints(bc.value).pathLen : undefined };
    });
  }

  /** Parse a bundle from PEM (one or more `BEGIN CERTIFICATE` blocks). */
  static fromPem(pem: string | Buffer): TrustBundle {
    return new TrustBundle(parseCertificates(pem, 'trust bundle'));
  }

  /** The bundle as PEM, roots in order. */
  toPem(): string {
    return certificatesToPem(this.roots);
  }

  /** A new bundle with `root` added (rotation overlap). */
  with(root: X509Certificate): TrustBundle {
    return new TrustBundle([...this.roots, root]);
  }

  /** A new bundle without the root whose `fingerprint256` is given. */
  without(fingerprint256: string): TrustBundle {
    return new TrustBundle(this.roots.filter((r) => r.fingerprint256 !== fingerprint256));
  }

  /** The anchor that signed `cert`, if any (names match and the signature verifies). */
  anchorFor(cert: X509Certificate): TrustAnchor | undefined {
    for (const a of this.anchors) {
      if (cert.checkIssued(a.cert) && cert.verify(a.publicKey)) return a;
    }
    return undefined;
  }

  /** @internal Cache lookup for verify.ts. */
  cachedIntermediate(fingerprint256: string): VerifiedIntermediate | undefined {
    return this.intermediates.get(fingerprint256);
  }

  /** @internal Remember an intermediate proven against an anchor. */
  rememberIntermediate(fingerprint256: string, entry: VerifiedIntermediate): void {
    if (this.intermediates.size >= MAX_CACHED_INTERMEDIATES) this.intermediates.clear();
    this.intermediates.set(fingerprint256, entry);
  }
}

/** Parse a trust bundle from PEM (same as {@link TrustBundle.fromPem}). */
export function fromPem(pem: string | Buffer): TrustBundle {
  return TrustBundle.fromPem(pem);
}

/** A trust bundle as PEM (same as {@link TrustBundle.toPem}). */
export function toPem(bundle: TrustBundle): string {
  return bundle.toPem();
}
