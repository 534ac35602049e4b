import { spf, type SPFResult, type DNSResolver } from 'mailauth';
import type { LookupFn } from './resolver.ts';

/**
 * RFC 7208 §4.6.4 processing limits, passed to mailauth explicitly so they are ours, not a
 * library default: at most 10 terms that query DNS (include, a, mx, ptr, exists, redirect) and
 * at most 2 "void" lookups (NXDOMAIN or no records); exceeding either is permerror.
 */
export const SPF_LIMITS = { maxResolveCount: 10, maxVoidCount: 2 } as const;

/**
 * RFC 7208 §4.6.4 also asks for a limit on elapsed time ("at least 20 seconds"); past it the
 * result is temperror. Kept below a typical SMTP DATA timeout.
 */
export const SPF_MAX_ELAPSED_MS = 20_000;

/** Input of {@link checkSpf}. */
export interface SpfInput {
  /** The SMTP client's address. */
  ip: string;
  /** EHLO/HELO name (checked alone when MAIL FROM is null, RFC 7208 §2.4). */
  helo?: string;
  /** MAIL FROM address without brackets, or '' for the null reverse-path. */
  mailFrom?: string;
  resolver: LookupFn;
  /** Our host name, used in result comments. */
  authservId?: string;
  /** Override the lookup limits (tests); defaults to {@link SPF_LIMITS}. */
  limits?: { maxResolveCount?: number; maxVoidCount?: number };
}

/**
 * Evaluate SPF (RFC 7208 check_host) for the MAIL FROM identity, or the HELO identity when the
 * reverse-path is null. The result word is one of RFC 8601's SPF results; DNS failures are
 * `temperror`. mailauth's strict (RFC-exact) SPF mode is used; test/auth/spf-suite.test.ts runs
 * the RFC 7208 suite through this function.
 */
export async function checkSpf(input: SpfInput): Promise<SPFResult> {
  let helo = input.helo;
  // RFC 5321 §4.1.3 address literal: mailauth expects the bracketed form for an IP HELO.
  if (!helo) helo = `[${input.ip}]`;
  else if (/^[0-9.]+$|:/.test(helo) && !helo.startsWith('[')) helo = `[${helo}]`;
  return spf({
    ip: input.ip,
    helo,
    sender: input.mailFrom || undefined,
    mta: input.authservId,
    resolver: input.resolver as unknown as DNSResolver,
    maxResolveCount: input.limits?.maxResolveCount ?? SPF_LIMITS.maxResolveCount,
    maxVoidCount: input.limits?.maxVoidCount ?? SPF_LIMITS.maxVoidCount,
    maxElapsedTime: SPF_MAX_ELAPSED_MS,
    // mailauth strict mode follows RFC 7208 exactly (record syntax checked before evaluation,
    // void lookups counted per RFC 7208 §4.6.4): it passes all 203 cases of the RFC 7208 suite,
    // the lenient default 196.
    strict: true,
  });
}
