// Before the first policy snapshot (fresh node, control plane down, no cache) nothing can be
// placed: the front door must defer recipients with 4xx, never refuse them for good.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { pino } from 'pino';
import type { TrustBundle } from '../../ca/bundle.ts';
import { startFrontDoor } from '../../sidecar/mail/frontdoor.ts';
import { MeshView } from '../../sidecar/view.ts';
import { MailClient } from '../../sidecar/lmtp/client.ts';

test('front door before the first snapshot: RCPT is 451 4.3.0, not 501 5.1.3', async () => {
  const view = new MeshView('mail.test', {} as TrustBundle);
  let handed = 0;
  const door = await startFrontDoor({
    host: '127.0.0.1', port: 0, hostname: 'mx.mail.test', maxSize: 1 << 16, maxRecipients: 10, maxClients: 5, socketTimeoutMs: 10_000,
    placement: view.placement, isKnownUser: view.knownUser, log: pino({ level: 'silent' }),
    handoff: async (_envelope, message) => {
      if (await message) handed++;
      return { code: 250, enhanced: '2.0.0', message: 'ok' };
    },
  });
  try {
    const socket = net.connect(door.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const client = await MailClient.open(socket, { lmtp: false, heloName: 'sender.test', timeoutMs: 10_000 });
    const res = await client.send({ from: 'x@sender.test', recipients: ['alice@mail.test'], body: Buffer.from('Subject: hi\r\n\r\nhi\r\n') });
    assert.equal(res.recipients[0].code, 451, res.recipients[0].message);
    assert.equal(res.recipients[0].enhanced, '4.3.0');
    assert.equal(handed, 0);
    await client.quit();
  } finally {
    await door.close();
  }
});

test('socketmap lookups before the first snapshot: TEMP, not NOTFOUND', async () => {
  const { makePostfixLookups } = await import('../../sidecar/postfix/lookups.ts');
  const view = new MeshView('mail.test', {} as TrustBundle);
  const lookup = makePostfixLookups({ route: view.placement, isKnownUser: view.knownUser, localShard: 'tokyo-1', localLmtp: '127.0.0.1:24', egress: '127.0.0.1:10030' });
  assert.equal((await lookup('transport', 'alice@mail.test')).kind, 'temp');
  assert.equal((await lookup('recipients', 'alice@mail.test')).kind, 'temp');
});
