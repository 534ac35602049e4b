// Fault: the network between the other shards' dialers and osaka-1's mesh ingress is cut, by a TCP
// proxy the policy names as osaka-1's mesh address. Reset and blackhole cuts defer osaka-1's mail
// (4xx, within the dialer's connect timeout) while mail for other shards flows; a cut in the middle
// of DATA and a cut that swallows the owner's "stored" reply are 4xx too, and after healing the
// retries deliver exactly once (the owner deduplicates the copy it already stored).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalMesh, type LocalMesh } from '../../cli/demo/local-mesh.ts';
import type { FaultProxy, ProxyMode } from './proxy.ts';
import { copiesOf, interposeProxy, isAccepted, makeMessage, sendOnce, sendUntilAccepted, shard, Tally, userOn, waitUntil, type Outcome } from './kit.ts';

const tally = new Tally();
let dir: string;
let mesh: LocalMesh | undefined;
let proxy: FaultProxy | undefined;
const soak = process.env.MAILMESH_SOAK === '1';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mm-faults-cut-'));
  mesh = await startLocalMesh({ dir, backends: 'embedded' });
  proxy = await interposeProxy(mesh, 'osaka-1');
});

after(async () => {
  await proxy?.close();
  await mesh?.stop();
  await rm(dir, { recursive: true, force: true });
  console.log(tally.line('faults(network-cut)'));
});

/** The dialer's connect timeout (sidecar/mesh/dialer.ts default) plus room for a loaded machine. */
const CONNECT_BOUND_MS = 10_000 + 5_000;

async function expectAccepted(door: string, rcpt: string, body: Buffer): Promise<void> {
  const o = await sendOnce(door, [rcpt], body);
  tally.note([o]);
  assert.equal(o.code, 250, `${rcpt} via ${door}: ${o.code} ${o.message}`);
}

async function retryAndCount(door: string, rcpt: string, msg: { id: string; body: Buffer }): Promise<void> {
  const outcomes = await sendUntilAccepted(door, [rcpt], msg.body, { timeoutMs: 60_000 });
  tally.note(outcomes);
  assert.ok(isAccepted(outcomes.at(-1)!), `${rcpt}: ${JSON.stringify(outcomes.at(-1))}`);
  const n = await copiesOf(mesh!, rcpt, msg.id);
  tally.landed(n);
  assert.equal(n, 1, `${rcpt} ${msg.id}: copies`);
}

for (const mode of ['reset', 'refuse', 'blackhole'] as ProxyMode[]) {
  test(`cut (${mode}): osaka-1's mail is deferred within the connect timeout, others flow; heal → exactly once`, async () => {
    const m = mesh!;
    const p = proxy!;
    const tokyo = shard(m, 'tokyo-1').smtp;
    const bob = userOn(m, 'osaka-1');
    const carol = userOn(m, 'frankfurt-1');
    // A pooled connection exists before the cut.
    await expectAccepted(tokyo, bob, makeMessage(`warm-${mode}`, bob).body);
    // `reset` and `refuse` kill the pooled connection; `blackhole` freezes it, which only the LMTP
    // reply timeout (60 s) would notice: drop it first (a reset), then cut silently.
    if (mode === 'blackhole') await p.set('reset');
    await p.set(mode);
    const cutMsg = makeMessage(`cut-${mode}`, bob, 4000);
    const t0 = Date.now();
    const o: Outcome = await sendOnce(tokyo, [bob], cutMsg.body, 60_000);
    const took = Date.now() - t0;
    tally.note([o]);
    assert.ok(o.code >= 400 && o.code < 500, `expected 4xx, got ${o.code} ${o.message}`);
    assert.ok(took < CONNECT_BOUND_MS, `4xx took ${took} ms`);
    // Other shards are not affected.
    await expectAccepted(tokyo, carol, makeMessage(`cut-other-${mode}`, carol).body);
    await expectAccepted(shard(m, 'osaka-1').smtp, userOn(m, 'tokyo-1'), makeMessage(`cut-from-osaka-${mode}`, 'x').body);
    assert.equal(await copiesOf(m, bob, cutMsg.id), 0);

    await p.set('forward');
    tally.survived++;
    await retryAndCount(tokyo, bob, cutMsg);
  });
}

test('cut in the middle of DATA on the mesh hop: 4xx; heal → exactly once', async () => {
  const m = mesh!;
  const p = proxy!;
  const frankfurt = shard(m, 'frankfurt-1').smtp;
  const bob = userOn(m, 'osaka-1', 1);
  const msg = makeMessage('cut-mid-data', bob, 900_000);
  p.throttle(300 * 1024);
  const base = p.forwardedBytes();
  const sending = sendOnce(frankfurt, [bob], msg.body, 60_000);
  await waitUntil('a third of the message on the mesh hop', () => p.forwardedBytes() - base > 300_000, 30_000, 10);
  await p.set('reset');
  const o = await sending;
  tally.note([o]);
  assert.ok(o.code >= 400 && o.code < 500, `expected 4xx, got ${o.code} ${o.message}`);
  assert.equal(await copiesOf(m, bob, msg.id), 0, 'a truncated message must not be stored');
  p.throttle(0);
  await p.set('forward');
  tally.survived++;
  await retryAndCount(frankfurt, bob, msg);
});

test('cut after the owner stored the message but before its reply arrived: 4xx; the retry is not a second copy', async () => {
  const m = mesh!;
  const p = proxy!;
  const tokyo = shard(m, 'tokyo-1').smtp;
  const bob = userOn(m, 'osaka-1');
  const msg = makeMessage('cut-lost-reply', bob, 50_000);
  // Replies are dropped once most of the body went through (MAIL/RCPT/DATA were answered before).
  p.dropRepliesAfter(p.forwardedBytes() + 40_000);
  try {
    const sending = sendOnce(tokyo, [bob], msg.body, 90_000);
    // The owner has it: the reply saying so is what the partition eats.
    await waitUntil('the owner stored the copy', async () => (await copiesOf(m, bob, msg.id)) === 1, 30_000, 50);
    await p.set('reset');
    const o = await sending;
    tally.note([o]);
    assert.ok(o.code >= 400 && o.code < 500, `expected 4xx, got ${o.code} ${o.message}`);
  } finally {
    p.dropRepliesAfter(undefined);
  }
  await p.set('forward');
  tally.survived++;
  await retryAndCount(tokyo, bob, msg);
});

test('silent partition of a pooled connection: 4xx within the LMTP reply timeout (MAILMESH_SOAK=1)', { skip: soak ? false : 'slow (60 s reply timeout): set MAILMESH_SOAK=1' }, async () => {
  const m = mesh!;
  const p = proxy!;
  const tokyo = shard(m, 'tokyo-1').smtp;
  const bob = userOn(m, 'osaka-1');
  await expectAccepted(tokyo, bob, makeMessage('warm-silent', bob).body);
  await p.set('blackhole');
  const msg = makeMessage('silent', bob, 4000);
  const t0 = Date.now();
  const o = await sendOnce(tokyo, [bob], msg.body, 120_000);
  tally.note([o]);
  assert.ok(o.code >= 400 && o.code < 500, `expected 4xx, got ${o.code} ${o.message} after ${Date.now() - t0} ms`);
  await p.set('forward');
  tally.survived++;
  await retryAndCount(tokyo, bob, msg);
});
