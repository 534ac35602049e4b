import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { K8sObject } from './yaml-docs.ts';

/** The kinds deploy/k8s may contain, each with the kubernetes-models class that validates it. */
const MODELS: Record<string, { apiVersion: string; make: (o: K8sObject) => { validate(): void } }> = {
  Namespace: { apiVersion: 'v1', make: (o) => new Namespace(o as never) },
  ServiceAccount: { apiVersion: 'v1', make: (o) => new ServiceAccount(o as never) },
  ConfigMap: { apiVersion: 'v1', make: (o) => new ConfigMap(o as never) },
  Secret: { apiVersion: 'v1', make: (o) => new Secret(o as never) },
  Service: { apiVersion: 'v1', make: (o) => new Service(o as never) },
  PersistentVolumeClaim: { apiVersion: 'v1', make: (o) => new PersistentVolumeClaim(o as never) },
  Deployment: { apiVersion: 'apps/v1', make: (o) => new Deployment(o as never) },
  StatefulSet: { apiVersion: 'apps/v1', make: (o) => new StatefulSet(o as never) },
  PodDisruptionBudget: { apiVersion: 'policy/v1', make: (o) => new PodDisruptionBudget(o as never) },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', make: (o) => new NetworkPolicy(o as never) },
};

/**
 * Validate one object offline against the Kubernetes OpenAPI schema (kubernetes-models).
 * Returns problems as strings; an unknown kind or a wrong apiVersion is a problem too.
 */
export function validateObject(obj: K8sObject, where = ''): string[] {
  const id = `${where}${obj?.kind}/${obj?.metadata?.name}`;
  const model = MODELS[obj?.kind];
  if (!model) return [`${id}: unknown kind "${obj?.kind}" (add it to test/deploy/lib/schema.ts)`];
  if (obj.apiVersion !== model.apiVersion) return [`${id}: apiVersion "${obj.apiVersion}", expected "${model.apiVersion}"`];
  if (!obj.metadata?.name) return [`${id}: metadata.name missing`];
  try {
    model.make(obj).validate();
    return [];
  } catch (err) {
    return [`${id}: ${(err as Error).message}`];
  }
}
