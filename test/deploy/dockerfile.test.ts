import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkDockerfile, checkDockerignore, parseDockerfile } from './lib/dockerfile.ts';
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
  assert.match(run('/healthz', '/readyz'), /HEALTHCHECK/);
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
