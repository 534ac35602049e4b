import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from '../helpers/real.ts';
import { startPostfix, freePort, type PostfixInstance } from '../helpers/postfix.ts';
import { MailClient } from '../../sidecar/lmtp/client.ts';
import { startMaildirLmtp, type MaildirLmtp } from '../../sidecar/maildir/server.ts';
import { startSocketmapServer, type SocketmapServer } from '../../sidecar/postfix/socketmap.ts';
import { makePostfixLookups, type RouteAnswer } from '../../sidecar/postfix/lookups.ts';

const SHARD_OF: Record<string, string> = { 'alice@mail.test': 'tokyo-1', 'bob@mail.test': 'osaka-1' };

function route(address: string): RouteAnswer {
  if (!address.includes('@')) return { kind: 'invalid' };
  if (!address.endsWith('@mail.test')) return { kind: 'not-hosted' };
  if (address === 'flaky@mail.test') throw new Error('placement snapshot unavailable');
  return { kind: 'shard', shardId: SHARD_OF[address] ?? 'tokyo-1' };
}

/** Copies in `address`'s Maildir/new whose content contains `marker`. */
async function copies(backend: MaildirLmtp, address: string, marker: string): Promise<string[]> {
  const dir = join(backend.pathOf(address), 'new');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const bodies = await Promise.all(names.map((n) => readFile(join(dir, n), 'utf8')));
  return bodies.filter((b) => b.includes(marker));
}

async function waitFor(what: string, check: () => Promise<boolean>, pf: PostfixInstance, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}\n--- queue ---\n${JSON.stringify(await pf.queue())}\n--- maillog ---\n${await pf.maillog()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function submit(pf: PostfixInstance, recipients: string[], body: string) {
  const socket = connect(pf.smtpPort, '127.0.0.1');
  await once(socket, 'connect');
  const client = await MailClient.open(socket, { lmtp: false, heloName: 'client.test', timeoutMs: 20_000 });
  try {
    return await client.send({ from: 'sender@x.test', recipients, body: Buffer.from(body) });
  } finally {
    await client.quit();
  }
}

test('a private Postfix routes each recipient by socketmap answers to its LMTP backend, exactly once, and retries a down backend', async (t) => {
  if (!requireBinary(t, 'postfix')) return;
  const root = await mkdtemp(join(tmpdir(), 'mailmesh-pfmaps-'));
  let local: MaildirLmtp | undefined;
  let egress: MaildirLmtp | undefined;
  let map: SocketmapServer | undefined;
  let pf: PostfixInstance | undefined;
  let closeHolder = async () => {};
  try {
    // Two embedded backends: one stands in for the local Dovecot, one for the sidecar's egress.
    // Each accepts only the user that must reach it, so a wrong route cannot pass unnoticed.
    local = await startMaildirLmtp({ host: '127.0.0.1', port: 0, root: join(root, 'local'), accept: (a) => a === 'alice@mail.test' });
    const egressPort = await freePort();
    const startEgress = () => startMaildirLmtp({ host: '127.0.0.1', port: egressPort, root: join(root, 'egress'), accept: (a) => a === 'bob@mail.test' });
    egress = await startEgress();
    const lookups: string[] = [];
    const lookup = makePostfixLookups({
      route,
      isKnownUser: (a) => a in SHARD_OF,
      localShard: 'tokyo-1',
      localLmtp: `127.0.0.1:${local.port}`,
      egress: `127.0.0.1:${egressPort}`,
    });
    map = await startSocketmapServer({
      host: '127.0.0.1',
      port: 0,
      lookup: (name, key) => {
        lookups.push(`${name} ${key}`);
        return lookup(name, key);
      },
    });
    pf = await startPostfix({
      relayDomains: ['mail.test'],
      transportMaps: `socketmap:inet:127.0.0.1:${map.port}:transport`,
      relayRecipientMaps: `socketmap:inet:127.0.0.1:${map.port}:recipients`,
    });
    const pfi = pf;

    // 1. One message, three recipients: two known users on two shards, one unknown user.
    const marker1 = `first-${Date.now()}`;
    const res = await submit(pfi, ['alice@mail.test', 'bob@mail.test', 'nobody@mail.test'], `Subject: ${marker1}\r\nMessage-ID: <${marker1}@x.test>\r\n\r\nhello ${marker1}\r\n`);
    assert.deepEqual(res.recipients.map((r) => [r.address, r.code, r.accepted]), [
      ['alice@mail.test', 250, true],
      ['bob@mail.test', 250, true],
      ['nobody@mail.test', 550, false],
    ]);
    assert.equal(res.recipients[2].enhanced, '5.1.1');
    await waitFor('both copies', async () => (await copies(local!, 'alice@mail.test', marker1)).length === 1 && (await copies(egress!, 'bob@mail.test', marker1)).length === 1, pfi);
    await waitFor('an empty queue', async () => (await pfi.queue()).length === 0, pfi);
    assert.equal((await copies(local, 'alice@mail.test', marker1)).length, 1);
    assert.equal((await copies(egress, 'bob@mail.test', marker1)).length, 1);
    assert.equal((await copies(local, 'bob@mail.test', marker1)).length, 0);
    assert.ok(lookups.includes('transport alice@mail.test'), lookups.join('\n'));
    assert.ok(lookups.includes('recipients nobody@mail.test'), lookups.join('\n'));

    // A lookup failure (socketmap TEMP) is a temporary refusal at RCPT: the sender retries.
    const flaky = await submit(pfi, ['flaky@mail.test'], 'Subject: flaky\r\n\r\nx\r\n');
    assert.equal(flaky.recipients[0].code, 451, flaky.recipients[0].message);
    assert.equal(flaky.recipients[0].enhanced?.[0], '4');

    // 2. The egress backend is down: bob's copy stays queued (deferred), alice's is delivered.
    await egress.close();
    egress = undefined;
    // Hold the port while the backend is down, so no other process on this machine can take it
    // (Postfix would then talk to a stranger): every connection is dropped at once, which Postfix
    // treats like a dead backend and defers.
    const holder = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => holder.listen(egressPort, '127.0.0.1', resolve));
    closeHolder = () => new Promise<void>((resolve) => holder.close(() => resolve()));
    const marker2 = `second-${Date.now()}`;
    const res2 = await submit(pfi, ['alice@mail.test', 'bob@mail.test'], `Subject: ${marker2}\r\n\r\nagain ${marker2}\r\n`);
    assert.deepEqual(res2.recipients.map((r) => r.code), [250, 250]);
    await waitFor('alice to get the second message', async () => (await copies(local!, 'alice@mail.test', marker2)).length === 1, pfi);
    let deferredFor: string[] = [];
    await waitFor('bob deferred in the queue', async () => {
      const q = await pfi.queue();
      // A deferred recipient carries its delay_reason; between retries the message may briefly
      // sit in the active queue, so the reason, not the queue name, is what we look for.
      deferredFor = q.flatMap((m) => m.recipients.filter((r) => r.delay_reason !== undefined || m.queue_name === 'deferred').map((r) => r.address));
      return deferredFor.length > 0;
    }, pfi);
    assert.deepEqual(deferredFor, ['bob@mail.test']);

    // 3. The backend comes back on the same port; a flush delivers the copy exactly once.
    await closeHolder();
    closeHolder = async () => {};
    egress = await startEgress();
    await pfi.flush();
    await waitFor('bob to get the second message', async () => (await copies(egress!, 'bob@mail.test', marker2)).length >= 1, pfi);
    await waitFor('an empty queue', async () => (await pfi.queue()).length === 0, pfi);
    assert.equal((await copies(egress, 'bob@mail.test', marker2)).length, 1);
    assert.equal((await copies(local, 'alice@mail.test', marker2)).length, 1);
    assert.equal((await copies(egress, 'bob@mail.test', marker1)).length, 1);
  } finally {
    await pf?.stop();
    await map?.close();
    await local?.close();
    await egress?.close();
    await closeHolder();
    await rm(root, { recursive: true, force: true });
  }
});
