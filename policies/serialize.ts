// Snapshot encoding of a compiled policy. Line 1 is a JSON header (everything but the user
// directories); then, per domain with a directory, one line of base64 placements (Int32,
// little-endian) followed by one normalized local part per line. A million users is ~one
// Map insert per line to decode, with no per-user JSON.
import { PolicyError } from './errors.ts';
import { compileAuthz, compileDomain } from './compile.ts';
import type { CompiledPolicy, CompiledShard } from './compiled.ts';
import type { AuthorizationRule, Domain } from './types.ts';
import { addressHash } from './hash.ts';
import { UserIndex } from './user-index.ts';

/** Format tag of the first line; bump on any incompatible change. */
export const SNAPSHOT_FORMAT = 'mailmesh-policy/1';

interface Header {
  format: string;
  trustDomain: string;
  certificates: CompiledPolicy['certificates'];
  digest: string;
  shards: CompiledShard[];
  domains: (Omit<Domain, 'directory' | 'at'> & { directoryFiles: string[]; users: number | null })[];
  authorization: AuthorizationRule[];
}

/**
 * Encode a compiled policy for a snapshot. Deterministic: the same compiled policy always gives
 * the same text.
 */
export function serializeCompiled(compiled: CompiledPolicy): string {
  const header: Header = {
    format: SNAPSHOT_FORMAT,
    trustDomain: compiled.trustDomain,
    certificates: compiled.certificates,
    digest: compiled.digest,
    shards: compiled.shards,
    domains: compiled.domains.map((d) => ({
      name: d.name,
      residency: d.residency,
      caseSensitive: d.caseSensitive,
      subaddressSeparator: d.subaddressSeparator,
      auth: d.auth,
      directoryIsComplete: d.directoryIsComplete,
      rules: d.rules,
      default: d.default,
      defaultShardIds: d.defaultShardIds,
      directoryFiles: d.directoryFiles,
      users: d.users ? d.users.size : null,
    })),
    authorization: compiled.authorization.map((a) => a.source),
  };
  const parts: string[] = [JSON.stringify(header)];
  for (const d of compiled.domains) {
    if (!d.users) continue;
    const locals = d.users.locals;
    const p = d.placement;
    parts.push(Buffer.from(p.buffer, p.byteOffset, d.users.size * 4).toString('base64'));
    if (locals.length > 0) parts.push(locals.join('\n'));
  }
  return parts.join('\n');
}

/** Decode {@link serializeCompiled} output. Throws `ERR_POLICY_SNAPSHOT` on malformed input. */
export function deserializeCompiled(text: string): CompiledPolicy {
  const nl = text.indexOf('\n');
  let header: Header;
  try {
    header = JSON.parse(nl < 0 ? text : text.slice(0, nl)) as Header;
  } catch (err) {
    throw new PolicyError('ERR_POLICY_SNAPSHOT', 'policy snapshot header is not JSON', [], { cause: err });
  }
  if (header?.format !== SNAPSHOT_FORMAT) {
    throw new PolicyError('ERR_POLICY_SNAPSHOT', `unsupported policy snapshot format ${JSON.stringify(header?.format)} (expected ${SNAPSHOT_FORMAT})`);
  }
  const lines = nl < 0 ? [] : text.slice(nl + 1).split('\n');
  let pos = 0;
  const domains = header.domains.map((h) => {
    let users: UserIndex | undefined;
    let placement = new Int32Array(0);
    if (h.users !== null) {
      const bytes = Buffer.from(lines[pos++] ?? '', 'base64');
      if (bytes.length !== h.users * 4 || pos + h.users > lines.length) {
        throw new PolicyError('ERR_POLICY_SNAPSHOT', `policy snapshot truncated in the directory of ${h.name}`);
      }
      // Copy into an aligned buffer (the format is little-endian, as is every platform Node runs on).
      placement = new Int32Array(h.users);
      new Uint8Array(placement.buffer).set(bytes);
      users = new UserIndex(h.name, h.users);
      for (let i = 0; i < h.users; i++) {
        const local = lines[pos++];
        users.add(local, addressHash(local, h.name));
      }
    }
    return compileDomain(h, header.shards, users, placement, h.directoryFiles);
  });
  return {
    trustDomain: header.trustDomain,
    certificates: header.certificates,
    digest: header.digest,
    shards: header.shards,
    domains,
    domainMap: new Map(domains.map((d) => [d.name, d])),
    authorization: compileAuthz(header.authorization),
  };
}
