import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** Where Debian puts the daemons; /usr/sbin is not always on a non-root PATH. */
const SEARCH = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/lib/postfix/sbin'];

/** Absolute path of a real program, or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of SEARCH) {
    const r = spawnSync('test', ['-x', `${dir}/${name}`]);
    if (r.status === 0) return `${dir}/${name}`;
  }
  return undefined;
}

/**
 * Require a real component (postfix, dovecot, knotd, openssl …) for a test. In CI (`CI=true`)
 * a missing component fails the test: .ci/run must have installed it. Elsewhere the test is
 * skipped with a message saying what to install.
 */
export function requireBinary(t: TestContext, name: string, debianPackage = name): string | undefined {
  const path = findBinary(name);
  if (path) return path;
  const msg = `${name} not found: apt-get install -y ${debianPackage}`;
  if (process.env.CI === 'true') throw new Error(`${msg} (CI must install it: see .ci/run)`);
  t.skip(msg);
  return undefined;
}
