import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPolicy, PolicyError, formatProblem, type Problem } from '../../policies/index.ts';
import { MESH_YAML, policyDir } from './fixtures.ts';
import { mkdtemp, cp, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Load a policy that must be invalid; returns `file:line:col: message` lines and codes. */
function problemsOf(files: Record<string, string>): { lines: string[]; problems: Problem[] } {
  const { dir, cleanup } = policyDir(files);
  try {
    loadPolicy(dir);
  } catch (err) {
    assert.ok(err instanceof PolicyError, String(err));
    assert.equal(err.code, 'ERR_POLICY_INVALID');
    return { lines: err.problems.map(formatProblem), problems: err.problems };
  } finally {
    cleanup();
  }
  assert.fail('policy loaded but should be invalid');
}

test('unknown key and wrong type are reported with file:line:col, all of them', () => {
  const { lines, problems } = problemsOf({
    'mesh.yaml': MESH_YAML,
    'domains.yaml': `domains:
  - name: mail.test
    residncy: [jp]
    directoryIsComplete: "yes"
    rules:
      - name: r1
        match: { localPart: "a*" }
        target: { shard: tokyo-1 }
        priority: high
`,
  });
  assert.deepEqual(problems.map((p) => p.code), ['ERR_POLICY_UNKNOWN_KEY', 'ERR_POLICY_WRONG_TYPE', 'ERR_POLICY_WRONG_TYPE']);
  assert.deepEqual(lines, [
    'domains.yaml:3:5: unknown key "residncy"',
    'domains.yaml:4:26: wrong type for "directoryIsComplete": expected boolean',
    'domains.yaml:9:19: wrong type for "priority": expected integer',
  ]);
});

test('duplicate shard ids across files and unknown shards in targets', () => {
  const { lines, problems } = problemsOf({
    'mesh.yaml': MESH_YAML,
    'more-shards.yaml': `shards:
  - id: kyoto-1
    region: jp
    mesh: 127.0.0.1:9004
  - id: osaka-1
    region: jp
    mesh: 127.0.0.1:9005
`,
    'domains.yaml': `domains:
  - name: mail.test
    default: { shards: [tokyo-1, nagoya-1] }
`,
  });
  assert.deepEqual(problems.map((p) => p.code), ['ERR_POLICY_UNKNOWN_SHARD', 'ERR_POLICY_DUPLICATE_SHARD']);
  assert.deepEqual(lines, [
    'domains.yaml:3:34: unknown shard "nagoya-1" in the default of domain "mail.test"',
    'more-shards.yaml:5:9: duplicate shard id "osaka-1" (first defined at mesh.yaml:6:9)',
  ]);
});

test('directory rows: user twice, unknown shard, residency, with file:line', () => {
  const { lines, problems } = problemsOf({
    'mesh.yaml': MESH_YAML,
    'domains.yaml': `domains:
  - name: mail.test
    residency: [jp]
    directory: [users.csv, more.jsonl]
    default: { regions: [jp] }
`,
    'users.csv': 'address,shard,region\nalice@mail.test,tokyo-1,jp\nbob@mail.test,kyoto-1,jp\ncarol@mail.test,frankfurt-1,eu\nALICE@Mail.Test,osaka-1,jp\n',
    'more.jsonl': '{"address":"bob@mail.test","shard":"osaka-1"}\n{"address":"alice@mail.test"}\n',
  });
  assert.deepEqual(problems.map((p) => p.code), ['ERR_POLICY_USER_TWICE', 'ERR_POLICY_UNKNOWN_SHARD', 'ERR_POLICY_RESIDENCY', 'ERR_POLICY_USER_TWICE']);
  assert.deepEqual(lines, [
    'more.jsonl:2:1: user "alice@mail.test" is assigned twice (first at users.csv:2)',
    'users.csv:3:15: unknown shard "kyoto-1" for bob@mail.test',
    'users.csv:4:17: carol@mail.test is placed on shard "frankfurt-1" in region "eu", outside the residency of mail.test [jp]',
    'users.csv:5:1: user "alice@mail.test" is assigned twice (first at users.csv:2)',
  ]);
});

test('residency violations in rule targets and hash sets are errors, never a fallback', () => {
  const { lines } = problemsOf({
    'mesh.yaml': MESH_YAML,
    'domains.yaml': `domains:
  - name: mail.test
    residency: [jp]
    rules:
      - name: eu
        match: { attributes: { region: eu } }
        target: { regions: [eu] }
      - name: legal
        match: { localPart: "legal-*" }
        target: { shard: frankfurt-1 }
    default: { shards: [tokyo-1, osaka-1, frankfurt-1] }
`,
  });
  assert.deepEqual(lines, [
    'domains.yaml:7:29: rule "eu" places users in region "eu", outside the domain\'s residency [jp]',
    'domains.yaml:10:26: rule "legal" places users on shard "frankfurt-1" in region "eu", outside the domain\'s residency [jp]',
    'domains.yaml:11:43: the default of domain "mail.test" places users on shard "frankfurt-1" in region "eu", outside the domain\'s residency [jp]',
  ]);
});

test('overlapping rules: per directory user and statically for local-part globs', () => {
  const { lines, problems } = problemsOf({
    'mesh.yaml': MESH_YAML,
    'domains.yaml': `domains:
  - name: mail.test
    directory: users.csv
    rules:
      - name: eu
        match: { attributes: { region: eu } }
        target: { regions: [eu] }
      - name: legal
        match: { attributes: { department: legal } }
        target: { shard: osaka-1 }
      - name: sales
        match: { localPart: "sales-*" }
        target: { shard: tokyo-1 }
      - name: emea
        match: { localPart: "*-emea" }
        target: { shard: frankfurt-1 }
      - name: ops
        match: { localPart: "ops-?" }
        target: { shard: tokyo-1 }
      - name: ops-eu
        match: { localPart: "ops-eu" }
        target: { shard: frankfurt-1 }
`,
    'users.csv': 'address,region,department\nanna@mail.test,eu,legal\nkenji@mail.test,jp,legal\nklaus@mail.test,eu,sales\n',
  });
  assert.ok(problems.every((p) => p.code === 'ERR_POLICY_OVERLAPPING_RULES'));
  assert.deepEqual(lines, [
    'domains.yaml:15:29: overlapping rules: local-part pattern "*-emea" of rule "emea" and "sales-*" of rule "sales" (domains.yaml:11:15) can match the same address with different targets; give one a higher priority',
    'users.csv:2:1: overlapping rules: "eu" (domains.yaml:5) and "legal" (domains.yaml:8) both match anna@mail.test with different targets; give one a higher priority',
  ]);
});

test('an explicit priority resolves an overlap', () => {
  const { dir, cleanup } = policyDir({
    'mesh.yaml': MESH_YAML,
    'domains.yaml': `domains:
  - name: mail.test
    directory: users.csv
    rules:
      - name: eu
        match: { attributes: { region: eu } }
        target: { regions: [eu] }
        priority: 10
      - name: legal
        match: { attributes: { department: legal } }
        target: { shard: osaka-1 }
      - name: sales
        match: { localPart: "sales-*" }
        target: { shard: tokyo-1 }
      - name: emea
        match: { localPart: "*-emea" }
        target: { shard: frankfurt-1 }
        priority: 1
`,
    'users.csv': 'address,region,department\nanna@mail.test,eu,legal\n',
  });
  try {
    assert.equal(loadPolicy(dir).domains[0].rules.length, 4);
  } finally {
    cleanup();
  }
});

test('YAML syntax errors, duplicate keys, missing trust domain, bad durations, key material', () => {
  const { lines, problems } = problemsOf({
    'a.yaml': 'shards:\n  - id: tokyo-1\n    region: jp\n    mesh: 127.0.0.1:1\n    region: eu\n',
    'b.yaml': 'certificates:\n  workloadTtl: 0s\ndomains:\n  - name: mail.test\n    auth:\n      dkim:\n        selector: s1\n        key: { file: "-----BEGIN PRIVATE KEY-----" }\n',
  });
  assert.deepEqual(problems.map((p) => p.code), ['ERR_POLICY_NO_TRUST_DOMAIN', 'ERR_POLICY_DUPLICATE_KEY', 'ERR_POLICY_BAD_DURATION', 'ERR_POLICY_KEY_MATERIAL']);
  assert.equal(lines[1].slice(0, 11), 'a.yaml:5:5:');
  assert.equal(lines[2], 'b.yaml:2:16: invalid duration "0s": must be greater than zero');
  assert.equal(lines[3], 'b.yaml:8:14: the DKIM key must be a file path or a secret name, never the key itself');
});

test('authorization: patterns outside the trust domain and unknown shards', () => {
  const { lines } = problemsOf({
    'mesh.yaml': MESH_YAML,
    'authz.yaml': 'authorization:\n  - allow: ["spiffe://other.test/shard/*/node/*", "spiffe://mail.test/shard/kyoto-1/node/*"]\n    shards: [tokyo-1, nara-1]\n',
  });
  assert.deepEqual(lines, [
    'authz.yaml:2:13: identity pattern "spiffe://other.test/shard/*/node/*" is outside trust domain "mail.test"',
    'authz.yaml:2:51: unknown shard "kyoto-1" in identity pattern "spiffe://mail.test/shard/kyoto-1/node/*"',
    'authz.yaml:3:23: unknown shard "nara-1" in authorization',
  ]);
});

test('a missing or empty policy directory is a typed error', () => {
  assert.throws(() => loadPolicy('/nonexistent/policy'), { code: 'ERR_POLICY_NO_FILES' });
  const { dir, cleanup } = policyDir({ 'README.txt': 'no yaml here' });
  try {
    assert.throws(() => loadPolicy(dir), { code: 'ERR_POLICY_NO_FILES' });
  } finally {
    cleanup();
  }
});

test('a workload TTL under 2 minutes is refused with file:line (backdating would make nodes renew without pause)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mm-ttl-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await cp('policies/examples/demo', dir, { recursive: true });
  const mesh = join(dir, 'mesh.yaml');
  await writeFile(mesh, (await readFile(mesh, 'utf8')).replace('workloadTtl: 1h', 'workloadTtl: 90s'));
  const line = (await readFile(mesh, 'utf8')).split('\n').findIndex((l) => l.includes('workloadTtl')) + 1;
  assert.throws(() => loadPolicy(dir), (e: Error & { problems?: { code: string; line: number; file: string }[] }) =>
    e.problems?.some((p) => p.code === 'ERR_POLICY_BAD_DURATION' && p.line === line && p.file.endsWith('mesh.yaml')) === true);
});
