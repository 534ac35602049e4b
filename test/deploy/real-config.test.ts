import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from '../helpers/real.ts';
import { checkSnippetPorts } from './lib/checks.ts';
import { parseDovecotConf } from './lib/conf-parsers.ts';
import { BASE, DEPLOY, renderSidecarConfig, sidecarTemplate, snippets } from './lib/fixtures.ts';
import { renderKustomization } from './lib/kustomize.ts';

/** Cross-check the snippets with the real programs' own parsers (Postfix postconf, Dovecot doveconf). */

const cfg = () => renderSidecarConfig(sidecarTemplate(renderKustomization(BASE)), 'shard-1', 'mail-0');

/** Debian's stock master.cf (the file the Postfix image starts from). */
function stockMasterCf(): string | undefined {
  return ['/usr/share/postfix/master.cf.dist', '/etc/postfix/master.cf'].find((p) => existsSync(p));
}

/** Run the real Postfix entrypoint's configure step on a copy of Debian's stock config. */
function configurePostfix(postconf: string, snippetDir: string): { dir: string; stderr: string; status: number | null } {
  const dir = mkdtempSync(join(tmpdir(), 'mailmesh-postfix-'));
  // An empty main.cf means Postfix's built-in defaults; master.cf is the package's stock one.
  writeFileSync(join(dir, 'main.cf'), '');
  copyFileSync(stockMasterCf() as string, join(dir, 'master.cf'));
  const r = spawnSync('sh', [join(DEPLOY, 'postfix', 'entrypoint.sh')], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${postconf.replace(/\/postconf$/, '')}:${process.env.PATH}`, MAILMESH_CONFIGURE_ONLY: '1', POSTFIX_CONFIG_DIR: dir, MAILMESH_SNIPPETS: snippetDir },
  });
  return { dir, stderr: r.stderr, status: r.status };
}

test('the Postfix entrypoint applies the snippets and real postconf reads them back', (t) => {
  const postconf = requireBinary(t, 'postconf', 'postfix');
  if (!postconf) return;
  assert.ok(stockMasterCf(), 'postfix is installed but its stock master.cf is missing');
  const { dir, stderr, status } = configurePostfix(postconf, join(DEPLOY, 'postfix'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(status, 0, stderr);
  const get = (...args: string[]) => spawnSync(postconf, ['-c', dir, ...args], { encoding: 'utf8' });
  const main = get('-n');
  assert.doesNotMatch(main.stderr, /warning/, main.stderr);
  const masterText = get('-M').stdout;
  assert.doesNotMatch(masterText, /^smtp\s+inet/m, 'the public smtpd must be disabled');
  // Feed Postfix's own view of the configuration to the wiring check.
  const problems = checkSnippetPorts(cfg(), { ...snippets(), mainCf: main.stdout, masterCf: get('-Mf').stdout.replace(/^(\S.*?)\s+(-o .*)$/gm, (_m, svc: string, opts: string) => `${svc}\n  ${opts}`) });
  assert.deepEqual(problems, []);
});

test('real postconf output catches a snippet pointing at the wrong socketmap port', (t) => {
  const postconf = requireBinary(t, 'postconf', 'postfix');
  if (!postconf) return;
  assert.ok(stockMasterCf(), 'postfix is installed but its stock master.cf is missing');
  const broken = mkdtempSync(join(tmpdir(), 'mailmesh-snippets-'));
  t.after(() => rmSync(broken, { recursive: true, force: true }));
  writeFileSync(join(broken, 'main.cf'), readFileSync(join(DEPLOY, 'postfix', 'main.cf'), 'utf8').replace(':10040:transport', ':10041:transport'));
  copyFileSync(join(DEPLOY, 'postfix', 'master.cf'), join(broken, 'master.cf'));
  const { dir, status, stderr } = configurePostfix(postconf, broken);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(status, 0, stderr);
  const mainCf = spawnSync(postconf, ['-c', dir, '-n'], { encoding: 'utf8' }).stdout;
  assert.match(checkSnippetPorts(cfg(), { ...snippets(), mainCf }).join(), /transport_maps/);
});

/** doveconf -n over the snippet (TLS paths moved to a temp dir), or its failure. */
function doveconf(bin: string, snippet: string): { status: number | null; stdout: string; stderr: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mailmesh-dovecot-'));
  mkdirSync(join(dir, 'tls'));
  for (const f of ['node.crt', 'node.key', 'bundle.pem']) writeFileSync(join(dir, 'tls', f), 'placeholder\n');
  writeFileSync(join(dir, '10-mailmesh.conf'), snippet.replaceAll('/etc/mailmesh/tls', join(dir, 'tls')));
  writeFileSync(join(dir, 'dovecot.conf'), `base_dir = ${dir}/run\nstate_dir = ${dir}/state\nlog_path = ${dir}/dovecot.log\n!include 10-mailmesh.conf\n`);
  const r = spawnSync(bin, ['-c', join(dir, 'dovecot.conf'), '-n'], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout.replaceAll(join(dir, 'tls'), '/etc/mailmesh/tls'), stderr: r.stderr, dir };
}

test('real doveconf accepts 10-mailmesh.conf and its normalized view passes the wiring check', (t) => {
  const bin = requireBinary(t, 'doveconf', 'dovecot-core');
  if (!bin) return;
  const r = doveconf(bin, snippets().dovecotText);
  t.after(() => rmSync(r.dir, { recursive: true, force: true }));
  assert.equal(r.status, 0, r.stderr);
  // doveconf hides ssl_key; the check needs only that it is set in the snippet.
  const normalized = parseDovecotConf(r.stdout.replace(/^ssl_key = .*$/m, 'ssl_key = </etc/mailmesh/tls/node.key'));
  assert.deepEqual(checkSnippetPorts(cfg(), { ...snippets(), dovecot: normalized }), []);
});

test('real doveconf rejects a misspelled setting in a broken copy', (t) => {
  const bin = requireBinary(t, 'doveconf', 'dovecot-core');
  if (!bin) return;
  const r = doveconf(bin, snippets().dovecotText.replace('port = 24', 'prot = 24'));
  t.after(() => rmSync(r.dir, { recursive: true, force: true }));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /Unknown setting/);
});
