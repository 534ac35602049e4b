import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/log.ts';
import type { TrustBundle } from '../ca/bundle.ts';
import type { Issuer } from '../ca/issuer.ts';
import type { AuthContext } from './auth.ts';
import type { PolicySource } from './policy-source.ts';
import type { Publisher } from './publisher.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { Store } from './store.ts';
import type { TokenKey } from './token.ts';
import type { ControlPlaneMetrics } from '../common/metrics.ts';

/** Everything an RPC handler needs, built once by control-plane/start.ts. */
export interface ControlPlaneContext {
  clock: Clock;
  log: Logger;
  trustDomain: string;
  issuer: Issuer;
  bundle: TrustBundle;
  bundlePem: string;
  store: Store;
  tokenKey: TokenKey;
  audience: string;
  policy: PolicySource;
  publisher: Publisher;
  signLimiter: RateLimiter;
  revokedSerials: Set<string>;
  revokedIds: Set<string>;
  metrics: ControlPlaneMetrics;
  /** How long after expiry a node may rejoin with its last certificate (rpc/expired-renewal.ts). */
  expiredRenewalGraceMs?: number;
  authContext(): AuthContext;
  /** Rebuild, sign and push the snapshot (after a revocation); resolves to its revision. */
  rebuildSnapshot(): Promise<string>;
}
