import { Resolver } from 'node:dns/promises';
import { systemClock, type Clock } from '../../common/clock.ts';
import { AuthError, DnsError, type DnsErrorCode } from './errors.ts';
import { TtlLru } from './cache.ts';

/** One MX record as mailauth expects it. */
export interface MxRecord {
  exchange: string;
  priority: number;
}

/** Records of one answer: addresses/names (`string[]`), TXT chunks (`string[][]`) or MX. */
export type DnsRecords = string[] | string[][] | MxRecord[];

/** An upstream answer with the TTL in seconds when the transport exposes it. */
export interface DnsAnswer {
  records: DnsRecords;
  ttlSec?: number;
}

/**
 * Where answers come from: node:dns by default ({@link nodeDnsUpstream}), a zone map in tests.
 * Rejects with an error whose `code` is a {@link DnsErrorCode}.
 */
export type DnsUpstream = (name: string, rrtype: string) => Promise<DnsAnswer>;

/** A bare lookup function with mailauth's resolver signature. */
export type LookupFn = (name: string, rrtype: string) => Promise<DnsRecords>;

/**
 * The resolver mailauth calls: `(name, rrtype) => records`, rejecting with `code` ENOTFOUND /
 * ENODATA for a miss and ESERVFAIL / ETIMEOUT when there is no answer (mailauth: temperror).
 */
export interface MailResolver extends LookupFn {
  /** Cache counters, for tests and metrics. */
  stats(): { hits: number; misses: number; size: number };
  /** Forget every cached answer. */
  clear(): void;
}

/** Options of {@link createResolver}; every field has a default. */
export interface ResolverConfig {
  /** `host:port` or `[v6]:port` recursive/authoritative servers; omit for the system resolver. */
  servers?: string[];
  /** Per-try timeout of a query (default 2000 ms). */
  timeoutMs?: number;
  /** Tries per server (default 2). */
  tries?: number;
  /** Cached answers, positive and negative (default 10 000). */
  cacheSize?: number;
  clock?: Clock;
  /**
   * TTL for answers whose TTL node:dns does not expose (TXT, MX, PTR, CNAME): node's
   * `resolveTxt`/`resolveMx` return no TTL, so these are cached for a short fixed time
   * (default 60 s) — short enough that a changed SPF/DKIM/DMARC record is seen within a minute.
   */
  defaultTtlSec?: number;
  /**
   * TTL of a cached miss (ENOTFOUND/ENODATA). RFC 2308 §5 derives it from the SOA, which
   * node:dns does not return; default 30 s. Temporary failures are never cached.
   */
  negativeTtlSec?: number;
  /** Upper bound of any TTL (default 3600 s), so a huge TTL cannot pin a stale key. */
  maxTtlSec?: number;
  /** Answer source; default {@link nodeDnsUpstream} with `servers`, `timeoutMs`, `tries`. */
  upstream?: DnsUpstream;
}

type Cached = { ok: true; records: DnsRecords } | { ok: false; code: DnsErrorCode };

const SERVER_RE = /^(?:\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?|\[[0-9a-fA-F:.]+\](?::\d{1,5})?|[0-9a-fA-F:]+)$/;

/** Map a node:dns / c-ares error code to one of ours: anything that is not a definite miss is ESERVFAIL. */
function mapCode(code: unknown): DnsErrorCode {
  switch (code) {
    case 'ENOTFOUND':
    case 'ENODATA':
    case 'ETIMEOUT':
    case 'EBADNAME':
    case 'ENOTIMP':
    case 'ESERVFAIL':
      return code;
    default:
      // ECONNREFUSED, EREFUSED, EBADRESP, ECANCELLED …: no answer was obtained, so the result
      // is unknown, never "no record" (RFC 7208 §2.6.6: temperror).
      return 'ESERVFAIL';
  }
}

/**
 * An upstream over node:dns: a private `Resolver` pointed at `servers` (ports allowed), or the
 * system resolver configuration when `servers` is omitted. A/AAAA carry their TTLs.
 */
export function nodeDnsUpstream(cfg: { servers?: string[]; timeoutMs?: number; tries?: number } = {}): DnsUpstream {
  const r = new Resolver({ timeout: cfg.timeoutMs ?? 2000, tries: cfg.tries ?? 2 });
  if (cfg.servers && cfg.servers.length > 0) {
    for (const s of cfg.servers) {
      if (!SERVER_RE.test(s)) throw new AuthError('ERR_AUTH_BAD_CONFIG', `invalid DNS server "${s}": use 127.0.0.1:5353 or [::1]:5353`);
    }
    r.setServers(cfg.servers);
  }
  return async (name, rrtype) => {
    switch (rrtype) {
      case 'A': {
        const rs = await r.resolve4(name, { ttl: true });
        return { records: rs.map((x) => x.address), ttlSec: Math.min(...rs.map((x) => x.ttl)) };
      }
      case 'AAAA': {
        const rs = await r.resolve6(name, { ttl: true });
        return { records: rs.map((x) => x.address), ttlSec: Math.min(...rs.map((x) => x.ttl)) };
      }
      case 'TXT':
        return { records: await r.resolveTxt(name) };
      case 'MX':
        return { records: await r.resolveMx(name) };
      case 'PTR':
        return { records: await r.resolvePtr(name) };
      case 'CNAME':
        return { records: await r.resolveCname(name) };
      case 'NS':
        return { records: await r.resolveNs(name) };
      default:
        throw new DnsError('ENOTIMP', name, rrtype);
    }
  };
}

function copy(records: DnsRecords): DnsRecords {
  // mailauth sorts MX lists in place and may keep references: hand out fresh arrays/objects.
  return (records as unknown[]).map((r) => (Array.isArray(r) ? [...(r as string[])] : typeof r === 'object' && r !== null ? { ...(r as MxRecord) } : r)) as DnsRecords;
}

/**
 * Create the resolver every verifier takes: a bounded LRU cache in front of `upstream` that
 * honours TTLs (A/AAAA from the answer, a short default for the rest), caches misses briefly,
 * never caches temporary failures, and coalesces concurrent identical queries.
 *
 * @example
 * const resolver = createResolver({ servers: ['127.0.0.1:5353'] });
 * await resolver('_dmarc.example.org', 'TXT'); // [['v=DMARC1; p=reject']]
 */
export function createResolver(cfg: ResolverConfig = {}): MailResolver {
  const clock = cfg.clock ?? systemClock;
  const upstream = cfg.upstream ?? nodeDnsUpstream(cfg);
  const cache = new TtlLru<Cached>(cfg.cacheSize ?? 10_000, clock);
  const inflight = new Map<string, Promise<Cached>>();
  const defaultTtl = (cfg.defaultTtlSec ?? 60) * 1000;
  const negativeTtl = (cfg.negativeTtlSec ?? 30) * 1000;
  const maxTtl = (cfg.maxTtlSec ?? 3600) * 1000;
  let hits = 0;
  let misses = 0;

  const fetch = async (name: string, rrtype: string, key: string): Promise<Cached> => {
    try {
      const ans = await upstream(name, rrtype);
      const ttl = Math.min(maxTtl, ans.ttlSec !== undefined && Number.isFinite(ans.ttlSec) ? ans.ttlSec * 1000 : defaultTtl);
      const entry: Cached = { ok: true, records: ans.records };
      cache.set(key, entry, ttl);
      return entry;
    } catch (err) {
      const code = mapCode((err as { code?: unknown } | null)?.code);
      const entry: Cached = { ok: false, code };
      if (code === 'ENOTFOUND' || code === 'ENODATA') cache.set(key, entry, Math.min(maxTtl, negativeTtl));
      return entry;
    }
  };

  const resolve = (async (rawName: string, rrtype: string): Promise<DnsRecords> => {
    const name = String(rawName).replace(/\.$/, '');
    const type = String(rrtype).toUpperCase();
    const key = `${type} ${name.toLowerCase()}`;
    let entry = cache.get(key);
    if (entry) {
      hits++;
    } else {
      misses++;
      let p = inflight.get(key);
      if (!p) {
        p = fetch(name, type, key).finally(() => inflight.delete(key));
        inflight.set(key, p);
      }
      entry = await p;
    }
    if (!entry.ok) throw DnsError.answer(entry.code, name, type);
    return copy(entry.records);
  }) as MailResolver;
  resolve.stats = () => ({ hits, misses, size: cache.size });
  resolve.clear = () => cache.clear();
  return resolve;
}
