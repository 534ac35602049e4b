import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyError } from './errors.ts';

function git(cwd: string, args: string[]): Buffer {
  try {
    return execFileSync('git', ['-C', cwd, ...args], { maxBuffer: 2 ** 31 - 1, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'buffer' });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    const why = e.stderr?.toString().trim().split('\n')[0] || e.message;
    throw new PolicyError('ERR_POLICY_GIT', `git ${args[0]} failed: ${why}`, [], { cause: err });
  }
}

/**
 * Materialize the policy directory `dir` (inside a git working tree) as it was at revision
 * `rev`, using `git archive` into a temporary directory. Returns the path of the policy
 * directory in that copy and a cleanup that removes it.
 */
export function exportRevision(dir: string, rev: string): { dir: string; cleanup: () => void } {
  if (rev.startsWith('-')) throw new PolicyError('ERR_POLICY_GIT', `invalid revision "${rev}"`);
  const prefix = git(dir, ['rev-parse', '--show-prefix']).toString().trim();
  const top = git(dir, ['rev-parse', '--show-toplevel']).toString().trim();
  try {
    git(top, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]);
  } catch (err) {
    throw new PolicyError('ERR_POLICY_GIT', `unknown git revision "${rev}" in ${top}`, [], { cause: err });
  }
  const tar = git(top, ['archive', '--format=tar', rev, '--', prefix === '' ? '.' : prefix]);
  const tmp = mkdtempSync(join(tmpdir(), 'mailmesh-plan-'));
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  try {
    execFileSync('tar', ['-x', '-C', tmp], { input: tar, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (err) {
    cleanup();
    throw new PolicyError('ERR_POLICY_GIT', `cannot unpack revision ${rev}: ${(err as Error).message}`, [], { cause: err });
  }
  return { dir: join(tmp, prefix), cleanup };
}
