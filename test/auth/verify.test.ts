import './deny-dns.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../common/clock.ts';
import { createSigner } from '../../sidecar/auth/sign.ts';
import { createSealer } from '../../sidecar/auth/seal.ts';
import { verifyMessage, type VerifyInput } from '../../sidecar/auth/verify.ts';
import { decide } from '../../sidecar/auth/decide.ts';
import { checkSpf } from '../../sidecar/auth/spf.ts';
import { makeKey, makeMessage, senderZone } from './fixtures.ts';
import { zoneResolver, type ZoneMap } from './zone-resolver.ts';

const AUTHSERV = 'mx.mail.test';
const rsa = makeKey('sender.example', 'rsa1', 'rsa-sha256');
const ed = makeKey('sender.example', 'ed1', 'ed25519-sha256');
const GOOD_IP = '192.0.2.9';
const BAD_IP = '203.0.113.66';

function zoneFor(dmarc: string | undefined, extra: ZoneMap = {}): ZoneMap {
  return {
    ...senderZone('sender.example', { spf: 'v=spf1 ip4:192.0.2.0/24 -all', dmarc, keys: [{ selector: 'rsa1', txt: rsa.txt }, { selector: 'ed1', txt: ed.txt }] }),
    ...extra,
  };
}

async function run(zone: ZoneMap, message: Buffer, over: Partial<VerifyInput> = {}) {
  const { resolver, zone: z } = zoneResolver(zone);
  const v = await verifyMessage({ message, ip: BAD_IP, helo: 'mx.elsewhere.example', mailFrom: 'bounce@sender.example', resolver, authservId: AUTHSERV, ...over });
  assert.deepEqual(z.unexpected, [], 'the zone was asked about a name it does not hold');
  return v;
}

test('spoofed From of a p=reject domain: dmarc=fail, policy reject, 550 5.7.1', async () => {
  const v = await run(zoneFor('v=DMARC1; p=reject'), makeMessage({ from: 'ceo@sender.example' }));
  assert.equal(v.spf.result, 'fail');
  assert.deepEqual(v.dkim.map((d) => d.result), ['none']);
  assert.deepEqual({ result: v.dmarc.result, policy: v.dmarc.policy, domain: v.dmarc.domain }, { result: 'fail', policy: 'reject', domain: 'sender.example' });
  assert.equal(v.temporary, false);
  assert.match(v.headerValue, /^mx\.mail\.test;\r\n /);
  assert.match(v.headerValue, /dmarc=fail .*header\.from=sender\.example/);
  const d = decide(v, 'enforce');
  assert.equal(d.action, 'reject');
  assert.deepEqual([d.smtp?.code, d.smtp?.enhanced], [550, '5.7.1']);
});

test('p=quarantine → quarantine with the X-Mailmesh-Quarantine header; p=none → accept', async () => {
  const q = await run(zoneFor('v=DMARC1; p=quarantine'), makeMessage({ from: 'ceo@sender.example' }));
  const dq = decide(q, 'enforce');
  assert.equal(dq.action, 'quarantine');
  assert.deepEqual(dq.headers, ['X-Mailmesh-Quarantine: dmarc=fail policy=quarantine header.from=sender.example']);
  const n = await run(zoneFor('v=DMARC1; p=none'), makeMessage({ from: 'ceo@sender.example' }));
  assert.equal(n.dmarc.result, 'fail');
  assert.equal(n.dmarc.policy, 'none');
  assert.equal(decide(n, 'enforce').action, 'accept');
});

test('no DMARC record: dmarc=none, accepted', async () => {
  const v = await run(zoneFor(undefined), makeMessage({ from: 'ceo@sender.example' }));
  assert.equal(v.dmarc.result, 'none');
  assert.equal(decide(v, 'enforce').action, 'accept');
});

test('DKIM sign → verify roundtrip, RSA-2048 and Ed25519, aligned: dmarc=pass without SPF', async () => {
  const signer = createSigner({ keys: [rsa.key, ed.key] });
  const signed = await signer.sign(makeMessage({ from: 'alice@sender.example' }), 'sender.example');
  const v = await run(zoneFor('v=DMARC1; p=reject'), signed);
  assert.equal(v.spf.result, 'fail'); // wrong IP: only DKIM can pass DMARC here
  assert.deepEqual(
    v.dkim.map((d) => [d.result, d.algorithm, d.selector, d.aligned]),
    [
      ['pass', 'rsa-sha256', 'rsa1', true],
      ['pass', 'ed25519-sha256', 'ed1', true],
    ],
  );
  assert.equal(v.dmarc.result, 'pass');
  assert.match(v.headerValue, /dkim=pass header\.d=sender\.example header\.i=@sender\.example header\.s=rsa1 header\.a=rsa-sha256/);
  assert.match(v.headerValue, /header\.a=ed25519-sha256/);
  assert.equal(decide(v, 'enforce').action, 'accept');
});

test('valid SPF + DKIM: spf=pass, dkim=pass, dmarc=pass in the A-R value', async () => {
  const signed = await createSigner({ keys: [rsa.key] }).sign(makeMessage({ from: 'alice@sender.example' }), 'sender.example');
  const v = await run(zoneFor('v=DMARC1; p=reject'), signed, { ip: GOOD_IP });
  assert.equal(v.spf.result, 'pass');
  assert.match(v.headerValue, /spf=pass .*smtp\.mailfrom=sender\.example/);
  assert.match(v.headerValue, /dmarc=pass/);
});

test('a modified body breaks the signature: dkim=fail, dmarc=fail', async () => {
  const signed = await createSigner({ keys: [rsa.key] }).sign(makeMessage({ from: 'alice@sender.example' }), 'sender.example');
  const tampered = Buffer.from(signed.toString('utf8').replace('this is a test', 'send me money'));
  const v = await run(zoneFor('v=DMARC1; p=reject'), tampered);
  assert.equal(v.dkim[0].result, 'fail');
  assert.equal(v.dmarc.result, 'fail');
});

test('an expired signature (x=) is not a pass: the Clock decides', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const signed = await createSigner({ keys: [rsa.key], clock, expiresInSec: 3600 }).sign(makeMessage({ from: 'alice@sender.example' }), 'sender.example');
  assert.equal((await run(zoneFor('v=DMARC1; p=reject'), signed, { clock })).dkim[0].result, 'pass');
  clock.advance(2 * 3600_000);
  const v = await run(zoneFor('v=DMARC1; p=reject'), signed, { clock });
  assert.equal(v.dkim[0].result, 'neutral');
  assert.equal(v.dmarc.result, 'fail');
});

test('DNS failure of the DMARC record → dmarc=temperror → 451, never a pass', async () => {
  const zone = zoneFor(undefined);
  zone['_dmarc.sender.example'] = ['SERVFAIL'];
  const v = await run(zone, makeMessage({ from: 'ceo@sender.example' }));
  assert.equal(v.dmarc.result, 'temperror');
  assert.equal(v.temporary, true);
  const d = decide(v, 'enforce');
  assert.equal(d.action, 'tempfail');
  assert.equal(d.smtp?.code, 451);
  assert.match(d.smtp?.enhanced ?? '', /^4\.7\./);
});

test('SPF timeout is temperror; with DMARC failing it decides the outcome → 451 4.7.24', async () => {
  const zone = zoneFor('v=DMARC1; p=reject');
  zone['sender.example'] = ['TIMEOUT'];
  const v = await run(zone, makeMessage({ from: 'ceo@sender.example' }), { ip: GOOD_IP });
  assert.equal(v.spf.result, 'temperror');
  assert.match(v.headerValue, /spf=temperror/);
  const d = decide(v, 'enforce');
  assert.deepEqual([d.action, d.smtp?.code, d.smtp?.enhanced], ['tempfail', 451, '4.7.24']);
});

test('DKIM key lookup failure is dkim=temperror → 451 4.7.5, while DMARC passes through SPF it is accepted', async () => {
  const zone = zoneFor('v=DMARC1; p=reject');
  zone['rsa1._domainkey.sender.example'] = ['SERVFAIL'];
  const signed = await createSigner({ keys: [rsa.key] }).sign(makeMessage({ from: 'alice@sender.example' }), 'sender.example');
  const bad = await run(zone, signed);
  assert.equal(bad.dkim[0].result, 'temperror');
  assert.deepEqual([decide(bad, 'enforce').action, decide(bad, 'enforce').smtp?.enhanced], ['tempfail', '4.7.5']);
  const good = await run(zone, signed, { ip: GOOD_IP });
  assert.equal(good.dmarc.result, 'pass');
  assert.equal(decide(good, 'enforce').action, 'accept');
});

test('a spoofer cannot turn 550 into 451 with a signature of his own whose DNS fails', async () => {
  const attacker = makeKey('attacker.example', 'a1', 'rsa-sha256');
  const zone = { ...zoneFor('v=DMARC1; p=reject'), 'a1._domainkey.attacker.example': ['SERVFAIL'] };
  const msg = await createSigner({ keys: [attacker.key] }).sign(makeMessage({ from: 'ceo@sender.example' }), 'attacker.example');
  const v = await run(zone, msg);
  assert.equal(v.dkim[0].result, 'temperror');
  assert.equal(v.temporary, true);
  const d = decide(v, 'enforce');
  assert.deepEqual([d.action, d.smtp?.code], ['reject', 550]);
});

test('monitor mode accepts everything and reports what enforce would do', async () => {
  const v = await run(zoneFor('v=DMARC1; p=reject'), makeMessage({ from: 'ceo@sender.example' }));
  const d = decide(v, 'monitor');
  assert.deepEqual([d.action, d.wouldBe, d.smtp], ['accept', 'reject', undefined]);
});

test('two From domains: DMARC cannot apply → permerror → quarantine', async () => {
  const zone = { ...zoneFor('v=DMARC1; p=reject'), ...senderZone('other.example', {}) };
  const msg = makeMessage({ from: 'ceo@sender.example, x@other.example' });
  const v = await run(zone, msg);
  assert.equal(v.dmarc.result, 'permerror');
  assert.equal(decide(v, 'enforce').action, 'quarantine');
});

// RFC 8617: sender → forwarder (mailing list modifies the message, then seals) → us.
async function forwarded() {
  const fwdKey = makeKey('lists.fwd.example', 'arc1', 'rsa-sha256');
  const original = await createSigner({ keys: [rsa.key] }).sign(makeMessage({ from: 'alice@sender.example', subject: 'hi' }), 'sender.example');
  const zone = { ...zoneFor('v=DMARC1; p=reject'), ...senderZone('lists.fwd.example', { keys: [{ selector: 'arc1', txt: fwdKey.txt }] }) };
  // The forwarder sees a passing original …
  const { resolver } = zoneResolver(zone);
  const atForwarder = await verifyMessage({ message: original, ip: GOOD_IP, helo: 'mx.sender.example', mailFrom: 'alice@sender.example', resolver, authservId: 'mx.fwd.example' });
  assert.equal(atForwarder.dmarc.result, 'pass');
  // … then rewrites the subject (breaking DKIM) and seals what it saw.
  const modified = Buffer.from(original.toString('utf8').replace('Subject: hi', 'Subject: [list] hi'));
  const sealed = await createSealer({ key: fwdKey.key }).seal(modified, atForwarder);
  return { zone, sealed };
}

test('ARC: a DMARC failure with a valid chain from a trusted sealer is accepted as an override', async () => {
  const { zone, sealed } = await forwarded();
  const v = await run(zone, sealed, { trustedArcSealers: ['Lists.Fwd.Example'], helo: 'mx.fwd.example', mailFrom: 'list-bounce@lists.fwd.example' });
  assert.equal(v.dkim[0].result, 'fail');
  assert.deepEqual(v.arc, { result: 'pass', instance: 1, sealer: 'lists.fwd.example', trusted: true, listed: true });
  assert.equal(v.dmarc.result, 'fail');
  assert.equal(v.dmarc.override, 'arc');
  assert.match(v.headerValue, /arc=pass/);
  assert.match(v.headerValue, /dmarc=fail \([^)]*\) reason="local_policy arc=pass as\[1\]\.d=lists\.fwd\.example"/);
  const d = decide(v, 'enforce');
  assert.deepEqual([d.action, d.reason], ['accept', 'arc-override']);
});

test('ARC: the same chain from a sealer that is not trusted does not override → 550', async () => {
  const { zone, sealed } = await forwarded();
  const v = await run(zone, sealed, { trustedArcSealers: ['other.example'], helo: 'mx.fwd.example', mailFrom: 'list-bounce@lists.fwd.example' });
  assert.equal(v.arc.result, 'pass');
  assert.equal(v.arc.trusted, false);
  assert.equal(v.dmarc.override, undefined);
  assert.doesNotMatch(v.headerValue, /local_policy/);
  assert.equal(decide(v, 'enforce').action, 'reject');
});

test('RFC 7208 §4.6.4 limits are wired: 10 DNS-querying terms pass, 11 are permerror', async () => {
  const chain = (n: number): ZoneMap => {
    const z: ZoneMap = {};
    const inc = Array.from({ length: n }, (_v, i) => `include:i${i}.limits.example`).join(' ');
    z['limits.example'] = [{ TXT: `v=spf1 ${inc} ip4:192.0.2.1 -all` }];
    for (let i = 0; i < n; i++) z[`i${i}.limits.example`] = [{ TXT: 'v=spf1 ?ip4:198.51.100.1' }];
    return z;
  };
  const ten = zoneResolver(chain(10));
  assert.equal((await checkSpf({ ip: '192.0.2.1', helo: 'h.example', mailFrom: 'a@limits.example', resolver: ten.resolver })).status.result, 'pass');
  const eleven = zoneResolver(chain(11));
  assert.equal((await checkSpf({ ip: '192.0.2.1', helo: 'h.example', mailFrom: 'a@limits.example', resolver: eleven.resolver })).status.result, 'permerror');
});

test('RFC 7208 §4.6.4 void lookups: 2 are allowed, the 3rd is permerror', async () => {
  const zone = (n: number): ZoneMap => ({
    'void.example': [{ TXT: `v=spf1 ${Array.from({ length: n }, (_v, i) => `exists:nx${i}.void.example`).join(' ')} ip4:192.0.2.1 -all` }],
    ...Object.fromEntries(Array.from({ length: n }, (_v, i) => [`nx${i}.void.example`, ['NXDOMAIN']])),
  });
  const two = zoneResolver(zone(2));
  assert.equal((await checkSpf({ ip: '192.0.2.1', helo: 'h.example', mailFrom: 'a@void.example', resolver: two.resolver })).status.result, 'pass');
  const three = zoneResolver(zone(3));
  assert.equal((await checkSpf({ ip: '192.0.2.1', helo: 'h.example', mailFrom: 'a@void.example', resolver: three.resolver })).status.result, 'permerror');
});
