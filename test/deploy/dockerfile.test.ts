import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { checkDockerfile, checkDockerignore, healthCheckCommand, parseDockerfile } from './lib/dockerfile.ts';
import { DEPLOY, ROOT } from './lib/fixtures.ts';

const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8');

test('deploy/Dockerfile: slim Node 24 base, npm ci --omit=dev, non-root, HEALTHCHECK, entrypoint, runtime folders only', () => {
  assert.deepEqual(checkDockerfile(dockerfile), []);
});

test('the image copies the runtime folders the CLI needs', () => {
  const copied = parseDockerfile(dockerfile)
    .filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))
    .flatMap((i) => i.args.split(' ').slice(0, -1));
  for (const dir of ['ca', 'policies', 'api', 'control-plane', 'sidecar', 'cli', 'common']) assert.ok(copied.includes(dir), `${dir}/ is not copied`);
});

test('Dockerfile check catches each broken copy', () => {
  const run = (from: string | RegExp, to: string) => {
    const broken = dockerfile.replace(from, to);
    assert.notEqual(broken, dockerfile, `mutation ${from} did not apply`);
    return checkDockerfile(broken).join('\n');
  };
  assert.match(run('FROM node:24-bookworm-slim\n', 'FROM node:24\n'), /base must be node:24-bookworm-slim/);
  assert.match(run('FROM node:24-bookworm-slim AS deps', 'FROM node:20-bookworm-slim AS deps'), /base must be/);
  assert.match(run('npm ci --omit=dev', 'npm ci'), /npm ci --omit=dev/);
  assert.match(run('npm ci --omit=dev', 'npm install --omit=dev'), /npm ci --omit=dev/);
  assert.match(run('USER 10001:10001', 'USER root'), /USER 10001/);
  assert.match(run(/^USER 10001:10001\n/m, ''), /USER 10001/);
  assert.match(run(/^HEALTHCHECK[\s\S]*?\n(?=ENTRYPOINT)/m, ''), /HEALTHCHECK/);
  assert.match(run("/healthz')", "/readyz')"), /HEALTHCHECK/);
  assert.match(run('process.env.MAILMESH_HEALTH_PORT||9464', 'process.env.MAILMESH_METRICS_PORT||9464'), /MAILMESH_HEALTH_PORT/);
  assert.match(run('process.env.MAILMESH_HEALTH_PORT||9464', 'process.env.MAILMESH_HEALTH_PORT||9100'), /MAILMESH_HEALTH_PORT \(default 9464\)/);
  assert.match(run('MAILMESH_HEALTH_PORT=9464\n', 'MAILMESH_HEALTH_PORT=9100\n'), /ENV MAILMESH_HEALTH_PORT=9464 \(got 9100\)/);
  assert.match(run('ENTRYPOINT ["node", "cli/mailmesh.ts"]', 'ENTRYPOINT ["node", "cli/main.ts"]'), /ENTRYPOINT/);
  assert.match(run('COPY common ./common', 'COPY common ./common\nCOPY test ./test'), /copies test\//);
  assert.match(run('COPY common ./common', 'COPY common bench ./'), /copies bench\//);
  assert.match(run('COPY common ./common', 'COPY . .'), /copies the whole context/);
  assert.match(run(/^FROM node:24-bookworm-slim AS deps[\s\S]*?^FROM/m, 'FROM'), /multi-stage/);
});

test('.dockerignore keeps tests, benchmarks, git, node_modules and keys out of the context', () => {
  assert.deepEqual(checkDockerignore(dockerignore), []);
  assert.match(checkDockerignore(dockerignore.replace(/^test$/m, '')).join(), /must exclude test/);
  assert.match(checkDockerignore(dockerignore.replace(/^\*\*\/\*\.key$/m, '')).join(), /must exclude \*\*\/\*\.key/);
});

test('parseDockerfile joins continuation lines and drops comments', () => {
  const ins = parseDockerfile('# c\nFROM a\nRUN x \\\n  && y\n# inside\nUSER 1\n');
  assert.deepEqual(ins, [
    { keyword: 'FROM', args: 'a' },
    { keyword: 'RUN', args: 'x && y' },
    { keyword: 'USER', args: '1' },
  ]);
});

/** Run the image's HEALTHCHECK command here (Node 24 stands in for the image's node) and return its exit code. */
async function runHealthCheck(port: number): Promise<number | null> {
  const [bin, ...args] = healthCheckCommand(dockerfile);
  assert.equal(bin, 'node');
  // Asynchronously: the health server under test may live in this very process.
  const child = spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, MAILMESH_HEALTH_PORT: String(port) }, timeout: 10_000 });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

test('the HEALTHCHECK command passes against a live /healthz and fails against a closed port', async (t) => {
  const { startHealthServer } = await import('../../common/health-server.ts');
  const { Registry } = await import('prom-client');
  // What the sidecar runs on listen.metrics (and the control plane on metrics:).
  const h = await startHealthServer({ host: '127.0.0.1', port: 0, registry: new Registry(), ready: () => ({ ok: false, reasons: ['not yet'] }) });
  const port = h.port;
  let open = true;
  t.after(() => (open ? h.close() : undefined));
  assert.equal(await runHealthCheck(port), 0, 'liveness must not depend on readiness');
  await h.close();
  open = false;
  assert.equal(await runHealthCheck(port), 1);
});

test('the HEALTHCHECK command passes against a real control plane with metrics: in its config', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailmesh-healthcheck-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cli = join(ROOT, 'cli', 'mailmesh.ts');
  const init = spawnSync(process.execPath, [cli, 'ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'mail.test'], { encoding: 'utf8' });
  assert.equal(init.status, 0, init.stderr);
  cpSync(join(ROOT, 'policies', 'examples', 'demo'), join(dir, 'policy'), { recursive: true });
  writeFileSync(join(dir, 'cp.yaml'), 'listen: 127.0.0.1:0\ncaDir: ca\npolicyDir: policy\nstateDir: state\nmetrics: 127.0.0.1:0\n');
  const child = spawn(process.execPath, [cli, 'control-plane', '--config', join(dir, 'cp.yaml')], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, MAILMESH_LOG_LEVEL: 'warn' } });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`control plane exited with ${code} before listening`)));
  });
  const { metrics } = JSON.parse(line) as { metrics: string };
  const port = Number(metrics.slice(metrics.lastIndexOf(':') + 1));
  assert.equal(await runHealthCheck(port), 0);
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.equal(await runHealthCheck(port), 1);
});
