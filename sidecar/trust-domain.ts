import { readFile } from 'node:fs/promises';
import { decodeJwt } from 'jose';
import { parseSpiffeId } from '../ca/spiffe.ts';
import { MailmeshError } from '../common/errors.ts';
import type { Identity } from './identity/identity.ts';

/**
 * The trust domain this node belongs to, before any snapshot: from its current certificate, else
 * from the join token's `sub` (read, not trusted: the control plane checks the token, and the
 * certificate it issues is verified against the bundle before use).
 */
export async function trustDomainOf(identity: Identity | undefined, joinTokenFile: string | undefined): Promise<string> {
  if (identity) return parseSpiffeId(identity.spiffeId).trustDomain;
  if (!joinTokenFile) {
    throw new MailmeshError('ERR_SIDECAR_NO_IDENTITY', 'this node has no certificate yet and no joinTokenFile: create one with `mailmesh token create --shard S --node N` and set joinTokenFile');
  }
  const token = (await readFile(joinTokenFile, 'utf8')).trim();
  let sub: string | undefined;
  try {
    sub = decodeJwt(token).sub;
  } catch {
    throw new MailmeshError('ERR_SIDECAR_NO_IDENTITY', `${joinTokenFile} does not hold a join token: create one with \`mailmesh token create\``);
  }
  if (!sub) throw new MailmeshError('ERR_SIDECAR_NO_IDENTITY', `the join token in ${joinTokenFile} names no identity`);
  return parseSpiffeId(sub).trustDomain;
}
