import { join } from 'node:path';
import type { KeyAlgorithm } from './keys.ts';

/** The files of a CA directory (DESIGN.md `mailmesh ca init`). */
export const CA_FILES = {
  rootCert: 'root.pem',
  rootKey: 'root.key',
  issuerCert: 'issuer.pem',
  issuerKey: 'issuer.key',
  bundle: 'bundle.pem',
  metadata: 'ca.json',
} as const;

/** `ca.json`: what a CA directory is for. */
export interface CaMetadata {
  version: 1;
  trustDomain: string;
  algorithm: KeyAlgorithm;
  createdAt: string;
  /** CA rotations so far (`mailmesh ca rotate`, `ca retire-root`); absent before the first. The
   * control plane appends `+ca<generation>` to snapshot revisions so every node sees a new one. */
  generation?: number;
  /** ISO 8601 time of the last rotation. */
  rotatedAt?: string;
}

/** Absolute paths of a CA directory's files. */
export function caPaths(dir: string): Record<keyof typeof CA_FILES, string> {
  return {
    rootCert: join(dir, CA_FILES.rootCert),
    rootKey: join(dir, CA_FILES.rootKey),
    issuerCert: join(dir, CA_FILES.issuerCert),
    issuerKey: join(dir, CA_FILES.issuerKey),
    bundle: join(dir, CA_FILES.bundle),
    metadata: join(dir, CA_FILES.metadata),
  };
}
