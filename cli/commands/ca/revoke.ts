import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ControlPlaneClient, isApiError } from '../../../api/client.ts';
import { trustDomainOf } from '../../../api/rotate.ts';
import { CliError, EXIT } from '../../main.ts';
import { examples, jsonOption, withCause } from '../../flags.ts';

interface Flags {
  controlPlane: string;
  caBundle: string;
  cert: string;
  key: string;
  serial: string[];
  identity: string[];
  reason?: string;
  json?: boolean;
}

const collect = (v: string, acc: string[]) => [...acc, v];

async function readInput(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError('ERR_USAGE', `cannot read ${flag} ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}): check the path and its permissions`, EXIT.usage);
  }
}

/** `mailmesh ca revoke --control-plane ADDR --ca-bundle FILE --cert F --key F (--serial S | --identity ID)... [--reason TEXT] [--json]` */
export function register(parent: Command): void {
  parent
    .command('revoke')
    .description('revoke certificate serials or identities; every sidecar gets the new list within seconds')
    .requiredOption('--control-plane <addr>', 'control plane host:port')
    .requiredOption('--ca-bundle <file>', 'trust bundle to verify the control plane with')
    .requiredOption('--cert <file>', 'admin certificate: spiffe://TD/admin/NAME issued by mailmesh ca issue')
    .requiredOption('--key <file>', 'its private key')
    .option('--serial <hex>', 'certificate serial as mailmesh ca inspect prints it (repeatable)', collect, [])
    .option('--identity <spiffe-id>', 'SPIFFE ID to refuse whatever certificate it holds (repeatable)', collect, [])
    .option('--reason <text>', 'recorded in the revocation list')
    .addOption(jsonOption())
    .addHelpText('after', `
Admin authentication is mutual TLS: only an identity spiffe://TD/admin/NAME may revoke. Issue one
on the CA host with:  mailmesh ca issue --dir CA --spiffe-id spiffe://TD/admin/alice --ttl 8h --out alice
Prints the new snapshot revision (--json: {"revision":"…"}). Exit codes: 0 ok, 1 refused, 2 usage, 75 unreachable.
${examples([
  'mailmesh ca revoke --control-plane 127.0.0.1:7443 --ca-bundle ca/bundle.pem --cert alice.crt --key alice.key --serial 3F9A0C...',
  'mailmesh ca revoke --control-plane 127.0.0.1:7443 --ca-bundle ca/bundle.pem --cert alice.crt --key alice.key --identity spiffe://mail.example/shard/tokyo-1/node/a --reason "host lost"',
])}`)
    .action(async (o: Flags) => {
      if (o.serial.length === 0 && o.identity.length === 0) throw new CliError('ERR_USAGE', 'give at least one --serial or --identity', EXIT.usage);
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
        const revision = await client.revoke({ serials: o.serial, identities: o.identity, reason: o.reason });
        process.stdout.write(o.json ? JSON.stringify({ revision }) + '\n' : `revoked; snapshot revision ${revision}\n`);
      } catch (err) {
        if (isApiError(err)) throw new CliError(err.code, `${err.message} (${err.code})`, err.temporary ? EXIT.tempfail : EXIT.failure);
        throw err;
      } finally {
        client.close();
      }
    });
}
