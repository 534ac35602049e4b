// Cross-checks with an independent implementation: OpenSSL must accept what mailmesh issues.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { createCsr } from '../../ca/csr.ts';
import { initCa } from '../../ca/init.ts';
import { issueLeaf } from '../../ca/issue.ts';
import type { LoadedCa } from '../../ca/load.ts';
import { generateKeyPair, privateKeyToPem, type KeyAlgorithm } from '../../ca/keys.ts';
import { chainFromPeerCertificate, parseCertificates } from '../../ca/pem.ts';
import { toPkcs12 } from '../../ca/pkcs12.ts';
import { verifyPeerChain } from '../../ca/verify.ts';
import { requireBinary } from '../helpers/real.ts';
import { HOUR, TD, tempDir } from './fixtures.ts';

const run = promisify(execFile);
let dir: string;
let cleanup: () => void;
let ca: LoadedCa;
let other: LoadedCa;
before(async () => {
  ({ dir, cleanup } = tempDir('mailmesh-ca-openssl-'));
  ca = await initCa({ dir: join(dir, 'ca'), trustDomain: TD });
  other = await initCa({ dir: join(dir, 'other'), trustDomain: TD });
});
after(() => cleanup());

function writeLeaf(from: LoadedCa, name: string, spiffeId: string, alg: KeyAlgorithm = 'P-256'): { crt: string; leaf: string; key: string } {
  const kp = generateKeyPair(alg);
  const issued = issueLeaf(from.issuer, { csr: createCsr(kp), spiffeId, dnsNames: [`${name}.mail.example`], ttlMs: HOUR });
  const paths = { crt: join(dir, `${name}.crt`), leaf: join(dir, `${name}.leaf.pem`), key: join(dir, `${name}.key`) };
  writeFileSync(paths.crt, issued.chainPem);
  writeFileSync(paths.leaf, issued.certPem);
  writeFileSync(paths.key, privateKeyToPem(kp.privateKey), { mode: 0o600 });
  return paths;
}

test('openssl verify accepts issued leaves (every algorithm) and refuses a foreign one', async (t) => {
  const openssl = requireBinary(t, 'openssl');
  if (!openssl) return;
  const root = join(dir, 'ca', 'root.pem');
  const issuer = join(dir, 'ca', 'issuer.pem');
  for (const alg of ['P-256', 'P-384', 'Ed25519'] as const) {
    const p = writeLeaf(ca, `v-${alg}`, `spiffe://${TD}/shard/s/node/${alg}`, alg);
    const r = await run(openssl, ['verify', '-CAfile', root, '-untrusted', issuer, '-purpose', 'sslserver', p.leaf]);
    assert.match(r.stdout, /: OK/, alg);
    await run(openssl, ['verify', '-CAfile', root, '-untrusted', issuer, '-purpose', 'sslclient', p.leaf]);
  }
  const foreign = writeLeaf(other, 'foreign', `spiffe://${TD}/x`);
  await assert.rejects(run(openssl, ['verify', '-CAfile', root, '-untrusted', issuer, foreign.leaf]));
});

test('openssl x509 -text shows the URI SAN, both EKUs and CA:FALSE', async (t) => {
  const openssl = requireBinary(t, 'openssl');
  if (!openssl) return;
  const p = writeLeaf(ca, 'text', `spiffe://${TD}/shard/tokyo-1/node/a`);
  const { stdout } = await run(openssl, ['x509', '-in', p.leaf, '-noout', '-text']);
  assert.match(stdout, /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/mail\.example\/shard\/tokyo-1\/node\/a, DNS:text\.mail\.example/);
  assert.match(stdout, /TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(stdout, /Basic Constraints: critical\s+CA:FALSE/);
  assert.match(stdout, /Key Usage: critical\s+Digital Signature/);
  const root = await run(openssl, ['x509', '-in', join(dir, 'ca', 'root.pem'), '-noout', '-text']);
  assert.match(root.stdout, /CA:TRUE, pathlen:1/);
  const inter = await run(openssl, ['x509', '-in', join(dir, 'ca', 'issuer.pem'), '-noout', '-text']);
  assert.match(inter.stdout, /CA:TRUE, pathlen:0/);
});

/** Start `openssl s_server` on an ephemeral port; resolves with the port once it accepts. */
async function startSServer(openssl: string, args: string[]): Promise<{ port: number; child: ChildProcess; log: () => string }> {
  // stdin from /dev/null: s_server then closes the connection once the client's data is echoed.
  const child = spawn(openssl, ['s_server', '-accept', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      log += d;
      const m = /ACCEPT 127\.0\.0\.1:(\d+)/.exec(log);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`s_server exited ${code}: ${log}`)));
  });
  return { port, child, log: () => log };
}

/** Wait for a child to exit, killing it after 15 s so a stuck handshake fails the test instead of hanging it. */
function exited(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => stop(child), 15_000);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid);
}

test('mutual TLS between two issued leaves: openssl s_server ↔ openssl s_client', async (t) => {
  const openssl = requireBinary(t, 'openssl');
  if (!openssl) return;
  const server = writeLeaf(ca, 'server', `spiffe://${TD}/shard/tokyo-1/node/srv`);
  const client = writeLeaf(ca, 'client', `spiffe://${TD}/shard/osaka-1/node/cli`);
  const issuerPem = join(dir, 'ca', 'issuer.pem');
  const rootPem = join(dir, 'ca', 'root.pem');
  // -Verify: a client certificate is required; -rev echoes lines reversed, proving data flowed.
  const srv = await startSServer(openssl, ['-cert', server.leaf, '-cert_chain', issuerPem, '-key', server.key, '-CAfile', rootPem, '-Verify', '2', '-verify_return_error', '-naccept', '1', '-rev']);
  const cli = spawn(openssl, ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-cert', client.leaf, '-cert_chain', issuerPem, '-key', client.key,
    '-CAfile', rootPem, '-verify_return_error', '-verify_hostname', 'server.mail.example', '-quiet'], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    let out = '';
    // Done when the reversed echo arrives (s_client -quiet would otherwise wait for the server).
    const echoed = new Promise<void>((resolve) => cli.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('hsem olleh')) resolve();
    }));
    cli.stdin!.end('hello mesh\n');
    await Promise.race([echoed, exited(cli)]);
    assert.match(out, /hsem olleh/, srv.log());
    assert.match(srv.log(), /Verification: OK/);
  } finally {
    stop(cli);
    stop(srv.child);
  }
});

test('a client leaf from another CA is refused by openssl s_server', async (t) => {
  const openssl = requireBinary(t, 'openssl');
  if (!openssl) return;
  const server = writeLeaf(ca, 'server2', `spiffe://${TD}/shard/tokyo-1/node/srv`);
  const foreign = writeLeaf(other, 'foreign2', `spiffe://${TD}/shard/osaka-1/node/cli`);
  const srv = await startSServer(openssl, ['-cert', server.leaf, '-cert_chain', join(dir, 'ca', 'issuer.pem'), '-key', server.key, '-CAfile', join(dir, 'ca', 'root.pem'), '-Verify', '2', '-verify_return_error', '-naccept', '1', '-rev']);
  const cli = spawn(openssl, ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-cert', foreign.leaf, '-cert_chain', join(dir, 'other', 'issuer.pem'), '-key', foreign.key, '-quiet'], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    let out = '';
    cli.stdout!.on('data', (d: Buffer) => (out += d));
    cli.stdin!.end('hello mesh\n');
    await exited(cli);
    assert.doesNotMatch(out, /hsem olleh/);
  } finally {
    stop(cli);
    stop(srv.child);
  }
});

test('node TLS client verifies an openssl s_server peer with verifyPeerChain', async (t) => {
  const openssl = requireBinary(t, 'openssl');
  if (!openssl) return;
  const server = writeLeaf(ca, 'server3', `spiffe://${TD}/shard/tokyo-1/node/srv`);
  const client = writeLeaf(ca, 'client3', `spiffe://${TD}/shard/osaka-1/node/cli`);
  const srv = await startSServer(openssl, ['-cert', server.leaf, '-cert_chain', join(dir, 'ca', 'issuer.pem'), '-key', server.key, '-CAfile', join(dir, 'ca', 'root.pem'), '-Verify', '2', '-verify_return_error', '-naccept', '1', '-rev']);
  try {
    const { readFileSync } = await import('node:fs');
    const peer = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: srv.port, cert: readFileSync(client.crt), key: readFileSync(client.key), ca: ca.bundle.toPem(),
        // Identity is the SPIFFE ID, checked below, not a host name.
        checkServerIdentity: () => undefined }, () => {
        try {
          resolve(verifyPeerChain(chainFromPeerCertificate(s.getPeerCertificate(true)), { bundle: ca.bundle, trustDomain: TD, usage: 'server' }).spiffeId);
        } catch (err) {
          reject(err as Error);
        } finally {
          s.end();
        }
      });
      s.on('error', reject);
    });
    assert.equal(peer, `spiffe://${TD}/shard/tokyo-1/node/srv`);
  } finally {
    stop(srv.child);
  }
});

test('PKCS#12 export of an EC key: openssl pkcs12 -info reads it with the password', async (t) => {
  const openssl = requireBinary(t, 'openssl');
  if (!openssl) return;
  for (const alg of ['P-256', 'Ed25519'] as const) {
    const kp = generateKeyPair(alg);
    const issued = issueLeaf(ca.issuer, { publicKey: kp.publicKey, spiffeId: `spiffe://${TD}/client/${alg}`, ttlMs: HOUR });
    const p12 = join(dir, `${alg}.p12`);
    writeFileSync(p12, toPkcs12(kp.privateKey, parseCertificates(issued.chainPem), 'pässword 1', { friendlyName: 'alice' }));
    const r: { stdout: string; stderr: string } = await run(openssl, ['pkcs12', '-in', p12, '-info', '-passin', 'pass:pässword 1', '-nodes']);
    const all = r.stdout + r.stderr;
    assert.match(all, /MAC: sha256/);
    assert.match(all, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC/);
    assert.equal((r.stdout.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'leaf and issuer');
    assert.match(r.stdout, /BEGIN PRIVATE KEY/);
    assert.match(r.stdout, /friendlyName: alice/);
    const { createPrivateKey } = await import('node:crypto');
    const keyPem = r.stdout.slice(r.stdout.indexOf('-----BEGIN PRIVATE KEY-----'));
    assert.ok(createPrivateKey(keyPem).equals(kp.privateKey), `${alg} key survives the round trip`);
    await assert.rejects(run(openssl, ['pkcs12', '-in', p12, '-passin', 'pass:wrong', '-nodes']));
  }
});
