import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { OID, hashForSignatureOid, schemeFor } from './algorithms.ts';
import { TAG, bitString, children, ctx, decodeOid, expect, fromPem, int, oid, seq, set, toPem, utf8, value, whole } from './der.ts';
import { CaError } from './errors.ts';
import { keyAlgorithmOf, type KeyPair } from './keys.ts';

/** What the CA takes from a CSR: the proven public key, and nothing else that it trusts. */
export interface ParsedCsr {
  publicKey: KeyObject;
  /** The SubjectPublicKeyInfo DER, reused as-is in the certificate. */
  spki: Buffer;
  /** The CSR's subject Name DER. Informational only: identities never come from here. */
  subject: Buffer;
}

/**
 * Create a PKCS#10 certification request (RFC 2986 §4) signed with the key pair. The subject is
 * empty by default: the CA takes the identity from the caller, never from the CSR.
 *
 * @example const der = createCsr(generateKeyPair('P-256'));
 */
export function createCsr(keyPair: KeyPair, opts: { commonName?: string } = {}): Buffer {
  const scheme = schemeFor(keyPair.privateKey);
  const spki = keyPair.publicKey.export({ type: 'spki', format: 'der' });
  const subject = opts.commonName === undefined ? seq() : seq(set(seq(oid(OID.commonName), utf8(opts.commonName))));
  // RFC 2986 §4.1: attributes is [0] IMPLICIT SET OF Attribute, present even when empty.
  const info = seq(int(0), subject, spki, ctx(0, true));
  const signature = sign(scheme.hash, info, keyPair.privateKey);
  return seq(info, scheme.algorithmIdentifier, bitString(signature));
}

/** A CSR as PEM (`BEGIN CERTIFICATE REQUEST`). */
export function csrToPem(der: Uint8Array): string {
  return toPem('CERTIFICATE REQUEST', der);
}

function toDer(derOrPem: Uint8Array | string): Uint8Array {
  const text = typeof derOrPem === 'string' ? derOrPem : derOrPem[0] === 0x2d /* '-' */ ? Buffer.from(derOrPem).toString('ascii') : undefined;
  if (text === undefined) return derOrPem as Uint8Array;
  const [der] = fromPem(text, '(?:NEW )?CERTIFICATE REQUEST');
  if (!der) throw new CaError('ERR_CSR_INVALID', 'no "BEGIN CERTIFICATE REQUEST" block found: pass a PKCS#10 CSR in PEM or DER');
  return der;
}

/**
 * Parse a PKCS#10 CSR (DER or PEM) and verify its self-signature (proof of possession, RFC 2986
 * §3). Returns the public key, its SPKI DER and the (untrusted) subject. `ERR_CSR_INVALID` when
 * the request is malformed, uses an unsupported key or algorithm, or its signature does not verify.
 */
export function readCsr(derOrPem: Uint8Array | string): ParsedCsr {
  const der = toDer(derOrPem);
  let infoWhole: Buffer, sigOid: string, signature: Buffer, spki: Buffer, subject: Buffer;
  try {
    const outer = expect(der, 0, TAG.SEQUENCE);
    if (outer.end !== der.length) throw new Error('trailing data');
    const [info, alg, sig] = children(der, outer);
    if (!info || !alg || !sig || info.tag !== TAG.SEQUENCE || sig.tag !== TAG.BIT_STRING) throw new Error('bad structure');
    infoWhole = whole(der, info);
    const [version, subj, pk] = children(der, info);
    if (!version || version.tag !== TAG.INTEGER || value(der, version).toString('hex') !== '00') throw new Error('version must be 0');
    if (!subj || subj.tag !== TAG.SEQUENCE || !pk || pk.tag !== TAG.SEQUENCE) throw new Error('bad request info');
    subject = whole(der, subj);
    spki = whole(der, pk);
    sigOid = decodeOid(value(der, expect(der, alg.valueStart, TAG.OID, alg.end)));
    const sigBits = value(der, sig);
    if (sigBits[0] !== 0) throw new Error('signature has unused bits');
    signature = sigBits.subarray(1);
  } catch (err) {
    throw new CaError('ERR_CSR_INVALID', `malformed certificate request: ${(err as Error).message}`, { cause: err });
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw new CaError('ERR_CSR_INVALID', 'certificate request holds an unreadable public key', { cause: err });
  }
  let alg;
  try {
    alg = keyAlgorithmOf(publicKey);
  } catch {
    throw new CaError('ERR_CSR_INVALID', `certificate request key type ${publicKey.asymmetricKeyType ?? '?'} is not accepted: use ECDSA P-256/P-384 or Ed25519`);
  }
  const hash = hashForSignatureOid(sigOid);
  if (hash === undefined || (alg === 'Ed25519') !== (hash === null)) {
    throw new CaError('ERR_CSR_INVALID', `certificate request signature algorithm ${sigOid} does not match its ${alg} key`);
  }
  let ok: boolean;
  try {
    ok = verify(hash, infoWhole, publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new CaError('ERR_CSR_INVALID', 'certificate request signature does not verify: the requester does not hold the private key');
  return { publicKey, spki, subject };
}

/**
 * Parse a PKCS#10 CSR and verify its signature; returns the proven public key.
 * Throws `ERR_CSR_INVALID` otherwise.
 */
export function parseCsr(derOrPem: Uint8Array | string): KeyObject {
  return readCsr(derOrPem).publicKey;
}
