import { MailmeshError } from '../../common/errors.ts';

/**
 * Codes of {@link AuthError}: configuration and signing problems of `sidecar/auth/`. Mail-auth
 * outcomes (pass, fail, temperror …) are never errors: they are values in a verdict.
 */
export type AuthErrorCode =
  | 'ERR_AUTH_KEY_LOAD' // a signing key file could not be read or parsed
  | 'ERR_AUTH_KEY_MISMATCH' // the key type does not match the configured algorithm
  | 'ERR_AUTH_NO_KEY' // no signing key configured for the domain
  | 'ERR_AUTH_SIGN' // mailauth refused to sign
  | 'ERR_AUTH_SEAL' // ARC sealing failed
  | 'ERR_AUTH_BAD_CONFIG'; // an option is out of range (e.g. a DNS server address)

/** A configuration or signing error of the mail-auth library, with a stable `code`. */
export class AuthError extends MailmeshError<AuthErrorCode> {}

/**
 * Codes a DNS lookup fails with, as mailauth expects them: `ENOTFOUND` (NXDOMAIN) and
 * `ENODATA` (the name exists without records of that type) are answers; `ESERVFAIL` and
 * `ETIMEOUT` mean no answer was obtained and become `temperror` (RFC 7208 §2.6.6, RFC 6376
 * §6.1.2, RFC 7489 §6.6.3); `EBADNAME` is a malformed query name (permanent).
 */
export type DnsErrorCode = 'ENOTFOUND' | 'ENODATA' | 'ESERVFAIL' | 'ETIMEOUT' | 'EBADNAME' | 'ENOTIMP';

/** A failed DNS lookup. `code` is what mailauth branches on; `temporary` is true for a missing answer. */
export class DnsError extends MailmeshError<DnsErrorCode> {
  readonly hostname: string;
  readonly rrtype: string;
  constructor(code: DnsErrorCode, hostname: string, rrtype: string, options?: ErrorOptions) {
    super(code, `DNS ${rrtype} ${hostname}: ${code}`, options);
    this.hostname = hostname;
    this.rrtype = rrtype;
  }
  /** True when the lookup produced no answer (server failure, timeout): retry later. */
  get temporary(): boolean {
    return this.code === 'ESERVFAIL' || this.code === 'ETIMEOUT';
  }

  /**
   * The error the resolver throws for a negative answer (mailauth branches on thrown codes). A
   * missing record is everyday control flow (DMARC's tree walk, SPF's void lookups), not a fault,
   * so no stack trace is captured: that would cost more than the cached lookup itself.
   */
  static answer(code: DnsErrorCode, hostname: string, rrtype: string): DnsError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new DnsError(code, hostname, rrtype);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

/** True for a DNS error that means "no answer, try again later" (any code but a definite miss). */
export function isTemporaryDnsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && !['ENOTFOUND', 'ENODATA', 'EBADNAME'].includes(code);
}
