import type { X509Certificate } from 'node:crypto';
import { Command, Option } from 'commander';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../../../ca/keys.ts';
import { rotateIssuer } from '../../../ca/rotate.ts';
import { rotateRoot } from '../../../ca/rotate-root.ts';
import { CliError, EXIT } from '../../main.ts';
import { durationArg, examples, jsonOption } from '../../flags.ts';

interface Flags {
  dir: string;
  issuer?: boolean;
  root?: boolean;
  ttl?: number;
  rootTtl?: number;
  algorithm?: KeyAlgorithm;
  json?: boolean;
}

/** One CA certificate in `--json` output (stable keys). */
export function caSummary(c: X509Certificate): { subject: string; serial: string; notBefore: string; notAfter: string; fingerprint256: string } {
  return {
    subject: (c.subject ?? '').split('\n').filter(Boolean).join(', '),
    serial: c.serialNumber,
    notBefore: c.validFromDate.toISOString(),
    notAfter: c.validToDate.toISOString(),
    fingerprint256: c.fingerprint256,
  };
}

const RELOAD = 'reload the control plane (kill -HUP <pid>; in Kubernetes update the mailmesh-ca Secret, it is picked up on SIGHUP or restart)';

/** `mailmesh ca rotate --dir DIR (--issuer | --root) [--ttl D] [--root-ttl D] [--algorithm A] [--json]` */
export function register(parent: Command): void {
  parent
    .command('rotate')
    .description('rotate the issuing CA (--issuer) or start a root rotation (--root) with overlapping trust')
    .requiredOption('--dir <dir>', 'CA directory made by mailmesh ca init')
    .option('--issuer', 'make the next issuing CA current: the one staged by --root, else a new one under root.pem (needs root.key)')
    .option('--root', 'add a new root to bundle.pem (both roots trusted) and stage an issuing CA under it as issuer-next.pem')
    .addOption(new Option('--ttl <duration>', 'lifetime of a new issuing CA (default 365d)').argParser(durationArg))
    .addOption(new Option('--root-ttl <duration>', 'lifetime of the new root with --root (default 3650d)').argParser(durationArg))
    .addOption(new Option('--algorithm <alg>', 'key algorithm of the new root and its issuing CA with --root (default: the CA\'s)').choices(KEY_ALGORITHMS))
    .addOption(jsonOption())
    .addHelpText('after', `
Issuing CA, same root: --issuer. issuer.pem/issuer.key are replaced atomically (key 0600) after the
new issuing CA proved itself; the old certificate stays as issuer-previous.pem so nodes still accept
leaves it issued until they expire. Then ${RELOAD}.

Root (overlap, then switch, then retire):
  1. --root          bundle.pem = old root(s) + new root; new issuing CA staged as issuer-next.pem;
                     nothing issues from the new root yet. Reload; wait until mailmesh status shows
                     every node on the new revision.
  2. --issuer        issuer-next.pem becomes current (no root key needed). Reload; nodes renew under
                     the new root within one certificate TTL.
  3. mailmesh ca retire-root --dir DIR --fingerprint OLD-ROOT-SHA256

--json prints {"action":"issuer"|"root","generation":N,...} with CA certificates as
{subject,serial,notBefore,notAfter,fingerprint256}: --issuer adds issuer, previousIssuer, promoted,
--root adds root, previousRoot, nextIssuer, bundle (fingerprints). Exit codes: 0 ok, 1 refused, 2 usage.
${examples([
  'mailmesh ca rotate --dir ./ca --issuer',
  'mailmesh ca rotate --dir ./ca --root --json | jq -r .previousRoot.fingerprint256',
  'mailmesh ca rotate --dir ./ca --root --algorithm P-384 --root-ttl 3650d',
])}`)
    .action(async (o: Flags) => {
      if (Boolean(o.issuer) === Boolean(o.root)) throw new CliError('ERR_USAGE', 'give exactly one of --issuer or --root', EXIT.usage);
      if (o.issuer && (o.rootTtl !== undefined || o.algorithm !== undefined)) throw new CliError('ERR_USAGE', '--root-ttl and --algorithm go with --root only (an issuing CA keeps its root\'s algorithm)', EXIT.usage);
      if (o.issuer) {
        const r = await rotateIssuer({ dir: o.dir, ttlMs: o.ttl });
        if (o.json) {
          process.stdout.write(JSON.stringify({ action: 'issuer', generation: r.generation, promoted: r.promoted, issuer: caSummary(r.issuer.cert), previousIssuer: caSummary(r.previous), bundle: r.bundle.roots.map((x) => x.fingerprint256) }) + '\n');
          return;
        }
        process.stdout.write(
          `new issuing CA ${r.issuer.cert.fingerprint256} (${r.promoted ? 'staged by --root, now current' : 'signed by root.pem'}), valid until ${r.issuer.notAfter.toISOString()}; generation ${r.generation}\n` +
            `the previous one is kept as issuer-previous.pem; ${RELOAD}\n`,
        );
        return;
      }
      const r = await rotateRoot({ dir: o.dir, algorithm: o.algorithm, rootTtlMs: o.rootTtl, issuerTtlMs: o.ttl });
      if (o.json) {
        process.stdout.write(JSON.stringify({ action: 'root', generation: r.generation, root: caSummary(r.root), previousRoot: caSummary(r.previousRoot), nextIssuer: caSummary(r.nextIssuer), bundle: r.bundle.roots.map((x) => x.fingerprint256) }) + '\n');
        return;
      }
      process.stdout.write(
        `new root ${r.root.fingerprint256} added to bundle.pem (${r.bundle.roots.length} roots); generation ${r.generation}\n` +
          `issuing CA under it staged as issuer-next.pem (not used yet); old root kept as root-previous.pem\n` +
          `next: ${RELOAD}; when mailmesh status shows every node on the new revision, run mailmesh ca rotate --dir ${o.dir} --issuer\n` +
          `later: mailmesh ca retire-root --dir ${o.dir} --fingerprint ${r.previousRoot.fingerprint256}\n`,
      );
    });
}
