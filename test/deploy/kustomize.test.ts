import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { renderKustomization, strategicMerge } from './lib/kustomize.ts';
import { BASE, DEPLOY, TWO_REGIONS, rendered } from './lib/fixtures.ts';
import type { K8sObject } from './lib/yaml-docs.ts';

const key = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const names = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind).map((o) => o.metadata.name).sort();

test('base renders one control plane and one shard in namespace mailmesh', () => {
  const { base } = rendered();
  assert.deepEqual(names(base, 'Deployment'), ['mailmesh-control-plane']);
  assert.deepEqual(names(base, 'StatefulSet'), ['mail']);
  assert.ok(base.filter((o) => o.kind !== 'Namespace').every((o) => o.metadata.namespace === 'mailmesh'));
});

test('two-regions renders a StatefulSet per shard with its own ConfigMaps, Service and PDB', () => {
  const { twoRegions } = rendered();
  assert.deepEqual(names(twoRegions, 'StatefulSet'), ['mail-frankfurt-1', 'mail-tokyo-1']);
  assert.deepEqual(names(twoRegions, 'PodDisruptionBudget'), ['mail-frankfurt-1', 'mail-tokyo-1']);
  assert.deepEqual(names(twoRegions, 'Deployment'), ['mailmesh-control-plane'], 'one control plane for all shards');
  for (const [shard, region, nodeRegion] of [['tokyo-1', 'jp', 'asia-northeast1'], ['frankfurt-1', 'eu', 'europe-west3']]) {
    const sts = twoRegions.find((o) => o.kind === 'StatefulSet' && o.metadata.name === `mail-${shard}`) as K8sObject;
    const spec = sts.spec as { serviceName: string; template: { metadata: { labels: Record<string, string> }; spec: { affinity: unknown; volumes: { name: string; configMap?: { name: string } }[] } } };
    assert.equal(spec.template.metadata.labels['mailmesh.io/shard'], shard);
    assert.equal(spec.template.metadata.labels['mailmesh.io/region'], region);
    assert.equal(spec.serviceName, `mail-${shard}`, 'serviceName follows the suffix');
    assert.deepEqual(spec.template.spec.affinity, {
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/region', operator: 'In', values: [nodeRegion] }] }] } },
    });
    const cm = spec.template.spec.volumes.find((v) => v.name === 'sidecar-template')?.configMap?.name;
    assert.equal(cm, `mailmesh-sidecar-${shard}`, 'ConfigMap references follow the suffix');
    // The patch kept the base's containers (strategic merge, not replacement).
    assert.equal((spec.template.spec as unknown as { containers: unknown[] }).containers.length, 3);
  }
});

test('the tiny renderer agrees with kubectl kustomize', (t) => {
  const probe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    t.skip('kubectl not installed: the renderer is checked against the expectations above only');
    return;
  }
  for (const dir of [BASE, TWO_REGIONS]) {
    const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const theirs = new Map(parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject).map((o) => [key(o), o]));
    const mine = new Map(renderKustomization(dir).map((o) => [key(o), o]));
    assert.deepEqual([...mine.keys()].sort(), [...theirs.keys()].sort(), dir);
    for (const [k, o] of mine) assert.ok(isDeepStrictEqual(o, theirs.get(k)), `${dir}: ${k} differs from kubectl kustomize`);
  }
});

test('rendering reports a missing resource, a missing patch file, a patch with no target and an unsupported key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailmesh-kustomize-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await cp(join(DEPLOY, 'k8s'), join(dir, 'k8s'), { recursive: true });
  const shard = join(dir, 'k8s', 'overlays', 'two-regions', 'tokyo-1');
  const overlay = join(dir, 'k8s', 'overlays', 'two-regions');
  const original = await readFile(join(shard, 'kustomization.yaml'), 'utf8');
  assert.equal(renderKustomization(overlay).length, rendered().twoRegions.length, 'the copy renders like the original');

  await writeFile(join(shard, 'kustomization.yaml'), original.replace('../../../base/mail', '../../../base/mial'));
  assert.throws(() => renderKustomization(overlay), /resource "..\/..\/..\/base\/mial" does not exist/);

  await writeFile(join(shard, 'kustomization.yaml'), original.replace('path: pdb.yaml', 'path: pdbs.yaml'));
  assert.throws(() => renderKustomization(overlay), /patch "pdbs.yaml" does not exist/);

  await writeFile(join(shard, 'kustomization.yaml'), original);
  const patch = await readFile(join(shard, 'service.yaml'), 'utf8');
  await writeFile(join(shard, 'service.yaml'), patch.replace('name: mail', 'name: mail-headless'));
  assert.throws(() => renderKustomization(overlay), /patch target Service\/mail-headless not found/);

  await writeFile(join(shard, 'service.yaml'), patch);
  await writeFile(join(shard, 'kustomization.yaml'), `${original}commonLabels:\n  a: b\n`);
  assert.throws(() => renderKustomization(overlay), /unsupported kustomization key "commonLabels"/);
});

test('strategic merge: maps merge, named lists merge by name, other lists and scalars replace, null deletes', () => {
  const base = { a: 1, m: { x: 1, y: 2 }, containers: [{ name: 'c', image: 'i', args: ['1'] }], values: [1, 2] };
  const out = strategicMerge(base, { m: { y: 3, z: null }, containers: [{ name: 'c', args: ['2'] }, { name: 'd' }], values: [3], a: null });
  assert.deepEqual(out, { m: { x: 1, y: 3 }, containers: [{ name: 'c', image: 'i', args: ['2'] }, { name: 'd' }], values: [3] });
  assert.deepEqual(base.containers[0].args, ['1'], 'base is not mutated');
});
