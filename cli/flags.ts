import { Option, InvalidArgumentError } from 'commander';
import { parseDuration } from '../common/duration.ts';
import { isMailmeshError } from '../common/errors.ts';

/** `--json`: machine-readable output on stdout, stable and documented in README. */
export const jsonOption = () => new Option('--json', 'print machine-readable JSON on stdout');

/** Commander argument parser for durations (`10m`, `1h`): a bad value is a usage error. */
export function durationArg(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    if (isMailmeshError(err)) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

/** Append an `Examples:` block to a command's help. */
export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

/** An error's message with its cause's, so "has no SPIFFE ID" also says why (not PEM, no URI SAN, ...). */
export function withCause(err: unknown): string {
  const e = err as Error & { cause?: unknown };
  const cause = e.cause instanceof Error ? e.cause.message : undefined;
  return cause && cause !== e.message ? `${e.message} (${cause})` : e.message;
}
