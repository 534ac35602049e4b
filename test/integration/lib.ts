// Shared steps of the integration suites: a local mesh in a temp dir, SMTP sends, Maildir counts
// with bounded polling, and IMAP clients that connect from a chosen loopback address.
import net from 'node:net';
import tls from 'node:tls';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { ImapFlow, type ImapTransport } from 'imapflow';
import { MailClient } from '../../sidecar/lmtp/client.ts';
import { maildirPath } from '../../sidecar/maildir/paths.ts';
import { startLocalMesh, type LocalMesh, type MeshInfo } from '../../cli/demo/local-mesh.ts';

/** Start a local mesh in a fresh temp dir; `cleanup()` stops every process and removes the dir. */
export async function meshFor(backends: 'embedded' | 'real'): Promise<LocalMesh & { cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `mm-it-${backends}-`));
  let mesh: LocalMesh;
  try {
    mesh = await startLocalMesh({ dir, backends });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return Object.assign(mesh, {
    async cleanup() {
      await mesh.stop();
      await rm(dir, { recursive: true, force: true });
    },
  });
}

/** A message whose Subject carries a unique token, so its copies can be found on disk. */
export function tokenMessage(to: string[], label: string): { token: string; body: Buffer } {
  const token = `${label}-${randomUUID()}`;
  const body = Buffer.from(
    `From: sender@example.org\r\nTo: ${to.join(', ')}\r\nSubject: ${token}\r\nMessage-ID: <${token}@example.org>\r\n` +
      `Date: ${new Date().toUTCString()}\r\n\r\nbody of ${token}\r\n`,
  );
  return { token, body };
}

/** One SMTP transaction to `address` (a front door): the per-recipient RCPT replies and the DATA reply. */
export async function smtpSend(address: string, recipients: string[], body: Buffer): Promise<{ code: number; text: string }[]> {
  const i = address.lastIndexOf(':');
  const socket = net.connect(Number(address.slice(i + 1)), address.slice(0, i));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const client = await MailClient.open(socket, { lmtp: false, heloName: 'sender.example.org', timeoutMs: 30_000 });
  try {
    const res = await client.send({ from: 'sender@example.org', recipients, body });
    return res.recipients.map((r) => ({ code: r.code, text: `${r.code} ${r.enhanced ?? ''} ${r.message}` }));
  } finally {
    await client.quit().catch(() => {});
    socket.destroy();
  }
}

/** Where a mailbox lives on a shard of the mesh (same layout for Dovecot and the embedded store). */
export function maildirOn(info: MeshInfo, shardId: string, address: string): string {
  return maildirPath(info.shards.find((s) => s.id === shardId)!.maildir, address);
}

/** Every copy of the message with `token` on disk, across all shards and mailboxes. */
export async function copiesOf(info: MeshInfo, token: string): Promise<{ shard: string; mailbox: string }[]> {
  const out: { shard: string; mailbox: string }[] = [];
  for (const s of info.shards) {
    for (const domain of await readdir(s.maildir).catch(() => [] as string[])) {
      for (const local of await readdir(join(s.maildir, domain)).catch(() => [] as string[])) {
        for (const sub of ['new', 'cur']) {
          const d = join(s.maildir, domain, local, 'Maildir', sub);
          for (const f of await readdir(d).catch(() => [] as string[])) {
            const text = await readFile(join(d, f), 'utf8').catch(() => '');
            if (text.includes(`Subject: ${token}`)) out.push({ shard: s.id, mailbox: `${local}@${domain}` });
          }
        }
      }
    }
  }
  return out.sort((a, b) => `${a.shard}/${a.mailbox}`.localeCompare(`${b.shard}/${b.mailbox}`));
}

/** Poll `check` (every 50 ms) until it returns true or `timeoutMs` passes; returns the last result. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Password of a demo user (random per mesh in real mode). */
export function passwordOf(info: MeshInfo, address: string): string {
  return info.users.find((u) => u.address === address)!.password;
}

/** The owning shard of a demo user. */
export function ownerOf(info: MeshInfo, address: string): string {
  return info.users.find((u) => u.address === address)!.shard;
}

/** An imapflow transport whose connections leave from `localAddress` (so the server sees that
 * client address) and upgrade with STARTTLS over the same socket. */
export function transportFrom(localAddress: string): ImapTransport {
  return {
    connect: (o, onConnect) =>
      o.secure
        ? tls.connect({ ...o.tls, socket: net.connect({ host: o.host, port: o.port, localAddress }), servername: o.servername ?? o.tls?.servername }, onConnect)
        : net.connect({ host: o.host, port: o.port, localAddress }, onConnect),
    upgrade: (socket, o, onSecure) => tls.connect({ ...o.tls, socket: socket as net.Socket, servername: o.servername ?? o.tls?.servername }, onSecure),
  };
}

/** An IMAP client to a sidecar's public IMAP proxy: STARTTLS required, the demo CA trusted. */
export function proxyClient(address: string, user: { address: string; password: string }, ca: Buffer, localAddress = '127.0.0.1'): ImapFlow {
  const i = address.lastIndexOf(':');
  return new ImapFlow({
    host: address.slice(0, i), port: Number(address.slice(i + 1)), secure: false, doSTARTTLS: true,
    tls: { ca, servername: 'localhost', rejectUnauthorized: true },
    auth: { user: user.address, pass: user.password }, logger: false, transport: transportFrom(localAddress),
  });
}
