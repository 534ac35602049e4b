// The embedded mail path (no Postfix): front door → fan-out to every owning shard → 250 only when
// all stored; a retry after a partial failure stores no second copy where the first succeeded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startMaildirLmtp, type MaildirLmtp } from '../../sidecar/maildir/server.ts';
import { startFrontDoor } from '../../sidecar/mail/frontdoor.ts';
import { Deliverer, type Placement } from '../../sidecar/mail/deliver.ts';
import { embeddedHandoff } from '../../sidecar/mail/handoff.ts';
import { LmtpSender } from '../../sidecar/mail/lmtp-sender.ts';
import { TcpPool } from '../../sidecar/mail/lease.ts';
import { MailClient } from '../../sidecar/lmtp/client.ts';
import { freePorts } from '../../cli/demo/ports.ts';

const log = pino({ level: 'silent' });
const owners: Record<string, string> = { alice: 'tokyo-1', bob: 'osaka-1', carol: 'frankfurt-1' };
const placement: Placement = (address) => {
  const [local, domain] = address.toLowerCase().split('@');
  if (domain !== 'mail.test') return { kind: 'not-hosted' };
  return owners[local] ? { kind: 'shard', shardId: owners[local] } : { kind: 'shard', shardId: 'tokyo-1' };
};

async function smtp(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  return MailClient.open(socket, { lmtp: false, heloName: 'sender.test', timeoutMs: 10_000 });
}

async function count(dir: string): Promise<number> {
  return (await readdir(join(dir, 'new')).catch(() => [])).length;
}

test('one message to three shards lands once in each owner, and a retry after a partial failure adds no duplicate', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'mm-embedded-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const stores: Record<string, MaildirLmtp> = {};
  const ports: Record<string, number> = {};
  // Fixed ports below the ephemeral range: osaka's store is restarted on the same one.
  const free = await freePorts(3);
  for (const [i, shard] of ['tokyo-1', 'osaka-1', 'frankfurt-1'].entries()) {
    stores[shard] = await startMaildirLmtp({ host: '127.0.0.1', port: free[i], root: join(root, shard) });
    ports[shard] = stores[shard].port;
  }
  // Each shard's store is reached through its own pool, as the mesh dialer would.
  const pools = new Map<string, TcpPool>();
  const connect = async (shardId: string) => {
    let pool = pools.get(shardId);
    if (!pool) pools.set(shardId, (pool = new TcpPool(`127.0.0.1:${ports[shardId]}`)));
    return pool.acquire();
  };
  const sender = new LmtpSender({ connect, heloName: 'tokyo-1a' });
  const deliverer = new Deliverer({ placement, localShard: 'tokyo-1', local: sender, remote: sender });
  const door = await startFrontDoor({
    host: '127.0.0.1', port: 0, hostname: 'mx.mail.test', maxSize: 64 * 1024, maxRecipients: 100, maxClients: 10,
    socketTimeoutMs: 10_000, placement, handoff: embeddedHandoff(deliverer), log,
  });
  const message = Buffer.from('From: x@sender.test\r\nTo: all@mail.test\r\nSubject: hello\r\nMessage-ID: <m1@sender.test>\r\n\r\nhi all\r\n');
  const rcpts = ['alice@mail.test', 'bob@mail.test', 'carol@mail.test'];
  try {
    // Osaka is down: the sender must hear 4xx and keep the message.
    await stores['osaka-1'].close();
    pools.get('osaka-1')?.close();
    let client = await smtp(door.port);
    let res = await client.send({ from: 'x@sender.test', recipients: rcpts, body: message });
    assert.equal(res.recipients[0].code, 451, res.recipients[0].message);
    assert.equal(await count(stores['tokyo-1'].pathOf('alice@mail.test')), 1);
    assert.equal(await count(stores['frankfurt-1'].pathOf('carol@mail.test')), 1);
    await client.quit();

    // Osaka comes back on the same port; the sender retries the same message: 250, one copy each.
    stores['osaka-1'] = await startMaildirLmtp({ host: '127.0.0.1', port: ports['osaka-1'], root: join(root, 'osaka-1') });
    client = await smtp(door.port);
    res = await client.send({ from: 'x@sender.test', recipients: rcpts, body: message });
    assert.deepEqual(res.recipients.map((r) => r.code), [250, 250, 250]);
    for (const [shard, rcpt] of [['tokyo-1', rcpts[0]], ['osaka-1', rcpts[1]], ['frankfurt-1', rcpts[2]]]) {
      const dir = stores[shard].pathOf(rcpt);
      assert.equal(await count(dir), 1, `${rcpt} on ${shard}`);
      const [file] = await readdir(join(dir, 'new'));
      assert.match(await readFile(join(dir, 'new', file), 'utf8'), /Subject: hello/);
    }
    // Nothing landed on a non-owner.
    assert.equal(await count(stores['osaka-1'].pathOf('alice@mail.test')), 0);
    assert.equal(await count(stores['tokyo-1'].pathOf('bob@mail.test')), 0);

    // Unhosted domain: 550 5.7.1 at RCPT; oversized: 552 during DATA, nothing kept.
    res = await client.send({ from: 'x@sender.test', recipients: ['someone@elsewhere.test'], body: message });
    assert.equal(res.recipients[0].code, 550);
    assert.equal(res.recipients[0].enhanced, '5.7.1');
    const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(100 * 1024, 'a\r\n')]);
    res = await client.send({ from: 'x@sender.test', recipients: ['dave@mail.test'], body: big });
    assert.equal(res.recipients[0].code, 552);
    assert.equal(await count(stores['tokyo-1'].pathOf('dave@mail.test')), 0);
    await client.quit();
  } finally {
    await door.close();
    for (const s of Object.values(stores)) await s.close().catch(() => {});
    for (const p of pools.values()) p.close();
  }
});
