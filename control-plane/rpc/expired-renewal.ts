import { parseCertificates } from '../../ca/pem.ts';
import { verifyPeerChain } from '../../ca/verify.ts';
import { formatDuration } from '../../common/duration.ts';
import { verifyExpiredProof } from '../../api/expired-proof.ts';
import type { ControlPlaneContext } from '../context.ts';
import { ControlPlaneError } from '../errors.ts';

/** How long after expiry a node may still rejoin with its last certificate (default 7 days). */
export const DEFAULT_EXPIRED_RENEWAL_GRACE_MS = 7 * 86_400_000;

/**
 * Decide whether a node whose certificate expired (typically: the control plane was down for
 * longer than a lifetime) may rejoin without a new token. All must hold:
 * - the chain verifies as of just before its expiry (our CA, our trust domain, a node identity,
 *   not revoked — revocations are checked as of now);
 * - it expired less than the grace period ago;
 * - it is the newest certificate issued to that identity (an older, replaced key — e.g. a stolen
 *   backup — cannot come back);
 * - the proof verifies: the expired key signed this very CSR.
 * Returns the identity to issue for; the CSR's own subject is never used.
 */
export async function verifyExpiredRenewal(ctx: ControlPlaneContext, csr: Buffer, chainPem: string, proof: Buffer): Promise<ExpiredRenewal> {
  const chain = parseCertificates(chainPem, 'expired certificate chain');
  const leaf = chain[0];
  const now = ctx.clock.now();
  const notAfter = leaf.validToDate.getTime();
  const grace = ctx.expiredRenewalGraceMs ?? DEFAULT_EXPIRED_RENEWAL_GRACE_MS;
  if (now - notAfter > grace) {
    throw new ControlPlaneError('ERR_RENEWAL_GRACE_PASSED', `the certificate expired at ${leaf.validToDate.toISOString()}, more than ${formatDuration(grace)} ago: rejoin with a new token (mailmesh token create)`);
  }
  const v = verifyPeerChain([leaf, ctx.issuer.cert, ...chain.slice(1)], {
    bundle: ctx.bundle, trustDomain: ctx.trustDomain, usage: 'client', now: Math.min(now, notAfter - 1000),
    revokedSerials: ctx.revokedSerials, revokedIds: ctx.revokedIds,
  });
  const node = /^\/shard\/([^/]+)\/node\/[^/]+$/.exec(v.spiffeId.slice(`spiffe://${ctx.trustDomain}`.length));
  if (!node) throw new ControlPlaneError('ERR_PERMISSION_DENIED', `${v.spiffeId} is not a node identity: only nodes rejoin after expiry`);
  if ((await ctx.store.latestSerial(v.spiffeId)) !== v.serial) {
    throw new ControlPlaneError('ERR_RENEWAL_NOT_LATEST', `certificate ${v.serial} is not the newest issued to ${v.spiffeId}: rejoin with a new token (mailmesh token create)`);
  }
  if (!verifyExpiredProof(leaf.publicKey, csr, proof)) {
    throw new ControlPlaneError('ERR_RENEWAL_BAD_PROOF', 'the rejoin proof does not verify with the expired certificate\'s key');
  }
  return { spiffeId: v.spiffeId, shard: node[1], claim: `expired-renewal:${v.serial}`, claimExpiresAt: notAfter + grace };
}

/** An accepted rejoin. `claim` must be used once in the store before issuing (see rpc/sign.ts):
 * "newest certificate" is checked before anything is written, so two rejoins with the same
 * expired certificate at once (or on two replicas) would otherwise both pass and get two keys. */
export interface ExpiredRenewal {
  spiffeId: string;
  shard: string;
  /** Single-use id of this expired certificate (store.useTokenId). */
  claim: string;
  /** When the claim can be forgotten: the grace period is over by then. */
  claimExpiresAt: number;
}
