import type { X509Certificate } from 'node:crypto';
import type { TrustBundle } from '../../ca/bundle.ts';
import { isCaError } from '../../ca/errors.ts';
import { verifyPeerChain, type VerifiedPeer } from '../../ca/verify.ts';

/** Revoked certificate serials (uppercase hex) and SPIFFE IDs, from the current snapshot. */
export interface Revocations {
  serials: ReadonlySet<string>;
  ids: ReadonlySet<string>;
}

/** What a peer check concluded: the verified peer, or the reason code it was refused with. */
export type PeerDecision = { ok: true; peer: VerifiedPeer } | { ok: false; reason: string; message: string };

/** Inputs of {@link checkPeer}. */
export interface CheckPeerInput {
  chain: readonly X509Certificate[];
  bundle: TrustBundle;
  trustDomain: string;
  usage: 'client' | 'server';
  now: number;
  revoked?: Revocations;
  /** Policy: may this identity talk to us / are we talking to the right node? */
  authorize: (spiffeId: string) => boolean;
  /** Reason code when `authorize` says no. */
  unauthorizedReason: string;
}

/**
 * Pure decision on a peer's chain: verify it with `ca/verify.ts` (trust, validity, EKU, trust
 * domain, revocations), then the caller's authorization. Never throws for a bad peer: every
 * refusal comes back with the `ca/` code (`ERR_UNKNOWN_AUTHORITY`, `ERR_REVOKED_SERIAL`, …) or
 * `unauthorizedReason`, so the ingress can log and count it.
 */
export function checkPeer(input: CheckPeerInput): PeerDecision {
  let peer: VerifiedPeer;
  try {
    peer = verifyPeerChain(input.chain, {
      bundle: input.bundle,
      trustDomain: input.trustDomain,
      usage: input.usage,
      now: input.now,
      revokedSerials: input.revoked?.serials,
      revokedIds: input.revoked?.ids,
    });
  } catch (err) {
    if (isCaError(err)) return { ok: false, reason: err.code, message: err.message };
    return { ok: false, reason: 'ERR_CHAIN_INVALID', message: (err as Error).message };
  }
  if (!input.authorize(peer.spiffeId)) {
    return { ok: false, reason: input.unauthorizedReason, message: `${peer.spiffeId} is not authorized here` };
  }
  return { ok: true, peer };
}

/**
 * True when `spiffeId` is a node of shard `shardId` in `trustDomain`:
 * `spiffe://<td>/shard/<shardId>/node/<any>` (DESIGN.md vocabulary).
 */
export function isNodeOfShard(spiffeId: string, trustDomain: string, shardId: string): boolean {
  const prefix = `spiffe://${trustDomain}/shard/${shardId}/node/`;
  if (!spiffeId.startsWith(prefix)) return false;
  const node = spiffeId.slice(prefix.length);
  return node.length > 0 && !node.includes('/');
}
