import type { ReportRequest__Output } from '../../api/generated/mailmesh/v1/ReportRequest.ts';
import type { ReportResponse } from '../../api/generated/mailmesh/v1/ReportResponse.ts';
import { requireRole, type Peer } from '../auth.ts';
import type { ControlPlaneContext } from '../context.ts';

/** Record a node's status; answer with the server time so the node can estimate its clock offset. */
export async function report(ctx: ControlPlaneContext, peer: Peer, req: ReportRequest__Output): Promise<ReportResponse> {
  requireRole(peer, ['node'], 'Report');
  const now = ctx.clock.now();
  await ctx.store.upsertNode({
    spiffeId: peer.spiffeId as string,
    revision: req.revision,
    certSerial: req.certSerial || (peer.serial ?? ''),
    certNotAfter: Number(req.certNotAfterMs) || (peer.notAfter ?? 0),
    lastReport: now,
    clockOffsetMs: Number(req.clockOffsetMs) || 0,
  });
  return { serverTimeMs: String(now) };
}
