import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { CertRotator, rotateOnce, trustDomainOf, type RotateEvent, type RotatorConfig } from '../../../api/rotate.ts';
import { isApiError } from '../../../api/errors.ts';
import { CliError, EXIT } from '../../main.ts';
import { examples, jsonOption, withCause } from '../../flags.ts';

interface Flags {
  controlPlane: string;
  token?: string;
  cert?: string;
  key?: string;
  out: string;
  caBundle: string;
  daemon?: boolean;
  reloadCmd?: string;
  json?: boolean;
}

async function readInput(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError('ERR_USAGE', `cannot read ${flag} ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}): check the path and its permissions`, EXIT.usage);
  }
}

/** Map a failure to the documented exit codes: 75 temporary, 1 refused. */
function failure(err: unknown): CliError {
  if (isApiError(err)) return new CliError(err.code, `${err.message} (${err.code})`, err.temporary ? EXIT.tempfail : EXIT.failure);
  return err instanceof CliError ? err : new CliError('ERR_ROTATE', (err as Error).message, EXIT.failure);
}

function print(json: boolean | undefined, e: RotateEvent): void {
  if (json) process.stdout.write(JSON.stringify(e) + '\n');
  else if (e.event === 'renewed') process.stdout.write(`renewed ${e.spiffeId} serial ${e.serial}, valid until ${e.notAfter}${e.reload === 'failed' ? ' (reload command failed)' : ''}\n`);
  else process.stderr.write(`mailmesh: renewal failed: ${e.message} (${e.code}); retrying in ${Math.round(e.retryInMs / 1000)} s\n`);
}

/** `mailmesh cert rotate --control-plane ADDR (--token T | --cert F --key F) --out DIR --ca-bundle FILE [--daemon] [--reload-cmd CMD] [--json]` */
export function register(parent: Command): void {
  parent
    .command('rotate')
    .description('get or renew a mesh certificate for a host without a sidecar (writes DIR/node.crt, node.key, bundle.pem)')
    .requiredOption('--control-plane <addr>', 'control plane host:port')
    .option('--token <token>', 'join token from mailmesh token create (first issuance); "@FILE" reads it from FILE')
    .option('--cert <file>', 'current certificate chain (renewal over mTLS)')
    .option('--key <file>', 'current private key (with --cert)')
    .requiredOption('--out <dir>', 'where to write node.crt, node.key (0600) and bundle.pem, atomically')
    .requiredOption('--ca-bundle <file>', 'trust bundle to verify the control plane with')
    .option('--daemon', 'keep running: renew at half-life, retry failures with backoff, keep the old certificate meanwhile')
    .option('--reload-cmd <cmd>', 'shell command to run after new files are written (e.g. "postfix reload")')
    .addOption(jsonOption())
    .addHelpText('after', `
Exactly one of --token or --cert/--key. The private key is generated here and never sent.
In daemon mode the renewals use the certificate in --out.

Exit codes (for cron and systemd):
  0   certificate written (one-shot), or daemon stopped by SIGTERM/SIGINT
  1   refused by the control plane (bad/expired/replayed token, revoked, unknown shard, ...)
  1   also: a --token that is not a join token, a --cert without a SPIFFE ID
  2   usage error (flags, unreadable files)
  75  temporary failure (control plane unreachable, rate limited): try again later
With --json every renewal/failure is one JSON line: {"event":"renewed","spiffeId",...} or
{"event":"failed","code","message","temporary","retryInMs"}.
${examples([
  'mailmesh cert rotate --control-plane cp.mail.example:7443 --ca-bundle bundle.pem --token "$(cat join-token)" --out /etc/mailmesh/tls',
  'mailmesh cert rotate --control-plane cp.mail.example:7443 --ca-bundle /etc/mailmesh/tls/bundle.pem --cert /etc/mailmesh/tls/node.crt --key /etc/mailmesh/tls/node.key --out /etc/mailmesh/tls',
  'mailmesh cert rotate --control-plane cp.mail.example:7443 --ca-bundle bundle.pem --token @join-token --out /etc/postfix/mesh --daemon --reload-cmd "postfix reload"',
])}`)
    .action(async (o: Flags) => {
      // Flag combinations first, before reading or contacting anything.
      if (o.token !== undefined && (o.cert !== undefined || o.key !== undefined)) throw new CliError('ERR_USAGE', 'use either --token or --cert/--key, not both', EXIT.usage);
      if (o.token === undefined && (o.cert === undefined || o.key === undefined)) {
        throw new CliError('ERR_USAGE', o.cert !== undefined || o.key !== undefined ? '--cert and --key go together' : 'give --token (first issuance) or --cert and --key (renewal)', EXIT.usage);
      }
      const bundlePem = await readInput(o.caBundle, '--ca-bundle');
      const joinToken = o.token?.startsWith('@') ? (await readInput(o.token.slice(1), '--token')).trim() : o.token;
      const current = o.cert !== undefined && o.key !== undefined ? { certPem: await readInput(o.cert, '--cert'), keyPem: await readInput(o.key, '--key') } : undefined;
      try {
        trustDomainOf({ joinToken, current });
      } catch (err) {
        const hint = current ? `--cert ${o.cert}: ${withCause(err)}: pass node.crt written by an earlier cert rotate` : `--token: ${withCause(err)}: pass the token printed by mailmesh token create (or @FILE holding it)`;
        throw new CliError('ERR_BAD_INPUT', hint, EXIT.failure);
      }
      const cfg: RotatorConfig = { address: o.controlPlane, bundlePem, outDir: o.out, joinToken, current, reloadCmd: o.reloadCmd, onEvent: (e) => print(o.json, e) };
      if (!o.daemon) {
        let r;
        try {
          r = await rotateOnce(cfg);
        } catch (err) {
          throw failure(err);
        }
        print(o.json, { event: 'renewed', spiffeId: r.held.spiffeId, serial: r.held.serial, notAfter: new Date(r.held.notAfter).toISOString(), nextCheckInMs: 0, reload: r.reload });
        return;
      }
      // Handlers first: a SIGTERM that arrives while the first issuance is printing its event
      // must stop the daemon cleanly (exit 0), not kill it with the default action.
      let stopRequested = false;
      const stopped = new Promise<void>((resolve) => {
        const stop = () => {
          stopRequested = true;
          resolve();
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      const rotator = new CertRotator(cfg);
      // A first issuance refused for good (bad token) ends the daemon: retrying a single-use token is pointless.
      if (!current) {
        const first = await rotator.tick();
        if (first.outcome === 'failed' && first.error && !first.error.temporary) throw failure(first.error);
      }
      if (!stopRequested) rotator.start();
      await stopped;
      rotator.stop();
    });
}
