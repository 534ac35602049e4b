// `npm run bench -- --only ca`: leaf issuance from CSRs and peer-chain verification on one core,
// next to the raw ECDSA P-256 sign+verify rate measured in the same run (the ceiling: issuing a
// leaf from a CSR costs one verify of the CSR and one signature).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, sign, verify } from 'node:crypto';
import { createCsr } from '../ca/csr.ts';
import { initCa } from '../ca/init.ts';
import { issueLeaf } from '../ca/issue.ts';
import { generateKeyPair } from '../ca/keys.ts';
import { parseCertificates } from '../ca/pem.ts';
import { verifyPeerChain } from '../ca/verify.ts';
import { rateSync, result, type BenchFn } from './harness.ts';

export const run: BenchFn = async ({ quick }) => {
  const ms = quick ? 500 : 2000;
  const dir = mkdtempSync(join(tmpdir(), 'mailmesh-bench-ca-'));
  try {
    const ca = await initCa({ dir, trustDomain: 'mail.example' });
    // Pre-made CSRs from distinct keys, as a control plane would receive them.
    const csrs = Array.from({ length: 64 }, () => createCsr(generateKeyPair('P-256')));
    const id = 'spiffe://mail.example/shard/tokyo-1/node/a';

    const kp = generateKeyPair('P-256');
    const msg = Buffer.alloc(300, 1); // about the size of a leaf TBSCertificate
    const sig = sign('sha256', msg, kp.privateKey);
    const baseline = rateSync(() => {
      sign('sha256', msg, kp.privateKey);
      verify('sha256', msg, kp.publicKey, sig);
    }, ms, 50);

    let i = 0;
    const issue = rateSync(() => issueLeaf(ca.issuer, { csr: csrs[i++ & 63], spiffeId: id, ttlMs: 3_600_000 }).chainPem, ms, 50);

    const chain = parseCertificates(issueLeaf(ca.issuer, { csr: csrs[0], spiffeId: id, ttlMs: 3_600_000 }).chainPem);
    const opts = { bundle: ca.bundle, trustDomain: 'mail.example', usage: 'client' as const, revokedSerials: new Set(['00']) };
    // Fresh certificate objects per call, as each handshake delivers them: parse + verify.
    const ders = chain.map((c) => c.raw);
    const verifies = rateSync(() => verifyPeerChain(ders.map((d) => new X509Certificate(d)), opts), ms, 50);
    const rawVerify = rateSync(() => verify('sha256', msg, kp.publicKey, sig), ms, 50);

    return [
      result('ca.issue', issue, 'certs/s', baseline, 'raw ECDSA P-256 sign+verify', '>= 3000 certs/s and >= 40% of baseline'),
      result('ca.verifyChain', verifies, 'verifications/s', rawVerify, 'raw ECDSA P-256 verify'),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
