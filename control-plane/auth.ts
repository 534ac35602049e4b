import { X509Certificate } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { TrustBundle } from '../ca/bundle.ts';
import type { Issuer } from '../ca/issuer.ts';
import { CaError } from '../ca/errors.ts';
import { verifyPeerChain } from '../ca/verify.ts';
import { ControlPlaneError } from './errors.ts';

/** Who is calling. */
export interface Peer {
  /** Client address without the port: the rate-limit key of callers without a certificate. */
  address: string;
  /** Set when the caller presented a certificate that verified. */
  spiffeId?: string;
  serial?: string;
  notAfter?: number;
  /** What the identity is allowed to be. */
  role: 'anonymous' | 'node' | 'admin' | 'control-plane';
  /** For role 'node'. */
  shard?: string;
  node?: string;
}

/** What authentication needs to know, read at each call (revocations change). */
export interface AuthContext {
  bundle: TrustBundle;
  issuer: Issuer;
  /** Other issuing CAs whose leaves may renew (the previous one during a rotation). The TLS layer
   * checked the chain the client sent, but grpc-js hands us only the leaf. */
  intermediates?: readonly X509Certificate[];
  trustDomain: string;
  now: number;
  revokedSerials: ReadonlySet<string>;
  revokedIds: ReadonlySet<string>;
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

/** `ipv4:1.2.3.4:5`, `1.2.3.4:5`, `[::1]:5` → the address part. */
export function addressOf(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const m = /^\[([^\]]+)\]:\d+$/.exec(p) ?? /^(.*):\d+$/.exec(p);
  return m ? m[1] : p;
}

interface Verified {
  base: Omit<Peer, 'address'>;
  notBefore: number;
  notAfter: number;
}

// Verified certificates by SHA-256 fingerprint (node computes it for the peer certificate
// anyway): a renewal storm or a Report loop re-verifies nothing but time and revocation, which
// are checked on every call below. Bounded; cleared when full.
const verifiedCache = new Map<string, Verified>();
const MAX_CACHED = 10_000;

/**
 * Authenticate the caller of one RPC. No certificate → role 'anonymous'. A certificate → verified
 * with ca/verify.ts against the bundle, the control plane's clock and the current revocations
 * (node's TLS layer only let through chains that reach a root in the bundle; grpc-js hands us the
 * leaf, and the chain is leaf + our issuing CA). A certificate that does not verify is refused
 * (never silently treated as anonymous).
 */
export function authenticate(call: AnyCall, ctx: AuthContext): Peer {
  const address = addressOf(call.getPeer());
  const pc = call.getAuthContext()?.sslPeerCertificate;
  if (!pc?.raw) return { address, role: 'anonymous' };
  const key = `${pc.fingerprint256}|${ctx.issuer.cert.fingerprint256}|${ctx.trustDomain}`;
  const hit = verifiedCache.get(key);
  if (hit && ctx.now >= hit.notBefore && ctx.now <= hit.notAfter) {
    if (hit.base.serial && ctx.revokedSerials.has(hit.base.serial)) throw new CaError('ERR_REVOKED_SERIAL', `peer certificate serial ${hit.base.serial} is revoked`);
    if (hit.base.spiffeId && ctx.revokedIds.has(hit.base.spiffeId)) throw new CaError('ERR_REVOKED_IDENTITY', `peer identity ${hit.base.spiffeId} is revoked`);
    return { address, ...hit.base };
  }
  const leaf = new X509Certificate(pc.raw);
  const v = verifyPeerChain([leaf, ctx.issuer.cert, ...(ctx.intermediates ?? [])], {
    bundle: ctx.bundle,
    trustDomain: ctx.trustDomain,
    usage: 'client',
    now: ctx.now,
    revokedSerials: ctx.revokedSerials,
    revokedIds: ctx.revokedIds,
  });
  const path = v.spiffeId.slice(`spiffe://${ctx.trustDomain}`.length);
  const node = /^\/shard\/([^/]+)\/node\/([^/]+)$/.exec(path);
  const ids = { spiffeId: v.spiffeId, serial: v.serial, notAfter: v.notAfter.getTime() };
  let base: Omit<Peer, 'address'> | undefined;
  if (node) base = { ...ids, role: 'node', shard: node[1], node: node[2] };
  else if (/^\/admin\/[^/]+$/.test(path)) base = { ...ids, role: 'admin' };
  else if (path === '/control-plane') base = { ...ids, role: 'control-plane' };
  if (base) {
    if (verifiedCache.size >= MAX_CACHED) verifiedCache.clear();
    verifiedCache.set(key, { base, notBefore: leaf.validFromDate.getTime(), notAfter: leaf.validToDate.getTime() });
    return { address, ...base };
  }
  throw new ControlPlaneError('ERR_PERMISSION_DENIED', `identity ${v.spiffeId} has no role on the control plane (expected a node or spiffe://${ctx.trustDomain}/admin/NAME)`);
}

/** Throw unless the peer has one of the roles. */
export function requireRole(peer: Peer, roles: Peer['role'][], what: string): void {
  if (roles.includes(peer.role)) return;
  if (peer.role === 'anonymous') {
    throw new ControlPlaneError('ERR_UNAUTHENTICATED', `${what} needs a client certificate (mutual TLS): pass --cert and --key`);
  }
  throw new ControlPlaneError('ERR_PERMISSION_DENIED', `${peer.spiffeId} may not call ${what} (allowed: ${roles.join(', ')})`);
}
