import { arc, dkimVerify, dmarc, type ARCData, type ARCResult, type DKIMResult, type DMARCResult, type DNSResolver, type SPFResult } from 'mailauth';
import { systemClock, type Clock } from '../../common/clock.ts';
import { isTemporaryDnsError } from './errors.ts';
import type { DnsRecords, LookupFn } from './resolver.ts';
import { checkSpf } from './spf.ts';
import type { ArcVerdict, AuthResultWord, DkimVerdict, DmarcPolicy, DmarcVerdict, SpfVerdict, Verdict } from './types.ts';

/** Input of {@link verifyMessage}. */
export interface VerifyInput {
  /** The raw message as received (header block + body), CRLF line ends. */
  message: Buffer;
  /** The SMTP client's address. */
  ip: string;
  /** EHLO/HELO name. */
  helo: string;
  /** MAIL FROM address without brackets; '' for the null reverse-path. */
  mailFrom: string;
  resolver: LookupFn;
  /** Our authserv-id (RFC 8601 §2.5), usually the host name of this front door. */
  authservId: string;
  /** ARC sealers (d= of the latest ARC-Seal) whose chains may override a DMARC failure. */
  trustedArcSealers?: string[];
  /** Time for DKIM t=/x= checks. */
  clock?: Clock;
}

/** RFC 8301 §3.2: RSA keys under 1024 bits MUST NOT be considered valid. */
const MIN_RSA_BITS = 1024;

const WORDS = new Set<AuthResultWord>(['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror', 'policy']);
function word(w: unknown): AuthResultWord {
  // mailauth's deprecated `temperr` and anything unexpected must never read as a pass.
  if (w === 'temperr') return 'temperror';
  return WORDS.has(w as AuthResultWord) ? (w as AuthResultWord) : 'permerror';
}

const lc = (d: string | undefined) => (d ?? '').toLowerCase().replace(/\.$/, '');

/**
 * Wrap the resolver for one message so that a temporary DNS failure anywhere (including ARC key
 * lookups, which mailauth folds into arc=fail) is remembered.
 */
function tracking(resolver: LookupFn): { lookup: LookupFn; resolver: DNSResolver; sawTemporary: () => boolean } {
  let temp = false;
  const r = async (name: string, rrtype: string): Promise<DnsRecords> => {
    try {
      return await resolver(name, rrtype);
    } catch (err) {
      if (isTemporaryDnsError(err)) temp = true;
      throw err;
    }
  };
  return { lookup: r, resolver: r as unknown as DNSResolver, sawTemporary: () => temp };
}

function spfVerdict(r: SPFResult): SpfVerdict {
  return { result: word(r.status.result), domain: r.domain, comment: r.status.comment };
}

function dkimVerdicts(rows: DKIMResult[], alignedDomain: string | undefined): DkimVerdict[] {
  return rows.map((row) => {
    const result = word(row.status.result);
    return {
      result,
      domain: row.signingDomain ?? '',
      selector: row.selector ?? '',
      algorithm: row.algo ?? '',
      aligned: result === 'pass' && !!alignedDomain && lc(row.signingDomain) === lc(alignedDomain),
      comment: row.status.comment,
    };
  });
}

function arcVerdict(res: ARCResult, data: ARCData | undefined, trusted: string[], temporary: boolean): ArcVerdict {
  const seal = data?.lastEntry?.['arc-seal']?.parsed as Record<string, { value?: unknown }> | undefined;
  const sealer = typeof seal?.d?.value === 'string' ? lc(seal.d.value) : undefined;
  const result = res.status.result === 'pass' ? 'pass' : res.status.result === 'fail' ? 'fail' : 'none';
  const listed = !!sealer && trusted.map(lc).includes(sealer);
  const v: ArcVerdict = {
    result,
    instance: typeof res.i === 'number' ? res.i : 0,
    sealer,
    // RFC 8617 §7.2.1: only the receiver's own list of trusted intermediaries may override.
    trusted: result === 'pass' && listed,
  };
  if (listed) v.listed = true;
  // mailauth reports every ARC problem as a permanent fail; a key lookup that got no answer is not.
  if (result === 'fail' && temporary) v.temporary = true;
  return v;
}

function dmarcVerdict(res: DMARCResult | false, fromFields: number, headerFrom: string[]): DmarcVerdict {
  if (!res) {
    // RFC 7489 §6.6.1: no single author domain, DMARC cannot be applied. Recorded as permerror
    // so that a message cannot dodge DMARC by omitting or doubling its From.
    const skipReason = fromFields > 1 ? 'multiple-from-fields' : headerFrom.length === 0 ? 'no-author-domain' : 'multiple-author-domains';
    return { result: 'permerror', policy: 'none', domain: '', skipReason };
  }
  const raw = word(res.status.result);
  const result: DmarcVerdict['result'] = raw === 'pass' || raw === 'fail' || raw === 'none' || raw === 'temperror' ? raw : 'permerror';
  const policy: DmarcPolicy = res.policy === 'reject' || res.policy === 'quarantine' ? res.policy : 'none';
  const domain = lc((res.status.header as { from?: string } | undefined)?.from ?? res.domain);
  return { result, policy: result === 'none' || result === 'temperror' ? 'none' : policy, domain };
}

/** Quote an RFC 8601 `reason` value (RFC 2045 quoted-string). */
const quoted = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;

function dmarcRow(d: DmarcVerdict, res: DMARCResult | false, a: ArcVerdict): string {
  if (!res) return `dmarc=permerror (${d.skipReason})`;
  let row = res.info;
  if (d.override === 'arc') {
    // RFC 8617 §7.2.2 reports an ARC override as the DMARC PolicyOverride "local_policy" with
    // the sealer in the comment; RFC 8601 §2.2 carries it as the `reason` of the dmarc result.
    const reason = quoted(`local_policy arc=pass as[${a.instance}].d=${a.sealer}`);
    row = row.replace(/^(dmarc=\S+(?: \((?:[^()\\]|\\.)*\))?)/, `$1 reason=${reason}`);
  }
  return row;
}

/**
 * Check SPF (RFC 7208), DKIM (RFC 6376), ARC (RFC 8617) and DMARC (RFC 7489) for one message
 * and build its Authentication-Results value (RFC 8601). Never throws for an authentication
 * outcome: a DNS failure is `temperror` and sets `temporary`, never a silent pass or neutral.
 *
 * @example
 * const v = await verifyMessage({ message, ip: '192.0.2.7', helo: 'mx.sender.example',
 *   mailFrom: 'alice@sender.example', resolver, authservId: 'mx.mail.example' });
 * const d = decide(v, 'enforce'); // then prependAuthResults(message, v.authservId, v.headerValue)
 */
export async function verifyMessage(input: VerifyInput): Promise<Verdict> {
  const clock = input.clock ?? systemClock;
  const t = tracking(input.resolver);

  const [dkimRes, spfRes] = await Promise.all([
    dkimVerify(input.message, {
      resolver: t.resolver,
      sender: input.mailFrom || undefined,
      minBitLength: MIN_RSA_BITS,
      // RFC 8301 §3.1: verifiers MUST NOT consider rsa-sha1 signatures valid.
      rejectRsaSha1: true,
      curTime: new Date(clock.now()),
      // strict: a body hash mismatch is dkim=fail (RFC 6376 §6.1.3, RFC 8601 §2.7.1), not neutral,
      // and signature/key syntax is checked as RFC 6376 §3.2, §3.5 and §3.6.1 require.
      strict: true,
    }),
    checkSpf({ ip: input.ip, helo: input.helo, mailFrom: input.mailFrom, resolver: t.lookup, authservId: input.authservId }),
  ]);
  const spf = spfVerdict(spfRes);

  const arcData = dkimRes.arc as unknown as ARCData | undefined;
  const arcRes = arcData ? await arc(arcData, { resolver: t.resolver, minBitLength: MIN_RSA_BITS, ip: input.ip }) : ({ i: 0, status: { result: 'none' } } as ARCResult);
  const arcV = arcVerdict(arcRes, arcData, input.trustedArcSealers ?? [], t.sawTemporary());

  const passing = (dkimRes.results ?? []).filter((r) => r.status.result === 'pass');
  const dmarcRes = await dmarc({
    headerFrom: dkimRes.headerFrom,
    fromFields: dkimRes.fromFields,
    // RFC 7489 §4.2: the SPF identifier counts only when SPF passed.
    spfDomains: spf.result === 'pass' ? [spf.domain] : [],
    dkimDomains: passing.map((r) => ({ id: r.id, domain: r.signingDomain ?? '', aligned: r.status.aligned, underSized: r.status.underSized })) as never,
    arcResult: arcRes,
    resolver: t.resolver,
  });
  const dmarcV = dmarcVerdict(dmarcRes, dkimRes.fromFields, dkimRes.headerFrom ?? []);
  if (dmarcV.result === 'fail' && arcV.trusted) dmarcV.override = 'arc';

  const dkim = dkimVerdicts(dkimRes.results ?? [], dmarcRes ? dmarcRes.alignment?.dkim?.result : undefined);

  const rows: string[] = [];
  for (const r of dkimRes.results ?? []) rows.push(r.info);
  if (rows.length === 0) rows.push('dkim=none');
  rows.push(spfRes.info);
  if (arcRes.info) rows.push(arcRes.info);
  rows.push(dmarcRow(dmarcV, dmarcRes, arcV));
  // RFC 8601 §2.2: authserv-id first, then resinfo entries separated by ";" (folded here).
  const headerValue = `${input.authservId};\r\n ${rows.join(';\r\n ')}`;

  const temporary =
    t.sawTemporary() || spf.result === 'temperror' || dkim.some((d) => d.result === 'temperror') || dmarcV.result === 'temperror';

  return { authservId: input.authservId, spf, dkim, dmarc: dmarcV, arc: arcV, headerValue, temporary };
}
