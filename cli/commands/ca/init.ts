import { Command, Option } from 'commander';
import { initCa } from '../../../ca/init.ts';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../../../ca/keys.ts';
import { examples } from '../../flags.ts';

/** `mailmesh ca init --dir DIR --trust-domain TD [--algorithm P-256|P-384|Ed25519] [--force]` */
export function register(parent: Command): void {
  parent
    .command('init')
    .description('create an offline root CA and an online issuing CA: root.pem root.key issuer.pem issuer.key bundle.pem')
    .requiredOption('--dir <dir>', 'directory for the CA files (created if missing)')
    .requiredOption('--trust-domain <td>', 'trust domain of the mesh, e.g. mail.example')
    .addOption(new Option('--algorithm <alg>', 'key algorithm of both CAs').choices(KEY_ALGORITHMS).default('P-256'))
    .option('--force', 'replace an existing CA in --dir (every certificate it issued stops verifying)')
    .addHelpText('after', examples([
      'mailmesh ca init --dir ./ca --trust-domain mail.example',
      'mailmesh ca init --dir ./ca --trust-domain mail.example --algorithm P-384 --force',
    ]))
    .action(async (o: { dir: string; trustDomain: string; algorithm: KeyAlgorithm; force?: boolean }) => {
      const ca = await initCa({ dir: o.dir, trustDomain: o.trustDomain, algorithm: o.algorithm, force: o.force });
      process.stdout.write(
        `created CA for ${ca.trustDomain} (${ca.algorithm}) in ${o.dir}: root.pem root.key issuer.pem issuer.key bundle.pem\n` +
          `issuing CA valid until ${ca.issuer.notAfter.toISOString()}; move root.key offline, it is only needed to rotate the issuing CA\n`,
      );
    });
}
