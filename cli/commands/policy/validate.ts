import type { Command } from 'commander';
import { examples } from '../../flags.ts';
import { statSync } from 'node:fs';
import { CliError, EXIT } from '../../main.ts';
import { compilePolicy, formatProblem, loadPolicy, PolicyError, type CompiledPolicy } from '../../../policies/index.ts';

/** A missing DIR or a file in its place, said plainly (the loader calls both "does not exist"). */
export function checkPolicyDir(dir: string): void {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st) throw new CliError('ERR_POLICY_NO_FILES', `policy directory ${dir} does not exist: pass the directory holding the policy *.yaml files (e.g. policies/examples/demo)`);
  if (!st.isDirectory()) throw new CliError('ERR_POLICY_NO_FILES', `${dir} is a file: pass the policy directory that holds it`);
}

/**
 * Load and compile a policy directory for a CLI verb. On an invalid policy, prints every
 * problem as `file:line:col: message` on stderr, sets exit code 1 and returns undefined.
 * `label` prefixes the problems' file names (e.g. a git revision in `plan`).
 */
export function loadOrReport(dir: string, label = ''): CompiledPolicy | undefined {
  if (!label) checkPolicyDir(dir);
  try {
    return compilePolicy(loadPolicy(dir));
  } catch (err) {
    if (!(err instanceof PolicyError) || err.problems.length === 0) throw err;
    for (const p of err.problems) process.stderr.write(`${label}${formatProblem(p)}\n`);
    process.stderr.write(`mailmesh: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'} in policy ${label || dir}\n`);
    process.exitCode = EXIT.failure;
    return undefined;
  }
}

/** `mailmesh policy validate DIR`. */
export function register(parent: Command): void {
  parent
    .command('validate')
    .description('check a policy directory: schema, shards, directories, residency, overlapping rules')
    .argument('<dir>', 'policy directory (YAML files + user directories)')
    .addHelpText('after', examples([
      'mailmesh policy validate policies/examples/demo',
      'mailmesh policy validate /etc/mailmesh/policy || echo "fix the lines above"',
    ]) + '\nExit status: 0 valid (one summary line on stdout), 1 invalid (file:line:col: message lines on stderr).\n')
    .action((dir: string) => {
      const started = performance.now();
      const c = loadOrReport(dir);
      if (!c) return;
      const users = c.domains.reduce((n, d) => n + (d.users?.size ?? 0), 0);
      const ms = Math.round(performance.now() - started);
      process.stdout.write(`ok: trust domain ${c.trustDomain}, ${c.shards.length} shards, ${c.domains.length} domains, ${users} directory users, ${c.authorization.length} authorization rules (digest ${c.digest.slice(0, 12)}, ${ms} ms)\n`);
    });
}
