import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { PolicyError, formatProblem, type Problem } from './errors.ts';
import { buildModel } from './model.ts';
import { resolveDirectory } from './resolve-directory.ts';
import { checkSchema } from './schema-check.ts';
import { parseSource, type SourceFile } from './source.ts';
import type { Policy } from './types.ts';

/** Every `*.yaml`/`*.yml` file under `dir` (recursive, skipping dot-directories such as .git
 * and node_modules), relative, with `/` separators, sorted. */
export function listPolicyFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const full = join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (/\.ya?ml$/i.test(e.name)) out.push(relative(dir, full).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

function sortProblems(problems: Problem[]): Problem[] {
  return problems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col));
}

/**
 * Load and validate the policy set in `dir`: every YAML file is parsed (keeping line numbers),
 * checked against `policies/schema/policy.schema.json`, merged, checked semantically, and each
 * domain's user directory is read and placed. Throws {@link PolicyError} (`ERR_POLICY_INVALID`)
 * listing every problem with `file:line:col`; invalid policy never half-loads.
 *
 * @example
 * const policy = loadPolicy('policies/examples/demo');
 * policy.shards[0].mesh = '127.0.0.1:40123'; // addresses may be rewritten before compiling
 * const compiled = compilePolicy(policy);
 */
export function loadPolicy(dir: string): Policy {
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new PolicyError('ERR_POLICY_NO_FILES', `policy directory "${dir}" does not exist`);
  }
  const files = listPolicyFiles(dir);
  if (files.length === 0) throw new PolicyError('ERR_POLICY_NO_FILES', `no *.yaml policy files in "${dir}"`);
  const problems: Problem[] = [];
  const digest = createHash('sha256');
  const sources: SourceFile[] = [];
  for (const file of files) {
    const text = readFileSync(join(dir, file), 'utf8');
    digest.update(`${file}\0${text.length}\0`).update(text);
    const src = parseSource(file, text, problems);
    checkSchema(src);
    sources.push(src);
  }
  const draft = buildModel(sources, problems);
  for (const d of draft.domains) {
    d.domain.directory = resolveDirectory(dir, d, draft.policy.shards, problems, (file, text) => {
      digest.update(`${file}\0${text.length}\0`).update(text);
    });
  }
  if (problems.length > 0) {
    sortProblems(problems);
    throw new PolicyError('ERR_POLICY_INVALID', `policy in "${dir}" is invalid:\n${problems.map(formatProblem).join('\n')}`, problems);
  }
  return { ...draft.policy, digest: digest.digest('hex') };
}
