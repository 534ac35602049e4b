// Turns parsed, schema-checked YAML files into the Policy model and runs the semantic checks
// that span files: duplicate shards and domains, unknown shards and regions, residency,
// statically overlapping local-part rules, authorization patterns. Every check records a
// located problem and carries on, so one run reports everything.
import { parseDuration } from '../common/duration.ts';
import type { Problem } from './errors.ts';
import { globsOverlap } from './glob.ts';
import type { SourceFile, YamlPath } from './source.ts';
import type { AuthorizationRule, DkimKeyRef, Domain, DomainAuth, Policy, Rule, Shard, SourceLocation, Target } from './types.ts';

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => x !== null && typeof x === 'object' && !Array.isArray(x);
const arr = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);
const strs = (x: unknown): string[] => arr(x).filter((s): s is string => typeof s === 'string');

/** A domain as found in a file, before its directory is read. */
export interface DomainDraft {
  domain: Domain;
  src: SourceFile;
  path: YamlPath;
}

/** What {@link buildModel} returns: the policy without directories yet, plus what the
 * directory reader needs. */
export interface ModelDraft {
  policy: Omit<Policy, 'digest'>;
  domains: DomainDraft[];
}

function fmtLoc(at: SourceLocation | undefined): string {
  return at ? `${at.file}:${at.line}:${at.col}` : 'unknown location';
}

/** The shortest workload certificate lifetime a policy may ask for. */
export const MIN_WORKLOAD_TTL_MS = 120_000;

/** Build the model from every file; problems are appended to `problems`. */
export function buildModel(sources: SourceFile[], problems: Problem[]): ModelDraft {
  let trustDomain: string | undefined;
  let trustDomainAt: SourceLocation | undefined;
  let certsAt: SourceLocation | undefined;
  const certificates = { workloadTtlMs: 3_600_000, joinTokenTtlMs: 600_000 };
  const shards: Shard[] = [];
  const shardById = new Map<string, Shard>();
  const domainDrafts: DomainDraft[] = [];
  const domainByName = new Map<string, Domain>();
  const authz: { rule: AuthorizationRule; src: SourceFile; path: YamlPath }[] = [];

  // Pass 1: trust domain, certificates, shards (targets and authorization refer to them).
  for (const src of sources) {
    const v = src.value;
    if (!isObj(v)) continue;
    if (typeof v.trustDomain === 'string') {
      if (trustDomain !== undefined) {
        src.problem(['trustDomain'], 'ERR_POLICY_DUPLICATE_KEY', `trustDomain is already set at ${fmtLoc(trustDomainAt)}`, true);
      } else {
        trustDomain = v.trustDomain;
        trustDomainAt = src.locate(['trustDomain'], true);
      }
    }
    if (isObj(v.certificates)) {
      if (certsAt) src.problem(['certificates'], 'ERR_POLICY_DUPLICATE_KEY', `certificates are already set at ${fmtLoc(certsAt)}`, true);
      else {
        certsAt = src.locate(['certificates'], true);
        for (const [key, field] of [['workloadTtl', 'workloadTtlMs'], ['joinTokenTtl', 'joinTokenTtlMs']] as const) {
          const text = v.certificates[key];
          if (typeof text !== 'string') continue;
          try {
            certificates[field] = parseDuration(text);
            // Leaves are backdated 60 s for clock skew and renewed at half-life: below 2 minutes
            // the half-life would fall before "now" and nodes would renew without pause.
            if (field === 'workloadTtlMs' && certificates[field] < MIN_WORKLOAD_TTL_MS) {
              src.problem(['certificates', key], 'ERR_POLICY_BAD_DURATION', `workloadTtl ${text} is too short: use at least 2m (certificates are backdated 60 s and renewed at half-life)`);
            }
          } catch (err) {
            src.problem(['certificates', key], 'ERR_POLICY_BAD_DURATION', (err as Error).message);
          }
        }
      }
    }
    arr(v.shards).forEach((s, i) => {
      if (!isObj(s) || typeof s.id !== 'string') return;
      const at = src.locate(['shards', i, 'id']);
      const prev = shardById.get(s.id);
      if (prev) {
        src.problem(['shards', i, 'id'], 'ERR_POLICY_DUPLICATE_SHARD', `duplicate shard id "${s.id}" (first defined at ${fmtLoc(prev.at)})`);
        return;
      }
      const b = isObj(s.backends) ? s.backends : {};
      const backends: Shard['backends'] = {};
      for (const k of ['lmtp', 'imap', 'pop3', 'smtp'] as const) if (typeof b[k] === 'string') backends[k] = b[k];
      const shard: Shard = { id: s.id, region: typeof s.region === 'string' ? s.region : '', mesh: typeof s.mesh === 'string' ? s.mesh : '', backends, at };
      shards.push(shard);
      shardById.set(s.id, shard);
    });
  }
  if (trustDomain === undefined && sources.length > 0 && !problems.some((p) => p.code === 'ERR_POLICY_YAML')) {
    problems.push({ file: sources[0].file, line: 1, col: 1, code: 'ERR_POLICY_NO_TRUST_DOMAIN', message: 'no file sets trustDomain (e.g. trustDomain: mail.example)' });
  }
  const regions = new Set(shards.map((s) => s.region));

  /** Resolve a target to sorted shard ids, checking existence and residency. */
  const resolveTarget = (src: SourceFile, path: YamlPath, t: Obj, residency: string[], what: string): string[] => {
    const allowed = (region: string) => residency.length === 0 || residency.includes(region);
    const ids: string[] = [];
    if (typeof t.shard === 'string' || Array.isArray(t.shards)) {
      const list = typeof t.shard === 'string' ? [t.shard] : strs(t.shards);
      list.forEach((id, i) => {
        const p = typeof t.shard === 'string' ? [...path, 'shard'] : [...path, 'shards', i];
        const shard = shardById.get(id);
        if (!shard) src.problem(p, 'ERR_POLICY_UNKNOWN_SHARD', `unknown shard "${id}" in ${what}`);
        else if (!allowed(shard.region)) {
          src.problem(p, 'ERR_POLICY_RESIDENCY', `${what} places users on shard "${id}" in region "${shard.region}", outside the domain's residency [${residency.join(', ')}]`);
        } else ids.push(id);
      });
    } else if (Array.isArray(t.regions)) {
      strs(t.regions).forEach((region, i) => {
        const p = [...path, 'regions', i];
        if (!regions.has(region)) src.problem(p, 'ERR_POLICY_UNKNOWN_REGION', `no shard is in region "${region}" (${what})`);
        else if (!allowed(region)) {
          src.problem(p, 'ERR_POLICY_RESIDENCY', `${what} places users in region "${region}", outside the domain's residency [${residency.join(', ')}]`);
        } else for (const s of shards) if (s.region === region) ids.push(s.id);
      });
    }
    return ids.sort();
  };

  // Pass 2: domains and authorization.
  for (const src of sources) {
    const v = src.value;
    if (!isObj(v)) continue;
    arr(v.domains).forEach((d, i) => {
      if (!isObj(d) || typeof d.name !== 'string') return;
      const path: YamlPath = ['domains', i];
      const name = d.name.toLowerCase();
      const at = src.locate([...path, 'name']);
      const prev = domainByName.get(name);
      if (prev) {
        src.problem([...path, 'name'], 'ERR_POLICY_DUPLICATE_DOMAIN', `domain "${name}" is already defined at ${fmtLoc(prev.at)}`);
        return;
      }
      const residency = strs(d.residency);
      residency.forEach((r, j) => {
        if (!regions.has(r)) src.problem([...path, 'residency', j], 'ERR_POLICY_UNKNOWN_REGION', `no shard is in region "${r}"`);
      });
      const lp = isObj(d.localPart) ? d.localPart : {};
      const caseSensitive = lp.caseSensitive === true;
      const subaddressSeparator = typeof lp.subaddressSeparator === 'string' ? lp.subaddressSeparator : '+';
      const authIn = isObj(d.auth) ? d.auth : {};
      const auth: DomainAuth = { mode: authIn.mode === 'monitor' ? 'monitor' : 'enforce' };
      if (isObj(authIn.dkim) && typeof authIn.dkim.selector === 'string' && isObj(authIn.dkim.key)) {
        const k = authIn.dkim.key;
        const ref: DkimKeyRef | undefined = typeof k.file === 'string' ? { file: k.file } : typeof k.secret === 'string' ? { secret: k.secret } : undefined;
        const text = typeof k.file === 'string' ? k.file : typeof k.secret === 'string' ? k.secret : '';
        if (/-----BEGIN|\n/.test(text)) {
          src.problem([...path, 'auth', 'dkim', 'key'], 'ERR_POLICY_KEY_MATERIAL', 'the DKIM key must be a file path or a secret name, never the key itself');
        } else if (ref) auth.dkim = { selector: authIn.dkim.selector, key: ref };
      }
      const rules: Rule[] = [];
      const ruleNames = new Map<string, SourceLocation>();
      arr(d.rules).forEach((r, j) => {
        if (!isObj(r) || typeof r.name !== 'string' || !isObj(r.match) || !isObj(r.target)) return;
        const rp: YamlPath = [...path, 'rules', j];
        const rat = src.locate([...rp, 'name']);
        const dup = ruleNames.get(r.name);
        if (dup) src.problem([...rp, 'name'], 'ERR_POLICY_DUPLICATE_RULE', `rule "${r.name}" is already defined at ${fmtLoc(dup)}`);
        ruleNames.set(r.name, rat);
        const attributes = isObj(r.match.attributes)
          ? Object.fromEntries(Object.entries(r.match.attributes).filter(([, val]) => typeof val === 'string')) as Record<string, string>
          : undefined;
        const localPart = typeof r.match.localPart === 'string' ? (caseSensitive ? r.match.localPart : r.match.localPart.toLowerCase()) : undefined;
        const shardIds = resolveTarget(src, [...rp, 'target'], r.target, residency, `rule "${r.name}"`);
        if (shardIds.length === 0) return;
        rules.push({
          name: r.name,
          priority: typeof r.priority === 'number' ? r.priority : undefined,
          match: { attributes, localPart },
          target: r.target as Target,
          shardIds,
          at: rat,
        });
        // Static ambiguity: two local-part patterns some address matches, whose attribute
        // conditions do not exclude each other, with different targets and equal priority.
        const me = rules[rules.length - 1];
        for (const other of rules.slice(0, -1)) {
          if (me.match.localPart === undefined || other.match.localPart === undefined) continue;
          if ((me.priority ?? 0) !== (other.priority ?? 0) || me.shardIds.join(',') === other.shardIds.join(',')) continue;
          const a1 = me.match.attributes ?? {};
          const a2 = other.match.attributes ?? {};
          if (Object.keys(a1).some((k) => k in a2 && a2[k] !== a1[k])) continue;
          if (globsOverlap(me.match.localPart, other.match.localPart, caseSensitive)) {
            src.problem([...rp, 'match', 'localPart'], 'ERR_POLICY_OVERLAPPING_RULES',
              `overlapping rules: local-part pattern "${me.match.localPart}" of rule "${me.name}" and "${other.match.localPart}" of rule "${other.name}" (${fmtLoc(other.at)}) can match the same address with different targets; give one a higher priority`);
          }
        }
      });
      const defaultIn: Obj = isObj(d.default) ? d.default : residency.length > 0 ? { regions: residency } : { shards: shards.map((s) => s.id) };
      const defaultShardIds = isObj(d.default)
        ? resolveTarget(src, [...path, 'default'], defaultIn, residency, `the default of domain "${name}"`)
        : resolveTarget(src, [...path, 'name'], defaultIn, residency, `the implicit default of domain "${name}"`);
      const domain: Domain = {
        name,
        residency,
        caseSensitive,
        subaddressSeparator,
        auth,
        directoryIsComplete: d.directoryIsComplete === true,
        rules,
        default: defaultIn as Target,
        defaultShardIds,
        at,
      };
      domainByName.set(name, domain);
      domainDrafts.push({ domain, src, path });
    });
    arr(v.authorization).forEach((a, i) => {
      if (!isObj(a)) return;
      const path: YamlPath = ['authorization', i];
      const rule: AuthorizationRule = { name: typeof a.name === 'string' ? a.name : undefined, allow: strs(a.allow), shards: strs(a.shards), at: src.locate(path) };
      authz.push({ rule, src, path });
    });
  }

  for (const { rule, src, path } of authz) {
    rule.allow.forEach((pattern, j) => {
      const m = /^spiffe:\/\/([^/]+)(\/.*)?$/.exec(pattern);
      if (!m) return; // the schema reported it
      if (trustDomain !== undefined && m[1] !== trustDomain) {
        src.problem([...path, 'allow', j], 'ERR_POLICY_BAD_PATTERN', `identity pattern "${pattern}" is outside trust domain "${trustDomain}"`);
      }
      const segs = (m[2] ?? '').split('/');
      if (segs[1] === 'shard' && segs[2] && !segs[2].includes('*') && !shardById.has(segs[2])) {
        src.problem([...path, 'allow', j], 'ERR_POLICY_UNKNOWN_SHARD', `unknown shard "${segs[2]}" in identity pattern "${pattern}"`);
      }
    });
    rule.shards.forEach((id, j) => {
      if (id !== '*' && !shardById.has(id)) src.problem([...path, 'shards', j], 'ERR_POLICY_UNKNOWN_SHARD', `unknown shard "${id}" in authorization`);
    });
  }

  return {
    policy: { trustDomain: trustDomain ?? '', certificates, shards, domains: domainDrafts.map((d) => d.domain), authorization: authz.map((a) => a.rule) },
    domains: domainDrafts,
  };
}
