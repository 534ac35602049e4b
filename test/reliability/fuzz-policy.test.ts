// Broken policy directories, generated: a random valid policy (random rules, users, shard order)
// with exactly one defect injected at a known place — unknown key, wrong type, duplicate shard,
// unknown shard reference, user assigned twice, residency violation, overlapping rules, YAML
// syntax error, empty files, binary garbage. loadPolicy must refuse each with the defect's code
// at the `file:line:col` of the offending line, and never crash or half-load.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatProblem, loadPolicy, PolicyError, type Problem } from '../../policies/index.ts';
import { MESH_YAML, policyDir } from '../policies/fixtures.ts';
import { Rng, fuzzSeed, iterations, replayHint } from './fuzz-kit.ts';
import { summary } from './summary.ts';

const seed = fuzzSeed();
const sum = summary('policy-fuzz');
sum.set('seed', seed);

type Files = Record<string, string>;
interface Expect {
  code: Problem['code'] | Problem['code'][];
  file: string;
  line: number | [number, number];
  col?: number;
}

const KINDS = ['unknown-key', 'wrong-type', 'duplicate-shard', 'unknown-shard', 'user-twice', 'residency', 'overlapping-rules', 'yaml-syntax', 'empty-files', 'binary-garbage'] as const;
type Kind = (typeof KINDS)[number];

/** A valid policy: domains.yaml lines, users.csv rows (jp residency, jp shards only). */
function validPolicy(r: Rng): { domains: string[]; users: string[] } {
  const jp = r.chance(0.5) ? ['tokyo-1', 'osaka-1'] : ['osaka-1', 'tokyo-1'];
  const domains = ['domains:', '  - name: mail.test', '    directory: users.csv', '    residency: [jp]', '    rules:'];
  const rules = 1 + r.int(3);
  for (let i = 0; i < rules; i++) {
    // Distinct literal local parts never overlap (with each other or the injected globs).
    domains.push(`      - name: rule-${i}`, `        match: { localPart: "team${i}x" }`, `        target: { shard: ${r.pick(jp)} }`);
  }
  domains.push(`    default: { shards: [${jp.join(', ')}] }`);
  const users = ['address,shard,region'];
  for (let i = 0, n = r.int(6); i < n; i++) users.push(`u${i}@mail.test,${r.chance(0.5) ? r.pick(jp) : ''},jp`);
  return { domains, users };
}

function col(line: string, needle: string): number {
  const i = line.indexOf(needle);
  assert.ok(i >= 0, `${needle} not in ${line}`);
  return i + 1;
}

/** Inject one defect; returns the files and where the problem must be reported. */
function broken(r: Rng, kind: Kind): { files: Files; expect: Expect } {
  const { domains, users } = validPolicy(r);
  const files: Files = { 'mesh.yaml': MESH_YAML };
  let expect: Expect;
  switch (kind) {
    case 'unknown-key': {
      const key = r.pick(['residncy', 'rule', 'defaults', 'shard', 'x-extra', 'Directory']);
      const at = 2 + r.int(2);
      domains.splice(at, 0, `    ${key}: 1`);
      expect = { code: 'ERR_POLICY_UNKNOWN_KEY', file: 'domains.yaml', line: at + 1, col: 5 };
      break;
    }
    case 'wrong-type': {
      const [text, needle] = r.pick([['    directoryIsComplete: "yes"', '"yes"'], ['    residency: jp', 'jp'], ['    directory: 42', '42']] as const);
      const at = text.includes('directory:') ? 2 : text.includes('residency') ? 3 : 2;
      if (text.includes('directory:')) domains[at] = text;
      else if (text.includes('residency')) domains[at] = text;
      else domains.splice(at, 0, text);
      expect = { code: 'ERR_POLICY_WRONG_TYPE', file: 'domains.yaml', line: at + 1, col: col(text, needle) };
      break;
    }
    case 'duplicate-shard': {
      const lines = ['shards:'];
      for (let i = 0, n = r.int(3); i < n; i++) lines.push(`  - id: extra-${i}`, '    region: jp', `    mesh: 127.0.0.1:${9100 + i}`);
      const dup = r.pick(['tokyo-1', 'osaka-1', 'frankfurt-1']);
      lines.push(`  - id: ${dup}`, '    region: jp', '    mesh: 127.0.0.1:9200');
      files['more-shards.yaml'] = lines.join('\n') + '\n';
      expect = { code: 'ERR_POLICY_DUPLICATE_SHARD', file: 'more-shards.yaml', line: lines.length - 2, col: 9 };
      break;
    }
    case 'unknown-shard': {
      const name = `nagoya-${r.int(100)}`;
      if (r.chance(0.5)) {
        const i = domains.findIndex((l) => l.startsWith('    default:'));
        domains[i] = `    default: { shards: [tokyo-1, ${name}] }`;
        expect = { code: 'ERR_POLICY_UNKNOWN_SHARD', file: 'domains.yaml', line: i + 1, col: col(domains[i], name) };
      } else {
        const i = domains.findIndex((l) => l.includes('target: { shard:'));
        domains[i] = `        target: { shard: ${name} }`;
        expect = { code: 'ERR_POLICY_UNKNOWN_SHARD', file: 'domains.yaml', line: i + 1, col: col(domains[i], name) };
      }
      break;
    }
    case 'user-twice': {
      users.push('twice@mail.test,tokyo-1,jp');
      for (let i = 0, n = r.int(3); i < n; i++) users.push(`v${i}@mail.test,,jp`);
      users.push(r.pick(['twice@mail.test,osaka-1,jp', 'TWICE@Mail.Test,,jp', 'twice@mail.test,tokyo-1,jp']));
      expect = { code: 'ERR_POLICY_USER_TWICE', file: 'users.csv', line: users.length, col: 1 };
      break;
    }
    case 'residency': {
      const row = `eu${r.int(100)}@mail.test,frankfurt-1,eu`;
      const at = 1 + r.int(users.length);
      users.splice(at, 0, row);
      expect = { code: 'ERR_POLICY_RESIDENCY', file: 'users.csv', line: at + 1, col: col(row, 'frankfurt-1') };
      break;
    }
    case 'overlapping-rules': {
      const i = domains.indexOf('    rules:') + 1;
      const pattern = r.pick(['*-emea', 'sales-?*', 'sales-x*', '*-eu']);
      domains.splice(i, 0, '      - name: sales', '        match: { localPart: "sales-*" }', '        target: { shard: tokyo-1 }',
        '      - name: emea', `        match: { localPart: "${pattern}" }`, '        target: { shard: osaka-1 }');
      expect = { code: 'ERR_POLICY_OVERLAPPING_RULES', file: 'domains.yaml', line: i + 5, col: col(domains[i + 4], `"${pattern}"`) };
      break;
    }
    case 'yaml-syntax': {
      const at = 1 + r.int(domains.length - 1);
      const bad = r.pick(['    name: [unclosed', '  - name: "unterminated', '\t- tab: indented', '    key: value: again', '    - stray: item']);
      domains.splice(at, 0, bad);
      // The parser may notice the problem on the line itself, where the broken node ends, or at
      // the key just above whose value the inserted line turned into a bad node.
      expect = { code: ['ERR_POLICY_YAML', 'ERR_POLICY_DUPLICATE_KEY'], file: 'domains.yaml', line: [at, domains.length + 1] };
      break;
    }
    case 'empty-files': {
      for (const name of ['mesh.yaml', 'domains.yaml', ...(r.chance(0.5) ? ['extra.yml'] : [])]) files[name] = r.pick(['', '\n', '# only a comment\n', '---\n']);
      return { files, expect: { code: 'ERR_POLICY_NO_TRUST_DOMAIN', file: '', line: [0, 1] } };
    }
    case 'binary-garbage': {
      const bytes = r.bytes(1 + r.int(400));
      files['junk.yaml'] = bytes.toString('latin1');
      expect = {
        code: ['ERR_POLICY_YAML', 'ERR_POLICY_WRONG_TYPE', 'ERR_POLICY_UNKNOWN_KEY', 'ERR_POLICY_DUPLICATE_KEY'],
        file: 'junk.yaml',
        line: [1, files['junk.yaml'].split(/\r\n|\r|\n/).length + 1],
      };
      break;
    }
  }
  files['domains.yaml'] = domains.join('\n') + '\n';
  files['users.csv'] = users.join('\n') + '\n';
  return { files, expect: expect! };
}

function load(files: Files): unknown {
  const { dir, cleanup } = policyDir(files);
  try {
    return loadPolicy(dir);
  } catch (err) {
    return err;
  } finally {
    cleanup();
  }
}

test('every generated valid policy loads (the baseline the defects are injected into)', () => {
  const rng = new Rng(seed);
  for (let i = 0; i < iterations(20); i++) {
    const { domains, users } = validPolicy(rng);
    const res = load({ 'mesh.yaml': MESH_YAML, 'domains.yaml': domains.join('\n') + '\n', 'users.csv': users.join('\n') + '\n' });
    assert.ok(!(res instanceof Error), replayHint(seed, `valid policy #${i} refused: ${String(res)}`));
    sum.add('valid_loaded');
  }
});

test('each kind of defect is refused with its code at file:line:col', () => {
  const rng = new Rng(seed ^ 0x1234567);
  const per = iterations(12);
  for (const kind of KINDS) {
    for (let i = 0; i < per; i++) {
      const { files, expect } = broken(rng, kind);
      const what = replayHint(seed, `${kind} #${i}`);
      const err = load(files);
      assert.ok(err instanceof PolicyError, `${what}: ${err instanceof Error ? `${err.name} ${err.message}` : 'loaded'}`);
      const codes = Array.isArray(expect.code) ? expect.code : [expect.code];
      if (kind === 'empty-files') {
        assert.equal(err.code, 'ERR_POLICY_INVALID', what);
        assert.deepEqual(err.problems.map((p) => p.code), ['ERR_POLICY_NO_TRUST_DOMAIN'], `${what}: ${err.message}`);
      } else {
        assert.equal(err.code, 'ERR_POLICY_INVALID', what);
        // One defect, one problem, in the file that has it. A YAML parser error may cascade into
        // more errors below it in the same file: then the first one is the one located.
        const syntax = kind === 'yaml-syntax' || kind === 'binary-garbage';
        if (!syntax) assert.equal(err.problems.length, 1, `${what}: ${err.message}`);
        for (const q of err.problems) assert.equal(q.file, expect.file, `${what}: ${formatProblem(q)}`);
        const p = err.problems.find((q) => codes.includes(q.code)) ?? err.problems[0];
        assert.ok(codes.includes(p.code), `${what}: got ${p.code} ${formatProblem(p)}`);
        assert.equal(p.file, expect.file, `${what}: ${formatProblem(p)}`);
        const [lo, hi] = Array.isArray(expect.line) ? expect.line : [expect.line, expect.line];
        assert.ok(p.line >= lo && p.line <= hi, `${what}: line ${p.line} not in [${lo}, ${hi}]: ${formatProblem(p)}\n${files[expect.file] ?? ''}`);
        if (expect.col !== undefined) assert.equal(p.col, expect.col, `${what}: ${formatProblem(p)}\n${files[expect.file]}`);
        assert.ok(p.col >= 1, what);
        // The message lists it the way compilers do.
        assert.ok(err.message.includes(formatProblem(p)), what);
        assert.match(formatProblem(p), /^[^:]+:\d+:\d+: \S/);
      }
      sum.add('inputs');
      sum.add(`refused_${kind}`);
    }
  }
});

test('random bytes in every policy file never crash the loader', () => {
  const rng = new Rng(seed ^ 0x7777);
  for (let i = 0; i < iterations(60); i++) {
    const files: Files = {};
    for (const name of ['mesh.yaml', 'domains.yaml', 'users.csv']) {
      files[name] = rng.chance(0.3) ? MESH_YAML.slice(0, rng.int(MESH_YAML.length)) : rng.bytes(rng.int(300)).toString('latin1');
    }
    const res = load(files);
    // Either a typed refusal with located problems, or (very rarely) a policy that really is valid.
    if (res instanceof Error) {
      assert.ok(res instanceof PolicyError, replayHint(seed, `random files #${i}: ${res.name}: ${res.message}`));
      for (const p of res.problems) assert.ok(p.line >= 1 && p.col >= 1 && p.file.length > 0, replayHint(seed, `random files #${i}: ${formatProblem(p)}`));
      sum.add('random_refused');
    }
    sum.add('inputs');
  }
});
