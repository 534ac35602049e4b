import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { MESH_YAML, policyDir } from './fixtures.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Run `node cli/mailmesh.ts ...args` from the repo root; never throws. */
async function mailmesh(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['cli/mailmesh.ts', ...args], { cwd: ROOT, env: { ...process.env, MAILMESH_LOG_LEVEL: 'silent' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('policy validate: valid examples exit 0 with one summary line', async () => {
  for (const dir of ['policies/examples/demo', 'policies/examples/example-co-jp']) {
    const r = await mailmesh(['policy', 'validate', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    assert.match(r.stdout, /^ok: trust domain mail\.(test|example\.co\.jp), [34] shards, [12] domains?, \d+ directory users/);
  }
});

test('policy validate: an invalid set exits 1 with every file:line:col: message on stderr', async () => {
  const { dir, cleanup } = policyDir({
    'mesh.yaml': MESH_YAML,
    'domains.yaml': 'domains:\n  - name: mail.test\n    residency: [jp]\n    colour: blue\n    directory: users.csv\n',
    'users.csv': 'address,shard\na@mail.test,frankfurt-1\nb@mail.test,nara-1\n',
  });
  try {
    const r = await mailmesh(['policy', 'validate', dir]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.deepEqual(lines.slice(0, 3), [
      'domains.yaml:4:5: unknown key "colour"',
      'users.csv:2:13: a@mail.test is placed on shard "frankfurt-1" in region "eu", outside the residency of mail.test [jp]',
      'users.csv:3:13: unknown shard "nara-1" for b@mail.test',
    ]);
    assert.match(lines[3], /3 problems/);
  } finally {
    cleanup();
  }
});

test('policy route: text and stable --json, exit 1 when an address is not hosted', async () => {
  const ok = await mailmesh(['policy', 'route', 'policies/examples/demo', 'Alice+news@MAIL.test', 'carol@mail.test', '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), [
    { address: 'Alice+news@MAIL.test', domain: 'mail.test', shard: 'tokyo-1', region: 'jp', rule: 'directory' },
    { address: 'carol@mail.test', domain: 'mail.test', shard: 'frankfurt-1', region: 'eu', rule: 'directory' },
  ]);
  const mixed = await mailmesh(['policy', 'route', 'policies/examples/demo', 'dave@mail.test', 'x@elsewhere.example', 'nonsense', '--json']);
  assert.equal(mixed.code, 1);
  assert.deepEqual(JSON.parse(mixed.stdout), [
    { address: 'dave@mail.test', domain: 'mail.test', shard: 'frankfurt-1', region: 'eu', rule: 'rule:eu-residents' },
    { address: 'x@elsewhere.example', error: 'not-hosted' },
    { address: 'nonsense', error: 'invalid' },
  ]);
  const text = await mailmesh(['policy', 'route', 'policies/examples/demo', 'bob@mail.test']);
  assert.equal(text.code, 0);
  assert.equal(text.stdout, 'bob@mail.test  osaka-1 (jp)  by directory\n');
  const usage = await mailmesh(['policy', 'route', 'policies/examples/demo']);
  assert.equal(usage.code, 2, 'missing address is a usage error');
  const help = await mailmesh(['policy', 'route', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Examples:\n {2}\$ mailmesh policy route/);
});

test('policy plan against a real git repository: moved users and hashed share', async () => {
  const { dir, cleanup } = policyDir({
    'policy/mesh.yaml': MESH_YAML,
    'policy/domains.yaml': 'domains:\n  - name: mail.test\n    directory: users.csv\n    default: { shards: [tokyo-1, osaka-1] }\n',
    'policy/users.csv': 'address,shard\nalice@mail.test,tokyo-1\nbob@mail.test,osaka-1\ncarol@mail.test,frankfurt-1\n',
  });
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { stdio: 'pipe' });
  try {
    git('init', '-q', '-b', 'main');
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'add', '.');
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'v1');
    // v2: bob moves to tokyo-1, frankfurt-1 joins the hash set (≈1/3 of hashed users move to it)
    writeFileSync(join(dir, 'policy/users.csv'), 'address,shard\nalice@mail.test,tokyo-1\nbob@mail.test,tokyo-1\ncarol@mail.test,frankfurt-1\n');
    writeFileSync(join(dir, 'policy/domains.yaml'), 'domains:\n  - name: mail.test\n    directory: users.csv\n    default: { shards: [tokyo-1, osaka-1, frankfurt-1] }\n');
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-am', 'v2');
    // the working tree adds dave on osaka-1
    writeFileSync(join(dir, 'policy/users.csv'), 'address,shard\nalice@mail.test,tokyo-1\nbob@mail.test,tokyo-1\ncarol@mail.test,frankfurt-1\ndave@mail.test,osaka-1\n');

    const r = await mailmesh(['policy', 'plan', join(dir, 'policy'), '--from', 'HEAD~1', '--to', 'HEAD', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as { from: string; to: string; samples: number; users: unknown[]; hashed: { domain: string; moved: number; samples: number; pairs: { from: string; to: string; share: number }[] }[] };
    assert.equal(plan.samples, 100_000);
    assert.deepEqual(plan.users, [{ address: 'bob@mail.test', from: 'osaka-1', to: 'tokyo-1', fromRule: 'directory', toRule: 'directory' }]);
    assert.equal(plan.hashed.length, 1);
    const h = plan.hashed[0];
    assert.ok(Math.abs(h.moved - 1 / 3) < 0.01, `moved ${h.moved}`);
    assert.deepEqual(h.pairs.map((p) => `${p.from}->${p.to}`).sort(), ['osaka-1->frankfurt-1', 'tokyo-1->frankfurt-1']);
    for (const p of h.pairs) assert.ok(Math.abs(p.share - 1 / 6) < 0.01, `${p.from}->${p.to} ${p.share}`);

    const wt = await mailmesh(['policy', 'plan', join(dir, 'policy'), '--from', 'HEAD', '--samples', '1000']);
    assert.equal(wt.code, 0, wt.stderr);
    assert.match(wt.stdout, /^policy plan: HEAD -> working tree\ndirectory users whose shard changes: 1\n/);
    assert.match(wt.stdout, /dave@mail\.test {2}(tokyo-1|frankfurt-1) -> osaka-1 {2}\(default -> directory\)/);
    assert.match(wt.stdout, /estimated from 1000 synthetic addresses per domain/);
    assert.match(wt.stdout, /mail\.test: 0\.00% of the address space moves/);

    const bad = await mailmesh(['policy', 'plan', join(dir, 'policy'), '--from', 'no-such-rev']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown git revision "no-such-rev"/);
    const missing = await mailmesh(['policy', 'plan', join(dir, 'policy')]);
    assert.equal(missing.code, 2, '--from is required');
  } finally {
    cleanup();
  }
});
