import { spawn } from 'node:child_process';

/** How a reload command ended. */
export interface ReloadResult {
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The last bytes of stderr, for the log line (never parsed). */
  stderr: string;
}

/**
 * Run the operator's reload command (`postfix reload && doveadm reload`) through `/bin/sh -c`
 * so that it may chain commands. Killed after `timeoutMs`: a hung reload must not stall rotation.
 * Never throws; the rotator logs and counts failures.
 */
export function runReloadCommand(command: string, timeoutMs = 30_000): Promise<ReloadResult> {
  return new Promise((resolve) => {
    let stderr = '';
    let timedOut = false;
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      stderr = (stderr + d).slice(-2000);
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, exitCode: null, signal: null, timedOut, stderr: err.message });
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ ok: exitCode === 0 && !timedOut, exitCode, signal, timedOut, stderr });
    });
  });
}
