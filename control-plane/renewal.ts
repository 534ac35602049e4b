/**
 * Should a certificate valid from `notBefore` to `notAfter` (ms) be renewed at `now`? Yes from
 * half of its lifetime on (DESIGN.md identity lifecycle), so a failed renewal has the other half
 * to succeed. Pure: the timer that calls it lives in control-plane/self-identity.ts.
 */
export function shouldRenew(now: number, notBefore: number, notAfter: number): boolean {
  return now >= notBefore + (notAfter - notBefore) / 2;
}

/** Milliseconds from `now` until {@link shouldRenew} turns true (0 when it already is). */
export function msUntilRenewal(now: number, notBefore: number, notAfter: number): number {
  return Math.max(0, Math.ceil(notBefore + (notAfter - notBefore) / 2 - now));
}
