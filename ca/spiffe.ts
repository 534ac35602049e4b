import { CaError } from './errors.ts';

/** A parsed SPIFFE ID (SPIFFE ID spec, spiffe/spiffe standards/SPIFFE-ID.md). */
export interface SpiffeId {
  /** The whole ID, e.g. `spiffe://mail.example/shard/tokyo-1/node/a`. */
  id: string;
  /** The authority, e.g. `mail.example`. */
  trustDomain: string;
  /** The path including its leading `/`, or `''` for the trust domain itself. */
  path: string;
}

// SPIFFE-ID.md §2.1: trust domain names use lowercase letters, digits, '.', '-' and '_' only.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
// SPIFFE-ID.md §2.2: path segments use letters, digits, '.', '-' and '_'; none empty, '.' or '..'.
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** True when `td` is a valid SPIFFE trust domain name. */
export function isTrustDomain(td: string): boolean {
  return td.length > 0 && td.length <= 255 && TRUST_DOMAIN.test(td);
}

/** Throw `ERR_BAD_TRUST_DOMAIN` unless `td` is a valid trust domain name. */
export function assertTrustDomain(td: string): string {
  if (!isTrustDomain(td)) {
    throw new CaError('ERR_BAD_TRUST_DOMAIN', `invalid trust domain "${td}": use lowercase letters, digits, '.', '-' and '_' (e.g. mail.example)`);
  }
  return td;
}

/**
 * Parse and validate a SPIFFE ID. Throws `ERR_NOT_SPIFFE` for anything that is not a valid
 * `spiffe://` URI: other schemes, ports, user info, query, fragment, empty or dot segments.
 *
 * @example parseSpiffeId('spiffe://mail.example/control-plane').trustDomain // 'mail.example'
 */
export function parseSpiffeId(uri: string): SpiffeId {
  const bad = (why: string) => new CaError('ERR_NOT_SPIFFE', `"${uri}" is not a SPIFFE ID (${why}): use spiffe://<trust-domain>/<path>`);
  // SPIFFE-ID.md §2.3: 2048 bytes is the most an implementation must accept.
  if (uri.length > 2048) throw bad('longer than 2048 bytes');
  if (!uri.startsWith('spiffe://')) throw bad('scheme must be spiffe');
  const rest = uri.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  if (!isTrustDomain(trustDomain)) throw bad('bad trust domain');
  if (path !== '') {
    const segments = path.slice(1).split('/');
    for (const s of segments) {
      if (s === '' || s === '.' || s === '..' || !SEGMENT.test(s)) throw bad(`bad path segment "${s}"`);
    }
  }
  return { id: uri, trustDomain, path };
}

/** The SPIFFE ID of a sidecar node: `spiffe://<td>/shard/<shard>/node/<node>`. */
export function nodeSpiffeId(trustDomain: string, shard: string, node: string): string {
  return parseSpiffeId(`spiffe://${trustDomain}/shard/${shard}/node/${node}`).id;
}

/** The SPIFFE ID of the control plane: `spiffe://<td>/control-plane`. */
export function controlPlaneSpiffeId(trustDomain: string): string {
  return parseSpiffeId(`spiffe://${trustDomain}/control-plane`).id;
}
