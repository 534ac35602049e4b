import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { parseCertificates } from '../../ca/pem.ts';
import { verifyPeerChain } from '../../ca/verify.ts';
import { TrustBundle } from '../../ca/bundle.ts';
import { TD, tempDir } from './fixtures.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

/** Run the CLI; returns exit code, stdout, stderr (never throws on a non-zero exit). */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['cli/mailmesh.ts', ...args], { cwd: ROOT, env: { ...process.env, MAILMESH_LOG_LEVEL: 'silent' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir: string;
let cleanup: () => void;
before(async () => {
  ({ dir, cleanup } = tempDir('mailmesh-ca-cli-'));
  const r = await cli('ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', TD);
  assert.equal(r.code, 0, r.stderr);
});
after(() => cleanup());

const ID = `spiffe://${TD}/shard/tokyo-1/node/a`;

test('ca init writes the CA files and refuses to overwrite without --force', async () => {
  const ca = join(dir, 'ca');
  assert.deepEqual(readdirSync(ca).sort(), ['bundle.pem', 'ca.json', 'issuer.key', 'issuer.pem', 'root.key', 'root.pem']);
  assert.equal(statSync(join(ca, 'root.key')).mode & 0o777, 0o600);
  const root = readFileSync(join(ca, 'root.pem'), 'utf8');
  const again = await cli('ca', 'init', '--dir', ca, '--trust-domain', TD);
  assert.notEqual(again.code, 0);
  assert.equal(again.stderr.trim().split('\n').length, 1);
  assert.match(again.stderr, /--force/);
  assert.equal(readFileSync(join(ca, 'root.pem'), 'utf8'), root);
  const other = join(dir, 'ca384');
  const r = await cli('ca', 'init', '--dir', other, '--trust-domain', TD, '--algorithm', 'P-384');
  assert.equal(r.code, 0, r.stderr);
  const forced = await cli('ca', 'init', '--dir', other, '--trust-domain', TD, '--algorithm', 'Ed25519', '--force');
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(JSON.parse(readFileSync(join(other, 'ca.json'), 'utf8')).algorithm, 'Ed25519');
});

test('ca issue writes PREFIX.crt (leaf then issuer) and PREFIX.key 0600; inspect --json reads it', async () => {
  const out = join(dir, 'tls', 'node');
  const r = await cli('ca', 'issue', '--dir', join(dir, 'ca'), '--spiffe-id', ID, '--dns', 'mx1.mail.example', '--dns', 'mx2.mail.example', '--ttl', '2h', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statSync(`${out}.key`).mode & 0o777, 0o600);
  assert.equal(statSync(`${out}.crt`).mode & 0o777, 0o644);
  const chain = parseCertificates(readFileSync(`${out}.crt`));
  assert.equal(chain.length, 2);
  assert.equal(chain[1].fingerprint256, new X509Certificate(readFileSync(join(dir, 'ca', 'issuer.pem'))).fingerprint256);
  assert.ok(chain[0].checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(`${out}.key`))));
  const bundle = TrustBundle.fromPem(readFileSync(join(dir, 'ca', 'bundle.pem')));
  assert.equal(verifyPeerChain(chain, { bundle, trustDomain: TD, usage: 'server' }).spiffeId, ID);
  const life = chain[0].validToDate.getTime() - chain[0].validFromDate.getTime();
  assert.equal(life, 2 * 3_600_000 + 60_000, '2h TTL plus 60 s backdating');

  const j = await cli('ca', 'inspect', `${out}.crt`, '--json');
  assert.equal(j.code, 0, j.stderr);
  const info = JSON.parse(j.stdout);
  assert.deepEqual(Object.keys(info), ['spiffeId', 'dnsNames', 'serial', 'notBefore', 'notAfter', 'issuer', 'subject', 'isCa', 'keyAlgorithm', 'fingerprint256']);
  assert.equal(info.spiffeId, ID);
  assert.deepEqual(info.dnsNames, ['mx1.mail.example', 'mx2.mail.example']);
  assert.equal(info.serial, chain[0].serialNumber);
  assert.equal(info.notAfter, chain[0].validToDate.toISOString());
  assert.equal(info.isCa, false);
  assert.equal(info.keyAlgorithm, 'P-256');
  assert.equal(info.subject, '');
  assert.match(info.issuer, /issuing CA/);
  const human = await cli('ca', 'inspect', join(dir, 'ca', 'root.pem'));
  assert.match(human.stdout, /ca:\s+yes/);
});

test('bad input: non-zero exit, one stderr line, no files', async () => {
  const out = join(dir, 'bad', 'x');
  const ca = join(dir, 'ca');
  writeFileSync(join(dir, 'pw-empty'), '');
  const cases: [string, string[], RegExp][] = [
    ['unknown flag', ['ca', 'issue', '--dir', ca, '--spiffe-id', ID, '--out', out, '--bogus'], /unknown option '--bogus'/],
    ['TTL 0', ['ca', 'issue', '--dir', ca, '--spiffe-id', ID, '--out', out, '--ttl', '0'], /--ttl.*invalid/],
    ['TTL 2x', ['ca', 'issue', '--dir', ca, '--spiffe-id', ID, '--out', out, '--ttl', '2x'], /--ttl.*2x/],
    ['other trust domain', ['ca', 'issue', '--dir', ca, '--spiffe-id', 'spiffe://other.example/a', '--out', out], /outside the CA's trust domain/],
    ['not a SPIFFE ID', ['ca', 'issue', '--dir', ca, '--spiffe-id', 'https://mail.example/a', '--out', out], /not a SPIFFE ID/],
    ['missing CA dir', ['ca', 'issue', '--dir', join(dir, 'nope'), '--spiffe-id', ID, '--out', out], /mailmesh ca init/],
    ['missing --out', ['ca', 'issue', '--dir', ca, '--spiffe-id', ID], /--out/],
    ['bad DNS name', ['ca', 'issue', '--dir', ca, '--spiffe-id', ID, '--dns', 'no spaces', '--out', out], /invalid DNS name/],
    ['missing p12 password file', ['ca', 'issue', '--dir', ca, '--spiffe-id', ID, '--out', out, '--p12', join(dir, 'nope.txt')], /password file/],
    ['empty p12 password', ['ca', 'issue', '--dir', ca, '--spiffe-id', ID, '--out', out, '--p12', join(dir, 'pw-empty')], /empty/],
    ['bad algorithm', ['ca', 'init', '--dir', join(dir, 'bad'), '--trust-domain', TD, '--algorithm', 'RSA'], /RSA/],
    ['bad trust domain', ['ca', 'init', '--dir', join(dir, 'bad'), '--trust-domain', 'Mail Example'], /trust domain/],
    ['inspect missing file', ['ca', 'inspect', join(dir, 'nope.pem')], /cannot read/],
  ];
  for (const [name, args, message] of cases) {
    const r = await cli(...args);
    assert.notEqual(r.code, 0, name);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${name}: ${r.stderr}`);
    assert.match(lines[0], message, name);
    assert.equal(existsSync(join(dir, 'bad')), false, `${name} left files behind`);
  }
});

test('an unreadable issuing key: non-zero exit, one line, no files', async () => {
  const ca = join(dir, 'broken');
  assert.equal((await cli('ca', 'init', '--dir', ca, '--trust-domain', TD)).code, 0);
  writeFileSync(join(ca, 'issuer.key'), 'garbage');
  const r = await cli('ca', 'issue', '--dir', ca, '--spiffe-id', ID, '--out', join(dir, 'broken-out', 'x'));
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /ERR_CA_UNREADABLE/);
  assert.equal(existsSync(join(dir, 'broken-out')), false);
});

test('--help shows examples', async () => {
  for (const verb of ['init', 'issue', 'inspect']) {
    const r = await cli('ca', verb, '--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:\n {2}\$ mailmesh ca /, verb);
  }
});
