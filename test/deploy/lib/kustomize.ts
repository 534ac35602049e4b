import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { clone, loadDocs, type K8sObject } from './yaml-docs.ts';

/**
 * A tiny Kustomize for exactly the features deploy/k8s uses: `resources` (files and folders),
 * `namespace`, `namePrefix`/`nameSuffix` (with the name references kustomize rewrites: ConfigMap,
 * Secret, PVC, ServiceAccount in pod specs, Service in StatefulSet.serviceName) and `patches` with
 * a `path` to a strategic-merge patch. Any other key is an error, so a manifest change that
 * needs more of kustomize fails here instead of being silently mis-rendered.
 */
const KNOWN_KEYS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'namePrefix', 'nameSuffix', 'patches']);

/** Lists merged element-by-element on `name` (the strategic-merge keys we rely on). */
const MERGE_BY_NAME = new Set(['containers', 'initContainers', 'volumes', 'volumeMounts', 'env', 'ports', 'volumeClaimTemplates']);

interface Kustomization {
  resources?: string[];
  namespace?: string;
  namePrefix?: string;
  nameSuffix?: string;
  patches?: { path: string }[];
}

/** A rendered object and the name it had in its source file (patches target that name). */
interface Item {
  obj: K8sObject;
  originalName: string;
}

/** Render the kustomization in `dir` into the objects `kubectl kustomize dir` would print. */
export function renderKustomization(dir: string): K8sObject[] {
  return render(resolve(dir)).map((i) => i.obj);
}

function render(dir: string): Item[] {
  const file = join(dir, 'kustomization.yaml');
  if (!existsSync(file)) throw new Error(`${dir}: no kustomization.yaml`);
  const [k] = loadDocs(file) as unknown as Kustomization[];
  for (const key of Object.keys(k)) if (!KNOWN_KEYS.has(key)) throw new Error(`${file}: unsupported kustomization key "${key}"`);
  let items: Item[] = [];
  for (const r of k.resources ?? []) {
    const p = resolve(dir, r);
    if (!existsSync(p)) throw new Error(`${file}: resource "${r}" does not exist`);
    if (statSync(p).isDirectory()) items.push(...render(p));
    else items.push(...loadDocs(p).map((obj) => ({ obj, originalName: obj.metadata.name })));
  }
  for (const patch of k.patches ?? []) {
    const p = resolve(dir, patch.path);
    if (!existsSync(p)) throw new Error(`${file}: patch "${patch.path}" does not exist`);
    for (const doc of loadDocs(p)) {
      const target = items.find((i) => i.obj.kind === doc.kind && (i.originalName === doc.metadata.name || i.obj.metadata.name === doc.metadata.name));
      if (!target) throw new Error(`${p}: patch target ${doc.kind}/${doc.metadata.name} not found in ${dirname(file)}`);
      target.obj = strategicMerge(target.obj, doc) as K8sObject;
    }
  }
  if (k.namePrefix || k.nameSuffix) items = rename(items, k.namePrefix ?? '', k.nameSuffix ?? '');
  if (k.namespace) for (const i of items) if (i.obj.kind !== 'Namespace') i.obj.metadata.namespace = k.namespace;
  return items;
}

/** Strategic merge patch, reduced to: maps merge, `null` deletes, named lists merge by `name`,
 * other lists are replaced. */
export function strategicMerge(base: unknown, patch: unknown, key = ''): unknown {
  if (patch === null) return undefined;
  if (Array.isArray(patch)) {
    if (!MERGE_BY_NAME.has(key) || !Array.isArray(base)) return clone(patch);
    const out = clone(base) as Record<string, unknown>[];
    for (const p of patch as Record<string, unknown>[]) {
      const i = out.findIndex((b) => b.name === p.name);
      if (i >= 0) out[i] = strategicMerge(out[i], p) as Record<string, unknown>;
      else out.push(clone(p));
    }
    return out;
  }
  if (typeof patch !== 'object' || typeof base !== 'object' || base === null || Array.isArray(base)) return clone(patch);
  const out = clone(base) as Record<string, unknown>;
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    const merged = strategicMerge(out[k], v, k);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  return out;
}

/** Kinds whose renamed names are rewritten where pod specs and StatefulSets refer to them. */
function rename(items: Item[], prefix: string, suffix: string): Item[] {
  const renamed = new Map<string, string>();
  for (const i of items) {
    if (i.obj.kind === 'Namespace') continue;
    const next = `${prefix}${i.obj.metadata.name}${suffix}`;
    renamed.set(`${i.obj.kind}/${i.obj.metadata.name}`, next);
    i.obj.metadata.name = next;
  }
  const ref = (kind: string, name: string | undefined) => (name === undefined ? undefined : (renamed.get(`${kind}/${name}`) ?? name));
  for (const i of items) {
    const spec = i.obj.spec as Record<string, unknown> | undefined;
    if (!spec) continue;
    if (i.obj.kind === 'StatefulSet' && typeof spec.serviceName === 'string') spec.serviceName = ref('Service', spec.serviceName);
    const pod = (spec.template as { spec?: PodSpec } | undefined)?.spec;
    if (pod) rewritePodRefs(pod, ref);
  }
  return items;
}

interface PodSpec {
  serviceAccountName?: string;
  volumes?: { configMap?: { name?: string }; secret?: { secretName?: string }; persistentVolumeClaim?: { claimName?: string } }[];
  containers?: ContainerRefs[];
  initContainers?: ContainerRefs[];
}
interface ContainerRefs {
  env?: { valueFrom?: { configMapKeyRef?: { name?: string }; secretKeyRef?: { name?: string } } }[];
  envFrom?: { configMapRef?: { name?: string }; secretRef?: { name?: string } }[];
}

function rewritePodRefs(pod: PodSpec, ref: (kind: string, name: string | undefined) => string | undefined): void {
  if (pod.serviceAccountName) pod.serviceAccountName = ref('ServiceAccount', pod.serviceAccountName);
  for (const v of pod.volumes ?? []) {
    if (v.configMap) v.configMap.name = ref('ConfigMap', v.configMap.name);
    if (v.secret) v.secret.secretName = ref('Secret', v.secret.secretName);
    if (v.persistentVolumeClaim) v.persistentVolumeClaim.claimName = ref('PersistentVolumeClaim', v.persistentVolumeClaim.claimName);
  }
  for (const c of [...(pod.containers ?? []), ...(pod.initContainers ?? [])]) {
    for (const e of c.env ?? []) {
      if (e.valueFrom?.configMapKeyRef) e.valueFrom.configMapKeyRef.name = ref('ConfigMap', e.valueFrom.configMapKeyRef.name);
      if (e.valueFrom?.secretKeyRef) e.valueFrom.secretKeyRef.name = ref('Secret', e.valueFrom.secretKeyRef.name);
    }
    for (const e of c.envFrom ?? []) {
      if (e.configMapRef) e.configMapRef.name = ref('ConfigMap', e.configMapRef.name);
      if (e.secretRef) e.secretRef.name = ref('Secret', e.secretRef.name);
    }
  }
}
