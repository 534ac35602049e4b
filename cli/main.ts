import { readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { MailmeshError } from '../common/errors.ts';

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

/** Build the whole command tree. Every verb lives in its own file under `cli/commands/`. */
export async function buildProgram(): Promise<Command> {
  const program = new Command('mailmesh')
    .description('zero-trust mTLS service mesh for Postfix and Dovecot')
    .showHelpAfterError('(run with --help for usage and examples)')
    .exitOverride();
  const dir = join(here, 'commands');
  if (!existsSync(dir)) return program;
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.isDirectory()) {
      const noun = program.command(e.name).description(NOUN_HELP[e.name] ?? e.name).exitOverride();
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
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return EXIT.ok;
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
