/** The validity window of a certificate, as the rotation decision needs it. */
export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/**
 * When a certificate should be renewed: at half of its lifetime, shifted by `jitter × lifetime`
 * so that a fleet issued at the same moment does not renew at the same moment. `jitter` is
 * clamped to -0.1..0.1, so renewal always happens between 40% and 60% of the lifetime, well
 * before expiry even when the control plane is briefly away.
 *
 * @example nextRotationAt({ notBefore: t0, notAfter: t0 + 1h }, 0) // t0 + 30 min
 */
export function nextRotationAt(cert: Validity, jitter = 0): number {
  const start = cert.notBefore.getTime();
  const lifetime = cert.notAfter.getTime() - start;
  const j = Math.max(-0.1, Math.min(0.1, Number.isFinite(jitter) ? jitter : 0));
  return start + Math.floor(lifetime * (0.5 + j));
}

/**
 * Pure decision: should the certificate be renewed at `now` (ms since epoch)? True once past the
 * jittered half-life, and always true once expired (or when the validity window is empty).
 *
 * @example shouldRotate(clock.now(), identity, 0.03)
 */
export function shouldRotate(now: number, cert: Validity, jitter = 0): boolean {
  if (now >= cert.notAfter.getTime()) return true;
  if (cert.notAfter.getTime() <= cert.notBefore.getTime()) return true;
  return now >= nextRotationAt(cert, jitter);
}

/** Retry delays after a failed renewal. */
export interface BackoffConfig {
  initialMs: number;
  maxMs: number;
}

/**
 * Exponential backoff with "full jitter" for attempt `n` (1 = first retry): a delay drawn in
 * [d/2, d] where d = min(max, initial × 2^(n-1)). Half of the delay is kept fixed so that a
 * sidecar never hammers a recovering control plane with near-zero delays. `random` returns 0..1.
 */
export function backoffDelay(attempt: number, cfg: BackoffConfig, random: () => number = Math.random): number {
  const exp = Math.min(cfg.maxMs, cfg.initialMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(exp / 2 + (exp / 2) * Math.max(0, Math.min(1, random())));
}
