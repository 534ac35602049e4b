// Issue 10, outbound, end to end (DESIGN.md mail path step 6): a REAL private Postfix set up the
// FILTER_README after-queue way passes outbound mail to the sidecar's content filter
// (`startFilter` with `outboundSigner(cfg)` and `postfixHandoff` re-injection), which DKIM-signs
// it (RSA-2048 + Ed25519 keys from files) and re-injects it into a second smtpd with
// `content_filter=` cleared; Postfix then relays it to "the internet", a recording SMTP sink on
// loopback. OpenDKIM (independent of mailauth) verifies what reached the sink against the keys
// published in a real knotd.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SMTPServer } from 'smtp-server';
import { findBinary, requireBinary } from '../helpers/real.ts';
import { startKnot, type Knot } from '../helpers/knot.ts';
import { freePort, startPostfix, type PostfixInstance } from '../helpers/postfix.ts';
import { opendkimVerifier } from '../helpers/opendkim.ts';
import { makeKey, makeMessage } from '../auth/fixtures.ts';
import type { SidecarConfig } from '../../sidecar/config.ts';
import { outboundSigner } from '../../sidecar/auth-wiring.ts';
import { createResolver } from '../../sidecar/auth/resolver.ts';
import { verifyMessage } from '../../sidecar/auth/verify.ts';
import { startFilter } from '../../sidecar/mail/filter.ts';
import { postfixHandoff } from '../../sidecar/mail/handoff.ts';
import { MailClient } from '../../sidecar/lmtp/client.ts';
import { headerBlock, senderZones } from './auth-env.ts';

const log = pino({ level: 'silent' });
const rsa = makeKey('sender.example', 'rsa1', 'rsa-sha256');
const ed = makeKey('sender.example', 'ed1', 'ed25519-sha256');
const ZONES = senderZones([{ ...rsa.key, txt: rsa.txt }, { ...ed.key, txt: ed.txt }]);

interface Received {
  from: string;
  to: string[];
  data: string;
}

let dir = '';
let knot: Knot | undefined;
let postfix: PostfixInstance | undefined;
let sink: SMTPServer | undefined;
let sinkPort = 0;
const atSink: Received[] = [];
let filterPort = 0;
let reinjectPort = 0;
let cfg: SidecarConfig;
let filter: { port: number; close(): Promise<void> } | undefined;
let reinject: ReturnType<typeof postfixHandoff> | undefined;

/** Start (or restart, on the same port) the sidecar's outbound filter re-injecting into `target`. */
async function startOurFilter(target: string): Promise<void> {
  reinject = postfixHandoff(target, cfg.hostname);
  filter = await startFilter({ host: '127.0.0.1', port: filterPort, hostname: cfg.hostname, maxSize: cfg.limits.maxMessageBytes, sign: await outboundSigner(cfg), reinject, log });
  filterPort = filter.port;
}

async function stopOurFilter(): Promise<void> {
  reinject?.close();
  await filter?.close();
  filter = undefined;
}

function available(t: TestContext): boolean {
  if (!requireBinary(t, 'postfix') || !requireBinary(t, 'knotd', 'knot')) return false;
  if (process.getuid?.() !== 0) {
    t.skip('a private Postfix needs root');
    return false;
  }
  return true;
}

before(async () => {
  const knotd = findBinary('knotd');
  if (!knotd || !findBinary('postfix') || process.getuid?.() !== 0) return;
  dir = await mkdtemp(join(tmpdir(), 'mm-auth-out-'));
  knot = await startKnot({ knotd, zones: ZONES });
  await writeFile(join(dir, 'rsa1.key'), rsa.key.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'ed1.key'), ed.key.privateKeyPem, { mode: 0o600 });
  cfg = {
    shard: 'tokyo-1', node: 'tokyo-1a', controlPlane: '127.0.0.1:1', caBundle: '/dev/null', stateDir: dir, mode: 'postfix', hostname: 'tokyo-1a.tokyo-1',
    listen: { mesh: '127.0.0.1:0', filter: '127.0.0.1:0' }, backends: {}, dns: { servers: [knot.server] },
    limits: { maxMessageBytes: 1024 * 1024, maxRecipients: 100, maxClients: 20 },
    dkimKeys: [
      { domain: 'sender.example', selector: 'rsa1', algorithm: 'rsa-sha256', keyFile: join(dir, 'rsa1.key') },
      { domain: 'sender.example', selector: 'ed1', algorithm: 'ed25519-sha256', keyFile: join(dir, 'ed1.key') },
    ],
  };

  // "The internet": every message Postfix relays out lands here.
  sink = new SMTPServer({
    authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        atSink.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks).toString('latin1') });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => sink!.listen(0, '127.0.0.1', resolve));
  sinkPort = (sink.server.address() as net.AddressInfo).port;

  reinjectPort = await freePort();
  await startOurFilter(`127.0.0.1:${reinjectPort}`);
  postfix = await startPostfix({
    relayDomains: [],
    transportMaps: '',
    extraMainCf: {
      // FILTER_README "advanced content filter": everything the public smtpd queues goes through
      // the filter first; address mappings happen once, after it.
      content_filter: `scan:[127.0.0.1]:${filterPort}`,
      receive_override_options: 'no_address_mappings',
      relayhost: `[127.0.0.1]:${sinkPort}`,
      default_transport: 'smtp',
      smtp_tls_security_level: 'none',
    },
    extraMasterCf: [
      'scan unix - - n - 10 smtp',
      '  -o smtp_send_xforward_command=yes',
      '  -o disable_mime_output_conversion=yes',
      '  -o smtp_generic_maps=',
      '  -o smtp_connection_cache_on_demand=no',
      `127.0.0.1:${reinjectPort} inet n - n - 10 smtpd`,
      '  -o content_filter=',
      '  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters',
      '  -o smtpd_helo_restrictions=',
      '  -o smtpd_client_restrictions=',
      '  -o smtpd_sender_restrictions=',
      '  -o smtpd_relay_restrictions=',
      '  -o smtpd_recipient_restrictions=permit_mynetworks,reject',
      '  -o mynetworks=127.0.0.0/8',
      '  -o smtpd_authorized_xforward_hosts=127.0.0.0/8',
    ].join('\n'),
  });
});

after(async () => {
  await stopOurFilter();
  await postfix?.stop();
  await new Promise<void>((resolve) => (sink ? sink.close(() => resolve()) : resolve()));
  await knot?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Submit a message to Postfix's public smtpd; returns its DATA reply. */
async function submit(from: string, to: string, body: Buffer): Promise<{ code: number; message: string }> {
  const socket = net.connect(postfix!.smtpPort, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const client = await MailClient.open(socket, { lmtp: false, heloName: 'client.mail.test', timeoutMs: 30_000 });
  try {
    const [r] = (await client.send({ from, recipients: [to], body })).recipients;
    return r;
  } finally {
    await client.quit().catch(() => {});
    socket.destroy();
  }
}

/** Bounded wait for the sink to record the message with `subject`. */
async function arrival(subject: string, ms = 30_000): Promise<Received> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = atSink.find((r) => r.data.includes(`\r\nSubject: ${subject}\r\n`));
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`${subject} did not reach the sink within ${ms} ms; maillog:\n${(await postfix!.maillog()).split('\n').slice(-15).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100)); // polling a real Postfix's delivery, bounded above
  }
}

/** The message with only the DKIM-Signature fields whose s= is `selector` (others removed). */
function onlySignature(message: string, selector: string): Buffer {
  const end = message.indexOf('\r\n\r\n');
  const fields = message.slice(0, end + 2).split(/\r\n(?![ \t])/).filter(Boolean);
  const kept = fields.filter((f) => !/^DKIM-Signature:/i.test(f) || new RegExp(`[;\\s]s=${selector};`).test(f.replace(/\r\n[ \t]+/g, ' ')));
  return Buffer.from(kept.join('\r\n') + '\r\n' + message.slice(end + 2), 'latin1');
}

const subject = (label: string) => `${label}-${Math.random().toString(36).slice(2, 10)}`;

test('outbound mail through a real Postfix after-queue filter reaches the internet DKIM-signed (RSA + Ed25519), and OpenDKIM accepts both', async (t) => {
  if (!available(t)) return;
  const s = subject('outbound');
  const r = await submit('alice@sender.example', 'bob@remote.example', makeMessage({ from: 'Alice <alice@sender.example>', to: 'bob@remote.example', subject: s }));
  assert.equal(r.code, 250, r.message);
  const got = await arrival(s);
  assert.deepEqual([got.from, got.to], ['alice@sender.example', ['bob@remote.example']]);
  const head = headerBlock(got.data);
  const sigs = head.split(/\r\n(?![ \t])/).filter((f) => /^DKIM-Signature:/i.test(f)).map((f) => f.replace(/\r\n[ \t]+/g, ' '));
  assert.equal(sigs.length, 2, head);
  assert.ok(sigs.some((f) => /\ba=rsa-sha256;/.test(f) && /\bd=sender\.example;/.test(f) && /\bs=rsa1;/.test(f)), sigs.join('\n'));
  assert.ok(sigs.some((f) => /\ba=ed25519-sha256;/.test(f) && /\bd=sender\.example;/.test(f) && /\bs=ed1;/.test(f)), sigs.join('\n'));
  // The signed copy went through Postfix twice: the re-injection smtpd's Received is above the signatures.
  assert.match(head, /^Received: from [^]*?\r\nDKIM-Signature:/);

  // Our own verifier, against the real knotd: both signatures pass.
  const v = await verifyMessage({ message: Buffer.from(got.data, 'latin1'), ip: '127.0.0.2', helo: 'mx.sender.example', mailFrom: 'alice@sender.example', resolver: createResolver({ servers: [knot!.server] }), authservId: 'mx.remote.example' });
  assert.deepEqual(v.dkim.map((d) => [d.selector, d.result]).sort(), [['ed1', 'pass'], ['rsa1', 'pass']]);

  // An independent verifier (OpenDKIM), each signature on its own, plus a tampered copy.
  if (!requireBinary(t, 'opendkim-testmsg', 'opendkim-tools') || !requireBinary(t, 'kdig', 'knot-dnsutils') || !requireBinary(t, 'unshare', 'util-linux')) return;
  const odk = await opendkimVerifier(findBinary('knotd')!, ZONES, 'example');
  try {
    const whole = await odk.check('whole', Buffer.from(got.data, 'latin1'));
    assert.equal(whole.status, 0, `opendkim-testmsg: ${whole.stderr}`);
    for (const selector of ['rsa1', 'ed1']) {
      const one = onlySignature(got.data, selector);
      assert.equal(one.toString().match(/^DKIM-Signature:/gim)?.length, 1);
      const ok = await odk.check(`ok-${selector}`, one);
      assert.equal(ok.status, 0, `opendkim-testmsg rejected the ${selector} signature as relayed by Postfix: ${ok.stderr}`);
      const bad = await odk.check(`bad-${selector}`, Buffer.from(one.toString('latin1').replace('this is a test', 'this is a tesT'), 'latin1'));
      assert.notEqual(bad.status, 0, 'a tampered copy must fail: proof the verifier really checked');
      assert.match(bad.stderr, /bad signature/i);
    }
  } finally {
    await odk.close();
  }
});

test('mail from a domain without a key passes through unsigned', async (t) => {
  if (!available(t)) return;
  const s = subject('nokey');
  const r = await submit('carol@nokey.example', 'bob@remote.example', makeMessage({ from: 'carol@nokey.example', to: 'bob@remote.example', subject: s }));
  assert.equal(r.code, 250, r.message);
  const got = await arrival(s);
  assert.doesNotMatch(headerBlock(got.data), /^DKIM-Signature:/im);
  // It did go through the filter: two Received fields (public smtpd, then re-injection smtpd).
  assert.equal(headerBlock(got.data).match(/^Received: /gm)?.length, 2);
});

test('re-injection failing: the filter answers 4xx, Postfix keeps the message queued, and delivers it signed once the filter works again', async (t) => {
  if (!available(t)) return;
  // The filter restarts on the same port, now re-injecting into a port nobody listens on.
  await stopOurFilter();
  await startOurFilter(`127.0.0.1:${await freePort()}`);
  const s = subject('requeue');
  const r = await submit('alice@sender.example', 'bob@remote.example', makeMessage({ from: 'alice@sender.example', to: 'bob@remote.example', subject: s }));
  assert.equal(r.code, 250, r.message); // Postfix's queue has it; the filter runs after the queue
  const deadline = Date.now() + 30_000;
  let deferred;
  for (;;) {
    // The delivery agent's 451 shows in the active queue first; the queue manager then moves the
    // message to the deferred queue: wait for that, not for the reason alone.
    deferred = (await postfix!.queue()).find((q) => q.queue_name === 'deferred' && q.recipients.some((x) => /\b451 4\.3\.0\b/.test(x.delay_reason ?? '')));
    if (deferred) break;
    if (Date.now() > deadline) throw new Error(`no deferred message with the filter's 451 in the queue: ${JSON.stringify(await postfix!.queue())}`);
    await new Promise((res) => setTimeout(res, 100)); // polling Postfix's queue, bounded above
  }
  assert.equal(deferred.sender, 'alice@sender.example');
  assert.match(deferred.recipients[0].delay_reason ?? '', /local queue unavailable/);
  assert.equal(atSink.filter((m) => m.data.includes(s)).length, 0, 'nothing reached the internet unsigned');

  // The filter is healthy again: Postfix's next attempt delivers it, signed, exactly once.
  await stopOurFilter();
  await startOurFilter(`127.0.0.1:${reinjectPort}`);
  await postfix!.flush();
  const got = await arrival(s);
  assert.equal(headerBlock(got.data).match(/^DKIM-Signature:/gim)?.length, 2);
  const empty = Date.now() + 30_000;
  while ((await postfix!.queue()).length > 0) {
    if (Date.now() > empty) throw new Error(`queue not empty: ${JSON.stringify(await postfix!.queue())}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(atSink.filter((m) => m.data.includes(`Subject: ${s}`)).length, 1);
});
