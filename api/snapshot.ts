import { X509Certificate } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { TrustBundle } from '../ca/bundle.ts';
import { controlPlaneSpiffeId } from '../ca/spiffe.ts';
import { verifyPeerChain } from '../ca/verify.ts';
import { ApiError } from './errors.ts';

/** JWS `typ` of a snapshot, so a snapshot can never be confused with another signed object. */
export const SNAPSHOT_TYP = 'mailmesh-snapshot+jws';
/** Algorithms a snapshot may be signed with (the control plane's key algorithm). */
export const SNAPSHOT_ALGORITHMS = ['ES256', 'ES384', 'EdDSA'];

/** What a snapshot carries: everything a sidecar needs to route and authorize. */
export interface SnapshotPayload {
  v: 1;
  /** Policy revision (git commit, `-dirty-…`, or content hash) plus `+rN` for N revocations. */
  revision: string;
  /** The policy part of the revision alone. */
  policyRevision: string;
  trustDomain: string;
  /** When the control plane built it, ms since the epoch (its clock). */
  issuedAt: number;
  /** `serializeCompiled` output of the compiled policy (policies/serialize.ts); read it back with
   * `deserializeCompiled`. */
  placement: string;
  /** Every root in force, PEM. */
  bundlePem: string;
  /** The issuing CAs whose leaves are in use (current, staged next, previous), PEM. A TLS server
   * does not see the intermediate its client sends, so nodes complete peer chains with these
   * during an issuing-CA rotation. Absent from control planes before CA rotation existed. */
  issuersPem?: string;
  /** Revoked certificate serials, uppercase hex. */
  revokedSerials: string[];
  /** Revoked SPIFFE IDs. */
  revokedIds: string[];
}

/**
 * Verify a snapshot JWS with only the trust bundle: the `x5c` chain in the protected header must
 * verify against `bundle` as a server certificate of `spiffe://TD/control-plane`, and the JWS
 * signature must verify with that certificate's key. Returns the payload.
 * Throws {@link ApiError} `ERR_SNAPSHOT_SIGNER` (chain or identity wrong) or `ERR_SNAPSHOT_INVALID`.
 * `now` defaults to the current time; a sidecar reading its disk cache after the control plane's
 * certificate expired may pass the snapshot's own `issuedAt`-era time.
 *
 * @example const snap = await verifySnapshot(msg.jws, bundlePem, 'mail.example');
 */
export async function verifySnapshot(jws: string, bundle: TrustBundle | string, trustDomain: string, opts: { now?: number } = {}): Promise<SnapshotPayload> {
  const trust = typeof bundle === 'string' ? TrustBundle.fromPem(bundle) : bundle;
  let header;
  try {
    header = decodeProtectedHeader(jws);
  } catch (err) {
    throw new ApiError('ERR_SNAPSHOT_INVALID', `snapshot is not a JWS: ${(err as Error).message}`, { cause: err });
  }
  if (header.typ !== SNAPSHOT_TYP) throw new ApiError('ERR_SNAPSHOT_INVALID', `snapshot JWS has typ ${String(header.typ)}, expected ${SNAPSHOT_TYP}`);
  if (!Array.isArray(header.x5c) || header.x5c.length === 0) throw new ApiError('ERR_SNAPSHOT_SIGNER', 'snapshot JWS has no x5c certificate chain');
  let chain: X509Certificate[];
  try {
    // RFC 7515 §4.1.6: x5c entries are base64 (not base64url) DER.
    chain = header.x5c.map((b64) => new X509Certificate(Buffer.from(b64, 'base64')));
  } catch (err) {
    throw new ApiError('ERR_SNAPSHOT_SIGNER', `snapshot x5c holds an unreadable certificate: ${(err as Error).message}`, { cause: err });
  }
  let peer;
  try {
    peer = verifyPeerChain(chain, { bundle: trust, trustDomain, usage: 'server', now: opts.now });
  } catch (err) {
    throw new ApiError('ERR_SNAPSHOT_SIGNER', `snapshot signer certificate does not verify: ${(err as Error).message}`, { cause: err });
  }
  const expected = controlPlaneSpiffeId(trustDomain);
  if (peer.spiffeId !== expected) throw new ApiError('ERR_SNAPSHOT_SIGNER', `snapshot signed by ${peer.spiffeId}, not by ${expected}`);
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, chain[0].publicKey, { algorithms: SNAPSHOT_ALGORITHMS }));
  } catch (err) {
    throw new ApiError('ERR_SNAPSHOT_INVALID', `snapshot signature does not verify: ${(err as Error).message}`, { cause: err });
  }
  let snap: SnapshotPayload;
  try {
    snap = JSON.parse(Buffer.from(payload).toString('utf8')) as SnapshotPayload;
  } catch (err) {
    throw new ApiError('ERR_SNAPSHOT_INVALID', 'snapshot payload is not JSON', { cause: err });
  }
  if (snap.v !== 1 || snap.trustDomain !== trustDomain || typeof snap.revision !== 'string') {
    throw new ApiError('ERR_SNAPSHOT_INVALID', `snapshot payload is not a version-1 snapshot of trust domain ${trustDomain}`);
  }
  return snap;
}
