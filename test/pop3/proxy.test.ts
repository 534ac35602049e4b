import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { requireBinary } from '../helpers/real.ts';
import { startPop3Proxy } from '../../sidecar/pop3/proxy.ts';
import type { MailProxyHandle, MailProxyOptions } from '../../sidecar/proxy/types.ts';
import { RawClient, silentLog } from '../imap/fixtures.ts';
import { ALICE, BOB, startTwoShards, type TwoShards } from '../imap/shards.ts';

const run = promisify(execFile);

test('POP3 proxy against two real Dovecot shards', async (t) => {
  if (!requireBinary(t, 'dovecot', 'dovecot-core')) return;
  const world: TwoShards = await startTwoShards();
  const proxies: MailProxyHandle[] = [];
  let delays = 0;
  const start = async (over: Partial<MailProxyOptions> = {}) => {
    const p = await startPop3Proxy({
      host: '127.0.0.1',
      port: 0,
      route: world.route,
      connectBackend: world.connectBackend,
      allowPlaintextLogin: true,
      failureDelay: async () => {
        delays++;
      },
      log: silentLog,
      preauthTimeoutMs: 10_000,
      idleTimeoutMs: 60_000,
      maxLineLength: 512,
      maxLiteral: 0,
      maxAuthAttempts: 2,
      ...over,
    });
    proxies.push(p);
    return p;
  };
  try {
    const plain = await start();
    await world.deliver(ALICE.address, 'pop for alice', 'alice pop body');
    await world.deliver(BOB.address, 'pop for bob', 'bob pop body');

    await t.test('curl pop3:// from 127.0.0.5 reads local and remote users; Dovecot logs the client address', async () => {
      const a = await run('curl', ['-sS', '--max-time', '10', '--interface', '127.0.0.5', '--user', `${ALICE.address}:${ALICE.password}`, `pop3://127.0.0.1:${plain.port}/1`]);
      assert.match(a.stdout, /alice pop body/);
      const b = await run('curl', ['-sS', '--max-time', '10', '--user', `${BOB.address}:${BOB.password}`, `pop3://127.0.0.1:${plain.port}/1`]);
      assert.match(b.stdout, /bob pop body/);
      const log = await readFile(world.local.logPath, 'utf8');
      assert.match(log, /pop3-login: Info: Login: user=<alice@mail\.test>, method=PLAIN, rip=127\.0\.0\.5/);
    });

    await t.test('CAPA, USER/PASS, STAT, RETR, QUIT through the proxy', async () => {
      const c = await RawClient.connect(plain.port);
      try {
        assert.equal(await c.expect(/^\+OK/), '+OK mailmesh ready.');
        c.send('CAPA');
        await c.expect(/^\+OK/);
        const caps: string[] = [];
        for (let l = await c.expect(/.*/); l !== '.'; l = await c.expect(/.*/)) caps.push(l);
        assert.ok(caps.includes('USER') && caps.includes('SASL PLAIN'));
        assert.ok(!caps.includes('STLS'));
        c.send(`USER ${ALICE.address}`);
        await c.expect(/^\+OK/);
        c.send(`PASS ${ALICE.password}`);
        assert.match(await c.expect(/^[+-]/), /^\+OK Logged in/);
        assert.deepEqual(plain.sessions().map((s) => [s.login, s.protocol]), [[ALICE.address, 'pop3']]);
        c.send('STAT');
        assert.match(await c.expect(/^[+-]/), /^\+OK 1 \d+$/);
        c.send('RETR 1');
        await c.expect(/^Subject: pop for alice$/);
        await c.expect(/^\.$/);
        c.send('QUIT');
        await c.expect(/^\+OK Logging out/);
        await c.waitClosed();
      } finally {
        c.close();
      }
    });

    await t.test('AUTH PLAIN with initial response (remote user) and continuation form', async () => {
      const c1 = await RawClient.connect(plain.port);
      const c2 = await RawClient.connect(plain.port);
      try {
        await c1.expect(/^\+OK/);
        c1.send(`AUTH PLAIN ${Buffer.from(`\0${BOB.address}\0${BOB.password}`).toString('base64')}`);
        assert.match(await c1.expect(/^[+-]/), /^\+OK Logged in/);
        await c2.expect(/^\+OK/);
        c2.send('AUTH PLAIN');
        await c2.expect(/^\+ ?$/);
        c2.send(Buffer.from(`\0${ALICE.address}\0${ALICE.password}`).toString('base64'));
        assert.match(await c2.expect(/^[+-]/), /^\+OK Logged in/);
      } finally {
        c1.close();
        c2.close();
      }
    });

    await t.test('wrong password gets Dovecot\'s -ERR; unknown user the same words without a backend; limit closes', async () => {
      const c = await RawClient.connect(plain.port, '127.0.0.32');
      try {
        await c.expect(/^\+OK/);
        const conns = world.backendConnections;
        c.send('USER carol@mail.test');
        await c.expect(/^\+OK/);
        c.send('PASS x');
        const unknown = await c.expect(/^-ERR/);
        assert.equal(world.backendConnections, conns);
        c.send(`USER ${ALICE.address}`);
        await c.expect(/^\+OK/);
        c.send('PASS wrong');
        const wrong = await c.expect(/^-ERR/);
        assert.equal(wrong, '-ERR [AUTH] Authentication failed.');
        assert.equal(unknown, wrong);
        assert.equal(delays, 2);
        await c.waitClosed();
      } finally {
        c.close();
      }
    });

    await t.test('moved user: closeSessions sends -ERR [SYS/TEMP] and closes', async () => {
      const c = await RawClient.connect(plain.port);
      try {
        await c.expect(/^\+OK/);
        c.send(`USER ${ALICE.address}`);
        await c.expect(/^\+OK/);
        c.send(`PASS ${ALICE.password}`);
        await c.expect(/^\+OK Logged in/);
        c.send('LIST');
        await c.expect(/^\.$/);
        assert.equal(plain.closeSessions((l) => l === ALICE.address), 1);
        assert.equal(await c.expect(/^-ERR/), '-ERR [SYS/TEMP] Mailbox moved, reconnect.');
        await c.waitClosed();
      } finally {
        c.close();
      }
    });

    await t.test('pre-auth timeout and line limit', async () => {
      const short = await start({ preauthTimeoutMs: 150 });
      const c = await RawClient.connect(short.port);
      await c.expect(/^\+OK/);
      await c.expect(/^-ERR Disconnected for inactivity/);
      await c.waitClosed();
      const d = await RawClient.connect(plain.port);
      await d.expect(/^\+OK/);
      d.send(`USER ${'x'.repeat(2000)}`);
      await d.expect(/^-ERR Line too long/);
      await d.waitClosed();
    });

    await t.test('STLS: USER refused before, works after; curl --ssl-reqd; implicit TLS', async () => {
      const ctx = tls.createSecureContext({ cert: world.pki.certPem, key: world.pki.keyPem });
      const secure = await start({ allowPlaintextLogin: false, tls: { secureContext: () => ctx } });
      const c = await RawClient.connect(secure.port);
      try {
        await c.expect(/^\+OK/);
        c.send('CAPA');
        await c.expect(/^\+OK/);
        const caps: string[] = [];
        for (let l = await c.expect(/.*/); l !== '.'; l = await c.expect(/.*/)) caps.push(l);
        assert.ok(caps.includes('STLS') && !caps.includes('USER'));
        c.send(`USER ${ALICE.address}`);
        assert.match(await c.expect(/^-ERR/), /^-ERR \[AUTH\] Plaintext authentication disallowed/);
        c.send('STLS');
        await c.expect(/^\+OK Begin TLS/);
        await c.startTls(world.pki.caPem);
        c.send(`USER ${ALICE.address}`);
        await c.expect(/^\+OK/);
        c.send(`PASS ${ALICE.password}`);
        assert.match(await c.expect(/^[+-]/), /^\+OK Logged in/);
      } finally {
        c.close();
      }
      const r = await run('curl', ['-sS', '--max-time', '10', '--ssl-reqd', '--cacert', world.pki.caPath, '--user', `${BOB.address}:${BOB.password}`, `pop3://localhost:${secure.port}/1`]);
      assert.match(r.stdout, /bob pop body/);
      const pop3s = await start({ allowPlaintextLogin: false, implicitTls: true, tls: { secureContext: () => ctx } });
      const s = await run('curl', ['-sS', '--max-time', '10', '--cacert', world.pki.caPath, '--user', `${ALICE.address}:${ALICE.password}`, `pop3s://localhost:${pop3s.port}/1`]);
      assert.match(s.stdout, /alice pop body/);
    });
  } finally {
    for (const p of proxies) await p.close();
    await world.stop();
  }
});
