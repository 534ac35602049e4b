// `npm test`: the one test command (README, .ci/run). Checks the runtime, type-checks, lints,
// then runs every test file with node's test runner. Each step's failure fails the run.
import { spawnSync } from 'node:child_process';

const major = Number(process.versions.node.split('.')[0]);
console.log(`node ${process.version} (OpenSSL ${process.versions.openssl})`);
if (major < 24) {
  console.error('mailmesh needs Node 24: run through npm (the node@24 devDependency) or `npm i -g node@24`');
  process.exit(1);
}

const only = process.argv.slice(2);
const steps: [string, string[]][] = only.length
  ? [['node', ['--test', '--test-concurrency=2', ...only]]]
  : [
      ['tsc', ['-p', 'tsconfig.json']],
      ['eslint', ['.']],
      ['node', ['--test', '--test-concurrency=2', '--test-timeout=600000', 'test/**/*.test.ts']],
    ];
for (const [cmd, args] of steps) {
  console.log(`\n== ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { MAILMESH_LOG_LEVEL: 'silent', ...process.env } });
  if (r.status !== 0) {
    console.error(`\n${cmd} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}
