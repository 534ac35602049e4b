import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SNIPPET_CONFIGMAPS, renderSnippetConfigMap } from '../../deploy/k8s/sync-snippets.ts';
import { parseMainCf, parseMasterCf } from './lib/conf-parsers.ts';
import { DEPLOY, snippets } from './lib/fixtures.ts';
import { postfixMasterCf } from '../../cli/demo/backends/postfix.ts';
import { REINJECTION_SMTPD_OVERRIDES } from '../../cli/demo/real-backends.ts';

test('the Postfix and Dovecot ConfigMaps carry exactly the snippet files (run deploy/k8s/sync-snippets.ts)', () => {
  for (const spec of SNIPPET_CONFIGMAPS) {
    const onDisk = readFileSync(join(DEPLOY, 'k8s', spec.out), 'utf8');
    assert.equal(onDisk, renderSnippetConfigMap(DEPLOY, spec), `${spec.out} is stale: run node deploy/k8s/sync-snippets.ts`);
  }
});

test('the sync check notices a ConfigMap that drifted from its snippet', () => {
  const spec = SNIPPET_CONFIGMAPS[0];
  const onDisk = readFileSync(join(DEPLOY, 'k8s', spec.out), 'utf8');
  const drifted = onDisk.replace('127.0.0.1:10040:transport', '127.0.0.1:10041:transport');
  assert.notEqual(drifted, onDisk);
  assert.notEqual(drifted, renderSnippetConfigMap(DEPLOY, spec));
});

test('Postfix keeps the public port for the sidecar and re-injects with the FILTER_README overrides', () => {
  const s = snippets();
  const main = parseMainCf(s.mainCf);
  assert.equal(main.get('inet_interfaces'), 'loopback-only', 'the sidecar owns port 25');
  assert.match(s.entrypoints.postfix, /postconf .*-M# smtp\/inet/, 'the default public smtpd is disabled');
  const reinject = parseMasterCf(s.masterCf).find((x) => x.service === '127.0.0.1:10025');
  assert.ok(reinject);
  assert.equal(reinject.overrides.get('content_filter'), '');
  assert.match(reinject.overrides.get('receive_override_options') ?? '', /no_header_body_checks/);
  assert.match(reinject.overrides.get('smtpd_recipient_restrictions') ?? '', /^permit_mynetworks,reject$/, 'loopback only: not an open relay');
});

test("the demo's re-injection smtpd skips only checks the deployed one skips too", () => {
  // The demo (and the mail bench) must run the mail path as deploy/ sets it up: same shortcuts,
  // no others.
  const deployed = parseMasterCf(snippets().masterCf).find((x) => x.service === '127.0.0.1:10025')!;
  const demo = parseMasterCf(postfixMasterCf(2525, REINJECTION_SMTPD_OVERRIDES)).find((x) => x.service === '127.0.0.1:2525');
  assert.ok(demo, 'the demo master.cf has its smtpd line with the overrides');
  assert.equal(demo.command, 'smtpd');
  const flags = (v: string | undefined) => new Set((v ?? '').split(','));
  const deployedFlags = flags(deployed.overrides.get('receive_override_options'));
  for (const f of flags(demo.overrides.get('receive_override_options'))) assert.ok(deployedFlags.has(f), `${f} is not in deploy/postfix/master.cf`);
  assert.ok(flags(demo.overrides.get('receive_override_options')).has('no_unknown_recipient_checks'));
});

test('conf parsers reject malformed input instead of guessing', () => {
  assert.throws(() => parseMainCf('not a setting\n'), /unparsable/);
  assert.throws(() => parseMasterCf('smtp inet n\n'), /8 fields/);
});
