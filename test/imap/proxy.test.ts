import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { requireBinary } from '../helpers/real.ts';
import { startImapProxy } from '../../sidecar/imap/proxy.ts';
import type { MailProxyHandle, MailProxyOptions } from '../../sidecar/proxy/types.ts';
import { RawClient, silentLog } from './fixtures.ts';
import { ALICE, BOB, startTwoShards, type TwoShards } from './shards.ts';

const run = promisify(execFile);

function limits(): Pick<MailProxyOptions, 'preauthTimeoutMs' | 'idleTimeoutMs' | 'maxLineLength' | 'maxLiteral' | 'maxAuthAttempts'> {
  return { preauthTimeoutMs: 10_000, idleTimeoutMs: 60_000, maxLineLength: 1024, maxLiteral: 1024, maxAuthAttempts: 3 };
}

async function imapflow(port: number, user: { address: string; password: string }, extra: Record<string, unknown> = {}): Promise<ImapFlow> {
  const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user: user.address, pass: user.password }, logger: false, ...extra });
  await client.connect();
  return client;
}

test('IMAP proxy against two real Dovecot shards', async (t) => {
  if (!requireBinary(t, 'dovecot', 'dovecot-core')) return;
  const world: TwoShards = await startTwoShards();
  const proxies: MailProxyHandle[] = [];
  let delays = 0;
  const base = (over: Partial<MailProxyOptions> = {}): MailProxyOptions => ({
    host: '127.0.0.1',
    port: 0,
    route: world.route,
    connectBackend: world.connectBackend,
    allowPlaintextLogin: true,
    failureDelay: async () => {
      delays++;
    },
    log: silentLog,
    ...limits(),
    ...over,
  });
  const start = async (over: Partial<MailProxyOptions> = {}) => {
    const p = await startImapProxy(base(over));
    proxies.push(p);
    return p;
  };
  try {
    const plain = await start();
    await world.deliver(ALICE.address, 'for alice on the local shard', 'alice body');
    await world.deliver(BOB.address, 'for bob on the remote shard', 'bob body');

    await t.test('imapflow reads a local user\'s message through the proxy', async () => {
      const c = await imapflow(plain.port, ALICE);
      try {
        const lock = await c.getMailboxLock('INBOX');
        try {
          const msg = await c.fetchOne('1', { envelope: true, source: true });
          assert.ok(msg);
          assert.equal(msg.envelope?.subject, 'for alice on the local shard');
          assert.match(msg.source!.toString(), /alice body/);
        } finally {
          lock.release();
        }
        assert.deepEqual(plain.sessions().map((s) => [s.login, s.protocol]), [[ALICE.address, 'imap']]);
      } finally {
        await c.logout();
      }
    });

    await t.test('imapflow reads a remote user\'s message through a TLS backend hop', async () => {
      const c = await imapflow(plain.port, BOB);
      try {
        const lock = await c.getMailboxLock('INBOX');
        try {
          const msg = await c.fetchOne('1', { envelope: true });
          assert.equal(msg && msg.envelope?.subject, 'for bob on the remote shard');
        } finally {
          lock.release();
        }
      } finally {
        await c.logout();
      }
    });

    await t.test('curl imap:// from 127.0.0.5: message read, Dovecot logs the real client address', async () => {
      const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--interface', '127.0.0.5', '--user', `${ALICE.address}:${ALICE.password}`,
        `imap://127.0.0.1:${plain.port}/INBOX;UID=1`]);
      assert.match(stdout, /alice body/);
      const log = await readFile(world.local.logPath, 'utf8');
      assert.match(log, /imap-login: Info: Login: user=<alice@mail\.test>, method=PLAIN, rip=127\.0\.0\.5, lip=127\.0\.0\.1/);
    });

    // Dovecot's auth penalty delays later logins from an IP with failures (keyed by the address
    // the proxy passes with ID), so failing clients use their own loopback addresses.
    await t.test('wrong password: Dovecot\'s own NO, session stays pre-auth, then a good login works', async () => {
      const c = await RawClient.connect(plain.port, '127.0.0.22');
      try {
        await c.expect(/^\* OK \[CAPABILITY .*AUTH=PLAIN/);
        const before = delays;
        c.send('a1 LOGIN alice@mail.test wrong');
        assert.equal(await c.expect(/^a1 /), 'a1 NO [AUTHENTICATIONFAILED] Authentication failed.');
        assert.equal(delays, before + 1);
        c.send(`a2 LOGIN "${ALICE.address}" "${ALICE.password}"`);
        assert.match(await c.expect(/^a2 /), /^a2 OK \[CAPABILITY IMAP4rev1 .*\] Logged in/);
        c.send('a3 SELECT INBOX');
        assert.match(await c.expect(/^a3 /), /^a3 OK \[READ-WRITE\]/);
      } finally {
        c.close();
      }
    });

    await t.test('literal login with quotes in the password, through the remote hop', async () => {
      const c = await RawClient.connect(plain.port);
      try {
        await c.expect(/^\* OK/);
        c.send(`b1 LOGIN {${BOB.address.length}}`);
        await c.expect(/^\+ /);
        c.socket.write(`${BOB.address} {${BOB.password.length}+}\r\n${BOB.password}\r\n`);
        assert.match(await c.expect(/^b1 /), /^b1 OK /);
      } finally {
        c.close();
      }
    });

    await t.test('unknown user: clean NO after the failure delay, no backend connection', async () => {
      const c = await RawClient.connect(plain.port);
      try {
        await c.expect(/^\* OK/);
        const conns = world.backendConnections;
        const before = delays;
        c.send('u1 LOGIN carol@mail.test whatever');
        assert.equal(await c.expect(/^u1 /), 'u1 NO [AUTHENTICATIONFAILED] Authentication failed.');
        assert.equal(delays, before + 1);
        assert.equal(world.backendConnections, conns);
      } finally {
        c.close();
      }
    });

    await t.test('AUTHENTICATE PLAIN: SASL-IR and continuation forms', async () => {
      const ir = Buffer.from(`\0${ALICE.address}\0${ALICE.password}`).toString('base64');
      const c1 = await RawClient.connect(plain.port);
      const c2 = await RawClient.connect(plain.port);
      try {
        await c1.expect(/^\* OK/);
        c1.send(`p1 AUTHENTICATE PLAIN ${ir}`);
        assert.match(await c1.expect(/^p1 /), /^p1 OK /);
        await c2.expect(/^\* OK/);
        c2.send('p2 AUTHENTICATE PLAIN');
        await c2.expect(/^\+ ?$/);
        c2.send(Buffer.from(`\0${BOB.address}\0${BOB.password}`).toString('base64'));
        assert.match(await c2.expect(/^p2 /), /^p2 OK /);
      } finally {
        c1.close();
        c2.close();
      }
    });

    await t.test('too many failed logins: BYE', async () => {
      const c = await RawClient.connect(plain.port, '127.0.0.23');
      await c.expect(/^\* OK/);
      for (let i = 0; i < 3; i++) {
        // Unknown users and a wrong password both count.
        c.send(i === 0 ? `f${i} LOGIN alice@mail.test bad${i}` : `f${i} LOGIN nobody${i}@mail.test bad`);
        await c.expect(new RegExp(`^f${i} NO`));
      }
      await c.expect(/^\* BYE Too many invalid authentication attempts/);
      await c.waitClosed();
    });

    await t.test('oversize literals: BAD (synchronizing) and BAD + BYE (non-synchronizing)', async () => {
      const c = await RawClient.connect(plain.port);
      try {
        await c.expect(/^\* OK/);
        c.send('l1 LOGIN {100000}');
        assert.match(await c.expect(/^l1 /), /^l1 BAD Literal too big/);
        c.send('l2 NOOP');
        assert.equal(await c.expect(/^l2 /), 'l2 OK NOOP completed.');
        c.send('l3 LOGIN alice {5000+}');
        assert.match(await c.expect(/^l3 /), /^l3 BAD Literal too big/);
        await c.expect(/^\* BYE/);
        await c.waitClosed();
      } finally {
        c.close();
      }
    });

    await t.test('line too long: BYE', async () => {
      const c = await RawClient.connect(plain.port);
      await c.expect(/^\* OK/);
      c.send(`x1 LOGIN ${'a'.repeat(5000)} b`);
      await c.expect(/^\* BYE Line too long/);
      await c.waitClosed();
    });

    await t.test('pre-auth timeout: BYE', async () => {
      const short = await start({ preauthTimeoutMs: 150 });
      const c = await RawClient.connect(short.port);
      await c.expect(/^\* OK/);
      await c.expect(/^\* BYE Disconnected for inactivity/);
      await c.waitClosed();
    });

    await t.test('idle timeout after login: BYE', async () => {
      const short = await start({ idleTimeoutMs: 200 });
      const c = await RawClient.connect(short.port);
      await c.expect(/^\* OK/);
      c.send(`i1 LOGIN ${ALICE.address} ${ALICE.password}`);
      await c.expect(/^i1 OK/);
      await c.expect(/^\* BYE Disconnected for inactivity/);
      await c.waitClosed();
    });

    await t.test('IDLE through the proxy: a delivery shows up as EXISTS', async () => {
      const c = await imapflow(plain.port, ALICE);
      try {
        await c.mailboxOpen('INBOX');
        const start = c.mailbox ? c.mailbox.exists : 0;
        const seen = new Promise<number>((resolve) => c.on('exists', (d: { count: number }) => resolve(d.count)));
        const idling = c.idle();
        await new Promise((r) => setTimeout(r, 200));
        await world.deliver(ALICE.address, 'while idling');
        const count = await Promise.race([seen, new Promise<number>((_, rej) => setTimeout(() => rej(new Error('no EXISTS')), 8000))]);
        assert.equal(count, start + 1);
        await c.noop();
        await idling.catch(() => {});
      } finally {
        await c.logout();
      }
    });

    await t.test('moved user: closeSessions sends BYE [UNAVAILABLE] and closes', async () => {
      const moved = await RawClient.connect(plain.port);
      const stays = await RawClient.connect(plain.port);
      try {
        await moved.expect(/^\* OK/);
        await stays.expect(/^\* OK/);
        moved.send(`m1 LOGIN ${ALICE.address} ${ALICE.password}`);
        stays.send(`m1 LOGIN ${BOB.address} "bob secret \\"quoted\\""`);
        await moved.expect(/^m1 OK/);
        await stays.expect(/^m1 OK/);
        moved.send('m2 SELECT INBOX');
        await moved.expect(/^m2 OK/);
        assert.equal(plain.closeSessions((login) => login === ALICE.address), 1);
        assert.equal(await moved.expect(/^\* BYE/), '* BYE [UNAVAILABLE] Mailbox moved, reconnect.');
        await moved.waitClosed();
        stays.send('m3 NOOP');
        assert.match(await stays.expect(/^m3 /), /^m3 OK/);
        assert.deepEqual(plain.sessions().map((s) => s.login), [BOB.address]);
      } finally {
        moved.close();
        stays.close();
      }
    });

    await t.test('STARTTLS: plaintext LOGIN refused, STARTTLS then LOGIN works; curl --ssl-reqd', async () => {
      const ctx = tls.createSecureContext({ cert: world.pki.certPem, key: world.pki.keyPem });
      const secure = await start({ allowPlaintextLogin: false, tls: { secureContext: () => ctx } });
      const c = await RawClient.connect(secure.port);
      try {
        const greeting = await c.expect(/^\* OK/);
        assert.match(greeting, /STARTTLS/);
        assert.match(greeting, /LOGINDISABLED/);
        assert.doesNotMatch(greeting, /AUTH=PLAIN/);
        c.send(`s1 LOGIN ${ALICE.address} ${ALICE.password}`);
        assert.equal(await c.expect(/^s1 /), 's1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections.');
        c.send('s2 STARTTLS');
        await c.expect(/^s2 OK/);
        await c.startTls(world.pki.caPem);
        c.send('s3 CAPABILITY');
        const caps = await c.expect(/^\* CAPABILITY/);
        assert.match(caps, /AUTH=PLAIN/);
        assert.doesNotMatch(caps, /STARTTLS|LOGINDISABLED/);
        c.send(`s4 LOGIN ${ALICE.address} ${ALICE.password}`);
        assert.match(await c.expect(/^s4 /), /^s4 OK/);
      } finally {
        c.close();
      }
      const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--ssl-reqd', '--cacert', world.pki.caPath, '--user', `${BOB.address}:${BOB.password}`,
        `imap://localhost:${secure.port}/INBOX;UID=1`], { env: { ...process.env, no_proxy: '*' } });
      assert.match(stdout, /bob body/);
    });

    await t.test('implicit TLS (993 style)', async () => {
      const ctx = tls.createSecureContext({ cert: world.pki.certPem, key: world.pki.keyPem });
      const imaps = await start({ allowPlaintextLogin: false, implicitTls: true, tls: { secureContext: () => ctx } });
      const c = await imapflow(imaps.port, ALICE, { secure: true, tls: { ca: world.pki.caPem, servername: 'localhost' } });
      try {
        const status = await c.status('INBOX', { messages: true });
        assert.ok(status && (status.messages ?? 0) >= 1);
      } finally {
        await c.logout();
      }
    });
  } finally {
    for (const p of proxies) await p.close();
    await world.stop();
  }
});
