import './deny-dns.ts';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { createSigner } from '../../sidecar/auth/sign.ts';
import { loadSigningKeys } from '../../sidecar/auth/keys.ts';
import { makeKey, makeMessage } from './fixtures.ts';

const dir = await mkdtemp(join(tmpdir(), 'mailmesh-auth-'));
after(() => rm(dir, { recursive: true, force: true }));

const rsa = makeKey('example.org', 'r1', 'rsa-sha256');
const ed = makeKey('example.org', 'e1', 'ed25519-sha256');

test('loadSigningKeys reads mounted key files and checks them', async () => {
  await writeFile(join(dir, 'rsa.pem'), rsa.key.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'ed.pem'), ed.key.privateKeyPem, { mode: 0o600 });
  const keys = await loadSigningKeys([
    { domain: 'Example.ORG', selector: 'r1', algorithm: 'rsa-sha256', keyFile: join(dir, 'rsa.pem') },
    { domain: 'example.org', selector: 'e1', algorithm: 'ed25519-sha256', keyFile: join(dir, 'ed.pem') },
  ]);
  assert.deepEqual(keys.map((k) => [k.domain, k.selector, k.algorithm]), [
    ['example.org', 'r1', 'rsa-sha256'],
    ['example.org', 'e1', 'ed25519-sha256'],
  ]);
});

test('key errors carry codes: missing file, not a key, wrong type, short RSA', async () => {
  await assert.rejects(() => loadSigningKeys([{ domain: 'x.example', selector: 's', algorithm: 'rsa-sha256', keyFile: join(dir, 'nope.pem') }]), { code: 'ERR_AUTH_KEY_LOAD' });
  await writeFile(join(dir, 'junk.pem'), 'not a key');
  await assert.rejects(() => loadSigningKeys([{ domain: 'x.example', selector: 's', algorithm: 'rsa-sha256', keyFile: join(dir, 'junk.pem') }]), { code: 'ERR_AUTH_KEY_LOAD' });
  await writeFile(join(dir, 'ed2.pem'), ed.key.privateKeyPem);
  await assert.rejects(() => loadSigningKeys([{ domain: 'x.example', selector: 's', algorithm: 'rsa-sha256', keyFile: join(dir, 'ed2.pem') }]), { code: 'ERR_AUTH_KEY_MISMATCH' });
  const short = generateKeyPairSync('rsa', { modulusLength: 768 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  assert.throws(() => createSigner({ keys: [{ domain: 'x.example', selector: 's', algorithm: 'rsa-sha256', privateKeyPem: short }] }), { code: 'ERR_AUTH_KEY_MISMATCH' });
});

test('sign prepends one DKIM-Signature per key and leaves the message bytes unchanged', async () => {
  const signer = createSigner({ keys: [rsa.key, ed.key] });
  const message = makeMessage({ from: 'a@example.org' });
  const signed = await signer.sign(message, 'example.org');
  assert.ok(signed.subarray(signed.length - message.length).equals(message));
  const head = signed.subarray(0, signed.length - message.length).toString();
  assert.equal(head.match(/^DKIM-Signature:/gm)?.length, 2);
  assert.match(head, /a=rsa-sha256; c=relaxed\/relaxed; d=example\.org;/);
  assert.match(head, /a=ed25519-sha256; .*d=example\.org;/s);
});

test('a subdomain signs with its parent domain key (relaxed alignment); unknown domains are ERR_AUTH_NO_KEY', async () => {
  const signer = createSigner({ keys: [rsa.key] });
  assert.equal(signer.canSign('news.example.org'), true);
  assert.equal(signer.canSign('example.com'), false);
  const signed = (await signer.sign(makeMessage({ from: 'a@news.example.org' }), 'news.example.org')).toString();
  assert.match(signed, /d=example\.org;[\s\S]*\bs=r1;/);
  await assert.rejects(() => signer.sign(makeMessage({ from: 'a@example.com' }), 'example.com'), { code: 'ERR_AUTH_NO_KEY' });
});
