import { readCsr } from '../../ca/csr.ts';
import { issueLeaf } from '../../ca/issue.ts';
import type { SignRequest__Output } from '../../api/generated/mailmesh/v1/SignRequest.ts';
import type { SignResponse } from '../../api/generated/mailmesh/v1/SignResponse.ts';
import type { Peer } from '../auth.ts';
import type { ControlPlaneContext } from '../context.ts';
import { ControlPlaneError, RateLimitedError } from '../errors.ts';
import { verifyJoinToken, type JoinClaims } from '../token.ts';
import { verifyExpiredRenewal, type ExpiredRenewal } from './expired-renewal.ts';

/**
 * Sign a CSR. The identity comes from the join token (first time, single use) or from the
 * caller's verified certificate (renewal), never from the CSR; a renewal carrying a token for
 * another identity is `ERR_IDENTITY_CHANGE`. The shard must exist in the current policy.
 */
export async function sign(ctx: ControlPlaneContext, peer: Peer, req: SignRequest__Output): Promise<SignResponse> {
  const who = peer.spiffeId ?? peer.address;
  const wait = ctx.signLimiter.take(who);
  if (wait > 0) throw new RateLimitedError(wait, who);
  if (!req.csr || req.csr.length === 0) throw new ControlPlaneError('ERR_BAD_REQUEST', 'Sign needs a CSR (PKCS#10 DER)');
  // Proof of possession first, so a bad CSR never burns a join token.
  const { publicKey } = readCsr(req.csr);
  const loaded = ctx.policy.current;
  if (!loaded) throw new ControlPlaneError('ERR_NO_POLICY', 'the control plane has no valid policy yet');
  const verify = (token: string): Promise<JoinClaims> => verifyJoinToken(token, { key: ctx.tokenKey, audience: ctx.audience, trustDomain: ctx.trustDomain, clock: ctx.clock });

  let spiffeId: string, shard: string, via: 'join-token' | 'renewal' | 'expired-renewal';
  let claims: JoinClaims | undefined;
  let rejoin: ExpiredRenewal | undefined;
  if (peer.role === 'node') {
    if (req.joinToken) {
      const other = await verify(req.joinToken);
      if (other.spiffeId !== peer.spiffeId) {
        throw new ControlPlaneError('ERR_IDENTITY_CHANGE', `renewal cannot change identity: the caller is ${peer.spiffeId}, the token names ${other.spiffeId}`);
      }
    }
    spiffeId = peer.spiffeId as string;
    shard = peer.shard as string;
    via = 'renewal';
  } else if (peer.role !== 'anonymous') {
    throw new ControlPlaneError('ERR_PERMISSION_DENIED', `${peer.spiffeId} is not a node: only nodes get certificates from Sign (use mailmesh ca issue)`);
  } else if (!req.joinToken && req.expiredChainPem) {
    rejoin = await verifyExpiredRenewal(ctx, req.csr, req.expiredChainPem, req.expiredProof);
    ({ spiffeId, shard } = rejoin);
    via = 'expired-renewal';
  } else if (!req.joinToken) {
    throw new ControlPlaneError('ERR_UNAUTHENTICATED', 'Sign needs a join token (first start) or the current certificate over mutual TLS (renewal)');
  } else {
    claims = await verify(req.joinToken);
    spiffeId = claims.spiffeId;
    shard = claims.shard;
    via = 'join-token';
  }
  if (!loaded.shardIds.has(shard)) {
    throw new ControlPlaneError('ERR_UNKNOWN_SHARD', `shard "${shard}" is not in policy revision ${loaded.revision}: add it to the policy first`);
  }
  if (ctx.revokedIds.has(spiffeId)) throw new ControlPlaneError('ERR_PERMISSION_DENIED', `identity ${spiffeId} is revoked`);
  const now = ctx.clock.now();
  if (claims && !(await ctx.store.useTokenId(claims.jti, spiffeId, claims.expiresAt, now))) {
    throw new ControlPlaneError('ERR_TOKEN_REPLAYED', `join token ${claims.jti} was already used: create a new one with mailmesh token create`);
  }
  // One rejoin per expired certificate, atomically in the store like a join token's jti.
  if (rejoin && !(await ctx.store.useTokenId(rejoin.claim, spiffeId, rejoin.claimExpiresAt, now))) {
    throw new ControlPlaneError('ERR_RENEWAL_NOT_LATEST', `the expired certificate of ${spiffeId} was already used to rejoin: rejoin with a new token (mailmesh token create)`);
  }
  const leaf = issueLeaf(ctx.issuer, { publicKey, spiffeId, ttlMs: loaded.policy.certificates.workloadTtlMs, now });
  await ctx.store.recordIssued({ serial: leaf.serial, spiffeId, notAfter: leaf.notAfter.getTime(), issuedAt: now, via });
  ctx.log.info({ spiffeId, serial: leaf.serial, via, notAfter: leaf.notAfter.toISOString() }, 'certificate issued');
  ctx.metrics.certificatesIssued.inc({ kind: via === 'join-token' ? 'join' : via === 'renewal' ? 'renew' : 'rejoin' });
  ctx.metrics.issuedCertificateExpiry.set(leaf.notAfter.getTime() / 1000);
  return { chainPem: leaf.chainPem, bundlePem: ctx.bundlePem, spiffeId, serial: leaf.serial, notAfterMs: String(leaf.notAfter.getTime()) };
}
