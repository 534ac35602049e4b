// A real authoritative DNS server (Knot DNS, Debian package `knot`) on loopback for integration
// tests. The test writes the zones; the helper writes knot.conf and zone files into a temp dir,
// runs `knotd -c knot.conf` in the foreground as a child process, waits until it answers, and
// stops it by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../../cli/demo/ports.ts';

/** A running (or stopped) knotd. */
export interface Knot {
  port: number;
  /** `127.0.0.1:PORT`, the form `createResolver({ servers })` takes. */
  server: string;
  /** The temp dir holding knot.conf, zones, rundir and storage. */
  dir: string;
  /** Stop the server (SIGTERM, then SIGKILL after 3 s); the port stays reserved for `start()`. */
  stop(): Promise<void>;
  /** Start it again on the same port with the same zones. */
  start(): Promise<void>;
  /** Stop and delete the temp dir. */
  close(): Promise<void>;
}

/** Options of {@link startKnot}. */
export interface KnotOptions {
  /**
   * Origin (without trailing dot) → zone records, relative to the origin, one per line,
   * e.g. `@ TXT "v=spf1 -all"`. A SOA, NS and `ns A 127.0.0.1` are added unless the text has a SOA.
   */
  zones: Record<string, string>;
  /** Path of knotd (from requireBinary). */
  knotd?: string;
  /** Listen port; default a free one. */
  port?: number;
}

/** A port free for TCP and UDP right now (knot listens on both), below the ephemeral range so a
 * knot restarted on it cannot find it taken by an outgoing connection (cli/demo/ports.ts). */
async function freeUdpPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const [port] = await freePorts(1);
    const s = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((resolve) => s.close(() => resolve()));
    if (ok) return port;
  }
  throw new Error('no free port for knot (TCP and UDP)');
}

/** Split a TXT value into quoted ≤255-byte character-strings (RFC 1035 §3.3.14). */
export function txtRdata(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255).replace(/["\\]/g, '\\$&')}"`);
  return parts.join(' ');
}

function zoneFile(origin: string, text: string): string {
  const head = /\bSOA\b/.test(text) ? '' : `@ 60 SOA ns hostmaster 1 3600 600 86400 30\n@ 60 NS ns\nns 60 A 127.0.0.1\n`;
  return `$ORIGIN ${origin}.\n$TTL 60\n${head}${text}\n`;
}

/** knot.conf for `zones`, listening on `listen` (e.g. `127.0.0.1@5353`). */
export function knotConfig(dir: string, listen: string, origins: string[]): string {
  return [
    'server:',
    `    rundir: "${join(dir, 'run')}"`,
    `    listen: ${listen}`,
    'log:',
    '  - target: stderr',
    '    any: warning',
    'database:',
    `    storage: "${join(dir, 'db')}"`,
    'template:',
    '  - id: default',
    `    storage: "${join(dir, 'zones')}"`,
    '    file: "%s.zone"',
    '    zonefile-sync: -1',
    '    zonefile-load: whole',
    '    journal-content: none',
    'zone:',
    ...origins.map((o) => `  - domain: ${o}`),
    '',
  ].join('\n');
}

/** Write knot.conf and the zone files into `dir`; returns the config path. */
export async function writeKnotFiles(dir: string, listen: string, zones: Record<string, string>): Promise<string> {
  await mkdir(join(dir, 'run'), { recursive: true });
  await mkdir(join(dir, 'db'), { recursive: true });
  await mkdir(join(dir, 'zones'), { recursive: true });
  for (const [origin, text] of Object.entries(zones)) await writeFile(join(dir, 'zones', `${origin}.zone`), zoneFile(origin, text));
  const conf = join(dir, 'knot.conf');
  await writeFile(conf, knotConfig(dir, listen, Object.keys(zones)));
  return conf;
}

/**
 * Start knotd on 127.0.0.1 with the given zones and wait until it answers the first zone's SOA.
 *
 * @example
 * const knot = await startKnot({ knotd, zones: { 'sender.example': '@ TXT "v=spf1 -all"' } });
 * const resolver = createResolver({ servers: [knot.server] });
 */
export async function startKnot(opts: KnotOptions): Promise<Knot> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmesh-knot-'));
  const port = opts.port ?? (await freeUdpPort());
  const conf = await writeKnotFiles(dir, `127.0.0.1@${port}`, opts.zones);
  const first = Object.keys(opts.zones)[0];
  let child: ChildProcess | undefined;
  let stderr = '';

  const start = async () => {
    stderr = '';
    const c = spawn(opts.knotd ?? '/usr/sbin/knotd', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const r = new Resolver({ timeout: 200, tries: 1 });
    r.setServers([`127.0.0.1:${port}`]);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`knotd exited with ${c.exitCode}: ${stderr}`);
      try {
        await r.resolveSoa(first);
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`knotd did not answer on port ${port}: ${stderr}`);
        await new Promise((res) => setTimeout(res, 50)); // polling a process start, not timing logic
      }
    }
  };

  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((res) => c.once('exit', () => res()));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await start();
  } catch (err) {
    await stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    server: `127.0.0.1:${port}`,
    dir,
    stop,
    start,
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
