// Issue 7: mailbox access through any node. A real client logs in at a NON-owner node's public
// IMAP/POP3 proxy (STARTTLS with the demo CA's public certificate) and reads mail that came in
// through the mail path; the session is carried over the mesh to the owner's Dovecot, which logs
// the real client address (127.0.0.5) because it trusts the proxy's IMAP ID / POP3 XCLIENT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireBinary } from '../helpers/real.ts';
import { copiesOf, eventually, meshFor, ownerOf, passwordOf, proxyClient, smtpSend, tokenMessage } from './lib.ts';

const run = promisify(execFile);
const BOB = 'bob@mail.test'; // osaka-1

test('IMAP and POP3 through a non-owner node to the owner\'s real Dovecot', { timeout: 240_000 }, async (t) => {
  if (!requireBinary(t, 'postfix') || !requireBinary(t, 'dovecot', 'dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd') || !requireBinary(t, 'curl')) return;
  const mesh = await meshFor('real');
  const { info } = mesh;
  const shard = (id: string) => info.shards.find((s) => s.id === id)!;
  const caPath = join(info.ca, 'bundle.pem');
  const ca = await readFile(caPath);
  const bob = { address: BOB, password: passwordOf(info, BOB) };
  // Frankfurt is not bob's shard: its proxies must carry him to osaka over the mesh.
  const door = shard('frankfurt-1');
  const owner = shard(ownerOf(info, BOB));
  const deliver = async (label: string) => {
    const m = tokenMessage([BOB], label);
    const replies = await smtpSend(shard('tokyo-1').smtp, [BOB], m.body);
    assert.equal(replies[0].code, 250, replies[0].text);
    return m.token;
  };
  try {
    assert.equal(owner.id, 'osaka-1');
    const first = await deliver('read-me');
    assert.ok(await eventually(async () => (await copiesOf(info, first)).length === 1, 30_000), 'delivered through the mail path');

    await t.test('imapflow from 127.0.0.5 via frankfurt reads bob\'s message; osaka\'s Dovecot logs rip=127.0.0.5', async () => {
      const c = proxyClient(door.imap!, bob, ca, '127.0.0.5');
      await c.connect();
      try {
        assert.ok(c.secureConnection || c.tls, 'STARTTLS was used');
        const lock = await c.getMailboxLock('INBOX');
        try {
          const uids = await c.search({ subject: first }, { uid: true });
          assert.equal((uids || []).length, 1);
          const msg = await c.fetchOne(String((uids as number[])[0]), { envelope: true, source: true }, { uid: true });
          assert.ok(msg);
          assert.equal(msg.envelope?.subject, first);
          assert.match(msg.source!.toString(), new RegExp(`body of ${first}`));
        } finally {
          lock.release();
        }
      } finally {
        await c.logout();
      }
      const log = await readFile(owner.dovecot!.log, 'utf8');
      assert.match(log, /imap-login: Info: Login: user=<bob@mail\.test>, method=PLAIN, rip=127\.0\.0\.5/);
    });

    await t.test('curl imap:// and pop3:// with STARTTLS (--ssl-reqd, demo CA) via frankfurt', async () => {
      const port = (a: string) => a.slice(a.lastIndexOf(':') + 1);
      const common = ['-sS', '--max-time', '20', '--ssl-reqd', '--cacert', caPath, '--interface', '127.0.0.5', '--user', `${bob.address}:${bob.password}`];
      const imapPort = port(door.imap!);
      const imap = await run('curl', [...common, '--resolve', `localhost:${imapPort}:127.0.0.1`, `imap://localhost:${imapPort}/INBOX;UID=1`]);
      assert.match(imap.stdout, new RegExp(`Subject: ${first}`));
      const pop3Port = port(door.pop3!);
      const pop3 = await run('curl', [...common, '--resolve', `localhost:${pop3Port}:127.0.0.1`, `pop3://localhost:${pop3Port}/1`]);
      assert.match(pop3.stdout, new RegExp(`Subject: ${first}`));
      const log = await readFile(owner.dovecot!.log, 'utf8');
      assert.match(log, /pop3-login: Info: Login: user=<bob@mail\.test>, method=PLAIN, rip=127\.0\.0\.5/);
    });

    await t.test('wrong password: the owner Dovecot refuses (NO), unknown user: a clean NO from the proxy', async () => {
      const wrong = proxyClient(door.imap!, { address: BOB, password: 'not-the-password' }, ca, '127.0.0.5');
      const err = await wrong.connect().then(() => undefined, (e: Error & { authenticationFailed?: boolean; responseText?: string }) => e);
      assert.ok(err, 'login must fail');
      assert.equal(err.authenticationFailed, true, String(err));
      assert.match(err.responseText ?? '', /Authentication failed/);
      // The refusal came from osaka's Dovecot: it checked the password (auth_verbose logs it).
      assert.ok(await eventually(async () => /passwd-file\(bob@mail\.test,127\.0\.0\.5[^)]*\): (Password mismatch|password mismatch)/i.test(await readFile(owner.dovecot!.log, 'utf8')), 10_000),
        'osaka\'s Dovecot logged the password mismatch for 127.0.0.5');
      wrong.close();

      const unknown = proxyClient(door.imap!, { address: 'nobody@mail.test', password: 'x' }, ca, '127.0.0.5');
      const e2 = await unknown.connect().then(() => undefined, (e: Error & { authenticationFailed?: boolean; responseText?: string }) => e);
      assert.ok(e2, 'login must fail');
      assert.equal(e2.authenticationFailed, true, String(e2));
      assert.match(e2.responseText ?? '', /Authentication failed/);
      unknown.close();
    });

    await t.test('IDLE through the proxy sees a new delivery', async () => {
      // Another client address: Dovecot's auth penalty delays logins from 127.0.0.5 after the failures above.
      const c = proxyClient(door.imap!, bob, ca, '127.0.0.6');
      await c.connect();
      try {
        const lock = await c.getMailboxLock('INBOX');
        try {
          const before = (c.mailbox && typeof c.mailbox === 'object' ? c.mailbox.exists : 0);
          const seen = new Promise<number>((resolve) => c.on('exists', (d: { count: number }) => resolve(d.count)));
          void c.idle();
          const token = await deliver('idle');
          let timer: NodeJS.Timeout | undefined;
          const t0 = Date.now();
          const count = await Promise.race([seen, new Promise<number>((_, reject) => (timer = setTimeout(() => reject(new Error('no EXISTS within 30 s')), 30_000)))]).finally(() => clearTimeout(timer));
          assert.ok(Date.now() - t0 < 30_000);
          assert.equal(count, before + 1);
          // The next command ends IDLE (imapflow sends DONE first).
          const uids = await c.search({ subject: token }, { uid: true });
          assert.equal((uids || []).length, 1);
        } finally {
          lock.release();
        }
      } finally {
        await c.logout();
      }
    });
  } finally {
    await mesh.cleanup();
  }
});
