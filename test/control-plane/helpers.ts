// Shared setup for control-plane tests: a CA, a copy of the demo policy, a state dir, and a
// control plane in-process on 127.0.0.1:0. Everything lives under one temp dir.
import 'reflect-metadata';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initCa } from '../../ca/init.ts';
import { issueLeaf } from '../../ca/issue.ts';
import { generateKeyPair, privateKeyToPem } from '../../ca/keys.ts';
import { loadCa } from '../../ca/load.ts';
import { createCsr } from '../../ca/csr.ts';
import { createLogger } from '../../common/log.ts';
import type { Clock } from '../../common/clock.ts';
import type { ControlPlaneConfig } from '../../control-plane/config.ts';
import { startControlPlane, type ControlPlane, type StartOptions } from '../../control-plane/start.ts';
import { ControlPlaneClient, type ClientCertificate } from '../../api/client.ts';

export const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
export const DEMO_POLICY = join(ROOT, 'policies/examples/demo');
export const TD = 'mail.test';

/** A silent logger for tests. */
export const quietLog = () => createLogger({ test: true }).child({}, { level: process.env.MAILMESH_TEST_LOG ?? 'silent' });

/** A fresh CA + policy copy + state dir. */
export async function makeWorld(): Promise<{ dir: string; config: ControlPlaneConfig; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-cp-'));
  await initCa({ dir: join(dir, 'ca'), trustDomain: TD });
  await cp(DEMO_POLICY, join(dir, 'policy'), { recursive: true });
  const config: ControlPlaneConfig = { listen: '127.0.0.1:0', caDir: join(dir, 'ca'), policyDir: join(dir, 'policy'), stateDir: join(dir, 'state') };
  return { dir, config, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Start a control plane for a test (silent, no fs.watch unless asked). */
export async function startTestControlPlane(config: ControlPlaneConfig, opts: StartOptions & { clock?: Clock } = {}): Promise<ControlPlane> {
  return startControlPlane(config, { log: quietLog(), watchPolicy: false, ...opts });
}

/** A client without a certificate. */
export function anonClient(cpl: ControlPlane, cert?: ClientCertificate): ControlPlaneClient {
  return new ControlPlaneClient({ address: cpl.address, bundlePem: cpl.bundlePem, trustDomain: cpl.trustDomain, cert });
}

/** A fresh key and its CSR. */
export function newKey(): { csrDer: Buffer; keyPem: string } {
  const kp = generateKeyPair('P-256');
  return { csrDer: createCsr(kp), keyPem: privateKeyToPem(kp.privateKey) };
}

/** An admin certificate issued directly from the CA directory (what `mailmesh ca issue` does). */
export async function adminCert(caDir: string, name = 'ops'): Promise<ClientCertificate> {
  const ca = await loadCa(caDir);
  const kp = generateKeyPair('P-256');
  const leaf = issueLeaf(ca.issuer, { publicKey: kp.publicKey, spiffeId: `spiffe://${ca.trustDomain}/admin/${name}`, ttlMs: 3_600_000 });
  return { certPem: leaf.chainPem, keyPem: privateKeyToPem(kp.privateKey) };
}
