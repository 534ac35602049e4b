import { parseEndpoint, type Endpoint } from '../mesh/address.ts';
import { PostfixError } from './errors.ts';
import type { LookupFn, LookupResult } from './socketmap.ts';

/** Where placement puts an address (the shape of `policies/route()`, reduced to what we need). */
export type RouteAnswer = { kind: 'shard'; shardId: string } | { kind: 'not-hosted' } | { kind: 'invalid' } | { kind: 'unavailable' };

/** Inputs of {@link makePostfixLookups}. */
export interface PostfixLookupsConfig {
  /** Placement: address → owning shard. Injected so this module does not depend on `policies/`. */
  route: (address: string) => RouteAnswer;
  /** The user directory: true = exists, false = known not to exist, undefined = not listed
   * (placement by hashing; accepted). Absent: every hosted address is accepted. */
  isKnownUser?: (address: string) => boolean | undefined;
  /** This node's shard id. */
  localShard: string;
  /** The local Dovecot LMTP, `host:port` (`[::1]:24` for IPv6). */
  localLmtp: string;
  /** The sidecar's egress LMTP listener for remote shards, `host:port`. */
  egress: string;
  /** Postfix's `recipient_delimiter` (e.g. `+`): `user+ext@d` is placed as `user@d`. */
  recipientDelimiter?: string;
}

const NOTFOUND: LookupResult = { kind: 'notfound' };

/** Parse a backend address as the sidecar config takes it (`parseEndpoint`: `host:port`,
 * `[v6]:port` or `unix:/path`) into Postfix's LMTP next-hop form. */
export function lmtpNexthop(address: string): string {
  let endpoint: Endpoint;
  try {
    endpoint = parseEndpoint(address);
  } catch {
    throw new PostfixError('ERR_BAD_HOSTPORT', `invalid LMTP address "${address}": use e.g. 127.0.0.1:24, [::1]:24 or unix:/run/dovecot/lmtp`);
  }
  if ('path' in endpoint) return `lmtp:unix:${endpoint.path}`;
  // Postfix wants IPv6 addresses in brackets in a next-hop (transport(5) "RESULT FORMAT").
  return endpoint.host.includes(':') ? `lmtp:inet:[${endpoint.host}]:${endpoint.port}` : `lmtp:inet:${endpoint.host}:${endpoint.port}`;
}

/**
 * The lookup function behind the sidecar's socketmap, for two tables:
 * - `transport` (transport_maps): a user of the local shard → `lmtp:inet:<local Dovecot>`, a user
 *   of another shard → `lmtp:inet:<egress>`; everything else NOTFOUND. Postfix also asks for
 *   `domain`, `.domain` and `*` (transport(5) "TABLE SEARCH ORDER") and `@domain`: those are
 *   NOTFOUND, so only the per-address answer ever routes mail and a domain-wide default can
 *   never send a user's mail to the wrong shard.
 * - `recipients` (relay_recipient_maps): `OK ok` for a hosted address the directory knows or
 *   does not list (placed by hashing), NOTFOUND for one it knows not to exist, for an unhosted
 *   or invalid address, and for the `@domain` wildcard form (which would accept everyone).
 * Any other table name answers PERM. Exceptions from `route` propagate, and the socketmap server
 * turns them into TEMP, so Postfix defers instead of bouncing.
 *
 * @example
 * const lookup = makePostfixLookups({ route: (a) => ..., localShard: 'tokyo-1',
 *   localLmtp: '127.0.0.1:24', egress: '127.0.0.1:10030' });
 * await lookup('transport', 'bob@mail.test'); // { kind: 'ok', value: 'lmtp:inet:127.0.0.1:24' }
 */
export function makePostfixLookups(config: PostfixLookupsConfig): LookupFn {
  const local = lmtpNexthop(config.localLmtp);
  const egress = lmtpNexthop(config.egress);
  const delimiter = config.recipientDelimiter ?? '';

  /** The address placement sees, or undefined for keys that are not one address. */
  const addressOf = (key: string): string | undefined => {
    const at = key.lastIndexOf('@');
    if (at <= 0 || at === key.length - 1) return undefined; // domain, .domain, *, @domain
    let localPart = key.slice(0, at);
    for (const d of delimiter) {
      const i = localPart.indexOf(d);
      if (i > 0) localPart = localPart.slice(0, i);
    }
    return `${localPart}@${key.slice(at + 1)}`.toLowerCase();
  };

  return async (name, key) => {
    if (name !== 'transport' && name !== 'recipients') return { kind: 'perm', reason: `unknown table "${name}"` };
    const address = addressOf(key);
    if (!address) return NOTFOUND;
    const placed = config.route(address);
    // No snapshot yet: Postfix must defer, not treat the address as unhosted.
    if (placed.kind === 'unavailable') return { kind: 'temp', reason: 'no policy snapshot yet' };
    if (placed.kind !== 'shard') return NOTFOUND;
    if (name === 'transport') return { kind: 'ok', value: placed.shardId === config.localShard ? local : egress };
    const known = config.isKnownUser?.(address);
    return known === false ? NOTFOUND : { kind: 'ok', value: 'ok' };
  };
}
