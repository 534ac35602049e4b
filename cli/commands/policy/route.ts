import type { Command } from 'commander';
import { examples, jsonOption } from '../../flags.ts';
import { EXIT } from '../../main.ts';
import { route } from '../../../policies/index.ts';
import { loadOrReport } from './validate.ts';

/** `mailmesh policy route DIR ADDRESS... [--json]`. */
export function register(parent: Command): void {
  parent
    .command('route')
    .description('show the owning shard of each address and which rule decided')
    .argument('<dir>', 'policy directory')
    .argument('<address...>', 'mail addresses (local@domain)')
    .addOption(jsonOption())
    .addHelpText('after', examples([
      'mailmesh policy route policies/examples/demo alice@mail.test bob+news@MAIL.TEST',
      'mailmesh policy route policies/examples/demo someone@mail.test --json',
    ]) + `
--json prints an array, one element per address, in order:
  {"address","domain","shard","region","rule"}   rule: directory | rule:<name> | default
  {"address","error":"not-hosted"|"invalid"}
Exit status: 0 when every address is placed, 1 when some address is not hosted or invalid
(or the policy is invalid).
`)
    .action((dir: string, addresses: string[], opts: { json?: boolean }) => {
      const c = loadOrReport(dir);
      if (!c) return;
      const rows = addresses.map((address) => {
        const r = route(c, address);
        return r.kind === 'shard'
          ? { address, domain: r.domain, shard: r.shard, region: r.region, rule: r.rule }
          : { address, error: r.kind };
      });
      if (opts.json) process.stdout.write(JSON.stringify(rows) + '\n');
      else {
        const width = Math.max(...addresses.map((a) => a.length));
        for (const row of rows) {
          process.stdout.write('error' in row
            ? `${row.address.padEnd(width)}  ${row.error === 'not-hosted' ? 'not hosted' : 'invalid address'}\n`
            : `${row.address.padEnd(width)}  ${row.shard} (${row.region})  by ${row.rule}\n`);
        }
      }
      if (rows.some((r) => 'error' in r)) process.exitCode = EXIT.failure;
    });
}
