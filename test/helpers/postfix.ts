import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findBinary } from './real.ts';
import { freePorts } from '../../cli/demo/ports.ts';

const run = promisify(execFile);

/** Options of {@link startPostfix}. */
export interface PostfixOptions {
  /** Domains Postfix accepts mail for and hands to `transportMaps` (relay_domains). */
  relayDomains: string[];
  /** transport_maps, e.g. `socketmap:inet:127.0.0.1:PORT:transport` or `inline:{ d=lmtp:inet:… }`. */
  transportMaps: string;
  /** relay_recipient_maps, e.g. `socketmap:inet:127.0.0.1:PORT:recipients`. */
  relayRecipientMaps?: string;
  /** More main.cf settings (override the defaults below). */
  extraMainCf?: Record<string, string>;
  /** Lines appended to master.cf. */
  extraMasterCf?: string;
}

/** One queued message as `postqueue -j` prints it (postqueue(1)). */
export interface QueuedMessage {
  queue_name: string;
  queue_id: string;
  arrival_time: number;
  message_size: number;
  sender: string;
  recipients: { address: string; delay_reason?: string }[];
  [key: string]: unknown;
}

/** A running private Postfix. */
export interface PostfixInstance {
  /** Port of its smtpd on 127.0.0.1. */
  smtpPort: number;
  /** The config directory (main.cf, master.cf), for `postfix -c`; queue, data and maillog sit beside it. */
  dir: string;
  /** The whole maillog so far. */
  maillog(): Promise<string>;
  /** Messages in the queue (`postqueue -c DIR -j`). */
  queue(): Promise<QueuedMessage[]>;
  /** Attempt delivery of everything queued now (`postqueue -c DIR -f`). */
  flush(): Promise<void>;
  /** Stop the master and wait until its PID is gone; then remove the directory. */
  stop(): Promise<void>;
}

/** Reserve a loopback port by binding port 0 and releasing it. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  // Below the ephemeral range, so a port a test stops and restarts a server on cannot be taken
  // by some outgoing connection in between (cli/demo/ports.ts).
  const [port] = await freePorts(1, host);
  return port;
}

/** Every service Postfix needs for relaying to LMTP, chroot `n` (REAL-SERVERS.md). */
function masterCf(smtpPort: number): string {
  return `# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:${smtpPort} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function masterPid(queueDir: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(join(queueDir, 'pid', 'master.pid'), 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Run a Postfix command; on failure, surface what it printed (and `postfix check`'s findings). */
async function postfixCmd(args: string[], dir: string): Promise<string> {
  try {
    const { stdout, stderr } = await run(args[0], args.slice(1), { timeout: 30_000 });
    return stdout + stderr;
  } catch (err) {
    // Without a syslog socket, fatal errors are silent (rc=1 only); a pseudo-terminal makes
    // postfix print them (REAL-SERVERS.md).
    let detail: string;
    try {
      const r = await run('script', ['-qc', `postfix -c ${dir} check`, '/dev/null'], { timeout: 30_000 });
      detail = r.stdout + r.stderr;
    } catch (e) {
      detail = String((e as { stdout?: string }).stdout ?? e);
    }
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}\npostfix check: ${detail}`, { cause: err });
  }
}

/**
 * Start a private Postfix (never Debian's default instance): its own config dir under
 * os.tmpdir(), smtpd on a free 127.0.0.1 port, every service unchrooted, fast retries for tests
 * (queue run 1 s, backoff 1–2 s). Throws with `postfix check`'s output when it cannot start.
 * Requires root (Postfix drops privileges to the `postfix` user) and the postfix package; call
 * `requireBinary(t, 'postfix')` first.
 *
 * @example
 * const pf = await startPostfix({ relayDomains: ['mail.test'],
 *   transportMaps: `socketmap:inet:127.0.0.1:${map.port}:transport` });
 * try { ... } finally { await pf.stop(); }
 */
export async function startPostfix(opts: PostfixOptions): Promise<PostfixInstance> {
  const postfix = findBinary('postfix');
  const postqueue = findBinary('postqueue');
  if (!postfix || !postqueue) throw new Error('postfix not found: apt-get install -y postfix');
  // The config dir must hold only root-owned files (postfix-script checks), so queue, data and
  // log sit beside it; the base must be traversable by the postfix user (mkdtemp makes it 0700).
  const base = await mkdtemp(join(tmpdir(), 'mailmesh-postfix-'));
  await chmod(base, 0o755);
  const dir = join(base, 'etc');
  const queueDir = join(base, 'queue');
  const dataDir = join(base, 'data');
  const maillog = join(base, 'maillog');
  await mkdir(dir, { recursive: true });
  await mkdir(queueDir, { recursive: true });
  await mkdir(dataDir, { recursive: true });
  const { stdout: ids } = await run('id', ['-u', 'postfix']);
  const { stdout: gids } = await run('id', ['-g', 'postfix']);
  await chown(dataDir, Number(ids.trim()), Number(gids.trim()));
  const smtpPort = await freePort();

  const main: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: queueDir,
    data_directory: dataDir,
    maillog_file: maillog,
    maillog_file_prefixes: base,
    myhostname: 'mx.mail.test',
    mydestination: '',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    relay_domains: opts.relayDomains.join(', '),
    transport_maps: opts.transportMaps,
    relay_recipient_maps: opts.relayRecipientMaps ?? '',
    smtpd_relay_restrictions: 'permit_mynetworks, reject_unauth_destination',
    alias_maps: '',
    alias_database: '',
    local_transport: 'error:local delivery disabled',
    biff: 'no',
    // Fast retries so tests see a deferred message delivered within seconds.
    queue_run_delay: '1s',
    minimal_backoff_time: '1s',
    maximal_backoff_time: '2s',
    // Do not keep a destination marked dead for long after a refused connection.
    lmtp_connection_cache_time_limit: '2s',
    lmtp_connection_reuse_time_limit: '10s',
    lmtp_connect_timeout: '5s',
    // A backend that accepts but never greets must not hold a test for Postfix's default 300 s.
    lmtp_helo_timeout: '30s',
    smtpd_banner: '$myhostname ESMTP',
    ...opts.extraMainCf,
  };
  await writeFile(join(dir, 'main.cf'), Object.entries(main).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');
  await writeFile(join(dir, 'master.cf'), masterCf(smtpPort) + (opts.extraMasterCf ? `${opts.extraMasterCf}\n` : ''));

  const stop = async (): Promise<void> => {
    const pid = await masterPid(queueDir);
    await run(postfix, ['-c', dir, 'stop'], { timeout: 30_000 }).catch(() => {});
    if (pid !== undefined) {
      const deadline = Date.now() + 10_000;
      while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    await rm(base, { recursive: true, force: true });
  };

  try {
    await postfixCmd([postfix, '-c', dir, 'check'], dir);
    await postfixCmd([postfix, '-c', dir, 'start'], dir);
    // Wait until smtpd accepts connections (master binds the port as it starts).
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(smtpPort, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`private Postfix in ${dir} did not listen on ${smtpPort}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    smtpPort,
    dir,
    maillog: () => readFile(maillog, 'utf8').catch(() => ''),
    async queue() {
      const { stdout } = await run(postqueue, ['-c', dir, '-j'], { timeout: 30_000 });
      return stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as QueuedMessage);
    },
    async flush() {
      await run(postqueue, ['-c', dir, '-f'], { timeout: 30_000 });
    },
    stop,
  };
}
