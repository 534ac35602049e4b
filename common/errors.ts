/**
 * The base of every mailmesh error: a stable string `code` that tests and callers branch on,
 * and a message that tells an operator what to do. Each library (`ca/`, `policies/`, …) has its
 * own `errors.ts` whose subclasses narrow `code` to that library's union.
 */
export class MailmeshError<C extends string = string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** True when `err` is a mailmesh error, optionally with the given code. */
export function isMailmeshError(err: unknown, code?: string): err is MailmeshError {
  return err instanceof MailmeshError && (code === undefined || err.code === code);
}
