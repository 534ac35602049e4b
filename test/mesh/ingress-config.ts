// The ingress configuration the mesh tests start from; each test overrides what it is about.
import { systemClock } from '../../common/clock.ts';
import type { Identity } from '../../sidecar/identity/identity.ts';
import type { IngressConfig, LocalBackend } from '../../sidecar/mesh/ingress.ts';
import type { TestCa } from './pki.ts';

/**
 * Loopback, an ephemeral port, `identity` as the server (or a function, e.g. a rotator's), `ca`'s bundle, trust domain `mail.test`,
 * every peer authorized, nothing revoked, LMTP to `backend`, the system clock.
 *
 * @example startIngress(ingressConfig(server, ca, backend.address, { authorize: (id) => id !== x }))
 */
export function ingressConfig(identity: Identity | (() => Identity | undefined), ca: TestCa, backend: string | LocalBackend, extra: Partial<IngressConfig> = {}): IngressConfig {
  return {
    host: '127.0.0.1',
    port: 0,
    identity: typeof identity === 'function' ? identity : () => identity,
    trustDomain: () => 'mail.test',
    bundle: () => ca.bundle,
    authorize: () => true,
    revoked: () => ({ serials: new Set(), ids: new Set() }),
    backends: { 'mailmesh-lmtp': backend },
    clock: systemClock,
    ...extra,
  };
}
