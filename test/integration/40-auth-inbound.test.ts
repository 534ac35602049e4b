// Issue 10, inbound, end to end: the public SMTP front door exactly as the sidecar wires it
// (`startFrontDoor` with `check: mailAuthCheck(cfg, view, metrics)`, the demo policy's
// domain modes), a REAL knotd on loopback answering SPF/DKIM/DMARC, and the embedded handoff
// into a Maildir store. Mail arrives over real SMTP from a chosen 127.x source address, so SPF
// judges the address the front door actually saw.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { findBinary, requireBinary } from '../helpers/real.ts';
import { startKnot, type Knot } from '../helpers/knot.ts';
import { makeKey, makeMessage } from '../auth/fixtures.ts';
import { createSidecarMetrics, type SidecarMetrics } from '../../common/metrics.ts';
import type { SidecarConfig } from '../../sidecar/config.ts';
import { mailAuthCheck } from '../../sidecar/auth-wiring.ts';
import { createSigner } from '../../sidecar/auth/sign.ts';
import { startFrontDoor, type FrontDoor } from '../../sidecar/mail/frontdoor.ts';
import { Deliverer } from '../../sidecar/mail/deliver.ts';
import { embeddedHandoff } from '../../sidecar/mail/handoff.ts';
import { LmtpSender } from '../../sidecar/mail/lmtp-sender.ts';
import { TcpPool } from '../../sidecar/mail/lease.ts';
import { startMaildirLmtp, type MaildirLmtp } from '../../sidecar/maildir/server.ts';
import { GOOD_IP, SPOOF_IP, demoView, headerBlock, sendFrom, senderZones, storedFiles, storedWithSubject } from './auth-env.ts';

const AUTHSERV = 'mx.mail.test';
const log = pino({ level: 'silent' });
const rsa = makeKey('sender.example', 'rsa1', 'rsa-sha256');
const ed = makeKey('sender.example', 'ed1', 'ed25519-sha256');

let knot: Knot | undefined;
let dir = '';
let store: MaildirLmtp | undefined;
let pool: TcpPool | undefined;
let door: FrontDoor | undefined;
let metrics: SidecarMetrics;

before(async () => {
  const knotd = findBinary('knotd');
  if (!knotd) return;
  knot = await startKnot({ knotd, zones: senderZones([{ ...rsa.key, txt: rsa.txt }, { ...ed.key, txt: ed.txt }]) });
  dir = await mkdtemp(join(tmpdir(), 'mm-auth-in-'));
  // The demo policy (mail.test: auth.mode enforce) plus a domain an operator put in monitor mode.
  const view = await demoView(join(dir, 'policy'), '  - name: lab.test\n    auth: { mode: monitor }\n    default: { shards: [tokyo-1] }\n');
  const cfg = {
    shard: 'tokyo-1', node: 'tokyo-1a', controlPlane: '127.0.0.1:1', caBundle: '/dev/null', stateDir: dir, mode: 'embedded', hostname: 'tokyo-1a.tokyo-1',
    listen: { mesh: '127.0.0.1:0', smtp: '127.0.0.1:0' }, backends: { maildir: join(dir, 'mail') },
    dns: { servers: [knot.server] }, authservId: AUTHSERV, limits: { maxMessageBytes: 1024 * 1024, maxRecipients: 100, maxClients: 20 },
  } satisfies SidecarConfig;
  metrics = createSidecarMetrics();
  // Embedded handoff: every shard's copy lands in one Maildir store (placement still decides).
  store = await startMaildirLmtp({ host: '127.0.0.1', port: 0, root: cfg.backends.maildir });
  const p = new TcpPool(`127.0.0.1:${store.port}`);
  pool = p;
  const sender = new LmtpSender({ connect: () => p.acquire(), heloName: cfg.hostname });
  const deliverer = new Deliverer({ placement: view.placement, localShard: cfg.shard, local: sender, remote: sender });
  door = await startFrontDoor({
    host: '127.0.0.1', port: 0, hostname: AUTHSERV, maxSize: cfg.limits.maxMessageBytes, maxRecipients: cfg.limits.maxRecipients,
    maxClients: cfg.limits.maxClients, socketTimeoutMs: 30_000, placement: view.placement, isKnownUser: view.knownUser, log,
    handoff: embeddedHandoff(deliverer), check: mailAuthCheck(cfg, view, metrics),
  });
});

after(async () => {
  await door?.close();
  pool?.close();
  await store?.close();
  await knot?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const root = () => join(dir, 'mail');
const send = (ip: string, from: string, body: Buffer, recipients = ['alice@mail.test']) => sendFrom(door!.port, ip, { from, recipients, body });
const subject = (label: string) => `${label}-${Math.random().toString(36).slice(2, 10)}`;

/** The counter's value for one label set, as the /metrics endpoint would print it. */
async function authCount(method: string, result: string): Promise<number> {
  const m = (await metrics.registry.getSingleMetric('mailmesh_auth_results_total')!.get()).values.find((v) => v.labels.method === method && v.labels.result === result);
  return m?.value ?? 0;
}

test('spoofed From of a p=reject domain: 550 5.7.1 at end of DATA, nothing in any Maildir', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  const before = await authCount('dmarc', 'fail');
  const s = subject('spoof-reject');
  const [r] = await send(SPOOF_IP, 'ceo@sender.example', makeMessage({ from: 'ceo@sender.example', to: 'alice@mail.test', subject: s }));
  assert.equal(r.code, 550, r.message);
  assert.equal(r.enhanced, '5.7.1');
  assert.deepEqual(await storedFiles(root()), []);
  assert.equal(await authCount('dmarc', 'fail'), before + 1);
  assert.ok((await authCount('spf', 'fail')) >= 1);
});

test('spoofed From of a p=quarantine domain: delivered, the stored copy carries the quarantine header', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  const s = subject('spoof-quarantine');
  const [r] = await send(SPOOF_IP, 'ceo@quarantine.example', makeMessage({ from: 'ceo@quarantine.example', to: 'alice@mail.test', subject: s }));
  assert.equal(r.code, 250, r.message);
  const copies = await storedWithSubject(root(), s);
  assert.equal(copies.length, 1);
  const head = headerBlock(copies[0]);
  assert.match(head, /^Authentication-Results: mx\.mail\.test;[^]*?dmarc=fail[^]*?\r\nX-Mailmesh-Quarantine: dmarc=fail policy=quarantine header\.from=quarantine\.example\r\n/);
  assert.match(head, /spf=fail/);
});

test('valid SPF and DKIM (RSA-2048 + Ed25519): delivered with our Authentication-Results dmarc=pass on top', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  const before = await authCount('dkim', 'pass');
  const s = subject('signed');
  const signed = await createSigner({ keys: [rsa.key, ed.key] }).sign(makeMessage({ from: 'alice@sender.example', to: 'bob@mail.test', subject: s }), 'sender.example');
  const [r] = await send(GOOD_IP, 'alice@sender.example', signed, ['bob@mail.test']);
  assert.equal(r.code, 250, r.message);
  const copies = await storedWithSubject(root(), s);
  assert.equal(copies.length, 1);
  const text = copies[0];
  // Ours is the first field of the stored message; the signatures follow untouched.
  assert.ok(text.startsWith(`Authentication-Results: ${AUTHSERV};`), text.slice(0, 200));
  const ar = text.slice(0, text.indexOf('\r\nDKIM-Signature:'));
  assert.match(ar, /spf=pass \(mx\.mail\.test: domain of alice@sender\.example designates 127\.0\.0\.2 as permitted sender\) smtp\.mailfrom=sender\.example/);
  assert.equal(ar.match(/dkim=pass header\.d=sender\.example/g)?.length, 2);
  assert.match(ar, /dmarc=pass .*header\.from=sender\.example/);
  assert.doesNotMatch(headerBlock(text), /X-Mailmesh-Quarantine/);
  assert.ok(text.endsWith(signed.subarray(signed.indexOf('\r\n\r\n')).toString('latin1')), 'the body is delivered byte for byte');
  assert.equal(await authCount('dkim', 'pass'), before + 2);
});

test('a forged Authentication-Results claiming our authserv-id is gone from the stored copy; another authserv-id is kept', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  const s = subject('forged-ar');
  const body = makeMessage({
    from: 'ceo@quarantine.example', to: 'alice@mail.test', subject: s,
    extraHeaders: [
      'Authentication-Results: MX.Mail.Test; dmarc=pass header.from=quarantine.example',
      'Authentication-Results: "mx.mail.test"; (folded\r\n  claim) spf=pass smtp.mailfrom=ceo@quarantine.example',
      'X-Mailmesh-Quarantine: none',
      'Authentication-Results: mx.upstream.example; spf=pass smtp.mailfrom=ceo@quarantine.example',
    ],
  });
  const [r] = await send(SPOOF_IP, 'ceo@quarantine.example', body);
  assert.equal(r.code, 250, r.message);
  const [text] = await storedWithSubject(root(), s);
  const head = headerBlock(text);
  const ars = head.split(/\r\n(?![ \t])/).filter((f) => /^Authentication-Results:/i.test(f));
  assert.equal(ars.length, 2, ars.join('\n'));
  assert.match(ars[0], /^Authentication-Results: mx\.mail\.test;[^]*dmarc=fail/);
  assert.equal(ars[1], 'Authentication-Results: mx.upstream.example; spf=pass smtp.mailfrom=ceo@quarantine.example');
  assert.doesNotMatch(head, /dmarc=pass/);
  assert.doesNotMatch(head, /folded/);
  // Only our own quarantine mark: the sender's "none" is gone.
  assert.deepEqual(head.match(/^X-Mailmesh-Quarantine:.*$/gm), ['X-Mailmesh-Quarantine: dmarc=fail policy=quarantine header.from=quarantine.example']);
});

test('monitor-mode recipient domain: a p=reject spoof is delivered with dmarc=fail recorded', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  const s = subject('monitor');
  const [r] = await send(SPOOF_IP, 'ceo@sender.example', makeMessage({ from: 'ceo@sender.example', to: 'erin@lab.test', subject: s }), ['erin@lab.test']);
  assert.equal(r.code, 250, r.message);
  const copies = await storedWithSubject(root(), s);
  assert.equal(copies.length, 1);
  assert.match(headerBlock(copies[0]), /^Authentication-Results: mx\.mail\.test;[^]*?dmarc=fail[^]*?header\.from=sender\.example/);
  assert.doesNotMatch(headerBlock(copies[0]), /X-Mailmesh-Quarantine/);
  // One enforcing recipient domain is enough to enforce the whole message.
  const [mixed] = await send(SPOOF_IP, 'ceo@sender.example', makeMessage({ from: 'ceo@sender.example', subject: subject('monitor-mixed') }), ['erin@lab.test', 'alice@mail.test']);
  assert.deepEqual([mixed.code, mixed.enhanced], [550, '5.7.1']);
});

test('DNS server stopped: 451 4.7.x and nothing stored; the failure is not cached once it is back', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  const before = (await storedFiles(root())).length;
  const tempBefore = await authCount('dmarc', 'temperror');
  await knot!.stop();
  try {
    const [r] = await send(SPOOF_IP, 'ceo@down.example', makeMessage({ from: 'ceo@down.example', subject: subject('dns-down') }));
    assert.equal(r.code, 451, r.message);
    assert.match(r.enhanced ?? '', /^4\.7\.\d+$/);
    assert.equal((await storedFiles(root())).length, before);
    assert.equal(await authCount('dmarc', 'temperror'), tempBefore + 1);
  } finally {
    await knot!.start();
  }
  const [again] = await send(SPOOF_IP, 'ceo@down.example', makeMessage({ from: 'ceo@down.example', subject: subject('dns-back') }));
  assert.deepEqual([again.code, again.enhanced], [550, '5.7.1']);
  assert.equal((await storedFiles(root())).length, before);
});

test('mailmesh_auth_results_total is exported with every method', async (t) => {
  if (!requireBinary(t, 'knotd', 'knot')) return;
  const text = await metrics.registry.metrics();
  for (const [method, result] of [['spf', 'pass'], ['spf', 'fail'], ['dkim', 'pass'], ['dmarc', 'pass'], ['dmarc', 'fail'], ['dmarc', 'temperror'], ['arc', 'none']]) {
    assert.match(text, new RegExp(`^mailmesh_auth_results_total\\{method="${method}",result="${result}"\\} [1-9]`, 'm'), `${method}=${result}`);
  }
});
