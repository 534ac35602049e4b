import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { freePorts } from '../ports.ts';
import { assertTraversable, canConnect, findBinary, pollUntil, systemAccount } from './system.ts';

/** A mailbox of a private Dovecot. */
export interface DovecotUser {
  address: string;
  password: string;
}

/** Options of {@link startDovecot}. */
export interface DovecotOptions {
  /** Directory for config, run/state dirs, log and mail (created; must be reachable by uid 65534). */
  dir: string;
  users: DovecotUser[];
  /** Fixed ports; 0 or absent = a free loopback port. */
  ports?: { lmtp?: number; imap?: number; pop3?: number };
  /** PEM certificate chain and key: IMAP/POP3 then offer STARTTLS/STLS (`ssl = yes`). */
  ssl?: { cert: string; key: string };
  /** CIDRs whose IMAP ID / POP3 XCLIENT client-address claims Dovecot believes (a proxy's source). */
  loginTrustedNetworks?: string[];
  /** Raw configuration appended at the end of dovecot.conf. */
  extraConf?: string;
}

/** A running private Dovecot. */
export interface DovecotInstance {
  dir: string;
  lmtpPort: number;
  /** Dovecot's own LMTP socket (`<base_dir>/lmtp`, mode 0666): what Postfix and the sidecar use. */
  lmtpSocket: string;
  imapPort: number;
  pop3Port: number;
  /** Mail root: a user's home is `<mailRoot>/<domain>/<local>`, its Maildir `…/Maildir`. */
  mailRoot: string;
  /** The Maildir of a user (`…/Maildir`; new mail lands in `new/`). */
  maildirOf(address: string): string;
  logPath: string;
  configPath: string;
  /** PID of the master process (undefined while stopped). */
  pid(): number | undefined;
  /** Stop the master (by PID) and wait until its listeners are released. */
  stop(): Promise<void>;
  /** Start again after {@link DovecotInstance.stop}: same ports, same mail. */
  start(): Promise<void>;
}

/** Mail is stored as `nobody` (REAL-SERVERS.md). */
export const MAIL_UID = 65534;

function homeOf(mailRoot: string, address: string): string {
  const at = address.lastIndexOf('@');
  return join(mailRoot, address.slice(at + 1).toLowerCase(), address.slice(0, at).toLowerCase());
}

/** dovecot.conf of a private instance: loopback only, passwd-file users, its own base/state dirs. */
export function dovecotConf(o: {
  dir: string; lmtpPort: number; imapPort: number; pop3Port: number; ssl: boolean; loginTrustedNetworks: string[]; extraConf?: string;
}): string {
  const ssl = o.ssl ? `ssl = yes\nssl_cert = <${join(o.dir, 'ssl.crt')}\nssl_key = <${join(o.dir, 'ssl.key')}` : 'ssl = no';
  return `# private mailmesh Dovecot instance (never the system one)
base_dir = ${join(o.dir, 'run')}
state_dir = ${join(o.dir, 'state')}
instance_name = mailmesh-${o.lmtpPort}
log_path = ${join(o.dir, 'dovecot.log')}
protocols = imap pop3 lmtp
listen = 127.0.0.1
${ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# The sidecar's proxies connect from loopback and pass the real client address (IMAP ID,
# POP3 XCLIENT); Dovecot believes it only from these networks.
login_trusted_networks = ${o.loginTrustedNetworks.join(' ')}
mail_location = maildir:~/Maildir
mail_max_userip_connections = 1000
passdb {
  driver = passwd-file
  args = ${join(o.dir, 'passwd')}
}
userdb {
  driver = passwd-file
  args = ${join(o.dir, 'passwd')}
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${o.imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = ${o.pop3Port}
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  # As deploy/dovecot/10-mailmesh.conf: Postfix (50 parallel deliveries) and every other shard's
  # egress (up to 50 each, 32 of them kept idle) each hold one LMTP process.
  process_limit = 512
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${o.lmtpPort}
  }
}
${o.extraConf ?? ''}
`;
}

/**
 * Start a private Dovecot 2.3 (REAL-SERVERS.md): its own config, base_dir, state_dir and log under
 * `dir`, listening on 127.0.0.1 only, never the system instance. Users come from a passwd-file with
 * `{PLAIN}` passwords; mail is stored as uid 65534. The master runs in the foreground (`-F`), so it
 * is stopped by its own PID.
 *
 * @example
 * const dc = await startDovecot({ dir: '/tmp/x/dovecot', users: [{ address: 'bob@mail.test', password: 's3cret' }] });
 * try { ... } finally { await dc.stop(); }
 */
export async function startDovecot(opts: DovecotOptions): Promise<DovecotInstance> {
  const bin = findBinary('dovecot');
  if (!bin) throw new Error('dovecot not found: apt-get install -y dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd');
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  // Mail processes run as nobody and must reach the mail below.
  await chmod(dir, 0o755);
  assertTraversable(dir);
  const mailRoot = join(dir, 'mail');
  for (const sub of ['run', 'state', 'mail']) await mkdir(join(dir, sub), { recursive: true });
  await chown(mailRoot, MAIL_UID, MAIL_UID);
  const free = await freePorts(3);
  const lmtpPort = opts.ports?.lmtp || free[0];
  const imapPort = opts.ports?.imap || free[1];
  const pop3Port = opts.ports?.pop3 || free[2];
  for (const u of opts.users) {
    // passwd-file fields are ':'-separated; a ':' or newline in a password would break the line.
    if (/[:\r\n]/.test(u.password) || /[:\r\n]/.test(u.address)) throw new Error(`dovecot passwd-file: ":" or newline in the entry of ${u.address}`);
  }
  const passwd = opts.users.map((u) => `${u.address}:{PLAIN}${u.password}:${MAIL_UID}:${MAIL_UID}::${homeOf(mailRoot, u.address)}`).join('\n');
  // Plaintext passwords: readable by root and the dovecot auth process only.
  await writeFile(join(dir, 'passwd'), `${passwd}\n`, { mode: 0o640 });
  await chown(join(dir, 'passwd'), 0, systemAccount('dovecot')?.gid ?? 0);
  if (opts.ssl) {
    await writeFile(join(dir, 'ssl.crt'), opts.ssl.cert, { mode: 0o644 });
    await writeFile(join(dir, 'ssl.key'), opts.ssl.key, { mode: 0o600 });
  }
  const configPath = join(dir, 'dovecot.conf');
  await writeFile(configPath, dovecotConf({
    dir, lmtpPort, imapPort, pop3Port, ssl: !!opts.ssl, loginTrustedNetworks: opts.loginTrustedNetworks ?? ['127.0.0.0/8'], extraConf: opts.extraConf,
  }));
  const listening = async () => (await canConnect(imapPort)) && (await canConnect(pop3Port)) && (await canConnect(lmtpPort));

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  async function start(): Promise<void> {
    if (child) return;
    // A restart can race the old login processes still holding the listeners: retry briefly.
    let lastErr = '';
    for (let attempt = 0; attempt < 20; attempt++) {
      const proc = spawn(bin!, ['-F', '-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      let dead = false;
      const gone = new Promise<void>((res) => proc.once('exit', () => {
        dead = true;
        res();
      }));
      if (await pollUntil(async () => dead || (await listening()), 10_000, 30) && !dead) {
        child = proc;
        exited = gone;
        return;
      }
      if (!dead) {
        proc.kill('SIGKILL');
        await gone;
        throw new Error(`dovecot did not start listening within 10 s: ${stderr.trim()}`);
      }
      lastErr = stderr.trim();
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`dovecot failed to start (${configPath}): ${lastErr}`);
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
    await pollUntil(async () => !(await canConnect(imapPort)) && !(await canConnect(lmtpPort)) && !(await canConnect(pop3Port)), 5000, 20);
  }

  await start();
  return {
    dir, lmtpPort, imapPort, pop3Port, mailRoot, configPath,
    lmtpSocket: join(dir, 'run', 'lmtp'),
    logPath: join(dir, 'dovecot.log'),
    maildirOf: (address) => join(homeOf(mailRoot, address), 'Maildir'),
    pid: () => child?.pid,
    stop,
    start,
  };
}
