import type { KeyObject, X509Certificate } from 'node:crypto';
import { CompactSign } from 'jose';
import { keyAlgorithmOf } from '../ca/keys.ts';
import { SNAPSHOT_TYP, type SnapshotPayload } from '../api/snapshot.ts';

/** The control plane's signing identity: its leaf key and chain (leaf first). */
export interface SnapshotSigner {
  privateKey: KeyObject;
  chain: readonly X509Certificate[];
}

const JWS_ALG = { 'P-256': 'ES256', 'P-384': 'ES384', Ed25519: 'EdDSA' } as const;

/**
 * Sign a snapshot as a compact JWS with the control plane's certificate chain in `x5c`, so a
 * sidecar can verify it with only its trust bundle (api/snapshot.ts verifySnapshot). Called once
 * per revision; every watcher receives the same bytes.
 */
export async function signSnapshot(payload: SnapshotPayload, signer: SnapshotSigner): Promise<string> {
  const alg = JWS_ALG[keyAlgorithmOf(signer.privateKey)];
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  return new CompactSign(body)
    .setProtectedHeader({ alg, typ: SNAPSHOT_TYP, x5c: signer.chain.map((c) => c.raw.toString('base64')) })
    .sign(signer.privateKey);
}
