// Mail throughput, end to end (delivered into the Maildir, not just accepted): 10 KB messages
//  - mail.mesh:     front door → Postfix → socketmap → egress → mesh mTLS → owner's ingress →
//                   owner's Dovecot LMTP (recipient on a remote shard), real Postfix and Dovecot;
//  - mail.direct:   the same size and count into one Postfix whose transport is a Dovecot LMTP on
//                   the same machine (the baseline: what the machine does without mailmesh);
//                   both paths reach Dovecot over its LMTP socket (lmtp:unix:…), as installed;
//  - mail.embedded: front door → fan-out over the mesh → the owner's embedded Maildir store;
//  - mail.mesh_sidecar_loop: during the mail.mesh windows, the share of wall time the front
//                   sidecar's event loop (tokyo-1: front door, egress, socketmap) was busy, next to
//                   its CPU time share: busy far above CPU means the loop waited for a CPU;
//  - mail.hop_rtt:  one delivery to a real Dovecot LMTP across a link with a 50 ms round trip
//                   (a mesh hop between regions), as the egress sends it (BDAT: the transaction
//                   and the message in one flight) against the DATA dialogue (354 first).
// Figures only; never a pass/fail.
import { once } from 'node:events';
import net from 'node:net';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailClient } from '../sidecar/lmtp/client.ts';
import { maildirPath } from '../sidecar/maildir/paths.ts';
import { startLocalMesh, type LocalMesh } from '../cli/demo/local-mesh.ts';
import { startDovecot } from '../cli/demo/backends/dovecot.ts';
import { startPostfix } from '../cli/demo/backends/postfix.ts';
import { freePorts } from '../cli/demo/ports.ts';
import { realBackendsInstalled } from '../cli/demo/backends/system.ts';
import { result, type BenchFn, type BenchResult } from './harness.ts';

const RCPT = 'bob@mail.test'; // osaka-1 in the demo policy; sent via tokyo-1: a remote shard
const CONCURRENCY = 8;
const body = (i: number) => {
  const head = `From: bench@example.org\r\nTo: ${RCPT}\r\nSubject: bench ${i}\r\nMessage-ID: <bench-${i}-${Date.now()}-${Math.random()}@example.org>\r\n\r\n`;
  return Buffer.from(head + ('x'.repeat(98) + '\r\n').repeat(Math.ceil((10 * 1024 - head.length) / 100)));
};

/** Send `n` messages to `address` over CONCURRENCY connections; returns how many got 250. */
async function sendMany(address: string, n: number): Promise<number> {
  const i = address.lastIndexOf(':');
  let next = 0;
  let ok = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    const socket = net.connect(Number(address.slice(i + 1)), address.slice(0, i));
    await once(socket, 'connect');
    const client = await MailClient.open(socket, { lmtp: false, heloName: 'bench.example.org', timeoutMs: 60_000 });
    try {
      while (next < n) {
        const k = next++;
        const res = await client.send({ from: 'bench@example.org', recipients: [RCPT], body: body(k) });
        if (res.recipients[0].code === 250) ok++;
      }
    } finally {
      await client.quit().catch(() => {});
      socket.destroy();
    }
  }));
  return ok;
}

const count = async (maildir: string) => (await readdir(join(maildir, 'new')).catch(() => [])).length;

/** Send `n` and wait (bounded) until `n` more are in `maildir`; messages delivered per second. */
async function measure(door: string, maildir: string, n: number): Promise<number> {
  const before = await count(maildir);
  const start = performance.now();
  const accepted = await sendMany(door, n);
  if (accepted !== n) throw new Error(`only ${accepted} of ${n} messages were accepted`);
  const deadline = Date.now() + 180_000;
  while ((await count(maildir)) < before + n) {
    if (Date.now() > deadline) throw new Error(`only ${(await count(maildir)) - before} of ${n} delivered within 180 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return n / ((performance.now() - start) / 1000);
}

async function withMesh<T>(backends: 'embedded' | 'real', fn: (mesh: LocalMesh) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `mm-bench-${backends}-`));
  const mesh = await startLocalMesh({ dir, backends });
  try {
    return await fn(mesh);
  } finally {
    await mesh.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const door = (mesh: LocalMesh) => mesh.info.shards.find((s) => s.id === 'tokyo-1')!.smtp;
const bobBox = (mesh: LocalMesh) => maildirPath(mesh.info.shards.find((s) => s.id === 'osaka-1')!.maildir, RCPT);
const frontMetrics = (mesh: LocalMesh) => mesh.info.shards.find((s) => s.id === 'tokyo-1')!.metrics;

/** A sidecar's event-loop busy seconds and CPU seconds so far, from its /metrics. */
async function loopAndCpu(metrics: string): Promise<{ busy: number; cpu: number }> {
  const text = await (await fetch(`http://${metrics}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { busy: value('mailmesh_event_loop_active_seconds_total'), cpu: value('process_cpu_seconds_total') };
}

/** A TCP relay to `port` that holds every chunk `oneWayMs` in each direction, order kept. */
async function slowLink(port: number, oneWayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const delay = (from: net.Socket, to: net.Socket) => from.on('data', (d) => setTimeout(() => to.write(d), oneWayMs));
  // No Nagle delay on either side, as on the mesh's own sockets.
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ port, host: '127.0.0.1', noDelay: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => sockets.delete(s));
    }
    delay(client, upstream);
    delay(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** Milliseconds per delivery of a 10 KB message over a 50 ms round-trip link, one at a time. */
async function hopLatency(lmtpPort: number, chunking: boolean, n: number): Promise<number> {
  const link = await slowLink(lmtpPort, 25);
  const socket = net.connect({ port: link.port, host: '127.0.0.1', noDelay: true });
  try {
    await once(socket, 'connect');
    const client = await MailClient.open(socket, { lmtp: true, heloName: 'bench.mail.test', timeoutMs: 30_000, chunking });
    const send = async (i: number) => {
      const res = await client.send({ from: 'bench@example.org', recipients: [RCPT], body: body(i) });
      if (res.recipients[0].code !== 250) throw new Error(`delivery refused: ${res.recipients[0].code} ${res.recipients[0].message}`);
    };
    await send(-1);
    const start = performance.now();
    for (let i = 0; i < n; i++) await send(i);
    const ms = (performance.now() - start) / n;
    await client.quit();
    return ms;
  } finally {
    socket.destroy();
    await link.close();
  }
}

/** The baseline: one Postfix whose transport is the Dovecot LMTP socket on the same machine. */
async function startDirect(): Promise<{ door: string; maildir: string; lmtpPort: number; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-bench-direct-'));
  await chmod(dir, 0o755);
  const dc = await startDovecot({ dir: join(dir, 'dovecot'), users: [{ address: RCPT, password: 'bench' }] });
  try {
    const [port] = await freePorts(1);
    const pf = await startPostfix({
      dir: join(dir, 'postfix'), smtpPort: port, hostname: 'mx.mail.test', relayDomains: ['mail.test'],
      transportMaps: `inline:{ mail.test=lmtp:unix:${dc.lmtpSocket} }`, fastRetry: true,
    });
    return {
      door: `127.0.0.1:${port}`,
      maildir: dc.maildirOf(RCPT),
      lmtpPort: dc.lmtpPort,
      async stop() {
        await pf.stop();
        await dc.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await dc.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export const run: BenchFn = async ({ quick }) => {
  const n = quick ? 100 : 2000;
  const out: BenchResult[] = [];
  // Warm-up per path: the sidecars' JIT, Postfix's smtpd/cleanup/lmtp processes, every pool.
  const warm = quick ? 20 : 200;
  if (realBackendsInstalled() && process.getuid?.() === 0) {
    // Both set up at once, then windows alternate (mesh, direct, direct, mesh, …): a busy
    // neighbour or a slow disk moment falls on both paths alike instead of on one whole run.
    // A window is 500 messages: each one starts with empty queues (Postfix's per-destination
    // concurrency starts low again) and ends draining the last deliveries, which in windows of
    // 150 (about half a second) weighed more than the throughput being measured.
    const rounds = quick ? 2 : 4;
    const per = Math.ceil(n / rounds);
    const { mesh, direct, hop, loop } = await withMesh('real', async (m) => {
      const d = await startDirect();
      try {
        // Before the throughput windows, on a quiet machine: latency, not load.
        const hops = quick ? 5 : 20;
        const hop = { bdat: await hopLatency(d.lmtpPort, true, hops), data: await hopLatency(d.lmtpPort, false, hops) };
        const paths = { mesh: { door: door(m), box: bobBox(m) }, direct: { door: d.door, box: d.maildir } };
        const secs = { mesh: 0, direct: 0 };
        const loop = { busy: 0, cpu: 0 };
        for (const k of ['mesh', 'direct'] as const) await measure(paths[k].door, paths[k].box, warm);
        for (let r = 0; r < rounds; r++) {
          for (const k of r % 2 === 0 ? (['mesh', 'direct'] as const) : (['direct', 'mesh'] as const)) {
            const before = k === 'mesh' ? await loopAndCpu(frontMetrics(m)) : undefined;
            secs[k] += per / (await measure(paths[k].door, paths[k].box, per));
            if (before) {
              const after = await loopAndCpu(frontMetrics(m));
              loop.busy += after.busy - before.busy;
              loop.cpu += after.cpu - before.cpu;
            }
          }
        }
        return { mesh: (per * rounds) / secs.mesh, direct: (per * rounds) / secs.direct, hop, loop: { busy: loop.busy / secs.mesh, cpu: loop.cpu / secs.mesh } };
      } finally {
        await d.stop();
      }
    });
    out.push(result('mail.direct', direct, 'msg/s', null));
    out.push(result('mail.mesh', mesh, 'msg/s', direct, `mail.direct, ${rounds} alternating windows of ${per} × 10 KB`, '>= 70% of direct'));
    out.push(result('mail.mesh_sidecar_loop', loop.busy, 'of wall time', loop.cpu, 'its CPU time share (process_cpu_seconds_total), same windows'));
    out.push(result('mail.hop_rtt', hop.bdat, 'ms/msg', hop.data, 'the DATA dialogue (MAIL/RCPT/DATA, 354, then the message) over the same 50 ms link'));
  }
  const embedded = await withMesh('embedded', async (m) => {
    await measure(door(m), bobBox(m), warm);
    return measure(door(m), bobBox(m), n);
  });
  out.push(result('mail.embedded', embedded, 'msg/s', null));
  return out;
};
