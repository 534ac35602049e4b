import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The `mailmesh` entry point, run with the same Node as this process. */
export const MAILMESH = fileURLToPath(new URL('../mailmesh.ts', import.meta.url));

/** A child process whose stdout is JSON lines (events). */
export interface EventProcess {
  child: ChildProcess;
  /** Resolves with the first event matching `pred`, or rejects when the process exits first or
   * `timeoutMs` passes (the message includes the process's last stderr lines). */
  waitFor(pred: (event: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Run `mailmesh ARGS…` as a child process and follow its JSON-line events. */
export function spawnMailmesh(args: string[], env: NodeJS.ProcessEnv = {}): EventProcess {
  const child = spawn(process.execPath, [MAILMESH, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MAILMESH_LOG_LEVEL: process.env.MAILMESH_LOG_LEVEL ?? 'warn', ...env },
  });
  const events: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  const stderr: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const w of waiters) w();
  });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr.push(line);
    if (stderr.length > 20) stderr.shift();
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => { exited = true; for (const w of waiters) w(); resolve(); }));
  return {
    child,
    waitFor(pred, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = events.find(pred);
          if (hit) {
            done();
            resolve(hit);
          } else if (exited) {
            done();
            reject(new Error(`mailmesh ${args[0]} exited (code ${child.exitCode}): ${stderr.slice(-5).join(' | ')}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`mailmesh ${args[0]} not ready after ${timeoutMs} ms: ${stderr.slice(-5).join(' | ')}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(graceMs = 5000) {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(t);
    },
  };
}

/** Run `mailmesh ARGS…` to completion; resolves with stdout, rejects with stderr on failure. */
export function runMailmesh(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAILMESH, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MAILMESH_LOG_LEVEL: 'warn' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`mailmesh ${args.slice(0, 2).join(' ')} failed: ${err.trim()}`))));
  });
}
