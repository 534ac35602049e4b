import { parseSpiffeId } from '../../ca/spiffe.ts';
import type { RevokeRequest__Output } from '../../api/generated/mailmesh/v1/RevokeRequest.ts';
import type { RevokeResponse } from '../../api/generated/mailmesh/v1/RevokeResponse.ts';
import { requireRole, type Peer } from '../auth.ts';
import type { ControlPlaneContext } from '../context.ts';
import { ControlPlaneError } from '../errors.ts';
import type { Revocation } from '../store.ts';

/** What to revoke. */
export interface RevokeInput {
  serials?: string[];
  identities?: string[];
  reason?: string;
}

/**
 * Put serials and/or identities on the revocation list and push a new snapshot to every watcher.
 * Resolves to the snapshot revision carrying it. `ERR_BAD_REQUEST` for a malformed serial or ID.
 */
export async function revokeItems(ctx: ControlPlaneContext, input: RevokeInput, by: string): Promise<string> {
  const at = ctx.clock.now();
  const reason = input.reason || `revoked by ${by}`;
  const items: Revocation[] = [];
  for (const s of input.serials ?? []) {
    const serial = s.replace(/:/g, '').toUpperCase();
    if (!/^[0-9A-F]{1,64}$/.test(serial)) throw new ControlPlaneError('ERR_BAD_REQUEST', `"${s}" is not a certificate serial: use hex as mailmesh ca inspect prints it`);
    items.push({ kind: 'serial', value: serial, reason, at });
  }
  for (const id of input.identities ?? []) {
    let parsed;
    try {
      parsed = parseSpiffeId(id);
    } catch {
      throw new ControlPlaneError('ERR_BAD_REQUEST', `"${id}" is not a SPIFFE ID`);
    }
    if (parsed.trustDomain !== ctx.trustDomain || parsed.path === '') throw new ControlPlaneError('ERR_BAD_REQUEST', `${id} is not an identity of trust domain ${ctx.trustDomain}`);
    if (parsed.path === '/control-plane') throw new ControlPlaneError('ERR_BAD_REQUEST', 'the control plane cannot revoke itself');
    items.push({ kind: 'identity', value: id, reason, at });
  }
  if (items.length === 0) throw new ControlPlaneError('ERR_BAD_REQUEST', 'nothing to revoke: give a serial or an identity');
  await ctx.store.revoke(items);
  for (const r of items) (r.kind === 'serial' ? ctx.revokedSerials : ctx.revokedIds).add(r.value);
  ctx.log.warn({ serials: input.serials ?? [], identities: input.identities ?? [], reason, by }, 'revoked');
  return ctx.rebuildSnapshot();
}

/** Revoke RPC: admins only. */
export async function revoke(ctx: ControlPlaneContext, peer: Peer, req: RevokeRequest__Output): Promise<RevokeResponse> {
  requireRole(peer, ['admin'], 'Revoke');
  return { revision: await revokeItems(ctx, { serials: req.serials, identities: req.identities, reason: req.reason }, peer.spiffeId as string) };
}
