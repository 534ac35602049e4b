/**
 * Result words of RFC 8601 §2.7 (plus `policy` for DKIM, RFC 8601 §2.7.1). Outcomes are values,
 * never exceptions.
 */
export type AuthResultWord = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror' | 'policy';

/** SPF result for the MAIL FROM (or HELO) identity (RFC 7208 §2.6). */
export interface SpfVerdict {
  result: AuthResultWord;
  /** The domain whose record was checked. */
  domain: string;
  comment?: string;
}

/** One DKIM-Signature's result (RFC 6376 §6.1). */
export interface DkimVerdict {
  result: AuthResultWord;
  /** d= */
  domain: string;
  /** s= */
  selector: string;
  /** a=, e.g. rsa-sha256 */
  algorithm: string;
  /** True when this passing signature's domain aligns with the From domain for DMARC. */
  aligned: boolean;
  comment?: string;
}

/** DMARC policy words (RFC 7489 §6.3 p=). */
export type DmarcPolicy = 'reject' | 'quarantine' | 'none';

/** DMARC evaluation (RFC 7489 §6.6). */
export interface DmarcVerdict {
  result: 'pass' | 'fail' | 'none' | 'temperror' | 'permerror';
  /**
   * The policy the domain asks for when the message fails (p=, or sp=/np= for a subdomain,
   * one level lower with t=y). `none` when there is no record or it could not be fetched.
   */
  policy: DmarcPolicy;
  /** The RFC5322.From (author) domain, '' when there is none. */
  domain: string;
  /**
   * `arc`: DMARC failed but a valid ARC chain sealed last by a trusted forwarder vouches for the
   * message (RFC 8617 §7.2.1 local policy override); the message is accepted.
   */
  override?: 'arc';
  /** Why DMARC could not be evaluated (result permerror): no, invalid or several author domains. */
  skipReason?: string;
}

/** ARC chain validation (RFC 8617 §5.2). */
export interface ArcVerdict {
  result: 'pass' | 'fail' | 'none';
  /** Highest instance (i=) seen, 0 when there is no chain. */
  instance: number;
  /** d= of the latest ARC-Seal, when there is a chain. */
  sealer?: string;
  /** True when `sealer` is in the configured trusted-sealer list and the chain passed. */
  trusted: boolean;
  /** True when `sealer` is in the trusted list, whatever the chain's result. */
  listed?: boolean;
  /** True when a DNS failure (an ARC key lookup) may have caused `fail`. */
  temporary?: boolean;
}

/** Everything verifyMessage found; the input of `decide()`. */
export interface Verdict {
  authservId: string;
  spf: SpfVerdict;
  dkim: DkimVerdict[];
  dmarc: DmarcVerdict;
  arc: ArcVerdict;
  /**
   * The Authentication-Results field value (RFC 8601 §2.2), without the field name:
   * `mx.example.net; spf=pass smtp.mailfrom=…; dkim=pass header.d=…; dmarc=pass header.from=…`.
   */
  headerValue: string;
  /** True when any answer was missing (temperror or a DNS failure anywhere in the checks). */
  temporary: boolean;
}
