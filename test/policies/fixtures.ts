import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Shards used by most fixtures: two in jp, one in eu. */
export const MESH_YAML = `trustDomain: mail.test
shards:
  - id: tokyo-1
    region: jp
    mesh: 127.0.0.1:9001
  - id: osaka-1
    region: jp
    mesh: 127.0.0.1:9002
  - id: frankfurt-1
    region: eu
    mesh: 127.0.0.1:9003
authorization:
  - allow: ["spiffe://mail.test/shard/*/node/*"]
    shards: ["*"]
`;

/** Write files into a fresh temp policy directory; returns its path and a cleanup. */
export function policyDir(files: Record<string, string>): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'mailmesh-policy-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
