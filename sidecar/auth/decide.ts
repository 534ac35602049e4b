import type { Verdict } from './types.ts';

/** Per-domain enforcement mode (policy file `auth.mode`). */
export type EnforcementMode = 'enforce' | 'monitor';

/** What the front door does with a message. */
export type AuthAction = 'accept' | 'quarantine' | 'reject' | 'tempfail';

/** An SMTP reply: basic code, enhanced status code (RFC 3463) and text. */
export interface SmtpReply {
  code: number;
  enhanced: string;
  message: string;
}

/** The outcome of {@link decide}. */
export interface Decision {
  action: AuthAction;
  /** The reply to send instead of delivering (reject and tempfail only). */
  smtp?: SmtpReply;
  /** Extra header fields to prepend beside Authentication-Results (quarantine only). */
  headers?: string[];
  /** Short machine-readable reason, for logs and metrics, e.g. `dmarc-reject`. */
  reason: string;
  /** In monitor mode: what enforce mode would have done. */
  wouldBe?: AuthAction;
}

/**
 * Header field added to a quarantined message. A Dovecot Sieve rule files it as junk:
 *
 *     require ["fileinto"];
 *     if header :contains "X-Mailmesh-Quarantine" "dmarc=fail" { fileinto "Junk"; stop; }
 *
 * Any incoming copy is stripped before ours is added (headers.ts OWN_HEADERS).
 */
export const QUARANTINE_HEADER = 'X-Mailmesh-Quarantine';

/** Enhanced status codes used here, with where they come from. */
export const ENHANCED = {
  /** RFC 3463 X.7.1 "Delivery not authorized, message refused": the DMARC p=reject refusal. */
  rejected: '5.7.1',
  /** RFC 7372 §3.2 X.7.24 "SPF validation error": SPF temperror (DNS) decided the outcome. */
  spfTemp: '4.7.24',
  /**
   * RFC 3463 X.7.5 "Cryptographic failure … necessary information such as key was not
   * available": the DKIM key, ARC key or DMARC record could not be fetched (DNS failure).
   */
  cryptoTemp: '4.7.5',
} as const;

/**
 * Could `a` align with the author domain `b` under relaxed alignment (RFC 7489 §3.1)? Without
 * the organizational domain at hand this over-approximates (same last two labels): erring
 * towards "could" only turns a refusal into a retry, never a failure into a pass.
 */
function mayAlign(a: string, b: string): boolean {
  const tail = (d: string) => d.toLowerCase().replace(/\.$/, '').split('.').slice(-2).join('.');
  return !!a && !!b && tail(a) === tail(b);
}

/**
 * A missing DNS answer that could have turned this DMARC failure into a pass or an ARC override.
 * A temperror on an unrelated signature (a spoofer can add one with a broken DNS server of his
 * own) does not count, so it cannot turn a 550 into an endless 451.
 */
function decisiveTemporary(v: Verdict): boolean {
  const from = v.dmarc.domain;
  if (v.spf.result === 'temperror' && mayAlign(v.spf.domain, from)) return true;
  if (v.dkim.some((d) => d.result === 'temperror' && mayAlign(d.domain, from))) return true;
  return !!(v.arc.listed && v.arc.temporary);
}

function tempfail(v: Verdict, why: string): Decision {
  // Only SPF missing its answer → the SPF-specific code; otherwise a key/record was unavailable.
  const onlySpf = v.spf.result === 'temperror' && v.dmarc.result !== 'temperror' && !v.dkim.some((d) => d.result === 'temperror');
  return {
    action: 'tempfail',
    reason: why,
    smtp: {
      code: 451,
      enhanced: onlySpf ? ENHANCED.spfTemp : ENHANCED.cryptoTemp,
      message: `Temporary authentication failure (${onlySpf ? 'SPF' : 'DKIM/DMARC'} DNS lookup failed), try again later`,
    },
  };
}

function enforce(v: Verdict): Decision {
  const d = v.dmarc;
  switch (d.result) {
    case 'pass':
      return { action: 'accept', reason: 'dmarc-pass' };
    case 'none':
      // No DMARC record: the domain asks for nothing; SPF/DKIM results are recorded only.
      return { action: 'accept', reason: 'dmarc-none' };
    case 'temperror':
      // The policy is unknown, so any decision could be wrong: let the sender retry (RFC 7489 §6.6.3).
      return tempfail(v, 'dmarc-temperror');
    case 'permerror':
      // No single author domain (RFC 7489 §6.6.1): suspicious, but not provably spoofed.
      return { action: 'quarantine', reason: 'dmarc-permerror', headers: [`${QUARANTINE_HEADER}: dmarc=permerror reason=${d.skipReason ?? 'unknown'}`] };
    case 'fail':
      if (d.override === 'arc') return { action: 'accept', reason: 'arc-override' };
      if (d.policy === 'none') return { action: 'accept', reason: 'dmarc-fail-policy-none' };
      // A missing DNS answer (SPF, a DKIM key, an ARC key) might have turned the fail into a
      // pass or an override: with a policy at stake, defer rather than refuse or junk.
      if (decisiveTemporary(v)) return tempfail(v, 'dmarc-fail-temperror');
      if (d.policy === 'reject') {
        return {
          action: 'reject',
          reason: 'dmarc-reject',
          smtp: { code: 550, enhanced: ENHANCED.rejected, message: `Message rejected: ${d.domain} DMARC policy (p=reject) and the message is not authenticated` },
        };
      }
      return { action: 'quarantine', reason: 'dmarc-quarantine', headers: [`${QUARANTINE_HEADER}: dmarc=fail policy=quarantine header.from=${d.domain}`] };
  }
}

/**
 * Turn a verdict into an action, purely. `enforce` honours DMARC: p=reject → `550 5.7.1`,
 * p=quarantine → accepted with {@link QUARANTINE_HEADER}, a DNS failure that decides the
 * outcome → `451 4.7.24` (SPF) or `451 4.7.5` (key/record), a failing message whose valid ARC
 * chain was sealed by a trusted forwarder → accepted (RFC 8617 §7.2.1). `monitor` always
 * accepts and reports in `wouldBe` what enforce would have done.
 *
 * | dmarc     | policy      | other                      | enforce                 |
 * |-----------|-------------|----------------------------|-------------------------|
 * | pass      | any         |                            | accept                  |
 * | none      | -           |                            | accept                  |
 * | temperror | -           |                            | tempfail 451            |
 * | permerror | -           | no single From domain      | quarantine              |
 * | fail      | any         | trusted ARC sealer         | accept (arc-override)   |
 * | fail      | none        |                            | accept                  |
 * | fail      | reject/quar | a decisive answer missing  | tempfail 451            |
 * | fail      | reject      |                            | reject 550 5.7.1        |
 * | fail      | quarantine  |                            | quarantine              |
 */
export function decide(verdict: Verdict, mode: EnforcementMode): Decision {
  const d = enforce(verdict);
  if (mode === 'enforce') return d;
  return { action: 'accept', reason: `monitor:${d.reason}`, wouldBe: d.action };
}
