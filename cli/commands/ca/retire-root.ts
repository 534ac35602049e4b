import type { Command } from 'commander';
import { retireRoot } from '../../../ca/retire-root.ts';
import { examples, jsonOption } from '../../flags.ts';
import { caSummary } from './rotate.ts';

/** `mailmesh ca retire-root --dir DIR --fingerprint SHA256 [--json]` */
export function register(parent: Command): void {
  parent
    .command('retire-root')
    .description('remove an old root from bundle.pem at the end of a root rotation')
    .requiredOption('--dir <dir>', 'CA directory made by mailmesh ca init')
    .requiredOption('--fingerprint <sha256>', 'SHA-256 fingerprint of the root to remove (with or without colons)')
    .addOption(jsonOption())
    .addHelpText('after', `
Refused when the root is not in bundle.pem (ERR_ROOT_UNKNOWN), is the only root (ERR_ROOT_LAST), or
the current or staged issuing CA chains to it (ERR_ROOT_IN_USE). Run it only once mailmesh status
shows every node renewed under the new root: after the reload, nodes refuse any certificate that
still chains to the retired root (ERR_UNKNOWN_AUTHORITY). root-previous.pem/.key stay for you to destroy.
--json prints {"generation":N,"retired":{subject,serial,notBefore,notAfter,fingerprint256},"bundle":[fingerprints]}.
${examples([
  'mailmesh ca retire-root --dir ./ca --fingerprint 3A:1F:…:9C',
  'mailmesh ca retire-root --dir ./ca --fingerprint "$(openssl x509 -in ca/root-previous.pem -noout -fingerprint -sha256)"',
])}`)
    .action(async (o: { dir: string; fingerprint: string; json?: boolean }) => {
      const r = await retireRoot({ dir: o.dir, fingerprint: o.fingerprint });
      if (o.json) {
        process.stdout.write(JSON.stringify({ generation: r.generation, retired: caSummary(r.retired), bundle: r.bundle.roots.map((x) => x.fingerprint256) }) + '\n');
        return;
      }
      process.stdout.write(
        `root ${r.retired.fingerprint256} removed from bundle.pem (${r.bundle.roots.length} left); generation ${r.generation}\n` +
          `reload the control plane; once mailmesh status shows every node on the new revision, destroy the old root key (root-previous.key)\n`,
      );
    });
}
