import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import net from 'node:net';

/** Where Debian puts the mail daemons; /usr/sbin is not always on a non-root PATH. */
const SEARCH = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/lib/postfix/sbin'];

/** Absolute path of an installed program (`postfix`, `dovecot`, `postqueue` …), or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of SEARCH) {
    try {
      accessSync(`${dir}/${name}`, constants.X_OK);
      return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True when a real Postfix and Dovecot are installed (the demo then uses them). */
export function realBackendsInstalled(): boolean {
  return findBinary('postfix') !== undefined && findBinary('dovecot') !== undefined;
}

/** uid/gid of a system account from /etc/passwd (e.g. `postfix`), or undefined. */
export function systemAccount(name: string): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  if (!line) return undefined;
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Whether something accepts TCP connections on `127.0.0.1:port`. */
export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Whether a process with this PID exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Poll `check` every `everyMs` until it is true; false when `timeoutMs` passed first. */
export async function pollUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Throw unless every directory above `dir` lets other users through (`o+x`): Postfix and Dovecot
 * drop privileges (users postfix, dovenull, nobody) and must reach their files below it.
 */
export function assertTraversable(dir: string): void {
  let p = dirname(dir);
  for (;;) {
    const mode = statSync(p).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(`${p} is not searchable by other users (mode ${(mode & 0o777).toString(8)}): Postfix and Dovecot run as their own users and cannot reach ${dir}; chmod o+x ${p} or use a directory under /tmp`);
    }
    const up = dirname(p);
    if (up === p) return;
    p = up;
  }
}
