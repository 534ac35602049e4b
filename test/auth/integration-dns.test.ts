// Mail authentication against a REAL authoritative DNS server (Knot DNS on loopback): records
// published in zone files, answered over UDP, resolved by the project's createResolver. The
// DKIM check at the end uses an independent verifier, OpenDKIM's opendkim-testmsg.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { requireBinary, findBinary } from '../helpers/real.ts';
import { startKnot, txtRdata, type Knot } from '../helpers/knot.ts';
import { opendkimVerifier } from '../helpers/opendkim.ts';
import { createResolver } from '../../sidecar/auth/resolver.ts';
import { verifyMessage } from '../../sidecar/auth/verify.ts';
import { decide } from '../../sidecar/auth/decide.ts';
import { addAuthResults } from '../../sidecar/auth/headers.ts';
import { createSigner } from '../../sidecar/auth/sign.ts';
import { makeKey, makeMessage } from './fixtures.ts';

const AUTHSERV = 'mx.mail.test';
const rsa = makeKey('sender.example', 'rsa1', 'rsa-sha256');
const ed = makeKey('sender.example', 'ed1', 'ed25519-sha256');

const ZONES: Record<string, string> = {
  // The parent: knot is authoritative only for its zones and REFUSES other names, so the DMARC
  // tree walk's `_dmarc.example` question must have an (NXDOMAIN) answer here.
  example: '',
  'sender.example': [
    '@ TXT "v=spf1 ip4:192.0.2.0/24 -all"',
    '_dmarc TXT "v=DMARC1; p=reject"',
    `rsa1._domainkey TXT ${txtRdata(rsa.txt)}`,
    `ed1._domainkey TXT ${txtRdata(ed.txt)}`,
  ].join('\n'),
  'quarantine.example': ['@ TXT "v=spf1 ip4:192.0.2.0/24 -all"', '_dmarc TXT "v=DMARC1; p=quarantine"'].join('\n'),
};

let knot: Knot | undefined;
let knotd: string | undefined;

before(async () => {
  knotd = findBinary('knotd');
  if (knotd) knot = await startKnot({ knotd, zones: ZONES });
});
after(async () => {
  await knot?.close();
});

function resolver() {
  // A fresh cache per test; short timeouts keep the stopped-server case quick.
  return createResolver({ servers: [knot!.server], timeoutMs: 500, tries: 1 });
}

async function verify(message: Buffer, ip: string, mailFrom: string) {
  return verifyMessage({ message, ip, helo: 'mx.client.example', mailFrom, resolver: resolver(), authservId: AUTHSERV });
}

test('spoofed From of a p=reject domain → 550 5.7.1', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  const v = await verify(makeMessage({ from: 'ceo@sender.example' }), '203.0.113.7', 'ceo@sender.example');
  assert.equal(v.spf.result, 'fail');
  assert.equal(v.dmarc.result, 'fail');
  assert.equal(v.dmarc.policy, 'reject');
  assert.equal(v.temporary, false);
  const d = decide(v, 'enforce');
  assert.deepEqual([d.action, d.smtp?.code, d.smtp?.enhanced], ['reject', 550, '5.7.1']);
});

test('spoofed From of a p=quarantine domain → delivered with the quarantine header', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  const message = makeMessage({ from: 'ceo@quarantine.example' });
  const v = await verify(message, '203.0.113.7', 'ceo@quarantine.example');
  const d = decide(v, 'enforce');
  assert.equal(d.action, 'quarantine');
  const out = addAuthResults(message, v.authservId, v.headerValue, d.headers).toString();
  assert.match(out, /^Authentication-Results: mx\.mail\.test;[\s\S]*dmarc=fail[\s\S]*\r\nX-Mailmesh-Quarantine: dmarc=fail policy=quarantine header\.from=quarantine\.example\r\n/);
});

test('valid SPF + DKIM (RSA and Ed25519): dmarc=pass in the Authentication-Results header', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  const signed = await createSigner({ keys: [rsa.key, ed.key] }).sign(makeMessage({ from: 'alice@sender.example' }), 'sender.example');
  const v = await verify(signed, '192.0.2.25', 'alice@sender.example');
  assert.deepEqual(v.dkim.map((d) => d.result), ['pass', 'pass']);
  assert.equal(v.spf.result, 'pass');
  const d = decide(v, 'enforce');
  assert.equal(d.action, 'accept');
  const out = addAuthResults(signed, v.authservId, v.headerValue, d.headers).toString();
  const ar = out.slice(0, out.indexOf('\r\nDKIM-Signature:'));
  assert.match(ar, /^Authentication-Results: mx\.mail\.test;/);
  assert.match(ar, /dkim=pass header\.d=sender\.example/);
  assert.match(ar, /spf=pass /);
  assert.match(ar, /dmarc=pass .*header\.from=sender\.example/);
});

test('a forged Authentication-Results claiming our authserv-id is stripped; a foreign one is kept', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  const message = makeMessage({
    from: 'ceo@quarantine.example',
    extraHeaders: ['Authentication-Results: MX.Mail.Test; dmarc=pass header.from=quarantine.example', 'Authentication-Results: mx.upstream.example; spf=pass'],
  });
  const v = await verify(message, '203.0.113.7', 'ceo@quarantine.example');
  const out = addAuthResults(message, v.authservId, v.headerValue, decide(v, 'enforce').headers).toString();
  const fields = out.split('\r\n').filter((l) => /^Authentication-Results:/i.test(l));
  assert.equal(fields.length, 2);
  assert.match(fields[0], /^Authentication-Results: mx\.mail\.test;$/);
  assert.equal(fields[1], 'Authentication-Results: mx.upstream.example; spf=pass');
  assert.doesNotMatch(out, /dmarc=pass/);
});

test('a message signed by sign.ts verifies with OpenDKIM (independent) against the key in knot', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot') || !requireBinary(t, 'opendkim-testmsg', 'opendkim-tools') || !requireBinary(t, 'kdig', 'knot-dnsutils') || !requireBinary(t, 'unshare', 'util-linux')) return;
  if (process.getuid?.() !== 0) {
    t.skip('needs root for a private network/mount namespace');
    return;
  }
  // opendkim-testmsg runs in private network + mount namespaces with its own knotd on
  // 127.0.0.1:53 (test/helpers/opendkim.ts).
  const odk = await opendkimVerifier(knotd!, ZONES, 'sender.example');
  const check = odk.check;
  try {
    for (const key of [rsa.key, ed.key]) {
      const signed = await createSigner({ keys: [key] }).sign(makeMessage({ from: 'alice@sender.example' }), 'sender.example');
      const ok = await check(`ok-${key.selector}`, signed);
      assert.equal(ok.status, 0, `opendkim-testmsg rejected the ${key.algorithm} signature: ${ok.stderr}`);
      // The same verifier must refuse a tampered copy: proof that it really checked.
      const bad = await check(`bad-${key.selector}`, Buffer.from(signed.toString().replace('this is a test', 'this is a tesT')));
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /bad signature/i);
    }
    // A key that is not published in DNS cannot verify either.
    const other = makeKey('sender.example', 'nokey', 'rsa-sha256');
    const unpublished = await check('nokey', await createSigner({ keys: [other.key] }).sign(makeMessage({ from: 'alice@sender.example' }), 'sender.example'));
    assert.notEqual(unpublished.status, 0);
  } finally {
    await odk.close();
  }
});

test('DNS server stopped → temperror → 451 4.7.x, then recovers when it is back', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  await knot!.stop();
  try {
    const v = await verify(makeMessage({ from: 'ceo@sender.example' }), '203.0.113.7', 'ceo@sender.example');
    assert.equal(v.spf.result, 'temperror');
    assert.equal(v.dmarc.result, 'temperror');
    assert.equal(v.temporary, true);
    assert.match(v.headerValue, /spf=temperror/);
    const d = decide(v, 'enforce');
    assert.equal(d.action, 'tempfail');
    assert.equal(d.smtp?.code, 451);
    assert.match(d.smtp?.enhanced ?? '', /^4\.7\.\d+$/);
  } finally {
    await knot!.start();
  }
  const again = await verify(makeMessage({ from: 'ceo@sender.example' }), '203.0.113.7', 'ceo@sender.example');
  assert.equal(decide(again, 'enforce').action, 'reject');
});
