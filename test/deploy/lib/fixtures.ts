import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseDovecotConf } from './conf-parsers.ts';
import type { SidecarConfigDoc } from './checks.ts';
import { renderKustomization } from './kustomize.ts';
import type { K8sObject } from './yaml-docs.ts';

/** Repository paths used by the deploy tests. */
export const ROOT = join(import.meta.dirname, '..', '..', '..');
export const DEPLOY = join(ROOT, 'deploy');
export const BASE = join(DEPLOY, 'k8s', 'base');
export const TWO_REGIONS = join(DEPLOY, 'k8s', 'overlays', 'two-regions');

/** The sidecar config example in docs/internals.md ("### Sidecar config"), parsed. */
export function internalsSidecarConfig(): SidecarConfigDoc {
  const md = readFileSync(join(ROOT, 'docs', 'internals.md'), 'utf8');
  const m = /### Sidecar config[^\n]*\n```yaml\n([\s\S]*?)```/.exec(md);
  if (!m) throw new Error('docs/internals.md: no yaml block after "### Sidecar config"');
  return parse(m[1]) as SidecarConfigDoc;
}

/** The sidecar.yaml template text from a (rendered) sidecar ConfigMap. */
export function sidecarTemplate(objects: K8sObject[], name = 'mailmesh-sidecar'): string {
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name);
  if (!cm) throw new Error(`ConfigMap ${name} not found`);
  return (cm.data as Record<string, string>)['sidecar.yaml'];
}

/** The template with the placeholders the render-config init container fills. */
export function renderSidecarConfig(template: string, shard: string, pod: string): SidecarConfigDoc {
  return parse(template.replaceAll('@SHARD@', shard).replaceAll('@POD_NAME@', pod)) as SidecarConfigDoc;
}

/** The Postfix and Dovecot snippets as shipped. */
export function snippets() {
  const read = (p: string) => readFileSync(join(DEPLOY, p), 'utf8');
  return {
    mainCf: read('postfix/main.cf'),
    masterCf: read('postfix/master.cf'),
    dovecotText: read('dovecot/10-mailmesh.conf'),
    dovecot: parseDovecotConf(read('dovecot/10-mailmesh.conf')),
    entrypoints: { postfix: read('postfix/entrypoint.sh'), dovecot: read('dovecot/entrypoint.sh') },
  };
}

/** Rendered base and overlay (fresh copies each call, so tests may mutate them). */
export function rendered(): { base: K8sObject[]; twoRegions: K8sObject[] } {
  return { base: renderKustomization(BASE), twoRegions: renderKustomization(TWO_REGIONS) };
}

/** The mesh label, ports and public ports the network checks use, read from the sidecar config. */
export const NET = { meshLabel: { 'mailmesh.io/mesh-sidecar': 'true' }, meshPort: 8443, controlPlanePort: 7443, publicPorts: [25, 143, 993, 110, 995] };
