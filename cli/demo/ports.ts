import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The kernel's range for ephemeral (outgoing) ports, e.g. `[32768, 60999]`. */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    // not Linux: fall through
  }
  return [32768, 60999];
}

/** Every port this process handed out. */
const handedOut = new Set<number>();

/** Claims shared by every process on the machine: a port picked by one process (test files run
 * in parallel) but not bound yet by its server must not be picked by another. One file per port
 * holding the claiming PID; a claim whose process is gone is taken over. */
const CLAIMS = join(tmpdir(), 'mailmesh-port-claims');

let releasing = false;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function claim(port: number): boolean {
  const file = join(CLAIMS, String(port));
  try {
    mkdirSync(CLAIMS, { recursive: true });
    writeFileSync(file, String(process.pid), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return true; // no claims possible here: bind check only
    const owner = Number(readFileSync(file, 'utf8'));
    if (owner && owner !== process.pid && alive(owner)) return false;
    writeFileSync(file, String(process.pid));
  }
  if (!releasing) {
    releasing = true;
    process.once('exit', releaseClaims);
  }
  return true;
}

function releaseClaims(): void {
  for (const port of handedOut) {
    try {
      if (Number(readFileSync(join(CLAIMS, String(port)), 'utf8')) === process.pid) unlinkSync(join(CLAIMS, String(port)));
    } catch {
      // already gone
    }
  }
}

function tryBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/**
 * Pick `n` free loopback ports for listeners that must keep their port across restarts (the
 * mesh addresses are written into the policy; a restarted sidecar binds the same ones).
 * They are chosen BELOW the kernel's ephemeral range: a port inside it may be taken by any
 * outgoing connection on the machine while its listener is down, and the restart would fail
 * with EADDRINUSE. Each port is claimed machine-wide (parallel test processes) and checked by
 * binding it once.
 */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const [ephemeralLow] = ephemeralRange();
  const low = 10_000;
  const high = Math.max(low + 1000, ephemeralLow) - 1;
  const picked = new Set<number>();
  for (let attempts = 0; picked.size < n && attempts < n * 50; attempts++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port) || picked.has(port)) continue;
    if (!claim(port)) continue;
    if (await tryBind(port, host)) {
      picked.add(port);
      // Never hand the same port out twice in this process: a port picked for a listener that
      // has not bound yet would otherwise look free to the next caller.
      handedOut.add(port);
    }
  }
  if (picked.size < n) throw new Error(`could not find ${n} free ports on ${host} between ${low} and ${high}`);
  return [...picked];
}
