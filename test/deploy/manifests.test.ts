import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { validateObject } from './lib/schema.ts';
import { clone, loadDocs, type K8sObject } from './lib/yaml-docs.ts';
import { DEPLOY, rendered } from './lib/fixtures.ts';

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? yamlFiles(p) : n.endsWith('.yaml') ? [p] : [];
  });
}

/** Overlay patches are partial objects by design; they are validated after rendering. */
const isPatch = (file: string) => file.includes('/overlays/') && !file.endsWith('kustomization.yaml');

test('every manifest file parses and every object validates against the Kubernetes schema', () => {
  const files = yamlFiles(join(DEPLOY, 'k8s')).filter((f) => !f.endsWith('kustomization.yaml') && !isPatch(f));
  assert.ok(files.length >= 15, `expected the manifests, found ${files.length}`);
  const problems = files.flatMap((f) => loadDocs(f).flatMap((o) => validateObject(o, `${relative(DEPLOY, f)}: `)));
  assert.deepEqual(problems, []);
});

test('every kustomization and patch file parses', () => {
  const files = yamlFiles(join(DEPLOY, 'k8s')).filter((f) => f.endsWith('kustomization.yaml') || isPatch(f));
  assert.ok(files.length >= 10);
  for (const f of files) assert.ok(loadDocs(f).length >= 1, f);
});

test('rendered base and two-regions overlay validate against the Kubernetes schema', () => {
  const { base, twoRegions } = rendered();
  assert.deepEqual([...base, ...twoRegions].flatMap((o) => validateObject(o)), []);
  const kinds = new Set(base.map((o) => o.kind));
  for (const k of ['Namespace', 'ServiceAccount', 'ConfigMap', 'Service', 'PersistentVolumeClaim', 'Deployment', 'StatefulSet', 'PodDisruptionBudget', 'NetworkPolicy']) {
    assert.ok(kinds.has(k), `base lacks a ${k}`);
  }
});

test('schema validation catches broken copies', () => {
  const { base } = rendered();
  const sts = base.find((o) => o.kind === 'StatefulSet') as K8sObject;

  const badPort = clone(sts) as { spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } } } & K8sObject;
  badPort.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
  assert.match(validateObject(badPort).join(), /containerPort must be integer/);

  const noContainers = clone(sts) as { spec: { template: { spec: Record<string, unknown> } } } & K8sObject;
  delete noContainers.spec.template.spec.containers;
  assert.match(validateObject(noContainers).join(), /containers/);

  assert.match(validateObject({ ...clone(sts), kind: 'Statefulset' }).join(), /unknown kind/);
  assert.match(validateObject({ ...clone(sts), apiVersion: 'apps/v1beta1' }).join(), /apiVersion/);

  const pdb = clone(base.find((o) => o.kind === 'PodDisruptionBudget') as K8sObject);
  (pdb.spec as Record<string, unknown>).maxUnavailable = { percent: 1 };
  assert.notDeepEqual(validateObject(pdb), []);
});

test('loadDocs refuses invalid YAML instead of returning nothing', async (t) => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'mailmesh-deploy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'bad.yaml'), 'kind: Service\nmetadata:\n  name: x\n   bad: indent\n');
  assert.throws(() => loadDocs(join(dir, 'bad.yaml')), /bad\.yaml/);
});
