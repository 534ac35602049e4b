// A DNS zone held in memory, for unit tests: answers from a map, records every question, and
// never touches the network. Zone format (the one the RFC 7208 test suite uses):
//   { 'example.org': [ { TXT: 'v=spf1 -all' }, { A: '192.0.2.1' }, { MX: [10, 'mx.example.org'] } ] }
// Special entries: 'TIMEOUT' (a query without records of its type times out), 'SERVFAIL',
// 'NXDOMAIN'; `{ TXT: 'NONE' }` means "no TXT records" (SPF entries are then not copied to TXT).
import { createResolver, type DnsAnswer, type DnsUpstream, type MailResolver, type MxRecord } from '../../sidecar/auth/resolver.ts';
import type { Clock } from '../../common/clock.ts';

/** One record or a failure marker of a name. */
export type ZoneEntry = string | Record<string, unknown>;
/** Name → entries. Names are case-insensitive, without the trailing dot. */
export type ZoneMap = Record<string, ZoneEntry[]>;

/** A question the zone was asked. */
export interface ZoneCall {
  name: string;
  rrtype: string;
}

/** The zone's upstream plus what it saw. */
export interface ZoneUpstream {
  upstream: DnsUpstream;
  calls: ZoneCall[];
  /** Lookups of names that are not in the zone (mode 'fail'): each one is a test bug. */
  unexpected: ZoneCall[];
  /** Replace or add names while a test runs (e.g. publish a key). */
  set(name: string, entries: ZoneEntry[]): void;
}

function dnsErr(code: string): Error {
  return Object.assign(new Error(`zone: ${code}`), { code });
}

/** Decode the suite's backslash escapes (`\0`, `\xNN`) in single-quoted YAML values. */
function unescape(s: string): string {
  return s.replace(/\\0/g, '\x00').replace(/\\x([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * Build an upstream over `zone`. `unknown: 'fail'` (default) records any question about a name
 * that is not in the zone in `unexpected` and rejects it (the test must then fail);
 * `unknown: 'nxdomain'` answers NXDOMAIN, the RFC 7208 suite's convention.
 */
export function zoneUpstream(zone: ZoneMap, opts: { unknown?: 'fail' | 'nxdomain' } = {}): ZoneUpstream {
  const names = new Map<string, ZoneEntry[]>();
  for (const [k, v] of Object.entries(zone)) names.set(k.toLowerCase().replace(/\.$/, ''), v ?? []);
  const calls: ZoneCall[] = [];
  const unexpected: ZoneCall[] = [];

  const answer = (name: string, rrtype: string, depth: number): DnsAnswer => {
    const key = name.toLowerCase().replace(/\.$/, '');
    const entries = names.get(key);
    if (!entries) {
      if ((opts.unknown ?? 'fail') === 'fail') {
        unexpected.push({ name, rrtype });
        throw dnsErr('EZONEMISS');
      }
      throw dnsErr('ENOTFOUND');
    }
    if (entries.includes('NXDOMAIN')) throw dnsErr('ENOTFOUND');
    if (entries.includes('SERVFAIL')) throw dnsErr('ESERVFAIL');
    const typed = (t: string) => entries.filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null && t in e).map((e) => e[t]);
    const cname = typed('CNAME');
    if (cname.length > 0 && rrtype !== 'CNAME') {
      if (depth > 8) throw dnsErr('ESERVFAIL'); // a CNAME loop is a server failure (RFC 1034 §3.6.2)
      return answer(String(cname[0]), rrtype, depth + 1);
    }
    let values = typed(rrtype);
    // The suite's convention: SPF-type records are served as TXT unless TXT is given explicitly.
    if (rrtype === 'TXT' && values.length === 0) values = typed('SPF');
    values = values.filter((v) => v !== 'NONE');
    if (values.length === 0) {
      if (entries.includes('TIMEOUT')) throw dnsErr('ETIMEOUT');
      throw dnsErr('ENODATA');
    }
    switch (rrtype) {
      case 'TXT':
        return { records: values.map((v) => [unescape(([] as unknown[]).concat(v).map(String).join(''))]) };
      case 'MX':
        return { records: values.map((v): MxRecord => ({ priority: Number((v as unknown[])[0]), exchange: unescape(String((v as unknown[])[1])) })) };
      default:
        return { records: values.map((v) => unescape(String(v))) };
    }
  };

  return {
    calls,
    unexpected,
    set(name, entries) {
      names.set(name.toLowerCase().replace(/\.$/, ''), entries);
    },
    upstream: async (name, rrtype) => {
      calls.push({ name, rrtype });
      return answer(name, rrtype, 0);
    },
  };
}

/** A project resolver ({@link createResolver}) over a zone map; the zone's call log is attached. */
export function zoneResolver(zone: ZoneMap, opts: { unknown?: 'fail' | 'nxdomain'; clock?: Clock; cacheSize?: number } = {}): { resolver: MailResolver; zone: ZoneUpstream } {
  const z = zoneUpstream(zone, opts);
  return { resolver: createResolver({ upstream: z.upstream, clock: opts.clock, cacheSize: opts.cacheSize }), zone: z };
}
