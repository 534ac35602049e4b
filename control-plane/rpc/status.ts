import type { StatusResponse } from '../../api/generated/mailmesh/v1/StatusResponse.ts';
import { requireRole, type Peer } from '../auth.ts';
import type { ControlPlaneContext } from '../context.ts';

/** The control plane's view: served revision, last policy error, nodes. */
export async function statusOf(ctx: ControlPlaneContext): Promise<StatusResponse> {
  const nodes = await ctx.store.nodes();
  return {
    trustDomain: ctx.trustDomain,
    revision: ctx.publisher.current?.revision ?? '',
    nodes: nodes.map((n) => ({
      spiffeId: n.spiffeId,
      revision: n.revision,
      certSerial: n.certSerial,
      certNotAfterMs: String(n.certNotAfter),
      lastReportMs: String(n.lastReport),
      clockOffsetMs: String(n.clockOffsetMs),
    })),
    lastPolicyError: ctx.policy.lastError?.message ?? '',
    lastPolicyErrorMs: String(ctx.policy.lastError?.at ?? 0),
    policyErrorsTotal: String(ctx.policy.errorsTotal),
    serverTimeMs: String(ctx.clock.now()),
    watchers: String(ctx.publisher.watchers),
    revokedSerials: String(ctx.revokedSerials.size),
    revokedIdentities: String(ctx.revokedIds.size),
  };
}

/** Status RPC: admins (and the control plane itself) only. */
export async function status(ctx: ControlPlaneContext, peer: Peer): Promise<StatusResponse> {
  requireRole(peer, ['admin', 'control-plane'], 'Status');
  return statusOf(ctx);
}
