import { readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError, type Option } from 'commander';
import { MailmeshError } from '../common/errors.ts';
import { examples } from './flags.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** A CLI verb module: `cli/commands/<noun>/<verb>.ts` (or `cli/commands/<name>.ts` for a
 * top-level command such as `demo`) exports `register`, which adds itself to its parent. */
export type Register = (parent: Command) => void;

/** Exit codes the CLI contract promises (documented in README): scripts and systemd units rely on them. */
export const EXIT = { ok: 0, failure: 1, usage: 2, tempfail: 75 } as const;

/** An error the CLI prints as one line and turns into an exit code. */
export class CliError extends MailmeshError {
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number = EXIT.failure) {
    super(code, message);
    this.exitCode = exitCode;
  }
}

const NOUN_HELP: Record<string, string> = {
  ca: 'certificate authority: init, issue, inspect, rotate, retire-root, revoke',
  policy: 'placement policy: validate, route, plan',
  token: 'join tokens for new nodes',
  cert: 'certificates for hosts without a sidecar',
};

const NOUN_EXAMPLES: Record<string, string[]> = {
  ca: ['mailmesh ca init --dir ./ca --trust-domain mail.example', 'mailmesh ca inspect ./tls/node.crt --json'],
  policy: ['mailmesh policy validate ./policies', 'mailmesh policy route ./policies alice@mail.example --json', 'mailmesh policy plan ./policies --from HEAD~1'],
  token: ['mailmesh token create --config control-plane.yaml --shard tokyo-1 --node tokyo-1-a'],
  cert: ['mailmesh cert rotate --control-plane cp.mail.example:7443 --ca-bundle bundle.pem --token @join-token --out /etc/mailmesh/tls'],
};

/** Commander internals used below (present in commander 15, absent from its typings). */
interface CommandInternals {
  missingMandatoryOptionValue(option: Option): never;
  unknownOption(flag: string): never;
}

/**
 * One shape for every usage error, on one stderr line: `mailmesh ca init: unknown option
 * '--x' (see mailmesh ca init --help)`. An unknown flag is reported before a missing required
 * one (commander checks the latter first), so a typo is named as such.
 */
function polish(cmd: Command, path: string[]): void {
  const name = ['mailmesh', ...path].join(' ');
  cmd
    .showHelpAfterError(false)
    .configureOutput({ outputError: (str, write) => write(`${name}: ${str.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')} (see ${name} --help)\n`) });
  const internals = cmd as unknown as CommandInternals;
  const missing = internals.missingMandatoryOptionValue.bind(cmd);
  internals.missingMandatoryOptionValue = (option: Option) => {
    const unknown = cmd.args.find((a) => a.length > 1 && a.startsWith('-') && !cmd.options.some((o) => o.long === a.split('=')[0] || o.short === a));
    if (unknown !== undefined) internals.unknownOption(unknown);
    return missing(option);
  };
  for (const sub of cmd.commands) polish(sub, [...path, sub.name()]);
}

/** Build the whole command tree. Every verb lives in its own file under `cli/commands/`. */
export async function buildProgram(): Promise<Command> {
  const program = new Command('mailmesh')
    .description('zero-trust mTLS service mesh for Postfix and Dovecot')
    .exitOverride()
    .addHelpText('after', examples([
      'mailmesh demo                                   # a local mesh, sample mail, where it landed',
      'mailmesh demo --keep-running --dir ./demo-out   # leave it up; addresses and users in demo-out/mesh.json',
      'mailmesh policy validate ./policies',
      'mailmesh ca init --dir ./ca --trust-domain mail.example',
      'mailmesh <command> --help                       # flags, JSON output and examples of one command',
    ]));
  const dir = join(here, 'commands');
  if (!existsSync(dir)) return program;
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.isDirectory()) {
      const noun = program.command(e.name).description(NOUN_HELP[e.name] ?? e.name).exitOverride();
      if (NOUN_EXAMPLES[e.name]) noun.addHelpText('after', examples(NOUN_EXAMPLES[e.name]));
      for (const f of readdirSync(join(dir, e.name)).sort()) {
        if (!f.endsWith('.ts')) continue;
        const mod = (await import(pathToFileURL(join(dir, e.name, f)).href)) as { register: Register };
        mod.register(noun);
      }
    } else if (e.name.endsWith('.ts')) {
      const mod = (await import(pathToFileURL(join(dir, e.name)).href)) as { register: Register };
      mod.register(program);
    }
  }
  polish(program, []);
  return program;
}

/** Run the CLI; returns the exit code. Errors print one line on stderr, never a stack trace
 * (set MAILMESH_DEBUG=1 for one). */
export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? EXIT.ok : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // `--help` is 0; help shown because a command was missing (`mailmesh`, `mailmesh ca`) is a usage error.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.ok;
      if (err.code === 'commander.help') return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return EXIT.usage;
    }
    if (process.env.MAILMESH_DEBUG) console.error(err);
    if (err instanceof CliError) {
      process.stderr.write(`mailmesh: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof MailmeshError) {
      process.stderr.write(`mailmesh: ${err.message} (${err.code})\n`);
      return EXIT.failure;
    }
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`mailmesh: ${e?.message ?? String(err)}${e?.code ? ` (${e.code})` : ''}\n`);
    return EXIT.failure;
  }
}
