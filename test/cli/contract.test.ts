// The CLI contract (DESIGN.md "Command line", docs/cli.md): every command has --help with
// examples (exit 0), an unknown flag is a usage error (exit 2, one stderr line), and bad input
// is exit 1 with one stderr line that says what to do — never a stack trace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../cli/mailmesh.ts', import.meta.url));
let dir: string;

interface Run { code: number | null; stdout: string; stderr: string }

function run(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.MAILMESH_DEBUG;
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: dir });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Run many invocations two at a time (the CI machine has two cores). */
async function runAll<T>(items: T[], f: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all([0, 1].map(async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await f(item);
  }));
}

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

function assertOneLine(r: Run, what: string): void {
  assert.equal(lines(r.stderr).length, 1, `${what}: expected one stderr line, got:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: stack trace on stderr`);
  assert.doesNotMatch(r.stderr, /\bError: /, `${what}: raw Error on stderr`);
}

/** Every command of DESIGN.md's list and README's, plus the noun groups and the root. */
const COMMANDS = [
  [], ['ca'], ['ca', 'init'], ['ca', 'issue'], ['ca', 'inspect'], ['ca', 'rotate'], ['ca', 'retire-root'], ['ca', 'revoke'],
  ['policy'], ['policy', 'validate'], ['policy', 'route'], ['policy', 'plan'],
  ['token'], ['token', 'create'], ['control-plane'], ['sidecar'], ['cert'], ['cert', 'rotate'], ['status'], ['demo'],
];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mailmesh-cli-contract-'));
  writeFileSync(join(dir, 'not-a-cert.txt'), 'hello\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('every command: --help exits 0 with an Examples section on stdout', async () => {
  await runAll(COMMANDS, async (cmd) => {
    const r = await run([...cmd, '--help']);
    const name = ['mailmesh', ...cmd].join(' ');
    assert.equal(r.code, 0, `${name} --help: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stdout, /^Examples:$/m, `${name} --help has no Examples section`);
    assert.match(r.stdout, /\$ mailmesh /, `${name} --help: examples start with "$ mailmesh"`);
    assert.equal(r.stderr, '');
  });
});

test('every command: an unknown flag exits 2 with one stderr line naming the flag and the help', async () => {
  await runAll(COMMANDS, async (cmd) => {
    const r = await run([...cmd, '--no-such-flag']);
    const name = ['mailmesh', ...cmd].join(' ');
    assert.equal(r.code, 2, `${name} --no-such-flag: exit ${r.code}\n${r.stderr}`);
    assertOneLine(r, `${name} --no-such-flag`);
    assert.equal(r.stderr, `${name}: unknown option '--no-such-flag' (see ${name} --help)\n`);
    assert.equal(r.stdout, '');
  });
});

test('a missing command or an unknown one is a usage error (exit 2)', async () => {
  const unknown = await run(['frobnicate']);
  assert.equal(unknown.code, 2);
  assertOneLine(unknown, 'mailmesh frobnicate');
  const typo = await run(['demmo']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /Did you mean demo\?/);
  assertOneLine(typo, 'mailmesh demmo');
  const bare = await run(['ca']);
  assert.equal(bare.code, 2, 'mailmesh ca without a verb');
  assert.match(bare.stderr, /Usage: mailmesh ca/);
});

test('every command: bad input exits 1 with one stderr line that says what to do, no stack trace', async () => {
  const missing = (f: string) => join(dir, 'missing', f);
  const cases: { args: string[]; says: RegExp }[] = [
    { args: ['ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'Not A Domain!'], says: /invalid trust domain .*use lowercase/ },
    { args: ['ca', 'issue', '--dir', missing('ca'), '--spiffe-id', 'spiffe://mail.test/shard/a/node/b', '--out', join(dir, 'leaf')], says: /mailmesh ca init/ },
    { args: ['ca', 'inspect', missing('x.crt')], says: /cannot read .*: pass a PEM certificate/ },
    { args: ['ca', 'inspect', join(dir, 'not-a-cert.txt')], says: /expected PEM certificates/ },
    { args: ['ca', 'rotate', '--dir', missing('ca'), '--issuer'], says: /mailmesh ca init/ },
    { args: ['ca', 'retire-root', '--dir', missing('ca'), '--fingerprint', 'abc'], says: /pass 64 hex digits/ },
    { args: ['ca', 'revoke', '--control-plane', '127.0.0.1:1', '--ca-bundle', join(dir, 'not-a-cert.txt'), '--cert', join(dir, 'not-a-cert.txt'), '--key', join(dir, 'not-a-cert.txt'), '--serial', 'AB'], says: /--cert .*: pass an admin certificate/ },
    { args: ['policy', 'validate', missing('policy')], says: /does not exist: pass the directory/ },
    { args: ['policy', 'route', join(dir, 'not-a-cert.txt'), 'alice@mail.test'], says: /is a file: pass the policy directory/ },
    { args: ['policy', 'plan', dir, '--from', 'HEAD'], says: /not inside a git working tree/ },
    { args: ['token', 'create', '--config', missing('cp.yaml'), '--shard', 'tokyo-1', '--node', 'a'], says: /cannot read config/ },
    { args: ['control-plane', '--config', missing('cp.yaml')], says: /cannot read config/ },
    { args: ['sidecar', '--config', missing('sidecar.yaml')], says: /sidecar\.yaml/ },
    { args: ['cert', 'rotate', '--control-plane', '127.0.0.1:1', '--ca-bundle', join(dir, 'not-a-cert.txt'), '--token', 'not-a-token', '--out', join(dir, 'out')], says: /pass the token printed by mailmesh token create/ },
    { args: ['status', '--control-plane', '127.0.0.1:1', '--ca-bundle', join(dir, 'not-a-cert.txt'), '--cert', join(dir, 'not-a-cert.txt'), '--key', join(dir, 'not-a-cert.txt')], says: /pass an admin certificate/ },
    { args: ['demo', '--dir', join(dir, 'not-a-cert.txt'), '--backends', 'embedded'], says: /is a file: pass a new or existing directory/ },
  ];
  // Every command of the list has a case.
  for (const cmd of COMMANDS.filter((c) => c.length && !['ca', 'policy', 'token', 'cert'].includes(c.join(' ')))) {
    assert.ok(cases.some((c) => c.args.slice(0, cmd.length).join(' ') === cmd.join(' ')), `no bad-input case for mailmesh ${cmd.join(' ')}`);
  }
  await runAll(cases, async ({ args, says }) => {
    const r = await run(args);
    const name = `mailmesh ${args.join(' ')}`;
    assert.equal(r.code, 1, `${name}: exit ${r.code}\n${r.stderr}`);
    assertOneLine(r, name);
    assert.match(r.stderr, /^mailmesh: /, `${name}: stderr starts with "mailmesh: "`);
    assert.match(r.stderr, says, name);
    assert.equal(r.stdout, '', `${name}: nothing on stdout`);
  });
});

test('--json keeps stdout machine-readable: ca inspect prints one JSON document with the documented keys', async () => {
  const ca = join(dir, 'ca-json');
  assert.equal((await run(['ca', 'init', '--dir', ca, '--trust-domain', 'mail.test'])).code, 0);
  const r = await run(['ca', 'inspect', join(ca, 'issuer.pem'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as Record<string, unknown>;
  for (const k of ['spiffeId', 'dnsNames', 'serial', 'notBefore', 'notAfter', 'issuer', 'subject', 'isCa', 'keyAlgorithm', 'fingerprint256']) {
    assert.ok(k in info, `ca inspect --json lacks ${k}`);
  }
  assert.equal(r.stderr, '');
});
