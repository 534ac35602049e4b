// Reads a domain's user directory and decides every listed user's shard once, at load time:
// explicit row → matching rules (highest priority; a tie with different targets is an
// "overlapping rules" error) → the domain default. The result is a Map plus a typed array, so a
// million users cost one Map entry each and route() is a single lookup.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { normalizeDomain } from './address.ts';
import type { PolicyErrorCode, Problem } from './errors.ts';
import { readDirectory, type DirectoryRow } from './directory.ts';
import { globToRegExp } from './glob.ts';
import { addressHash, rendezvous, shardSeed } from './hash.ts';
import type { DomainDraft } from './model.ts';
import type { DirectoryTable, Rule, Shard } from './types.ts';
import { UserIndex } from './user-index.ts';

/** Most problems reported per directory file; past it one summary line says how many more. */
export const MAX_PROBLEMS_PER_FILE = 1000;

/** A rule prepared for evaluation against directory rows. */
interface RowRule {
  rule: Rule;
  slot: number;
  priority: number;
  /** Index into the row's attrs for each condition, and the wanted value. */
  attrIdx: number[];
  attrVal: string[];
  re: RegExp | undefined;
  indexes: Int32Array;
  seeds: Uint32Array;
  key: string;
}

/** Shard indexes and seeds for a rendezvous set given by ids. */
export function hashSet(ids: string[], shardIndex: Map<string, number>): { indexes: Int32Array; seeds: Uint32Array } {
  return { indexes: Int32Array.from(ids.map((id) => shardIndex.get(id)!)), seeds: Uint32Array.from(ids.map(shardSeed)) };
}

/** Resolve the directory of one domain; returns undefined when the domain has none. */
export function resolveDirectory(
  dir: string,
  draft: DomainDraft,
  shards: Shard[],
  problems: Problem[],
  onFile: (file: string, text: string) => void,
): DirectoryTable | undefined {
  const { domain, src, path } = draft;
  const raw = (src.value as Record<string, unknown[]>).domains[path[1] as number] as Record<string, unknown>;
  const files = typeof raw.directory === 'string' ? [raw.directory] : Array.isArray(raw.directory) ? raw.directory.filter((f): f is string => typeof f === 'string') : [];
  if (files.length === 0) return undefined;

  const shardIndex = new Map(shards.map((s, i) => [s.id, i]));
  const allowed = (region: string) => domain.residency.length === 0 || domain.residency.includes(region);
  const attrKeys = [...new Set(domain.rules.flatMap((r) => Object.keys(r.match.attributes ?? {})))];
  const rowRules: RowRule[] = domain.rules.map((rule, i) => {
    const attrs = Object.entries(rule.match.attributes ?? {});
    return {
      rule,
      slot: i + 1,
      priority: rule.priority ?? 0,
      attrIdx: attrs.map(([k]) => attrKeys.indexOf(k)),
      attrVal: attrs.map(([, v]) => v),
      re: rule.match.localPart === undefined ? undefined : globToRegExp(rule.match.localPart, domain.caseSensitive),
      ...hashSet(rule.shardIds, shardIndex),
      key: rule.shardIds.join(','),
    };
  });
  const def = hashSet(domain.defaultShardIds, shardIndex);
  const defaultSlot = domain.rules.length + 1;
  const index = new UserIndex(domain.name);
  let placement = new Int32Array(1024);
  const lines: number[] = [];
  const fileOf: number[] = [];
  const matches: RowRule[] = [];

  files.forEach((file, fileNo) => {
    let text: string;
    try {
      text = readFileSync(join(dir, file), 'utf8');
    } catch (err) {
      src.problem([...path, 'directory', ...(Array.isArray(raw.directory) ? [fileNo] : [])], 'ERR_POLICY_DIRECTORY',
        `cannot read directory file "${file}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    onFile(file, text);
    let count = 0;
    const bad = (line: number, col: number, code: PolicyErrorCode, message: string) => {
      count++;
      if (count <= MAX_PROBLEMS_PER_FILE) problems.push({ file, line, col, code, message });
    };
    const fileProblems: Problem[] = [];
    readDirectory(file, text, attrKeys, (row: DirectoryRow) => {
      const at = row.address.lastIndexOf('@');
      if (at <= 0 || at === row.address.length - 1 || /\s/.test(row.address)) {
        bad(row.line, row.addressCol, 'ERR_POLICY_BAD_ADDRESS', `invalid address "${row.address}"`);
        return;
      }
      const rowDomain = normalizeDomain(row.address.slice(at + 1));
      if (rowDomain !== domain.name) {
        bad(row.line, row.addressCol, 'ERR_POLICY_BAD_ADDRESS', `address "${row.address}" is not in domain "${domain.name}"`);
        return;
      }
      let local = row.address.slice(0, at);
      if (domain.subaddressSeparator !== '' && local.includes(domain.subaddressSeparator)) {
        bad(row.line, row.addressCol, 'ERR_POLICY_BAD_ADDRESS',
          `address "${row.address}" contains the subaddress separator "${domain.subaddressSeparator}", so no mail could reach it as listed`);
        return;
      }
      if (!domain.caseSensitive) local = local.toLowerCase();
      const h = addressHash(local, domain.name);
      const prev = index.find(local, h);
      if (prev >= 0) {
        bad(row.line, row.addressCol, 'ERR_POLICY_USER_TWICE',
          `user "${local}@${domain.name}" is assigned twice (first at ${files[fileOf[prev]]}:${lines[prev]})`);
        return;
      }
      let packed: number;
      if (row.shard !== '') {
        const si = shardIndex.get(row.shard);
        if (si === undefined) {
          bad(row.line, row.shardCol, 'ERR_POLICY_UNKNOWN_SHARD', `unknown shard "${row.shard}" for ${row.address}`);
          return;
        }
        if (!allowed(shards[si].region)) {
          bad(row.line, row.shardCol, 'ERR_POLICY_RESIDENCY',
            `${row.address} is placed on shard "${row.shard}" in region "${shards[si].region}", outside the residency of ${domain.name} [${domain.residency.join(', ')}]`);
          return;
        }
        packed = si;
      } else {
        matches.length = 0;
        for (const r of rowRules) {
          let ok = true;
          for (let k = 0; k < r.attrIdx.length && ok; k++) ok = row.attrs[r.attrIdx[k]] === r.attrVal[k];
          if (ok && r.re !== undefined) ok = r.re.test(local);
          if (ok) matches.push(r);
        }
        if (matches.length === 0) {
          packed = defaultSlot * 65536 + rendezvous(h, def.indexes, def.seeds);
        } else {
          let best = matches[0];
          for (const m of matches) if (m.priority > best.priority) best = m;
          const rival = matches.find((m) => m !== best && m.priority === best.priority && m.key !== best.key);
          if (rival) {
            bad(row.line, row.addressCol, 'ERR_POLICY_OVERLAPPING_RULES',
              `overlapping rules: "${best.rule.name}" (${loc(best.rule)}) and "${rival.rule.name}" (${loc(rival.rule)}) both match ${row.address} with different targets; give one a higher priority`);
            return;
          }
          packed = best.slot * 65536 + rendezvous(h, best.indexes, best.seeds);
        }
      }
      const rowNo = lines.length;
      if (rowNo === placement.length) {
        const grown = new Int32Array(placement.length * 2);
        grown.set(placement);
        placement = grown;
      }
      placement[rowNo] = packed;
      lines.push(row.line);
      fileOf.push(fileNo);
      index.add(local, h);
    }, fileProblems);
    for (const p of fileProblems) bad(p.line, p.col, p.code, p.message);
    if (count > MAX_PROBLEMS_PER_FILE) {
      problems.push({ file, line: 1, col: 1, code: 'ERR_POLICY_TOO_MANY_PROBLEMS', message: `${count - MAX_PROBLEMS_PER_FILE} more problems in this file not shown` });
    }
  });
  return { files, index, placement: placement.slice(0, lines.length) };
}

function loc(rule: Rule): string {
  return rule.at ? `${rule.at.file}:${rule.at.line}` : 'unknown location';
}

