import { InvalidArgumentError, type Command } from 'commander';
import { examples, jsonOption } from '../../flags.ts';
import { exportRevision, planChanges, type Plan } from '../../../policies/index.ts';
import { checkPolicyDir, loadOrReport } from './validate.ts';
import { CliError } from '../../main.ts';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

function printText(plan: Plan, from: string, to: string, samples: number): void {
  const out: string[] = [`policy plan: ${from} -> ${to}`];
  out.push(`directory users whose shard changes: ${plan.users.length}`);
  for (const m of plan.users) out.push(`  ${m.address}  ${m.from ?? '(not hosted)'} -> ${m.to ?? '(not hosted)'}  (${m.fromRule ?? '-'} -> ${m.toRule ?? '-'})`);
  out.push(`hashed placement (estimated from ${samples} synthetic addresses per domain):`);
  for (const h of plan.hashed) {
    out.push(`  ${h.domain}: ${pct(h.moved)} of the address space moves`);
    for (const p of h.pairs) out.push(`    ${p.from ?? '(not hosted)'} -> ${p.to ?? '(not hosted)'}  ${pct(p.share)}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

/** `mailmesh policy plan DIR --from REV [--to REV] [--json]`. */
export function register(parent: Command): void {
  parent
    .command('plan')
    .description('show which users move between two git revisions of a policy')
    .argument('<dir>', 'policy directory inside a git working tree')
    .requiredOption('--from <rev>', 'git revision to compare from (e.g. HEAD~1, a tag)')
    .option('--to <rev>', 'git revision to compare to (default: the working tree)')
    .option('--samples <n>', 'synthetic addresses per domain for the hashed estimate', positiveInt, 100_000)
    .addOption(jsonOption())
    .addHelpText('after', examples([
      'mailmesh policy plan policies/prod --from HEAD',
      'mailmesh policy plan policies/prod --from v12 --to v13 --json',
    ]) + `
Lists every directory user whose shard changes (exact), and for hashed placement the share of the
address space moving between each pair of shards, estimated by routing --samples synthetic
addresses (mm-sample-N@domain) under both revisions.
--json: {"from","to","samples","users":[{"address","from","to","fromRule","toRule"}],
         "hashed":[{"domain","samples","moved","pairs":[{"from","to","share"}]}]}  (null = not hosted)
`)
    .action((dir: string, opts: { from: string; to?: string; samples: number; json?: boolean }) => {
      checkPolicyDir(dir);
      const temps: (() => void)[] = [];
      try {
        const open = (rev: string | undefined) => {
          if (rev === undefined) return loadOrReport(dir, 'working tree: ');
          let copy;
          try {
            copy = exportRevision(dir, rev);
          } catch (err) {
            if (err instanceof Error && /not a git repository/.test(err.message)) {
              throw new CliError('ERR_POLICY_GIT', `${dir} is not inside a git working tree: policy plan compares git revisions, so keep the policy in git (or use policy route on each copy)`);
            }
            throw err;
          }
          temps.push(copy.cleanup);
          return loadOrReport(copy.dir, `${rev}: `);
        };
        const before = open(opts.from);
        const after = open(opts.to);
        if (!before || !after) return;
        const plan = planChanges(before, after, opts.samples);
        const to = opts.to ?? 'working tree';
        if (opts.json) process.stdout.write(JSON.stringify({ from: opts.from, to, samples: opts.samples, ...plan }) + '\n');
        else printText(plan, opts.from, to, opts.samples);
      } finally {
        for (const c of temps) c();
      }
    });
}
