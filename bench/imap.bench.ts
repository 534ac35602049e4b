import { chown, mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { result, rate, type BenchFn, type BenchResult } from './harness.ts';
import { findBinary } from '../test/helpers/real.ts';
import { startDovecot } from '../test/helpers/dovecot.ts';
import { makeTestPki, silentLog, startTlsSplice } from '../test/imap/fixtures.ts';
import { startImapProxy } from '../sidecar/imap/proxy.ts';

const USER = { address: 'bench@mail.test', password: 'bench-secret' };

/** Write `n` messages of about `size` bytes straight into a Maildir (faster than LMTP for setup). */
async function fillMaildir(maildir: string, n: number, size: number): Promise<void> {
  // The home (parent of Maildir) must belong to the mail uid too: Dovecot writes there.
  for (const sub of ['..', '', 'new', 'cur', 'tmp']) {
    await mkdir(join(maildir, sub), { recursive: true });
    await chown(join(maildir, sub), 65534, 65534);
  }
  const line = `${'x'.repeat(76)}\r\n`;
  const body = line.repeat(Math.ceil(size / line.length));
  for (let i = 0; i < n; i++) {
    const file = join(maildir, 'new', `${1_700_000_000 + i}.M${i}P1.bench`);
    await writeFile(file, `From: a@example.org\r\nTo: ${USER.address}\r\nSubject: bench ${i}\r\n\r\n${body}`);
    await chown(file, 65534, 65534);
  }
}

/** Minimal IMAP client: wait until the bytes received end with a line matching `re`. */
function until(sock: Duplex, re: RegExp): Promise<number> {
  return new Promise((resolve, reject) => {
    let tail = '';
    let total = 0;
    const onData = (d: Buffer) => {
      total += d.length;
      tail = (tail + d.toString('latin1', Math.max(0, d.length - 2048))).slice(-2048);
      if (re.test(tail)) {
        sock.off('data', onData);
        resolve(total);
      } else if (/\r\n[a-z] (NO|BAD) .*\r\n$/.test(tail) || /^\* BYE/m.test(tail)) {
        sock.off('data', onData);
        reject(new Error(`IMAP server refused: ${tail.trim().split('\r\n').pop()}`));
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

async function login(port: number): Promise<net.Socket> {
  const s = await connect(port);
  await until(s, /^\* OK.*\r\n$/m);
  s.write(`a LOGIN ${USER.address} ${USER.password}\r\n`);
  await until(s, /a OK .*\r\n$/);
  return s;
}

async function fetchAll(port: number, n: number): Promise<{ ms: number; bytes: number }> {
  const s = await login(port);
  s.write('b SELECT INBOX\r\n');
  await until(s, /b OK .*\r\n$/);
  const t0 = performance.now();
  s.write(`c FETCH 1:${n} BODY.PEEK[]\r\n`);
  const bytes = await until(s, /c OK .*\r\n$/);
  const ms = performance.now() - t0;
  s.write('d LOGOUT\r\n');
  s.destroy();
  return { ms, bytes };
}

/**
 * `imap.fetch`: FETCH of 1,000 messages of 10 KB through the proxy with a TLS hop (the remote
 * shard case) vs straight from Dovecot; `imap.logins`: LOGIN+LOGOUT per second, same two paths.
 */
export const run: BenchFn = async ({ quick }) => {
  if (!findBinary('dovecot')) return [];
  const n = 1000;
  const pki = makeTestPki();
  const dc = await startDovecot({ users: [USER], loginTrustedNetworks: ['127.0.0.1/32'] });
  const hop = await startTlsSplice(pki, dc.imapPort);
  const proxy = await startImapProxy({
    host: '127.0.0.1',
    port: 0,
    route: () => ({ kind: 'remote', shardId: 'bench' }),
    connectBackend: () => hop.connect(),
    allowPlaintextLogin: true,
    preauthTimeoutMs: 30_000,
    idleTimeoutMs: 60_000,
    maxLineLength: 8192,
    maxLiteral: 8192,
    maxAuthAttempts: 3,
    log: silentLog,
  });
  const out: BenchResult[] = [];
  try {
    await fillMaildir(dc.maildirOf(USER.address), n, 10 * 1024);
    await fetchAll(dc.imapPort, n); // warm Dovecot's index and cache
    const rounds = quick ? 2 : 5;
    let direct = Infinity;
    let proxied = Infinity;
    for (let i = 0; i < rounds; i++) {
      direct = Math.min(direct, (await fetchAll(dc.imapPort, n)).ms);
      proxied = Math.min(proxied, (await fetchAll(proxy.port, n)).ms);
    }
    out.push(result('imap.fetch', n / (proxied / 1000), 'msg/s', n / (direct / 1000), 'FETCH straight from Dovecot (same run)'));
    const once = async (port: number) => {
      const s = await login(port);
      s.write('z LOGOUT\r\n');
      await until(s, /z OK .*\r\n$/);
      s.destroy();
    };
    const ms = quick ? 800 : 2000;
    const directLogins = await rate(() => once(dc.imapPort), ms);
    const proxiedLogins = await rate(() => once(proxy.port), ms);
    out.push(result('imap.logins', proxiedLogins, 'logins/s', directLogins, 'LOGIN+LOGOUT straight to Dovecot (same run)'));
  } finally {
    await proxy.close();
    await hop.close();
    await dc.destroy();
    pki.cleanup();
  }
  return out;
};
