import net from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MailClient } from '../../sidecar/lmtp/client.ts';
import type { MeshInfo } from './local-mesh.ts';

/** What one sample message got. */
export interface SampleResult {
  name: string;
  via: string;
  recipients: string[];
  replies: { address: string; reply: string }[];
}

async function send(smtp: string, from: string, recipients: string[], body: Buffer): Promise<{ address: string; reply: string }[]> {
  const [host, port] = [smtp.slice(0, smtp.lastIndexOf(':')), Number(smtp.slice(smtp.lastIndexOf(':') + 1))];
  const socket = net.connect(port, host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const client = await MailClient.open(socket, { lmtp: false, heloName: 'demo-sender.test', timeoutMs: 30_000 });
  try {
    const res = await client.send({ from, recipients, body });
    return res.recipients.map((r) => ({ address: r.address, reply: `${r.code} ${r.enhanced ?? ''} ${r.message}`.replace(/\s+/g, ' ').trim() }));
  } finally {
    await client.quit().catch(() => {});
  }
}

function message(subject: string, to: string, extra = ''): Buffer {
  return Buffer.from(
    `From: demo@sender.test\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${Date.now()}.${Math.random().toString(36).slice(2)}@sender.test>\r\n` +
      `Date: ${new Date().toUTCString()}\r\n\r\nHello from the mailmesh demo.\r\n${extra}`,
  );
}

/**
 * Send the demo's three sample messages through the first shard's front door: one with
 * recipients on all three shards, one to an unknown user, one over the size limit.
 */
export async function sendSamples(info: MeshInfo, maxBytes: number): Promise<SampleResult[]> {
  const entry = info.shards[0];
  const byShard = new Map<string, string>();
  for (const u of info.users) if (!byShard.has(u.shard)) byShard.set(u.shard, u.address);
  const everyone = [...byShard.values()];
  const results: SampleResult[] = [];
  const run = async (name: string, recipients: string[], body: Buffer) => {
    results.push({ name, via: entry.id, recipients, replies: await send(entry.smtp, 'demo@sender.test', recipients, body) });
  };
  await run('one message, recipients on every shard', everyone, message('hello every shard', everyone.join(', ')));
  await run('unknown user', ['nobody-here@mail.test'], message('to nobody', 'nobody-here@mail.test'));
  await run('oversized message', [everyone[0]], message('too big', everyone[0], ('y'.repeat(998) + '\r\n').repeat(Math.ceil(maxBytes / 1000) + 10)));
  return results;
}

/** Count the messages in each user's Maildir on each shard: where the mail landed. */
export async function mailboxes(info: MeshInfo): Promise<{ shard: string; mailbox: string; messages: number }[]> {
  const out: { shard: string; mailbox: string; messages: number }[] = [];
  for (const s of info.shards) {
    for (const domain of await readdir(s.maildir).catch(() => [] as string[])) {
      if (domain.startsWith('.')) continue;
      for (const local of await readdir(join(s.maildir, domain)).catch(() => [] as string[])) {
        const files = await readdir(join(s.maildir, domain, local, 'Maildir', 'new')).catch(() => [] as string[]);
        out.push({ shard: s.id, mailbox: `${local}@${domain}`, messages: files.length });
      }
    }
  }
  return out;
}

/**
 * Wait until every address in `expect` has at least that many messages in its owner's mailbox
 * (real mode: `250` from Postfix means queued, delivery follows). Polls the Maildirs until
 * `timeoutMs`; returns the final listing either way.
 */
export async function awaitMailboxes(info: MeshInfo, expect: Map<string, number>, timeoutMs = 30_000): Promise<{ shard: string; mailbox: string; messages: number }[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const boxes = await mailboxes(info);
    const done = [...expect].every(([address, n]) => {
      const owner = info.users.find((u) => u.address === address)?.shard;
      return boxes.some((b) => b.shard === owner && b.mailbox === address && b.messages >= n);
    });
    if (done || Date.now() >= deadline) return boxes;
    await new Promise((r) => setTimeout(r, 100));
  }
}
