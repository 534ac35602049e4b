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
  /** The CA certificates the leaf was verified through: revoking one refuses cached peers too. */
  caSerials: string[];
}

// Verified certificates by SHA-256 fingerprint (node computes it for the peer certificate
// anyway): a renewal storm or a Report loop re-verifies nothing but time and revocation, which
// are checked on every call below. A result holds only for the trust it was computed with: one
// map per bundle object (a CA reload or a retired root makes a new one), keyed also by the
// issuing CAs offered as intermediates (a rotation drops the previous one), so a certificate
// of a retired root or issuer is verified again, and refused. Bounded; cleared when full.
const verifiedCache = new WeakMap<TrustBundle, Map<string, Verified>>();
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
  const key = [pc.fingerprint256, ctx.issuer.cert.fingerprint256, ...(ctx.intermediates ?? []).map((c) => c.fingerprint256), ctx.trustDomain].join('|');
  let cache = verifiedCache.get(ctx.bundle);
  if (!cache) verifiedCache.set(ctx.bundle, (cache = new Map()));
  const hit = cache.get(key);
  if (hit && ctx.now >= hit.notBefore && ctx.now <= hit.notAfter) {
    if (hit.base.serial && ctx.revokedSerials.has(hit.base.serial)) throw new CaError('ERR_REVOKED_SERIAL', `peer certificate serial ${hit.base.serial} is revoked`);
    for (const s of hit.caSerials) if (ctx.revokedSerials.has(s)) throw new CaError('ERR_REVOKED_SERIAL', `CA certificate serial ${s} in the peer chain is revoked`);
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
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(key, { base, notBefore: leaf.validFromDate.getTime(), notAfter: leaf.validToDate.getTime(), caSerials: v.caSerials });
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
