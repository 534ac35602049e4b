import type { KeyObject, X509Certificate } from 'node:crypto';
import { OID } from './algorithms.ts';
import type { TrustAnchor, TrustBundle } from './bundle.ts';
import { KU, decodeBasicConstraints, decodeExtKeyUsage, decodeKeyUsage, decodeSubjectAltName, readCertificate, type CertificateFields } from './certificate.ts';
import { CaError } from './errors.ts';
import { parseSpiffeId } from './spiffe.ts';

/** How to verify a peer. */
export interface VerifyOptions {
  /** The roots to trust (several during a rotation). */
  bundle: TrustBundle;
  /** The peer's SPIFFE ID must be in this trust domain. */
  trustDomain: string;
  /** The peer's role: a client must carry the clientAuth EKU, a server serverAuth (RFC 5280 §4.2.1.12). */
  usage: 'client' | 'server';
  /** Verify as of this time (default: now). */
  now?: Date | number;
  /** Revoked certificate serials, uppercase hex as node prints them. Checked for every certificate in the path. */
  revokedSerials?: ReadonlySet<string>;
  /** Revoked SPIFFE IDs. */
  revokedIds?: ReadonlySet<string>;
}

/** A verified peer. */
export interface VerifiedPeer {
  spiffeId: string;
  trustDomain: string;
  /** The leaf serial, uppercase hex. */
  serial: string;
  notAfter: Date;
  dnsNames: string[];
  /** Serials (uppercase hex) of the CA certificates on the verified path, issuer first, root
   * last: a cache of this result must still refuse the peer when one of them is revoked. */
  caSerials: string[];
}

// A leaf, the issuing CA and a root: two CA links. Allow a little more for rotation experiments,
// but bound the work an attacker can make us do with a long chain.
const MAX_CA_LINKS = 4;

// Extensions this verifier understands; RFC 5280 §4.2: a critical extension we do not
// recognise makes the certificate unacceptable.
const KNOWN_EXTENSIONS = new Set<string>([OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectAltName, OID.subjectKeyIdentifier, OID.authorityKeyIdentifier]);

interface CaLink {
  cert: X509Certificate;
  pathLen: number | undefined;
}

const fail = (code: ConstructorParameters<typeof CaError>[0], message: string) => new CaError(code, message);

function checkValidity(cert: X509Certificate, now: number, role: string): void {
  // RFC 5280 §4.1.2.5: valid from notBefore through notAfter inclusive.
  if (now < cert.validFromDate.getTime()) throw fail('ERR_CERT_NOT_YET_VALID', `${role} certificate is not valid until ${cert.validFromDate.toISOString()}: check the clocks of both peers`);
  if (now > cert.validToDate.getTime()) throw fail('ERR_CERT_EXPIRED', `${role} certificate expired at ${cert.validToDate.toISOString()}: the peer must renew it`);
}

function pathLenOf(cert: X509Certificate): number | undefined {
  const bc = readCertificate(cert.raw).extensions.get(OID.basicConstraints);
  return bc ? decodeBasicConstraints(bc.value).pathLen : undefined;
}

/** Find the path from the leaf to an anchor through the presented certificates. */
function buildPath(chain: readonly X509Certificate[], bundle: TrustBundle): { cas: CaLink[]; anchor: TrustAnchor } {
  const cas: CaLink[] = [];
  let cur = chain[0];
  const used = new Set<X509Certificate>([cur]);
  for (let depth = 0; depth < MAX_CA_LINKS; depth++) {
    const anchor = bundle.anchorFor(cur);
    if (anchor) {
      cas.push({ cert: anchor.cert, pathLen: anchor.pathLen });
      // Remember an intermediate that sits right under an anchor, so the next handshake with
      // the same issuer costs one signature check (the leaf's) instead of two.
      if (depth === 1) bundle.rememberIntermediate(cur.fingerprint256, { anchor, pathLen: cas[0].pathLen, publicKey: cur.publicKey });
      return { cas, anchor };
    }
    let next: X509Certificate | undefined;
    let nextKey: KeyObject | undefined;
    for (let i = 1; i < chain.length; i++) {
      const c = chain[i];
      if (used.has(c) || !cur.checkIssued(c)) continue;
      const cached = depth === 0 ? bundle.cachedIntermediate(c.fingerprint256) : undefined;
      const key = cached?.publicKey ?? c.publicKey;
      if (!cur.verify(key)) continue;
      if (cached) {
        cas.push({ cert: c, pathLen: cached.pathLen }, { cert: cached.anchor.cert, pathLen: cached.anchor.pathLen });
        return { cas, anchor: cached.anchor };
      }
      next = c;
      nextKey = key;
      break;
    }
    if (!next || !nextKey) break;
    if (!next.ca) throw fail('ERR_CHAIN_INVALID', 'a certificate in the peer chain signs another but is not a CA');
    cas.push({ cert: next, pathLen: pathLenOf(next) });
    used.add(next);
    cur = next;
  }
  throw fail('ERR_UNKNOWN_AUTHORITY', 'peer certificate is not signed by a CA in the trust bundle: issue it from this mesh CA or add its root to the bundle');
}

function leafFields(leaf: X509Certificate): CertificateFields {
  try {
    return readCertificate(leaf.raw);
  } catch (err) {
    throw new CaError('ERR_CHAIN_INVALID', `peer certificate is malformed: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Verify a peer's certificate chain (leaf first, then intermediates, as TLS presents it) against
 * the trust bundle and return the peer's SPIFFE identity. Checks every signature up to a root in
 * the bundle, the validity of every certificate, CA flags and pathLen of the CAs (RFC 5280 §6.1),
 * then the leaf: not a CA, EKU for `usage`, exactly one URI SAN which is a SPIFFE ID in
 * `trustDomain` (SPIFFE X509-SVID §5), and the revocation sets.
 * Throws `CaError` with `ERR_NO_CHAIN`, `ERR_UNKNOWN_AUTHORITY`, `ERR_CERT_EXPIRED`,
 * `ERR_CERT_NOT_YET_VALID`, `ERR_CHAIN_INVALID`, `ERR_LEAF_IS_CA`, `ERR_BAD_KEY_USAGE`,
 * `ERR_MISSING_EKU`, `ERR_URI_SAN_COUNT`, `ERR_NOT_SPIFFE`, `ERR_WRONG_TRUST_DOMAIN`,
 * `ERR_REVOKED_SERIAL` or `ERR_REVOKED_IDENTITY`.
 *
 * @example
 * const peer = verifyPeerChain(chainFromPeerCertificate(socket.getPeerCertificate(true)),
 *   { bundle, trustDomain: 'mail.example', usage: 'client' });
 */
export function verifyPeerChain(chain: readonly X509Certificate[] | undefined, opts: VerifyOptions): VerifiedPeer {
  if (!chain || chain.length === 0) throw fail('ERR_NO_CHAIN', 'the peer presented no certificate: mesh peers must use mutual TLS with their mesh certificate');
  const now = opts.now === undefined ? Date.now() : typeof opts.now === 'number' ? opts.now : opts.now.getTime();
  const leaf = chain[0];
  const { cas } = buildPath(chain, opts.bundle);

  checkValidity(leaf, now, 'peer');
  for (let i = 0; i < cas.length; i++) checkValidity(cas[i].cert, now, i === cas.length - 1 ? 'root' : 'intermediate CA');
  // RFC 5280 §4.2.1.9: pathLenConstraint limits the non-self-issued intermediates below a CA.
  // cas[0] issued the leaf (0 below it); cas[i] has i intermediates below it.
  for (let i = 0; i < cas.length; i++) {
    const limit = cas[i].pathLen;
    if (limit !== undefined && limit < i) throw fail('ERR_CHAIN_INVALID', 'peer chain exceeds a CA path length constraint');
  }

  const f = leafFields(leaf);
  for (const [id, ext] of f.extensions) {
    if (ext.critical && !KNOWN_EXTENSIONS.has(id)) throw fail('ERR_CHAIN_INVALID', `peer certificate has an unsupported critical extension ${id}`);
  }
  let uris: string[] = [];
  let dnsNames: string[] = [];
  let ekus: string[] | undefined;
  try {
    const bc = f.extensions.get(OID.basicConstraints);
    if (leaf.ca || (bc && decodeBasicConstraints(bc.value).ca)) throw fail('ERR_LEAF_IS_CA', 'peer certificate is a CA certificate: SPIFFE X509-SVID §4.1 forbids CA leaves');
    const ku = f.extensions.get(OID.keyUsage);
    // SPIFFE X509-SVID §4.3: a leaf's keyUsage must include digitalSignature.
    if (ku && !(decodeKeyUsage(ku.value) & KU.digitalSignature)) throw fail('ERR_BAD_KEY_USAGE', 'peer certificate keyUsage lacks digitalSignature');
    const eku = f.extensions.get(OID.extKeyUsage);
    ekus = eku ? decodeExtKeyUsage(eku.value) : undefined;
    const san = f.extensions.get(OID.subjectAltName);
    if (san) ({ uris, dnsNames } = decodeSubjectAltName(san.value));
  } catch (err) {
    if (err instanceof CaError) throw err;
    throw new CaError('ERR_CHAIN_INVALID', `peer certificate extensions are malformed: ${(err as Error).message}`, { cause: err });
  }
  const wanted = opts.usage === 'client' ? OID.clientAuth : OID.serverAuth;
  if (!ekus || !ekus.includes(wanted)) {
    throw fail('ERR_MISSING_EKU', `peer certificate lacks the ${opts.usage === 'client' ? 'clientAuth' : 'serverAuth'} extended key usage: reissue it with mailmesh ca issue`);
  }
  // SPIFFE X509-SVID §2: exactly one URI SAN, the SPIFFE ID.
  if (uris.length !== 1) throw fail('ERR_URI_SAN_COUNT', `peer certificate has ${uris.length} URI SANs: an X.509-SVID has exactly one`);
  let id;
  try {
    id = parseSpiffeId(uris[0]);
  } catch (err) {
    throw new CaError('ERR_NOT_SPIFFE', `peer URI SAN ${uris[0]} is not a SPIFFE ID`, { cause: err });
  }
  if (id.trustDomain !== opts.trustDomain) {
    throw fail('ERR_WRONG_TRUST_DOMAIN', `peer ${id.id} belongs to trust domain ${id.trustDomain}, not ${opts.trustDomain}`);
  }
  const serial = f.serial;
  if (opts.revokedSerials && opts.revokedSerials.size > 0) {
    if (opts.revokedSerials.has(serial)) throw fail('ERR_REVOKED_SERIAL', `peer certificate serial ${serial} is revoked`);
    for (const c of cas) {
      if (opts.revokedSerials.has(c.cert.serialNumber)) throw fail('ERR_REVOKED_SERIAL', `CA certificate serial ${c.cert.serialNumber} in the peer chain is revoked`);
    }
  }
  if (opts.revokedIds?.has(id.id)) throw fail('ERR_REVOKED_IDENTITY', `peer identity ${id.id} is revoked`);
  return { spiffeId: id.id, trustDomain: id.trustDomain, serial, notAfter: leaf.validToDate, dnsNames, caSerials: cas.map((c) => c.cert.serialNumber.toUpperCase()) };
}
