// Bounded soak: thousands of messages (3,000 by default, 20,000 with MAILMESH_SOAK=1) over the
// three front doors from several concurrent senders — our MailClient senders, which retry every
// 4xx or broken session with the same bytes (through the next front door), and Postfix's
// smtp-source — while one sidecar is killed with SIGKILL and restarted mid-run. Every message that
// got 250 is in every recipient's mailbox exactly once (by Message-ID), nothing is left unaccepted,
// duplicates = 0, and sidecar RSS stays bounded and does not grow between the halves of the run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalMesh, type LocalMesh } from '../../cli/demo/local-mesh.ts';
import type { MailClient } from '../../sidecar/lmtp/client.ts';
import { requireBinary } from '../helpers/real.ts';
import { kill9, makeMessage, messageIds, openSmtp, ownerOf, rssMB, shard, type Outcome, waitUntil } from './kit.ts';

const soak = process.env.MAILMESH_SOAK === '1';
const TOTAL = Number(process.env.MAILMESH_SOAK_MESSAGES ?? (soak ? 20_000 : 3_000));
const SENDERS = 4;
/** Share of TOTAL sent by smtp-source (to a mailbox on a shard that is not restarted). */
const SOURCE_SHARE = 0.2;
const RESTARTED = 'osaka-1';

let dir: string;
let mesh: LocalMesh | undefined;
const summary = { messages: 0, senders: 0, restarts: 0, accepted: 0, retried: 0, attempts: 0, duplicates: 0, missing: 0, smtpSource: 0, maxRssMB: 0, firstHalfRssMB: 0, secondHalfRssMB: 0, seconds: 0 };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mm-faults-soak-'));
  mesh = await startLocalMesh({ dir, backends: 'embedded' });
});

after(async () => {
  await mesh?.stop();
  await rm(dir, { recursive: true, force: true });
  const s = summary;
  console.log(`soak: messages=${s.messages} senders=${s.senders} restarts=${s.restarts} accepted=${s.accepted} retried=${s.retried} attempts=${s.attempts} duplicates=${s.duplicates} missing=${s.missing} smtpSourceDelivered=${s.smtpSource} maxRssMB=${s.maxRssMB.toFixed(0)} rssHalvesMB=${s.firstHalfRssMB.toFixed(0)}/${s.secondHalfRssMB.toFixed(0)} seconds=${s.seconds}`);
});

/** A sender with one SMTP session at a time, moving to the next front door when one fails. */
class Sender {
  private client: MailClient | undefined;
  private door: number;
  private readonly doors: string[];
  constructor(doors: string[], first: number) {
    this.doors = doors;
    this.door = first;
  }
  async send(recipients: string[], body: Buffer): Promise<Outcome> {
    try {
      this.client ??= await openSmtp(this.doors[this.door % this.doors.length], 30_000);
      const res = await this.client.send({ from: 'soak@sender.test', recipients, body });
      const r = res.recipients.find((x) => !x.accepted) ?? res.recipients[0];
      if (!this.client.usable) this.drop();
      return { code: r.code, enhanced: r.enhanced, message: r.message };
    } catch (err) {
      this.drop();
      return { code: 0, message: (err as Error).message, broken: true };
    }
  }
  /** Forget the session (it failed or the server closed it) and use the next front door. */
  drop(): void {
    void this.client?.quit().catch(() => {});
    this.client = undefined;
    this.door++;
  }
  async close(): Promise<void> {
    await this.client?.quit().catch(() => {});
  }
}

function runSmtpSource(bin: string, door: string, count: number, rcpt: string): Promise<{ code: number | null; out: string }> {
  const [host, port] = [door.slice(0, door.lastIndexOf(':')), door.slice(door.lastIndexOf(':') + 1)];
  return new Promise((resolve) => {
    execFile(bin, ['-s', '4', '-m', String(count), '-l', '1500', '-M', 'smtp-source.test', '-f', 'source@sender.test', '-t', rcpt, `${host}:${port}`],
      { timeout: 600_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}`.trim() }));
  });
}

test(`soak: ${TOTAL} messages, ${SENDERS} MailClient senders + smtp-source, ${RESTARTED} killed and restarted mid-run`, { timeout: soak ? 3_600_000 : 600_000 }, async (t) => {
  const source = requireBinary(t, 'smtp-source', 'postfix');
  if (!source) return;
  const m = mesh!;
  const t0 = Date.now();
  const doors = m.info.shards.map((s) => s.smtp);
  const users = m.info.users.map((u) => u.address);
  const sourceCount = Math.round(TOTAL * SOURCE_SHARE);
  const ours = TOTAL - sourceCount;
  // smtp-source writes to a mailbox whose owner is not restarted, through a door that is not either.
  const sourceRcpt = m.info.users.find((u) => u.shard === 'frankfurt-1')!.address;
  const accepted = new Map<string, string[]>();
  const unaccepted: string[] = [];
  let next = 0;
  let done = 0;

  // RSS of every sidecar, sampled once a second; the run is split in halves by messages done.
  const rss = { first: 0, second: 0 };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const p of m.sidecars.values()) {
        const mb = await rssMB(p.child.pid);
        if (mb === undefined) continue;
        if (done < ours / 2) rss.first = Math.max(rss.first, mb);
        else rss.second = Math.max(rss.second, mb);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();

  // Kill -9 one sidecar once 40% of our messages are accepted, and restart it.
  const restarter = (async () => {
    await waitUntil('40% of the messages accepted', () => done >= ours * 0.4, soak ? 3_000_000 : 500_000, 200);
    await kill9(m.sidecars.get(RESTARTED)!);
    summary.restarts++;
    await m.restartSidecar(RESTARTED);
  })();

  const runSender = async (k: number) => {
    const sender = new Sender(doors, k);
    try {
      for (;;) {
        const i = next++;
        if (i >= ours) return;
        const to = [users[i % users.length], ...(i % 5 === 0 ? [users[(i * 7 + 3) % users.length]] : [])].filter((v, j, a) => a.indexOf(v) === j);
        const msg = makeMessage(`soak-${k}`, to.join(', '), 1200 + (i % 7) * 300);
        const deadline = Date.now() + 120_000;
        let ok = false;
        for (let attempt = 0; attempt < 200 && Date.now() < deadline; attempt++) {
          summary.attempts++;
          if (attempt > 0) summary.retried++;
          const o = await sender.send(to, msg.body);
          if (o.code >= 200 && o.code < 300) {
            ok = true;
            break;
          }
          assert.ok(o.code < 500, `5xx for ${msg.id}: ${o.code} ${o.message}`);
          // 4xx or a broken session: same bytes again, through the next front door, after a pause.
          sender.drop();
          await new Promise((r) => setTimeout(r, Math.min(1000, 50 * (attempt + 1))));
        }
        if (ok) accepted.set(msg.id, to);
        else unaccepted.push(msg.id);
        done++;
      }
    } finally {
      await sender.close();
    }
  };

  const sourceRun = runSmtpSource(source, shard(m, 'tokyo-1').smtp, sourceCount, sourceRcpt);
  await Promise.all([...Array.from({ length: SENDERS }, (_, k) => runSender(k)), restarter]);
  const src = await sourceRun;
  sampling = false;
  await sampler;
  summary.seconds = Math.round((Date.now() - t0) / 1000);
  summary.messages = TOTAL;
  summary.senders = SENDERS + 4; // + smtp-source's 4 sessions
  summary.accepted = accepted.size;
  summary.firstHalfRssMB = rss.first;
  summary.secondHalfRssMB = rss.second;
  summary.maxRssMB = Math.max(rss.first, rss.second);
  assert.equal(src.code, 0, `smtp-source failed: ${src.out.slice(-500)}`);
  assert.deepEqual(unaccepted, [], 'every message is accepted within the retry bound');

  // Every accepted message is in every recipient's mailbox exactly once.
  const boxes = new Map<string, Map<string, number>>();
  for (const u of users) boxes.set(u, await messageIds(ownerOf(m, u), u));
  let duplicates = 0;
  let missing = 0;
  for (const [id, to] of accepted) {
    for (const rcpt of to) {
      const n = boxes.get(rcpt)!.get(id) ?? 0;
      if (n === 0) missing++;
      if (n > 1) duplicates += n - 1;
    }
  }
  // Nothing else was stored twice either (smtp-source's messages included).
  for (const box of boxes.values()) for (const [id, n] of box) if (n > 1 && !accepted.has(id)) duplicates += n - 1;
  const fromSource = [...boxes.get(sourceRcpt)!.keys()].filter((id) => id.endsWith('@smtp-source.test>')).length;
  summary.duplicates = duplicates;
  summary.smtpSource = fromSource;
  summary.missing = missing;
  assert.equal(missing, 0, 'accepted but not delivered');
  assert.equal(duplicates, 0, 'delivered twice');
  // smtp-source's Message-IDs may repeat across its sessions; distinct ones must all be there.
  assert.ok(fromSource > 0 && fromSource <= sourceCount, `smtp-source messages in ${sourceRcpt}: ${fromSource}`);

  assert.ok(summary.maxRssMB < 400, `sidecar RSS ${summary.maxRssMB} MB`);
  assert.ok(rss.second < rss.first * 1.5 + 50, `RSS grew between halves: ${rss.first} → ${rss.second} MB`);
});
