import { X509Certificate, type KeyObject } from 'node:crypto';
import { schemeFor, type SignatureScheme } from './algorithms.ts';
import { KU, authorityKeyIdentifier, basicConstraints, decodeBasicConstraints, decodeKeyId, extKeyUsageBoth, keyIdentifier, keyUsage, readCertificate } from './certificate.ts';
import { OID } from './algorithms.ts';
import { CaError } from './errors.ts';
import { keyAlgorithmOf, privateKeyFromPem, type KeyAlgorithm } from './keys.ts';
import { parseCertificates } from './pem.ts';
import { assertTrustDomain } from './spiffe.ts';

/**
 * An issuing (intermediate) CA ready to sign leaves: its certificate, its private key and the
 * parts of every leaf's TBSCertificate that never change, encoded once (issuer Name, signature
 * algorithm, authority key identifier, fixed extensions). Build one with {@link Issuer.fromPem}
 * or get one from `loadCa` / `initCa`.
 */
export class Issuer {
  /** The issuing CA certificate. */
  readonly cert: X509Certificate;
  /** The issuing CA certificate as PEM, appended after every leaf in a chain. */
  readonly certPem: string;
  /** The issuing CA private key. Never logged, never sent. */
  readonly key: KeyObject;
  /** The trust domain every issued identity must belong to. */
  readonly trustDomain: string;
  /** The issuing key algorithm. */
  readonly algorithm: KeyAlgorithm;
  /** Validity of the issuing CA: leaves never outlive `notAfter`. */
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Prebuilt DER pieces for the leaf fast path (see issue.ts). */
  readonly scheme: SignatureScheme;
  readonly issuerName: Buffer;
  readonly leafFixedExtensions: Buffer;

  constructor(cert: X509Certificate, key: KeyObject, trustDomain: string) {
    assertTrustDomain(trustDomain);
    if (!cert.ca) throw new CaError('ERR_BAD_CERT', 'the issuing certificate is not a CA certificate: pass issuer.pem from `mailmesh ca init`');
    if (!cert.checkPrivateKey(key)) throw new CaError('ERR_BAD_KEY', 'the issuing key does not match the issuing certificate: check issuer.key and issuer.pem belong together');
    const fields = readCertificate(cert.raw);
    const bc = fields.extensions.get(OID.basicConstraints);
    // RFC 5280 §4.2.1.9: an issuer of end-entity certificates needs pathLen >= 0; any is fine here,
    // but refuse a CA flag we cannot read.
    if (!bc || !decodeBasicConstraints(bc.value).ca) throw new CaError('ERR_BAD_CERT', 'the issuing certificate lacks basicConstraints CA:true');
    this.cert = cert;
    this.certPem = cert.toString();
    this.key = key;
    this.trustDomain = trustDomain;
    this.algorithm = keyAlgorithmOf(key);
    this.notBefore = cert.validFromDate;
    this.notAfter = cert.validToDate;
    this.scheme = schemeFor(key);
    this.issuerName = fields.subjectName;
    const ski = fields.extensions.get(OID.subjectKeyIdentifier);
    const keyId = ski ? decodeKeyId(ski.value, false)! : keyIdentifier(fields.spki);
    this.leafFixedExtensions = Buffer.concat([basicConstraints(false), keyUsage(KU.digitalSignature), extKeyUsageBoth(), authorityKeyIdentifier(keyId)]);
  }

  /** Build an issuer from PEM texts (certificate, PKCS#8 key). */
  static fromPem(certPem: string | Buffer, keyPem: string | Buffer, trustDomain: string): Issuer {
    const [cert] = parseCertificates(certPem, 'issuing certificate');
    return new Issuer(cert, privateKeyFromPem(keyPem, 'issuing key'), trustDomain);
  }
}
