import { X509Certificate } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { TrustBundle } from '../ca/bundle.ts';
import type { Issuer } from '../ca/issuer.ts';
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

/**
 * Authenticate the caller of one RPC. No certificate → role 'anonymous'. A certificate → verified
 * with ca/verify.ts against the bundle, the control plane's clock and the current revocations
 * (node's TLS layer only let through chains that reach a root in the bundle; grpc-js hands us the
 * leaf, and the chain is leaf + our issuing CA). A certificate that does not verify is refused
 * (never silently treated as anonymous).
 */
export function authenticate(call: AnyCall, ctx: AuthContext): Peer {
  const address = addressOf(call.getPeer());
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  if (!raw) return { address, role: 'anonymous' };
  const leaf = new X509Certificate(raw);
  const v = verifyPeerChain([leaf, ctx.issuer.cert], {
    bundle: ctx.bundle,
    trustDomain: ctx.trustDomain,
    usage: 'client',
    now: ctx.now,
    revokedSerials: ctx.revokedSerials,
    revokedIds: ctx.revokedIds,
  });
  const path = v.spiffeId.slice(`spiffe://${ctx.trustDomain}`.length);
  const node = /^\/shard\/([^/]+)\/node\/([^/]+)$/.exec(path);
  const base = { address, spiffeId: v.spiffeId, serial: v.serial, notAfter: v.notAfter.getTime() };
  if (node) return { ...base, role: 'node', shard: node[1], node: node[2] };
  if (/^\/admin\/[^/]+$/.test(path)) return { ...base, role: 'admin' };
  if (path === '/control-plane') return { ...base, role: 'control-plane' };
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
