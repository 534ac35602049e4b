import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { alive, assertTraversable, canConnect, findBinary, pollUntil, systemAccount } from './system.ts';

const run = promisify(execFile);

/** Options of {@link startPostfix}. */
export interface PostfixOptions {
  /** Directory of the private instance: main.cf, master.cf, queue, data, maillog (created). */
  dir: string;
  /** Port of the smtpd on 127.0.0.1 (the trusted re-injection port; mynetworks = 127.0.0.0/8). */
  smtpPort: number;
  /** `myhostname` (e.g. `mx-tokyo-1.mail.test`). */
  hostname: string;
  /** Domains relayed to the mail store (`relay_domains`), e.g. `mail.test`. */
  relayDomains: string[];
  /** `transport_maps`, e.g. `socketmap:inet:127.0.0.1:10040:transport` or `inline:{ mail.test=lmtp:inet:127.0.0.1:24 }`. */
  transportMaps: string;
  /** `relay_recipient_maps` (empty: every recipient of relay_domains is accepted). */
  relayRecipientMaps?: string;
  /** Retry within seconds instead of minutes (demo and tests only: queue_run_delay 1s,
   * minimal_backoff_time 1s, maximal_backoff_time 2s, no in-flow delay). */
  fastRetry?: boolean;
  /** Extra `main.cf` settings, appended last. */
  extra?: Record<string, string>;
  /** `-o name=value` overrides of the smtpd service in `master.cf` (as deploy/postfix/master.cf
   * gives its re-injection smtpd). */
  smtpdOverrides?: Record<string, string>;
}

/** A running private Postfix. */
export interface PostfixInstance {
  dir: string;
  smtpPort: number;
  /** The same smtpd (same overrides) on a Unix socket, `queue/private/reinject`: what a sidecar on
   * this host re-injects into (cheaper per message than loopback TCP; only root and Postfix may
   * enter `private/`). */
  reinjectSocket: string;
  maillog: string;
  /** PID of the master process (from `queue/pid/master.pid`), undefined while stopped. */
  pid(): number | undefined;
  /** Messages still in the queue (incoming, active, deferred, hold, maildrop). */
  queued(): Promise<number>;
  /** `postqueue -f`: attempt delivery of every queued message now. */
  flush(): Promise<void>;
  /** `postfix stop`, then wait until the master PID is gone (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** Start again after {@link PostfixInstance.stop}: same port, same queue. */
  start(): Promise<void>;
}

/** main.cf of a private instance (REAL-SERVERS.md), loopback only. */
export function postfixMainCf(dir: string, o: PostfixOptions): string {
  const settings: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: join(dir, 'queue'),
    data_directory: join(dir, 'data'),
    maillog_file: join(dir, 'maillog'),
    maillog_file_prefixes: dir,
    myhostname: o.hostname,
    mydestination: '',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    relay_domains: o.relayDomains.join(', '),
    transport_maps: o.transportMaps,
    relay_recipient_maps: o.relayRecipientMaps ?? '',
    // Placement answers every hosted recipient; one it cannot place must wait, never go to DNS.
    relay_transport: 'retry:4.4.0 no route to a mail store for this recipient yet',
    default_transport: 'error:5.7.1 outbound mail is not handled by this instance',
    recipient_delimiter: '+',
    smtpd_relay_restrictions: 'permit_mynetworks, reject_unauth_destination',
    smtpd_peername_lookup: 'no',
    alias_maps: '',
    alias_database: '',
    local_transport: 'error:local delivery disabled',
    biff: 'no',
    append_dot_mydomain: 'no',
    // As deploy/postfix/main.cf: every remote shard's deliveries go to one next hop (the egress),
    // and each waits for the owner's Dovecot across the mesh, so more of them run at once than
    // Postfix's default 20, and a burst starts at 20 instead of 5. The bench's direct baseline
    // runs with the same settings.
    lmtp_destination_concurrency_limit: '50',
    lmtp_initial_destination_concurrency: '20',
    ...(o.fastRetry ? { queue_run_delay: '1s', minimal_backoff_time: '1s', maximal_backoff_time: '2s', in_flow_delay: '0' } : {}),
    ...o.extra,
  };
  return Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n';
}

/** master.cf of a private instance: every service with chroot n, smtpd on loopback and on the
 * Unix socket `private/reinject`. */
export function postfixMasterCf(smtpPort: number, smtpdOverrides: Record<string, string> = {}): string {
  const overrides = Object.entries(smtpdOverrides).map(([k, v]) => `\n  -o ${k}=${v}`).join('');
  const rows = [
    [`127.0.0.1:${smtpPort}`, 'inet', 'n', '-', 'n', '-', '-', `smtpd${overrides}`],
    ['reinject', 'unix', '-', '-', 'n', '-', '-', `smtpd${overrides}`],
    ['pickup', 'unix', 'n', '-', 'n', '60', '1', 'pickup'],
    ['cleanup', 'unix', 'n', '-', 'n', '-', '0', 'cleanup'],
    ['qmgr', 'unix', 'n', '-', 'n', '300', '1', 'qmgr'],
    ['rewrite', 'unix', '-', '-', 'n', '-', '-', 'trivial-rewrite'],
    ['bounce', 'unix', '-', '-', 'n', '-', '0', 'bounce'],
    ['defer', 'unix', '-', '-', 'n', '-', '0', 'bounce'],
    ['trace', 'unix', '-', '-', 'n', '-', '0', 'bounce'],
    ['verify', 'unix', '-', '-', 'n', '-', '1', 'verify'],
    ['flush', 'unix', 'n', '-', 'n', '1000?', '0', 'flush'],
    ['proxymap', 'unix', '-', '-', 'n', '-', '-', 'proxymap'],
    ['proxywrite', 'unix', '-', '-', 'n', '-', '1', 'proxymap'],
    ['showq', 'unix', 'n', '-', 'n', '-', '-', 'showq'],
    ['error', 'unix', '-', '-', 'n', '-', '-', 'error'],
    ['retry', 'unix', '-', '-', 'n', '-', '-', 'error'],
    ['discard', 'unix', '-', '-', 'n', '-', '-', 'discard'],
    ['smtp', 'unix', '-', '-', 'n', '-', '-', 'smtp'],
    ['relay', 'unix', '-', '-', 'n', '-', '-', 'smtp'],
    ['lmtp', 'unix', '-', '-', 'n', '-', '-', 'lmtp'],
    ['anvil', 'unix', '-', '-', 'n', '-', '1', 'anvil'],
    ['scache', 'unix', '-', '-', 'n', '-', '1', 'scache'],
    ['postlog', 'unix-dgram', 'n', '-', 'n', '-', '1', 'postlogd'],
  ];
  return rows.map((r) => r.join('  ')).join('\n') + '\n';
}

/** Fatal configuration errors are only visible on a terminal when there is no syslog socket:
 * run `postfix check` under script(1) to get them (REAL-SERVERS.md "Gotchas"). */
async function explain(postfix: string, dir: string): Promise<string> {
  const script = findBinary('script');
  const log = await readFile(join(dir, 'maillog'), 'utf8').catch(() => '');
  let check = '';
  if (script) {
    const r = await run(script, ['-qc', `${postfix} -c ${dir} check`, '/dev/null']).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    check = r.stdout.trim();
  }
  return [check, log.split('\n').filter((l) => /fatal|error|panic/i.test(l)).slice(-5).join(' | ')].filter(Boolean).join(' | ');
}

/**
 * Start a private Postfix 3.x instance (`postfix -c DIR start`, REAL-SERVERS.md): its own main.cf,
 * master.cf, queue and data directories, one smtpd on `127.0.0.1:smtpPort`, every service with
 * chroot n and the `postlog` service so `maillog_file` works. Never the system instance.
 *
 * @example
 * const pf = await startPostfix({ dir: '/tmp/x/postfix', smtpPort: 10025, hostname: 'mx.mail.test',
 *   relayDomains: ['mail.test'], transportMaps: 'inline:{ mail.test=lmtp:inet:127.0.0.1:24 }' });
 * try { ... } finally { await pf.stop(); }
 */
export async function startPostfix(opts: PostfixOptions): Promise<PostfixInstance> {
  const postfixBin = findBinary('postfix');
  const postqueueBin = findBinary('postqueue');
  if (!postfixBin || !postqueueBin) throw new Error('postfix not found: apt-get install -y postfix');
  const postfix: string = postfixBin;
  const postqueue: string = postqueueBin;
  const owner = systemAccount('postfix');
  if (!owner) throw new Error('the postfix system account is missing: reinstall the postfix package');
  const dir = resolve(opts.dir);
  await mkdir(join(dir, 'data'), { recursive: true });
  // The queue directory itself must exist (root-owned); `postfix check` makes its subdirectories.
  await mkdir(join(dir, 'queue'), { recursive: true, mode: 0o755 });
  await chmod(dir, 0o755);
  assertTraversable(dir);
  // Postfix refuses a data_directory it does not own (REAL-SERVERS.md).
  await chown(join(dir, 'data'), owner.uid, owner.gid);
  await writeFile(join(dir, 'main.cf'), postfixMainCf(dir, opts));
  await writeFile(join(dir, 'master.cf'), postfixMasterCf(opts.smtpPort, opts.smtpdOverrides));
  const pidFile = join(dir, 'queue', 'pid', 'master.pid');
  let pid: number | undefined;

  const readPid = async () => {
    const n = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    return Number.isInteger(n) && n > 0 && alive(n) ? n : undefined;
  };

  async function start(): Promise<void> {
    if (pid && alive(pid)) return;
    try {
      await run(postfix, ['-c', dir, 'start']);
    } catch (err) {
      throw new Error(`postfix -c ${dir} start failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message} ${await explain(postfix, dir)}`, { cause: err });
    }
    const up = await pollUntil(async () => (pid = await readPid()) !== undefined && (await canConnect(opts.smtpPort)), 15_000, 50);
    if (!up) throw new Error(`postfix (${dir}) is not listening on 127.0.0.1:${opts.smtpPort} after 15 s: ${await explain(postfix, dir)}`);
  }

  async function stop(): Promise<void> {
    const p = pid ?? (await readPid());
    pid = undefined;
    if (!p) return;
    await run(postfix, ['-c', dir, 'stop']).catch(() => process.kill(p, 'SIGTERM'));
    if (!(await pollUntil(() => !alive(p), 10_000, 25))) {
      process.kill(p, 'SIGKILL');
      await pollUntil(() => !alive(p), 5000, 25);
    }
  }

  await start();
  return {
    dir,
    smtpPort: opts.smtpPort,
    reinjectSocket: join(dir, 'queue', 'private', 'reinject'),
    maillog: join(dir, 'maillog'),
    pid: () => pid,
    async queued() {
      let n = 0;
      for (const q of ['maildrop', 'incoming', 'active', 'deferred', 'hold']) {
        const walk = async (d: string): Promise<void> => {
          for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
            if (e.isDirectory()) await walk(join(d, e.name));
            else n++;
          }
        };
        await walk(join(dir, 'queue', q));
      }
      return n;
    },
    async flush() {
      await run(postqueue, ['-c', dir, '-f']);
    },
    stop,
    start,
  };
}
