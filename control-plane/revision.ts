import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Name a policy revision: the git commit of the working tree holding `dir` (`git rev-parse HEAD`),
 * with `-dirty-<hash>` appended when files under `dir` differ from that commit, else (not a git
 * tree, or git missing) `sha256-<hash>`. `contentDigest` is the policy's content hash
 * (`Policy.digest`), so two dirty states never share a name.
 */
export async function policyRevision(dir: string, contentDigest: string): Promise<string> {
  const short = contentDigest.slice(0, 12);
  try {
    const { stdout: head } = await run('git', ['-C', dir, 'rev-parse', 'HEAD'], { timeout: 10_000 });
    const { stdout: st } = await run('git', ['-C', dir, 'status', '--porcelain', '--', '.'], { timeout: 10_000 });
    const commit = head.trim();
    return st.trim() === '' ? commit : `${commit}-dirty-${short}`;
  } catch {
    return `sha256-${short}`;
  }
}
