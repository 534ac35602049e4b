import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

/** A Kubernetes object as parsed from YAML: plain JSON data. */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } } & Record<string, unknown>;

/**
 * Parse every document of a YAML file (`---` separated). Throws with the file name on any YAML
 * error or warning, so a broken manifest cannot pass as an empty one.
 */
export function loadDocs(file: string): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out: K8sObject[] = [];
  for (const d of docs) {
    const problems = [...d.errors, ...d.warnings];
    if (problems.length > 0) throw new Error(`${file}: ${problems.map((p) => p.message).join('; ')}`);
    const v = d.toJS() as K8sObject | null;
    if (v !== null) out.push(v);
  }
  return out;
}

/** Deep copy (manifests are plain JSON data). */
export function clone<T>(v: T): T {
  return structuredClone(v);
}
