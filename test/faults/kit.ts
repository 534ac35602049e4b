// Helpers shared by the fault tests: send through a front door, stream a body slowly, kill and
// respawn processes of a local mesh, put a fault proxy on a shard's mesh address, count what
// landed in the Maildirs by Message-ID. Every wait is a bounded polling loop with a deadline.
import net from 'node:net';
import { Readable } from 'node:stream';
import { open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MailClient } from '../../sidecar/lmtp/client.ts';
import { runMailmesh, spawnMailmesh, type EventProcess } from '../../cli/demo/spawn.ts';
import type { LocalMesh, ShardInfo } from '../../cli/demo/local-mesh.ts';
import { startFaultProxy, type FaultProxy } from './proxy.ts';
import { freePorts } from '../../cli/demo/ports.ts';

/** What a sender heard for one transaction: the final reply, or a broken connection. */
export interface Outcome {
  code: number;
  enhanced?: string;
  message: string;
  /** The connection failed before a final reply (the sender does not know the outcome). */
  broken?: boolean;
}

export const isAccepted = (o: Outcome) => o.code >= 200 && o.code < 300;

/** Poll `check` every `intervalMs` until it returns a truthy value or `timeoutMs` passes. */
export async function waitUntil<T>(what: string, check: () => T | Promise<T>, timeoutMs = 30_000, intervalMs = 100): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<Awaited<T>>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const hostPort = (a: string) => ({ host: a.slice(0, a.lastIndexOf(':')), port: Number(a.slice(a.lastIndexOf(':') + 1)) });

/** Open an SMTP session to `address` (`host:port`). */
export async function openSmtp(address: string, timeoutMs = 30_000): Promise<MailClient> {
  const { host, port } = hostPort(address);
  const socket = net.connect(port, host);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => { socket.destroy(); reject(new Error(`connect to ${address} timed out`)); }, timeoutMs);
    socket.once('connect', () => { clearTimeout(t); resolve(); });
    socket.once('error', (err) => { clearTimeout(t); reject(err); });
  });
  return MailClient.open(socket, { lmtp: false, heloName: 'faults.sender.test', timeoutMs });
}

/** One transaction on a fresh connection; connection trouble is an Outcome, not an exception. */
export async function sendOnce(address: string, recipients: string[], body: Buffer | Readable, timeoutMs = 30_000): Promise<Outcome> {
  let client: MailClient | undefined;
  try {
    client = await openSmtp(address, timeoutMs);
    const res = await client.send({ from: 'faults@sender.test', recipients, body });
    const r = res.recipients.find((x) => !x.accepted) ?? res.recipients[0];
    return { code: r.code, enhanced: r.enhanced, message: r.message };
  } catch (err) {
    return { code: 0, message: (err as Error).message, broken: true };
  } finally {
    await client?.quit().catch(() => {});
  }
}

/**
 * Send `body` until a front door accepts it (the same bytes every time: owners deduplicate a
 * retry), at most `attempts` times within `timeoutMs`, pausing `pauseMs` between attempts like a
 * sender's queue would. Returns every outcome seen, the last one being the 250 when it succeeded.
 */
export async function sendUntilAccepted(address: string | (() => string), recipients: string[], body: Buffer, opts: { attempts?: number; timeoutMs?: number; pauseMs?: number } = {}): Promise<Outcome[]> {
  const { attempts = 60, timeoutMs = 60_000, pauseMs = 250 } = opts;
  const deadline = Date.now() + timeoutMs;
  const seen: Outcome[] = [];
  for (let i = 0; i < attempts && Date.now() < deadline; i++) {
    const o = await sendOnce(typeof address === 'function' ? address() : address, recipients, body, Math.min(30_000, Math.max(1000, deadline - Date.now())));
    seen.push(o);
    if (isAccepted(o)) return seen;
    // A 5xx is final: retrying would be wrong and the tests must see it.
    if (o.code >= 500) return seen;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  return seen;
}

/** A body streamed in `chunk`-byte pieces with `delayMs` between them; `sent()` says how far. */
export function slowBody(body: Buffer, chunk: number, delayMs: number): { stream: Readable; sent: () => number } {
  let offset = 0;
  const stream = Readable.from((async function* () {
    while (offset < body.length) {
      const piece = body.subarray(offset, offset + chunk);
      offset += piece.length;
      yield piece;
      await new Promise((r) => setTimeout(r, delayMs));
    }
  })());
  return { stream, sent: () => offset };
}

let seq = 0;
/** A message with a unique Message-ID (`<tag.n.pid@faults.test>`), padded to about `size` bytes. */
export function makeMessage(tag: string, to: string, size = 0): { id: string; body: Buffer } {
  const id = `<${tag}.${++seq}.${process.pid}.${Date.now()}@faults.test>`;
  const head = `From: faults@sender.test\r\nTo: ${to}\r\nSubject: ${tag} ${seq}\r\nMessage-ID: ${id}\r\nDate: ${new Date().toUTCString()}\r\n\r\n`;
  const lines: string[] = [`body of ${id}`];
  let n = head.length + lines[0].length + 2;
  while (n < size) {
    const line = `${tag} ${seq} `.padEnd(76, 'x');
    lines.push(line);
    n += line.length + 2;
  }
  return { id, body: Buffer.from(head + lines.join('\r\n') + '\r\n') };
}

/** Message-IDs found in one mailbox (`new/` and `cur/`), with how many files carry each. */
export async function messageIds(shard: ShardInfo, address: string): Promise<Map<string, number>> {
  const [local, domain] = address.toLowerCase().split('@');
  const dir = join(shard.maildir, domain, local, 'Maildir');
  const ids = new Map<string, number>();
  for (const sub of ['new', 'cur']) {
    for (const f of await readdir(join(dir, sub)).catch(() => [] as string[])) {
      const fh = await open(join(dir, sub, f), 'r').catch(() => undefined);
      if (!fh) continue;
      try {
        const buf = Buffer.alloc(4096);
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        const head = buf.subarray(0, bytesRead).toString('latin1');
        const m = /^Message-I[Dd]:\s*(<[^>\r\n]*>)/im.exec(head);
        const id = m ? m[1] : `(no id: ${f})`;
        ids.set(id, (ids.get(id) ?? 0) + 1);
      } finally {
        await fh.close();
      }
    }
  }
  return ids;
}

/** How many copies of `id` are in `address`'s mailbox on its owning shard. */
export async function copiesOf(mesh: LocalMesh, address: string, id: string): Promise<number> {
  return (await messageIds(ownerOf(mesh, address), address)).get(id) ?? 0;
}

export function shard(mesh: LocalMesh, id: string): ShardInfo {
  const s = mesh.info.shards.find((x) => x.id === id);
  if (!s) throw new Error(`no shard ${id}`);
  return s;
}

/** The shard that owns `address` (from mesh.json). */
export function ownerOf(mesh: LocalMesh, address: string): ShardInfo {
  const u = mesh.info.users.find((x) => x.address === address);
  if (!u) throw new Error(`unknown user ${address}`);
  return shard(mesh, u.shard);
}

/** A user whose mailbox is on `shardId`. */
export function userOn(mesh: LocalMesh, shardId: string, nth = 0): string {
  const users = mesh.info.users.filter((u) => u.shard === shardId);
  if (users.length === 0) throw new Error(`no user on ${shardId}`);
  return users[nth % users.length].address;
}

/** kill -9 a process and wait (bounded) until it is gone. */
export async function kill9(p: EventProcess, timeoutMs = 10_000): Promise<void> {
  const child = p.child;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  await Promise.race([gone, new Promise((_, reject) => setTimeout(() => reject(new Error(`pid ${child.pid} survived SIGKILL for ${timeoutMs} ms`)), timeoutMs))]);
}

/** A control plane we respawned ourselves (the test stops it; mesh.stop() knows only the first). */
export async function respawnControlPlane(mesh: LocalMesh): Promise<EventProcess> {
  const cp = spawnMailmesh(['control-plane', '--config', join(mesh.dir, 'control-plane.yaml')]);
  try {
    await cp.waitFor((e) => e.event === 'listening', 30_000);
  } catch (err) {
    await cp.stop();
    throw err;
  }
  return cp;
}

/** Every policy revision a sidecar has applied so far (from its `snapshot` events). */
export async function revisionsSeen(p: EventProcess): Promise<Set<unknown>> {
  const seen = new Set<unknown>();
  // waitFor scans every event so far; the predicate only collects, then the 1 ms timeout ends it.
  await p.waitFor((e) => {
    if (e.event === 'snapshot') seen.add(e.revision);
    return false;
  }, 1).catch(() => {});
  return seen;
}

/**
 * Rewrite the policy (DIR/policy/mesh.yaml) with `edit`, SIGHUP the control plane and wait until
 * every running sidecar applied a revision it had not seen before.
 */
export async function editPolicy(mesh: LocalMesh, cp: EventProcess, edit: (yaml: string) => string): Promise<void> {
  const file = join(mesh.dir, 'policy', 'mesh.yaml');
  const before = new Map<string, Set<unknown>>();
  for (const [id, p] of mesh.sidecars) before.set(id, await revisionsSeen(p));
  const text = await readFile(file, 'utf8');
  const next = edit(text);
  if (next === text) throw new Error('policy edit changed nothing');
  await writeFile(file, next);
  cp.child.kill('SIGHUP');
  await Promise.all([...mesh.sidecars].map(([id, p]) =>
    p.waitFor((e) => e.event === 'snapshot' && e.source === 'control-plane' && !before.get(id)!.has(e.revision), 30_000)));
}

/** Put a fault proxy in front of `shardId`'s mesh ingress: the policy names the proxy as the
 * shard's mesh address, so every other shard's dialer goes through it (TLS passes through). */
export async function interposeProxy(mesh: LocalMesh, shardId: string, cp: EventProcess = mesh.controlPlane): Promise<FaultProxy> {
  const s = shard(mesh, shardId);
  // A fixed port below the ephemeral range: the 'refuse' cut closes the listener and heals by
  // listening on the same port again.
  const proxy = await startFaultProxy(s.mesh, (await freePorts(1))[0]);
  try {
    await editPolicy(mesh, cp, (yaml) => yaml.replace(`mesh: ${s.mesh}`, `mesh: ${proxy.address}`));
  } catch (err) {
    await proxy.close();
    throw err;
  }
  return proxy;
}

/** Give every sidecar a fresh certificate with the policy's current TTL: drop its identity, hand it
 * a new join token, restart it (the cached snapshot stays). */
export async function rejoinAll(mesh: LocalMesh): Promise<void> {
  for (const s of mesh.info.shards) {
    await mesh.sidecars.get(s.id)?.stop();
    const shardDir = join(mesh.dir, 'shards', s.id);
    for (const f of ['node.key', 'node.crt', 'bundle.pem']) await rm(join(shardDir, 'state', f), { force: true });
    const token = (await runMailmesh(['token', 'create', '--config', join(mesh.dir, 'control-plane.yaml'), '--shard', s.id, '--node', s.node])).trim();
    await writeFile(join(shardDir, 'join-token'), token + '\n', { mode: 0o600 });
    await mesh.restartSidecar(s.id);
  }
}

/** Resident memory of a process in MB (/proc/PID/status VmRSS), undefined when it is gone. */
export async function rssMB(pid: number | undefined): Promise<number | undefined> {
  if (!pid) return undefined;
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) / 1024 : undefined;
}

/** Counters every fault test prints at the end. */
export class Tally {
  survived = 0;
  accepted = 0;
  delivered = 0;
  duplicates = 0;
  refused4xx = 0;
  refused5xx = 0;
  broken = 0;
  /** Count a sender's outcomes. */
  note(outcomes: Outcome[]): void {
    for (const o of outcomes) {
      if (isAccepted(o)) this.accepted++;
      else if (o.broken) this.broken++;
      else if (o.code >= 500) this.refused5xx++;
      else if (o.code >= 400) this.refused4xx++;
    }
  }
  /** Record what a mailbox check found for one accepted message. */
  landed(copies: number): void {
    if (copies >= 1) this.delivered++;
    if (copies > 1) this.duplicates += copies - 1;
  }
  line(name: string): string {
    return `${name}: survived=${this.survived} accepted=${this.accepted} delivered=${this.delivered} duplicates=${this.duplicates} refused4xx=${this.refused4xx} refused5xx=${this.refused5xx} broken=${this.broken}`;
  }
}

/** PIDs whose parent is `pid` (from /proc/PID/stat), e.g. Dovecot's lmtp/imap children. */
export async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // Field 4 (ppid) follows the command name in parentheses, which may itself hold spaces.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) out.push(Number(name));
  }
  return out;
}
