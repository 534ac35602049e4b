import { normalizeDomain } from './address.ts';
import type { CompiledDomain, CompiledPolicy } from './compiled.ts';
import type { RouteRule } from './compile.ts';
import { globMatch } from './glob.ts';
import { addressHash, fnv1a, rendezvous } from './hash.ts';
import type { RouteResult } from './types.ts';

const NOT_HOSTED: RouteResult = Object.freeze({ kind: 'not-hosted' });
const INVALID: RouteResult = Object.freeze({ kind: 'invalid' });

/** Find the domain of an address (RFC 5321 §2.4: domains compare case-insensitively). */
function domainOf(compiled: CompiledPolicy, address: string, at: number): CompiledDomain | undefined {
  // Few domains (the common case): compare in place, no substring, no hashing.
  const domains = compiled.domains;
  if (domains.length <= 8) {
    const len = address.length - at - 1;
    for (let i = 0; i < domains.length; i++) {
      const d = domains[i];
      if (d.name.length === len && endsWithDomain(address, at + 1, d.name)) return d;
    }
  }
  const raw = address.slice(at + 1);
  return compiled.domainMap.get(raw) ?? compiled.domainMap.get(normalizeDomain(raw));
}

/**
 * True when `address[from…]` equals the compiled (lower-case) domain `name`, ASCII letters
 * compared case-insensitively: what `normalizeDomain(raw) === name` says for ASCII text, without
 * building either string. Non-ASCII text and a root dot never match here; the caller's slow path
 * decides those exactly as before.
 */
function endsWithDomain(address: string, from: number, name: string): boolean {
  for (let k = 0; k < name.length; k++) {
    const c = address.charCodeAt(from + k);
    const n = name.charCodeAt(k);
    if (c === n) {
      if (c > 127) return address.endsWith(name);
      continue;
    }
    if (c < 65 || c > 90 || c + 32 !== n) return false;
  }
  return name.charCodeAt(name.length - 1) !== 46;
}

/** The routing key of the local part: subaddress (RFC 5233) removed, case folded unless the
 * domain is case-sensitive. Empty string when nothing is left. */
function localKey(d: CompiledDomain, address: string, at: number): string {
  let end = at;
  if (d.subaddressSeparator !== '') {
    const i = address.indexOf(d.subaddressSeparator);
    if (i >= 0 && i < at) end = i;
  }
  const local = address.slice(0, end);
  return d.caseSensitive ? local : local.toLowerCase();
}

/** FNV-1a continuation constants, as in hash.ts. */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * Where does `address` live? Directory override → local-part rules → the domain's rendezvous
 * hash. O(1) on the compiled snapshot and, for ASCII addresses found in the directory,
 * allocation-free: the local part is folded and hashed in place and the returned objects are
 * shared and frozen.
 *
 * @example
 * route(compiled, 'bob+lists@mail.test')  // { kind: 'shard', shard: 'osaka-1', region: 'jp', rule: 'directory', … }
 * route(compiled, 'x@elsewhere.example')  // { kind: 'not-hosted' }
 */
export function route(compiled: CompiledPolicy, address: string): RouteResult {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return INVALID;
  const d = domainOf(compiled, address, at);
  if (d === undefined) return NOT_HOSTED;
  const fold = !d.caseSensitive;
  const sep = d.separatorCode;
  // Hash the routing key while scanning: RFC 5233 subaddress cut, RFC 5321 §2.4 case folding.
  let h = FNV_OFFSET;
  let end = at;
  let ascii = true;
  for (let i = 0; i < at; i++) {
    let c = address.charCodeAt(i);
    if (c === sep) {
      end = i;
      break;
    }
    if (c > 127) {
      ascii = false;
      break;
    }
    if (fold && c >= 65 && c <= 90) c += 32;
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  let local: string | undefined;
  if (ascii) {
    if (end === 0) return INVALID;
    h = fnv1a(d.name, Math.imul((h >>> 0) ^ 0x40, FNV_PRIME) >>> 0);
  } else {
    local = localKey(d, address, at);
    if (local.length === 0) return INVALID;
    h = addressHash(local, d.name);
  }
  const n = compiled.shards.length;
  if (d.users !== undefined) {
    const row = local === undefined ? d.users.probe(address, end, h, fold) : d.users.find(local, h);
    if (row >= 0) {
      const p = d.placement[row];
      return d.results[(p >>> 16) * n + (p & 0xffff)];
    }
  }
  const rules = d.runtimeRules as RouteRule[];
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    // ASCII key and glob: match the raw address in place; otherwise the regex on the key.
    let hit: boolean;
    if (local === undefined && r.glob) hit = globMatch(r.glob, address, end, fold);
    else hit = r.re.test((local ??= fold ? address.slice(0, end).toLowerCase() : address.slice(0, end)));
    if (hit) return d.results[r.slot * n + rendezvous(h, r.indexes, r.seeds)];
  }
  return d.results[d.defaultSlot * n + rendezvous(h, d.defaultIndexes, d.defaultSeeds)];
}

/**
 * Recipient validation at RCPT: true/false when the address's domain has a directory marked
 * `directoryIsComplete: true`, undefined when the policy cannot tell (no complete directory,
 * domain not hosted, or a malformed address).
 */
export function isKnownUser(compiled: CompiledPolicy, address: string): boolean | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  const d = domainOf(compiled, address, at);
  if (d === undefined || !d.directoryIsComplete || d.users === undefined) return undefined;
  return d.users.has(localKey(d, address, at));
}

/** The compiled settings of a hosted domain (auth mode, DKIM reference, residency), if any. */
export function findDomain(compiled: CompiledPolicy, domain: string): CompiledDomain | undefined {
  return compiled.domainMap.get(normalizeDomain(domain));
}
