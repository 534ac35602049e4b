import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from './real.ts';

/** A mailbox of the private Dovecot. */
export interface DovecotUser {
  address: string;
  password: string;
}

/** Options of {@link startDovecot}. */
export interface DovecotOptions {
  users: DovecotUser[];
  /** PEM certificate chain and key: IMAP/POP3 then offer STARTTLS/STLS (`ssl = yes`). */
  ssl?: { cert: string; key: string };
  /** CIDRs whose ID / XCLIENT client-address claims Dovecot believes (a proxy's source). */
  loginTrustedNetworks?: string[];
  /** Raw configuration appended at the end of dovecot.conf. */
  extraConf?: string;
}

/** A running private Dovecot. */
export interface DovecotInstance {
  lmtpPort: number;
  imapPort: number;
  pop3Port: number;
  /** The temp dir holding config, run dir, log and mail. */
  dir: string;
  /** The Maildir of a user (`…/Maildir`; new mail lands in `new/`). */
  maildirOf(address: string): string;
  logPath: string;
  /** Stop the master and wait until it has exited. */
  stop(): Promise<void>;
  /** Start again after {@link DovecotInstance.stop}: same ports, same mail. */
  start(): Promise<void>;
  /** Stop and remove the temp dir. */
  destroy(): Promise<void>;
}

/** Mail is owned by `nobody`, as in REAL-SERVERS.md. */
const MAIL_UID = 65534;

/** Reserve a loopback port by binding port 0 and releasing it. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function homeOf(dir: string, address: string): string {
  const [local, domain] = address.split('@');
  return join(dir, 'mail', domain ?? 'nodomain', local);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Start a private Dovecot 2.3 (its own config, base_dir, state_dir and log under a temp dir;
 * listening on 127.0.0.1 only; never Debian's default instance). The master runs in the
 * foreground (`-F`) so its PID is the child's PID.
 *
 * @example
 * const dc = await startDovecot({ users: [{ address: 'bob@mail.test', password: 'secret' }] });
 * try { ... } finally { await dc.destroy(); }
 */
export async function startDovecot(opts: DovecotOptions): Promise<DovecotInstance> {
  const bin = findBinary('dovecot');
  if (!bin) throw new Error('dovecot not found: apt-get install -y dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd');
  const dir = await mkdtemp(join(tmpdir(), 'mailmesh-dovecot-'));
  // mkdtemp makes 0700; mail processes run as nobody and must reach the mail below.
  await chmod(dir, 0o755);
  for (const sub of ['run', 'state', 'mail']) await mkdir(join(dir, sub), { recursive: true });
  await chown(join(dir, 'mail'), MAIL_UID, MAIL_UID);
  const [lmtpPort, imapPort, pop3Port] = [await freePort(), await freePort(), await freePort()];
  const passwd = opts.users
    .map((u) => `${u.address}:{PLAIN}${u.password}:${MAIL_UID}:${MAIL_UID}::${homeOf(dir, u.address)}`)
    .join('\n');
  await writeFile(join(dir, 'passwd'), `${passwd}\n`, { mode: 0o644 });
  const logPath = join(dir, 'dovecot.log');
  let ssl = 'ssl = no';
  if (opts.ssl) {
    await writeFile(join(dir, 'ssl.crt'), opts.ssl.cert, { mode: 0o644 });
    await writeFile(join(dir, 'ssl.key'), opts.ssl.key, { mode: 0o600 });
    ssl = `ssl = yes\nssl_cert = <${join(dir, 'ssl.crt')}\nssl_key = <${join(dir, 'ssl.key')}`;
  }
  const conf = `# private mailmesh test instance
base_dir = ${join(dir, 'run')}
state_dir = ${join(dir, 'state')}
instance_name = mailmesh-${lmtpPort}
log_path = ${logPath}
protocols = imap pop3 lmtp
listen = 127.0.0.1
${ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
login_trusted_networks = ${(opts.loginTrustedNetworks ?? []).join(' ')}
mail_location = maildir:~/Maildir
mail_max_userip_connections = 1000
passdb {
  driver = passwd-file
  args = ${join(dir, 'passwd')}
}
userdb {
  driver = passwd-file
  args = ${join(dir, 'passwd')}
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = ${pop3Port}
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
}
${opts.extraConf ?? ''}
`;
  const confPath = join(dir, 'dovecot.conf');
  await writeFile(confPath, conf);

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  async function start(): Promise<void> {
    if (child) return;
    // A restart can race the old login processes still holding the listeners: retry briefly.
    let lastErr = '';
    for (let attempt = 0; attempt < 20; attempt++) {
      const proc = spawn(bin!, ['-F', '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      let dead = false;
      const gone = new Promise<void>((resolve) => proc.once('exit', () => ((dead = true), resolve())));
      const deadline = Date.now() + 10_000;
      while (!dead && Date.now() < deadline) {
        if ((await canConnect(imapPort)) && (await canConnect(pop3Port)) && (await canConnect(lmtpPort))) {
          child = proc;
          exited = gone;
          return;
        }
        await sleep(30);
      }
      if (!dead) {
        proc.kill('SIGKILL');
        await gone;
        throw new Error(`dovecot did not start listening within 10 s: ${stderr}`);
      }
      lastErr = stderr;
      await sleep(100);
    }
    throw new Error(`dovecot failed to start: ${lastErr}`);
  }

  async function stop(): Promise<void> {
    const proc = child;
    if (!proc) return;
    child = undefined;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    // The master is gone; wait until its children released the listening sockets too.
    for (let i = 0; i < 100 && ((await canConnect(imapPort)) || (await canConnect(lmtpPort))); i++) await sleep(20);
  }

  await start();
  return {
    lmtpPort,
    imapPort,
    pop3Port,
    dir,
    logPath,
    maildirOf: (address: string) => join(homeOf(dir, address), 'Maildir'),
    stop,
    start,
    destroy: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
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
