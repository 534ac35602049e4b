// A private Dovecot for tests: a temp dir around the production launcher the demo uses
// (cli/demo/backends/dovecot.ts), plus a tiny LMTP client. One launcher, one set of lessons.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDovecot as startBackend, type DovecotInstance as BackendInstance, type DovecotUser } from '../../cli/demo/backends/dovecot.ts';
import { freePorts } from '../../cli/demo/ports.ts';

export type { DovecotUser };

/** Options of {@link startDovecot}. */
export interface DovecotOptions {
  users: DovecotUser[];
  /** PEM certificate chain and key: IMAP/POP3 then offer STARTTLS/STLS (`ssl = yes`). */
  ssl?: { cert: string; key: string };
  /** CIDRs whose ID / XCLIENT client-address claims Dovecot believes (default: none). */
  loginTrustedNetworks?: string[];
  /** Raw configuration appended at the end of dovecot.conf. */
  extraConf?: string;
}

/** A running private Dovecot in its own temp dir. */
export interface DovecotInstance extends BackendInstance {
  /** Stop and remove the temp dir. */
  destroy(): Promise<void>;
}

/** Reserve a loopback port by binding port 0 and releasing it. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  // Below the ephemeral range, so a port a test stops and restarts a server on cannot be taken
  // by some outgoing connection in between (cli/demo/ports.ts).
  const [port] = await freePorts(1, host);
  return port;
}

/**
 * Start a private Dovecot 2.3 in a new temp dir (loopback only, never Debian's default instance).
 *
 * @example
 * const dc = await startDovecot({ users: [{ address: 'bob@mail.test', password: 'secret' }] });
 * try { ... } finally { await dc.destroy(); }
 */
export async function startDovecot(opts: DovecotOptions): Promise<DovecotInstance> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmesh-dovecot-'));
  await chmod(dir, 0o755);
  const d = await startBackend({ dir, users: opts.users, ssl: opts.ssl, loginTrustedNetworks: opts.loginTrustedNetworks ?? [], extraConf: opts.extraConf });
  return Object.assign(d, {
    destroy: async () => {
      await d.stop();
      await rm(dir, { recursive: true, force: true });
    },
  });
}

/**
 * Deliver one message over LMTP (RFC 2033) to a Dovecot; resolves when every recipient got 250.
 * A tiny client so tests need no extra tool.
 */
export async function lmtpDeliver(port: number, from: string, to: string[], message: string): Promise<void> {
  const sock = net.connect({ host: '127.0.0.1', port });
  sock.setEncoding('utf8');
  let buf = '';
  const waiters: ((line: string) => void)[] = [];
  const lines: string[] = [];
  sock.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      // Multi-line replies (`250-`) are folded: only the last line of a reply resolves.
      if (/^\d{3}-/.test(line)) continue;
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const failed = new Promise<never>((_, reject) => sock.once('error', reject));
  const reply = (): Promise<string> =>
    Promise.race([failed, new Promise<string>((resolve) => (lines.length ? resolve(lines.shift()!) : waiters.push(resolve)))]);
  const expect = async (code: string) => {
    const line = await reply();
    if (!line.startsWith(code)) throw new Error(`LMTP: expected ${code}, got ${line}`);
  };
  try {
    await expect('220');
    sock.write('LHLO test.local\r\n');
    await expect('250');
    sock.write(`MAIL FROM:<${from}>\r\n`);
    await expect('250');
    for (const rcpt of to) {
      sock.write(`RCPT TO:<${rcpt}>\r\n`);
      await expect('250');
    }
    sock.write('DATA\r\n');
    await expect('354');
    const body = message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    sock.write(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
    for (let i = 0; i < to.length; i++) await expect('250');
    sock.write('QUIT\r\n');
  } finally {
    sock.destroy();
  }
}
