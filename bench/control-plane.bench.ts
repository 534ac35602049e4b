// Control plane figures:
// - controlPlane.sign: certificates/s end to end over gRPC + mTLS (renewal path: chain check,
//   rate limiter, CSR check, issue, SQLite audit row) with 64 concurrent clients, each on its own
//   TLS connection, vs the in-process CSR → issueLeaf rate (the floor of what Sign costs).
// - controlPlane.propagation: from a policy edit (reloadPolicy: load, compile, sign, push) to the
//   1,000th of 1,000 watching clients having the new revision; p99 over the rounds.
// Clients and server share this process (and the machine's cores), so these are lower bounds.
import 'reflect-metadata';
import { cp as copy, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initCa } from '../ca/init.ts';
import { issueLeaf } from '../ca/issue.ts';
import { createCsr } from '../ca/csr.ts';
import { generateKeyPair, privateKeyToPem } from '../ca/keys.ts';
import { createLogger } from '../common/log.ts';
import { startControlPlane } from '../control-plane/start.ts';
import { ControlPlaneClient } from '../api/client.ts';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { percentile, rateSync, result, type BenchFn, type BenchResult } from './harness.ts';

interface SignNode {
  certPem: string;
  keyPem: string;
  csrDer: Buffer;
}
interface SignJob {
  role: 'sign-clients';
  address: string;
  bundlePem: string;
  nodes: SignNode[];
  ms: number;
}

/** Worker side: every node renews in a loop on its own connection for `ms`; posts the count. */
async function signClients(job: SignJob): Promise<void> {
  const list = job.nodes.map((n) => ({
    client: new ControlPlaneClient({ address: job.address, bundlePem: job.bundlePem, trustDomain: TD, cert: { certPem: n.certPem, keyPem: n.keyPem } }),
    csrDer: Buffer.from(n.csrDer),
  }));
  await Promise.all(list.map((n) => n.client.sign({ csrDer: n.csrDer }))); // connect + warm up
  let done = 0;
  const start = performance.now();
  await Promise.all(
    list.map(async (n) => {
      while (performance.now() - start < job.ms) {
        await n.client.sign({ csrDer: n.csrDer });
        done++;
      }
    }),
  );
  const elapsedMs = performance.now() - start;
  for (const n of list) n.client.close();
  parentPort?.postMessage({ done, elapsedMs });
}

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const TD = 'mail.test';

export const run: BenchFn = async ({ quick }) => {
  const dir = await mkdtemp(join(tmpdir(), 'mm-bench-cp-'));
  const out: BenchResult[] = [];
  const clients: ControlPlaneClient[] = [];
  const ca = await initCa({ dir: join(dir, 'ca'), trustDomain: TD });
  await copy(join(ROOT, 'policies/examples/demo'), join(dir, 'policy'), { recursive: true });
  const cp = await startControlPlane(
    { listen: '127.0.0.1:0', caDir: join(dir, 'ca'), policyDir: join(dir, 'policy'), stateDir: join(dir, 'state'), signRateLimit: { perMinute: 1e9, burst: 1e6 } },
    { log: createLogger().child({}, { level: 'silent' }), watchPolicy: false },
  );
  try {
    // Baseline: CSR check + issue in-process.
    const csr = createCsr(generateKeyPair('P-256'));
    const spiffeId = `spiffe://${TD}/shard/tokyo-1/node/bench`;
    const baseline = rateSync(() => issueLeaf(ca.issuer, { csr, spiffeId, ttlMs: 3_600_000 }), quick ? 1000 : 3000, 20);

    // 64 nodes, each joined with its own token and renewing over its own mTLS connection. The
    // clients run in a worker thread, as they would on other machines, so the server has this thread.
    const N = 64;
    const anon = new ControlPlaneClient({ address: cp.address, bundlePem: cp.bundlePem, trustDomain: TD });
    clients.push(anon);
    const nodes: SignNode[] = [];
    for (let i = 0; i < N; i++) {
      const kp = generateKeyPair('P-256');
      const csrDer = createCsr(kp);
      const { token } = await cp.createJoinToken({ shard: 'tokyo-1', node: `b${i}` });
      const r = await anon.sign({ csrDer, joinToken: token });
      nodes.push({ certPem: r.chainPem, keyPem: privateKeyToPem(kp.privateKey), csrDer });
    }
    const ms = quick ? 2000 : 5000;
    const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'sign-clients', address: cp.address, bundlePem: cp.bundlePem, nodes, ms } satisfies SignJob });
    const { done, elapsedMs } = await new Promise<{ done: number; elapsedMs: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    const signRate = done / (elapsedMs / 1000);
    out.push(result('controlPlane.sign', signRate, 'certs/s', baseline, 'in-process CSR check + issueLeaf', '>= 1,000/s with 64 concurrent clients'));

    // Propagation to 1,000 watchers, each with its own connection.
    const W = 1000;
    const adminKp = generateKeyPair('P-256');
    const adminLeaf = issueLeaf(ca.issuer, { publicKey: adminKp.publicKey, spiffeId: `spiffe://${TD}/admin/bench`, ttlMs: 3_600_000 });
    const cert = { certPem: adminLeaf.chainPem, keyPem: privateKeyToPem(adminKp.privateKey) };
    // Arrival bookkeeping per revision: how many watchers have it and when the last one got it.
    const arrivals = new Map<string, { count: number; last: number; done?: () => void }>();
    let connected = 0;
    let allConnected!: () => void;
    const ready = new Promise<void>((r) => (allConnected = r));
    const initial = cp.revision();
    for (let i = 0; i < W; i++) {
      const c = new ControlPlaneClient({ address: cp.address, bundlePem: cp.bundlePem, trustDomain: TD, cert });
      clients.push(c);
      c.watch({
        onSnapshot: (s) => {
          if (s.revision === initial) {
            if (++connected === W) allConnected();
            return;
          }
          const a = arrivals.get(s.revision) ?? { count: 0, last: 0 };
          arrivals.set(s.revision, a);
          a.count++;
          a.last = performance.now();
          if (a.count === W) a.done?.();
        },
      });
    }
    await ready;
    const rounds = quick ? 3 : 10;
    const times: number[] = [];
    const mesh = join(dir, 'policy/mesh.yaml');
    const text = await readFile(mesh, 'utf8');
    for (let i = 0; i < rounds; i++) {
      await writeFile(mesh, text.replace('joinTokenTtl: 10m', `joinTokenTtl: ${11 + i}m`));
      const t0 = performance.now();
      await cp.reloadPolicy();
      const revision = cp.revision();
      const a = arrivals.get(revision) ?? { count: 0, last: 0 };
      arrivals.set(revision, a);
      if (a.count < W) await new Promise<void>((resolve) => (a.done = resolve));
      times.push(a.last - t0);
    }
    out.push(result('controlPlane.propagation', percentile(times, 99), 'ms', null, undefined, 'p99 <= 1,000 ms to the 1,000th of 1,000 watchers'));
    return out;
  } finally {
    for (const c of clients) c.close();
    await cp.close();
    await rm(dir, { recursive: true, force: true });
  }
};

// In the worker thread started above, this module only runs the clients.
if (!isMainThread && (workerData as SignJob | undefined)?.role === 'sign-clients') await signClients(workerData as SignJob);
