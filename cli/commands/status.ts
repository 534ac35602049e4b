import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ControlPlaneClient, isApiError, type ControlPlaneStatus } from '../../api/client.ts';
import { trustDomainOf } from '../../api/rotate.ts';
import { CliError, EXIT } from '../main.ts';
import { examples, jsonOption, withCause } from '../flags.ts';

interface Flags {
  controlPlane: string;
  caBundle: string;
  cert?: string;
  key?: string;
  json?: boolean;
}

async function readInput(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError('ERR_USAGE', `cannot read ${flag} ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}): check the path and its permissions`, EXIT.usage);
  }
}

const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : '-');

function human(s: ControlPlaneStatus): string {
  const lines = [
    `trust domain   ${s.trustDomain}`,
    `revision       ${s.revision}`,
    `watchers       ${s.watchers}`,
    `revoked        ${s.revokedSerials} serials, ${s.revokedIdentities} identities`,
    `policy errors  ${s.policyErrorsTotal}${s.lastPolicyError ? ` (last at ${iso(s.lastPolicyErrorAt ?? 0)}, still serving ${s.revision}):\n  ${s.lastPolicyError.split('\n').join('\n  ')}` : ''}`,
    '',
    `NODE${' '.repeat(52)}REVISION${' '.repeat(14)}CERT EXPIRY               LAST REPORT               OFFSET`,
  ];
  for (const n of s.nodes) {
    const stale = n.revision !== s.revision ? '*' : ' ';
    lines.push(`${n.spiffeId.padEnd(56)}${(n.revision.slice(0, 20) + stale).padEnd(22)}${iso(n.certNotAfter).padEnd(26)}${iso(n.lastReport).padEnd(26)}${n.clockOffsetMs} ms`);
  }
  if (s.nodes.length === 0) lines.push('(no node has reported yet)');
  return lines.join('\n') + '\n';
}

/** `mailmesh status --control-plane ADDR --ca-bundle FILE --cert F --key F [--json]` */
export function register(parent: Command): void {
  parent
    .command('status')
    .description('show the control plane: served revision, last policy error, nodes and their revision, cert expiry, last report')
    .requiredOption('--control-plane <addr>', 'control plane host:port')
    .requiredOption('--ca-bundle <file>', 'trust bundle to verify the control plane with')
    .option('--cert <file>', 'admin certificate (spiffe://TD/admin/NAME, from mailmesh ca issue); required by the control plane')
    .option('--key <file>', 'its private key')
    .addOption(jsonOption())
    .addHelpText('after', `
The Status RPC is for admin identities only: issue one with
  mailmesh ca issue --dir CA --spiffe-id spiffe://TD/admin/NAME --out admin
--json prints {"trustDomain","revision","lastPolicyError"|null,"lastPolicyErrorAt"|null,"policyErrorsTotal",
"serverTime","watchers","revokedSerials","revokedIdentities","nodes":[{"spiffeId","revision","certSerial",
"certNotAfter","lastReport","clockOffsetMs"}]} (times in ms since the epoch).
Exit codes: 0 ok, 1 refused, 2 usage, 75 control plane unreachable.
${examples([
  'mailmesh status --control-plane 127.0.0.1:7443 --ca-bundle ca/bundle.pem --cert admin.crt --key admin.key',
  'mailmesh status --control-plane 127.0.0.1:7443 --ca-bundle ca/bundle.pem --cert admin.crt --key admin.key --json | jq .nodes',
])}`)
    .action(async (o: Flags) => {
      if ((o.cert === undefined) !== (o.key === undefined)) throw new CliError('ERR_USAGE', '--cert and --key go together', EXIT.usage);
      if (o.cert === undefined || o.key === undefined) {
        throw new CliError('ERR_USAGE', 'status needs an admin certificate: pass --cert and --key (mailmesh ca issue --spiffe-id spiffe://TD/admin/NAME)', EXIT.usage);
      }
      const bundlePem = await readInput(o.caBundle, '--ca-bundle');
      const cert = { certPem: await readInput(o.cert, '--cert'), keyPem: await readInput(o.key, '--key') };
      let trustDomain: string;
      try {
        trustDomain = trustDomainOf({ current: cert });
      } catch (err) {
        throw new CliError('ERR_BAD_CERT', `--cert ${o.cert}: ${withCause(err)}: pass an admin certificate from mailmesh ca issue --spiffe-id spiffe://TD/admin/NAME`, EXIT.failure);
      }
      const client = new ControlPlaneClient({ address: o.controlPlane, bundlePem, trustDomain, cert });
      try {
        const s = await client.status();
        process.stdout.write(o.json ? JSON.stringify(s) + '\n' : human(s));
      } catch (err) {
        if (isApiError(err)) throw new CliError(err.code, `${err.message} (${err.code})`, err.temporary ? EXIT.tempfail : EXIT.failure);
        throw err;
      } finally {
        client.close();
      }
    });
}
