import { createSecureContext, type SecureContext } from 'node:tls';
import type { TrustBundle } from '../../ca/bundle.ts';
import type { Identity } from '../identity/identity.ts';

const bundlePems = new WeakMap<TrustBundle, string>();

/** The PEM of a bundle, computed once per bundle object (bundles are immutable). */
export function bundlePem(bundle: TrustBundle): string {
  let pem = bundlePems.get(bundle);
  if (pem === undefined) {
    pem = bundle.toPem();
    bundlePems.set(bundle, pem);
  }
  return pem;
}

/** Secure-context options shared by ingress and dialer: TLS 1.3 only, our chain and key, the
 * bundle (sent as the acceptable CA list; trust itself is decided by `ca/verify.ts`). */
export function meshContextOptions(identity: Identity, bundle: TrustBundle, groups: string, ticketKeys?: Buffer) {
  return {
    cert: identity.chainPem,
    key: identity.keyPem,
    ca: bundlePem(bundle),
    minVersion: 'TLSv1.3' as const,
    maxVersion: 'TLSv1.3' as const,
    ecdhCurve: groups,
    ...(ticketKeys ? { ticketKeys } : {}),
  };
}

/**
 * Caches one secure context per (identity serial, bundle). Building a context parses the key and
 * certificates, so it is done on rotation, not per connection; `changed` tells the caller that a
 * rotation happened (the dialer then forgets sessions bound to the old certificate).
 */
export class ContextCache {
  private key = '';
  private bundle: TrustBundle | undefined;
  private ctx: SecureContext | undefined;
  private readonly groups: string;

  constructor(groups: string) {
    this.groups = groups;
  }

  /** The context for this identity and bundle; `changed` is true when it had to be rebuilt. */
  get(identity: Identity, bundle: TrustBundle): { context: SecureContext; changed: boolean } {
    if (this.ctx && this.key === identity.serial && this.bundle === bundle) return { context: this.ctx, changed: false };
    this.ctx = createSecureContext(meshContextOptions(identity, bundle, this.groups));
    this.key = identity.serial;
    this.bundle = bundle;
    return { context: this.ctx, changed: true };
  }

  /** Forget the cached context (next `get` rebuilds). */
  reset(): void {
    this.ctx = undefined;
    this.key = '';
  }
}
