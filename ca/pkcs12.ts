// PKCS#12 (RFC 7292) export for clients that want one file. node-forge's toPkcs12Asn1 only takes
// RSA keys (it calls wrapRsaPrivateKey), so the PFX is assembled here with forge's ASN.1 helpers:
// a PKCS#8 shrouded key bag (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC, RFC 8018) and plain cert
// bags, integrity-protected with an HMAC-SHA256 MAC keyed by the PKCS#12 KDF (RFC 7292 App. B).
import { randomBytes, type KeyObject, type X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { CaError } from './errors.ts';

const { asn1 } = forge;
const OIDS = {
  data: '1.2.840.113549.1.7.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  localKeyId: '1.2.840.113549.1.9.21',
  friendlyName: '1.2.840.113549.1.9.20',
  sha256: '2.16.840.1.101.3.4.2.1',
};

/** Options of {@link toPkcs12}. */
export interface Pkcs12Options {
  /** PBKDF2 and MAC iterations (default 2048, OpenSSL 3's default). */
  iterations?: number;
  /** friendlyName attribute on the key and leaf (shown by keychains). */
  friendlyName?: string;
}

type Asn1 = forge.asn1.Asn1;
const C = asn1.Class.UNIVERSAL;
const T = asn1.Type;
const bin = (b: Uint8Array) => Buffer.from(b).toString('binary');
const seq = (...v: Asn1[]) => asn1.create(C, T.SEQUENCE, true, v);
const oid = (o: string) => asn1.create(C, T.OID, false, asn1.oidToDer(o).getBytes());
const octets = (s: string) => asn1.create(C, T.OCTETSTRING, false, s);
const explicit0 = (v: Asn1) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [v]);
const integer = (n: number) => asn1.create(C, T.INTEGER, false, asn1.integerToDer(n).getBytes());
const der = (v: Asn1) => asn1.toDer(v).getBytes();

function attributes(localKeyId: string, friendlyName?: string): Asn1 {
  const attrs = [seq(oid(OIDS.localKeyId), asn1.create(C, T.SET, true, [octets(localKeyId)]))];
  if (friendlyName !== undefined) {
    // RFC 7292 §4.2: friendlyName is a BMPString; forge's encoder writes each UTF-16 code unit.
    attrs.push(seq(oid(OIDS.friendlyName), asn1.create(C, T.SET, true, [asn1.create(C, T.BMPSTRING, false, friendlyName)])));
  }
  return asn1.create(C, T.SET, true, attrs);
}

/** ContentInfo of type data wrapping DER bytes (RFC 2315 §7). */
const dataContentInfo = (content: string) => seq(oid(OIDS.data), explicit0(octets(content)));

/**
 * Build a password-protected PKCS#12 file holding the private key and the chain (leaf first).
 * Works for EC (P-256/P-384) and Ed25519 keys, which forge's own builder cannot handle.
 *
 * @example writeFileAtomic('node.p12', toPkcs12(key, chain, password), PRIVATE_MODE)
 */
export function toPkcs12(privateKey: KeyObject, chain: readonly X509Certificate[], password: string, opts: Pkcs12Options = {}): Buffer {
  if (chain.length === 0) throw new CaError('ERR_PKCS12', 'a PKCS#12 file needs at least the leaf certificate');
  if (password.length === 0) throw new CaError('ERR_PKCS12', 'refusing an empty PKCS#12 password: put a password in the password file');
  const iterations = opts.iterations ?? 2048;
  try {
    const localKeyId = bin(Buffer.from(chain[0].fingerprint256.replace(/:/g, ''), 'hex').subarray(0, 20));
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    // PBES2 takes the password as UTF-8 octets (RFC 8018 §3); forge wants a binary string.
    const encrypted = forge.pki.encryptPrivateKeyInfo(asn1.fromDer(bin(pkcs8)), forge.util.encodeUtf8(password), {
      algorithm: 'aes256',
      prfAlgorithm: 'sha256',
      count: iterations,
    });
    const keyBag = seq(oid(OIDS.pkcs8ShroudedKeyBag), explicit0(encrypted), attributes(localKeyId, opts.friendlyName));
    const certBags = chain.map((c, i) =>
      seq(
        oid(OIDS.certBag),
        explicit0(seq(oid(OIDS.x509Certificate), explicit0(octets(bin(c.raw))))),
        ...(i === 0 ? [attributes(localKeyId, opts.friendlyName)] : []),
      ),
    );
    const authSafe = seq(dataContentInfo(der(seq(...certBags))), dataContentInfo(der(seq(keyBag))));
    const authSafeBytes = der(authSafe);
    // RFC 7292 App. B.2 key derivation (ID 3 = MAC), then HMAC over the authSafe content.
    const salt = bin(randomBytes(16));
    const macKey = forge.pkcs12.generateKey(password, forge.util.createBuffer(salt), 3, iterations, 32, forge.md.sha256.create());
    const hmac = forge.hmac.create();
    hmac.start('sha256', macKey);
    hmac.update(authSafeBytes);
    const macData = seq(seq(seq(oid(OIDS.sha256), asn1.create(C, T.NULL, false, '')), octets(hmac.digest().getBytes())), octets(salt), integer(iterations));
    const pfx = seq(integer(3), dataContentInfo(authSafeBytes), macData);
    return Buffer.from(der(pfx), 'binary');
  } catch (err) {
    throw new CaError('ERR_PKCS12', `cannot build PKCS#12: ${(err as Error).message}`, { cause: err });
  }
}
