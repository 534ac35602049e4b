// The control plane and its CLI verbs as real processes: `mailmesh control-plane`, `token create`,
// `cert rotate` (one-shot and daemon), `status`, `ca revoke`, with their exit codes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { makeWorld, ROOT, TD } from './helpers.ts';

const CLI = join(ROOT, 'cli/mailmesh.ts');
const ENV = { ...process.env, MAILMESH_LOG_LEVEL: 'silent' };
let world: Awaited<ReturnType<typeof makeWorld>>;
let server: ChildProcess;
let address: string;
let bundle: string;

/** Run the CLI to completion. */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: world.dir, env: ENV });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Start a long-running CLI process and resolve with it and its first stdout line. */
function startLong(args: string[]): Promise<{ proc: ChildProcess; line: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], { cwd: world.dir, env: ENV });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d));
    const rl = createInterface({ input: proc.stdout });
    rl.once('line', (line) => resolve({ proc, line }));
    proc.once('exit', (code) => reject(new Error(`exited ${code} before printing: ${stderr}`)));
  });
}

function exited(p: ChildProcess): Promise<number | null> {
  return p.exitCode !== null ? Promise.resolve(p.exitCode) : new Promise((r) => p.once('exit', (code) => r(code)));
}

before(async () => {
  world = await makeWorld();
  // Relative paths: resolved against the config file's directory.
  await writeFile(join(world.dir, 'cp.yaml'), 'listen: 127.0.0.1:0\ncaDir: ca\npolicyDir: policy\nstateDir: state\n');
  const { proc, line } = await startLong(['control-plane', '--config', join(world.dir, 'cp.yaml')]);
  server = proc;
  const ev = JSON.parse(line) as { event: string; address: string };
  assert.equal(ev.event, 'listening');
  assert.match(ev.address, /^127\.0\.0\.1:\d+$/);
  address = ev.address;
  bundle = join(world.dir, 'ca/bundle.pem');
});

after(async () => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  await world.cleanup();
});

test('token create → cert rotate (one-shot) → renewal; replay is refused with exit 1', async () => {
  const t = await run(['token', 'create', '--config', 'cp.yaml', '--shard', 'tokyo-1', '--node', 'h1', '--json']);
  assert.equal(t.code, 0, t.stderr);
  const { token, spiffeId } = JSON.parse(t.stdout) as { token: string; spiffeId: string };
  assert.equal(spiffeId, `spiffe://${TD}/shard/tokyo-1/node/h1`);
  assert.equal((await stat(join(world.dir, 'state/token-key.jwk'))).mode & 0o777, 0o600);

  const out = join(world.dir, 'h1');
  const r = await run(['cert', 'rotate', '--control-plane', address, '--ca-bundle', bundle, '--token', token, '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const ev = JSON.parse(r.stdout) as { event: string; serial: string };
  assert.equal(ev.event, 'renewed');
  const crt = new X509Certificate(await readFile(join(out, 'node.crt')));
  assert.equal(crt.subjectAltName, `URI:${spiffeId}`);
  assert.equal(crt.serialNumber.toUpperCase(), ev.serial);
  assert.equal((await stat(join(out, 'node.key'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(out, 'node.crt'))).mode & 0o777, 0o644);
  assert.equal(await readFile(join(out, 'bundle.pem'), 'utf8'), await readFile(bundle, 'utf8'));

  const again = await run(['cert', 'rotate', '--control-plane', address, '--ca-bundle', bundle, '--token', token, '--out', join(world.dir, 'h1b')]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /ERR_TOKEN_REPLAYED/);
  assert.equal(again.stderr.trim().split('\n').length, 1);

  const renew = await run(['cert', 'rotate', '--control-plane', address, '--ca-bundle', bundle, '--cert', join(out, 'node.crt'), '--key', join(out, 'node.key'), '--out', out, '--json', '--reload-cmd', `touch ${join(out, 'reloaded')}`]);
  assert.equal(renew.code, 0, renew.stderr);
  const ev2 = JSON.parse(renew.stdout) as { serial: string; reload: string };
  assert.notEqual(ev2.serial, ev.serial);
  assert.equal(ev2.reload, 'ok');
  await stat(join(out, 'reloaded'));
});

test('cert rotate exit codes: 2 for bad flag combinations, 75 when unreachable, 1 for an unknown shard token', async () => {
  const both = await run(['cert', 'rotate', '--control-plane', address, '--ca-bundle', bundle, '--token', 'x', '--cert', 'a', '--key', 'b', '--out', 'o']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /either --token or --cert/);
  const neither = await run(['cert', 'rotate', '--control-plane', address, '--ca-bundle', bundle, '--out', 'o']);
  assert.equal(neither.code, 2);
  const half = await run(['cert', 'rotate', '--control-plane', address, '--ca-bundle', bundle, '--cert', 'a', '--out', 'o']);
  assert.equal(half.code, 2);

  const t = await run(['token', 'create', '--config', 'cp.yaml', '--shard', 'osaka-1', '--node', 'u']);
  assert.equal(t.code, 0, t.stderr);
  const unreachable = await run(['cert', 'rotate', '--control-plane', '127.0.0.1:1', '--ca-bundle', bundle, '--token', t.stdout.trim(), '--out', join(world.dir, 'u')]);
  assert.equal(unreachable.code, 75, unreachable.stderr);
  assert.match(unreachable.stderr, /ERR_UNAVAILABLE/);

  const unknown = await run(['token', 'create', '--config', 'cp.yaml', '--shard', 'nowhere', '--node', 'u']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /nowhere/);
});

test('cert rotate --daemon writes a certificate, then stops cleanly on SIGTERM', async () => {
  const t = await run(['token', 'create', '--config', 'cp.yaml', '--shard', 'osaka-1', '--node', 'd1']);
  const out = join(world.dir, 'd1');
  const { proc, line } = await startLong(['cert', 'rotate', '--control-plane', address, '--ca-bundle', bundle, '--token', `${t.stdout.trim()}`, '--out', out, '--daemon', '--json']);
  try {
    const ev = JSON.parse(line) as { event: string; nextCheckInMs: number };
    assert.equal(ev.event, 'renewed');
    assert.ok(ev.nextCheckInMs > 60_000);
    await stat(join(out, 'node.crt'));
    proc.kill('SIGTERM');
    assert.equal(await exited(proc), 0);
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
});

test('status and ca revoke with an admin certificate; SIGTERM stops the control plane with exit 0', async () => {
  const issue = await run(['ca', 'issue', '--dir', 'ca', '--spiffe-id', `spiffe://${TD}/admin/ops`, '--out', 'admin']);
  assert.equal(issue.code, 0, issue.stderr);
  const auth = ['--control-plane', address, '--ca-bundle', bundle, '--cert', 'admin.crt', '--key', 'admin.key'];
  const st = await run(['status', ...auth, '--json']);
  assert.equal(st.code, 0, st.stderr);
  const s1 = JSON.parse(st.stdout) as { revision: string; revokedSerials: number; lastPolicyError: string | null };
  assert.equal(s1.lastPolicyError, null);
  const human = await run(['status', ...auth]);
  assert.match(human.stdout, /revision\s+\S+/);
  const noCert = await run(['status', '--control-plane', address, '--ca-bundle', bundle]);
  assert.equal(noCert.code, 2);

  const crt = new X509Certificate(await readFile(join(world.dir, 'h1/node.crt')));
  const rv = await run(['ca', 'revoke', ...auth, '--serial', crt.serialNumber, '--json']);
  assert.equal(rv.code, 0, rv.stderr);
  const { revision } = JSON.parse(rv.stdout) as { revision: string };
  assert.equal(revision, `${s1.revision}+r1`);
  const s2 = JSON.parse((await run(['status', ...auth, '--json'])).stdout) as { revision: string; revokedSerials: number };
  assert.equal(s2.revision, revision);
  assert.equal(s2.revokedSerials, 1);
  // The revoked certificate can no longer renew: refused, exit 1.
  const h1 = join(world.dir, 'h1');
  const denied = await run(['cert', 'rotate', '--control-plane', address, '--ca-bundle', bundle, '--cert', join(h1, 'node.crt'), '--key', join(h1, 'node.key'), '--out', h1]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /ERR_REVOKED_SERIAL/);
  // A node certificate is not an admin.
  const notAdmin = await run(['ca', 'revoke', '--control-plane', address, '--ca-bundle', bundle, '--cert', join(world.dir, 'd1/node.crt'), '--key', join(world.dir, 'd1/node.key'), '--serial', '01']);
  assert.equal(notAdmin.code, 1);
  assert.match(notAdmin.stderr, /ERR_PERMISSION_DENIED/);

  server.kill('SIGTERM');
  assert.equal(await exited(server), 0);
});
