import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process logger: JSON lines on stderr (stdout belongs to command output). Level from
 * `MAILMESH_LOG_LEVEL` (default `info`; tests set `silent`). Never log message bodies or secrets:
 * the redact list below is a last line of defence, not a licence.
 */
export function createLogger(bindings: Record<string, unknown> = {}): Logger {
  return pino(
    {
      level: process.env.MAILMESH_LOG_LEVEL ?? 'info',
      base: { pid: process.pid, ...bindings },
      redact: ['token', 'password', 'key', 'privateKey', '*.token', '*.password', '*.privateKey'],
    },
    pino.destination(2),
  );
}
