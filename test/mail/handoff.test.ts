// Postfix re-injection: the sender hears one reply for the whole message, so Postfix must queue
// it for all recipients or for none. If Postfix defers one RCPT (e.g. a socketmap TEMP) and queued
// the others, the sender's retry of our 451 would queue a second copy for those others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SMTPServer } from 'smtp-server';
import { postfixHandoff } from '../../sidecar/mail/handoff.ts';

async function fakePostfix(refuse: Record<string, number>) {
  let queued = 0;
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], logger: false,
    onRcptTo(address, _session, cb) {
      const code = refuse[address.address];
      if (code) return cb(Object.assign(new Error(`${code >= 500 ? '5' : '4'}.3.0 refused`), { responseCode: code }));
      cb();
    },
    onData(stream, _session, cb) {
      stream.resume();
      stream.on('end', () => {
        queued++;
        cb(null, '2.0.0 Ok: queued as ABC123');
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.server.address() as { port: number }).port, queued: () => queued, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const body = Buffer.from('Subject: hi\r\n\r\nhi\r\n');

test('postfix handoff: a deferred RCPT means nothing is queued, and the sender hears 451', async () => {
  const pf = await fakePostfix({ 'carol@mail.test': 451 });
  const handoff = postfixHandoff(`127.0.0.1:${pf.port}`, 'mx.test');
  try {
    const reply = await handoff({ from: 'a@sender.test', recipients: ['alice@mail.test', 'carol@mail.test'] }, body);
    assert.equal(reply.code, 451, reply.message);
    assert.equal(pf.queued(), 0, 'Postfix queued a copy the sender will send again');
    // The pooled connection carries the next message normally (the open transaction was reset).
    const ok = await handoff({ from: 'a@sender.test', recipients: ['alice@mail.test'] }, body);
    assert.equal(ok.code, 250, ok.message);
    assert.match(ok.message, /queued as ABC123/);
    assert.equal(pf.queued(), 1);
  } finally {
    handoff.close();
    await pf.close();
  }
});

test('postfix handoff: all recipients accepted → Postfix reply; a permanent refusal alone stays 5xx', async () => {
  const pf = await fakePostfix({ 'nobody@mail.test': 550 });
  const handoff = postfixHandoff(`127.0.0.1:${pf.port}`, 'mx.test');
  try {
    const reply = await handoff({ from: 'a@sender.test', recipients: ['nobody@mail.test'] }, body);
    assert.equal(reply.code, 550);
    assert.equal(pf.queued(), 0);
  } finally {
    handoff.close();
    await pf.close();
  }
});
