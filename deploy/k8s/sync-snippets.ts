/**
 * Regenerate the Postfix and Dovecot ConfigMaps in base/mail from the snippets in deploy/postfix
 * and deploy/dovecot, so the files stay the single source (kustomize cannot read files outside a
 * kustomization's folder). test/deploy checks they are in sync.
 *
 * Run from the repository root: `node deploy/k8s/sync-snippets.ts`
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** The generated ConfigMaps: name, output file, and the snippet files they carry. */
export const SNIPPET_CONFIGMAPS = [
  { name: 'mailmesh-postfix', out: 'base/mail/configmap-postfix.yaml', files: ['postfix/main.cf', 'postfix/master.cf'] },
  { name: 'mailmesh-dovecot', out: 'base/mail/configmap-dovecot.yaml', files: ['dovecot/10-mailmesh.conf'] },
] as const;

/** Render one ConfigMap as YAML text (with a header saying it is generated). */
export function renderSnippetConfigMap(deployDir: string, spec: (typeof SNIPPET_CONFIGMAPS)[number]): string {
  const data: Record<string, string> = {};
  for (const f of spec.files) data[f.split('/').pop() as string] = readFileSync(join(deployDir, f), 'utf8');
  const obj = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: spec.name, labels: { 'app.kubernetes.io/name': 'mailmesh', 'app.kubernetes.io/component': 'mail' } },
    data,
  };
  return `# Generated from deploy/${spec.files.join(', deploy/')} by deploy/k8s/sync-snippets.ts: edit those, not this.\n${stringify(obj, { lineWidth: 0 })}`;
}

if (import.meta.main) {
  const deployDir = join(import.meta.dirname, '..');
  for (const spec of SNIPPET_CONFIGMAPS) writeFileSync(join(import.meta.dirname, spec.out), renderSnippetConfigMap(deployDir, spec));
}
