// Fault: the owning shard's sidecar (embedded mode: its Maildir store goes with it) is killed with
// SIGKILL while a large message for one of its users is in flight — first while the sender is
// still streaming DATA into another shard's front door, then while the front door is carrying it
// over the mesh hop (slowed by a throttling proxy so the kill lands mid-transfer). The sender must
// hear 4xx, never 250; after a restart its retry of the same bytes lands exactly once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalMesh, type LocalMesh } from '../../cli/demo/local-mesh.ts';
import type { FaultProxy } from './proxy.ts';
import { copiesOf, interposeProxy, isAccepted, kill9, makeMessage, sendOnce, sendUntilAccepted, shard, slowBody, Tally, userOn, waitUntil } from './kit.ts';

const tally = new Tally();
let dir: string;
let mesh: LocalMesh | undefined;
let proxy: FaultProxy | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mm-faults-kill-'));
  mesh = await startLocalMesh({ dir, backends: 'embedded' });
});

after(async () => {
  await proxy?.close();
  await mesh?.stop();
  await rm(dir, { recursive: true, force: true });
  console.log(tally.line('faults(kill-ingress)'));
});

/** Large enough to take a while, under the demo's 1 MiB SIZE limit. */
const SIZE = 900_000;

test('kill -9 the owning sidecar while the sender streams DATA: 4xx, then exactly once after restart', async () => {
  const m = mesh!;
  const bob = userOn(m, 'osaka-1');
  const alice = userOn(m, 'tokyo-1');
  const tokyo = shard(m, 'tokyo-1');
  const msg = makeMessage('kill-mid-data', `${alice}, ${bob}`, SIZE);
  const slow = slowBody(msg.body, 16 * 1024, 15);
  const sending = sendOnce(tokyo.smtp, [alice, bob], slow.stream, 60_000);
  await waitUntil('a third of the message streamed', () => slow.sent() > SIZE / 3, 30_000, 10);
  await kill9(m.sidecars.get('osaka-1')!);
  const first = await sending;
  tally.note([first]);
  assert.ok(first.code >= 400 && first.code < 500, `expected 4xx, got ${first.code} ${first.message}`);
  // Tokyo's own recipient was stored already; the retry must not give her a second copy.
  assert.equal(await copiesOf(m, alice, msg.id), 1);
  assert.equal(await copiesOf(m, bob, msg.id), 0);

  await m.restartSidecar('osaka-1');
  tally.survived++;
  const retries = await sendUntilAccepted(tokyo.smtp, [alice, bob], msg.body, { timeoutMs: 60_000 });
  tally.note(retries);
  assert.ok(isAccepted(retries.at(-1)!), `retry not accepted: ${JSON.stringify(retries.at(-1))}`);
  for (const rcpt of [alice, bob]) {
    const n = await copiesOf(m, rcpt, msg.id);
    tally.landed(n);
    assert.equal(n, 1, `${rcpt} must hold exactly one copy`);
  }
});

test('kill -9 the owning sidecar while the mesh hop carries DATA: 4xx, then exactly once after restart', async () => {
  const m = mesh!;
  proxy = await interposeProxy(m, 'osaka-1');
  const bob = userOn(m, 'osaka-1', 1);
  const frankfurt = shard(m, 'frankfurt-1');
  const msg = makeMessage('kill-mid-hop', bob, SIZE);
  // Frankfurt's dialer reaches osaka-1 through the proxy, slowed to ~300 KB/s: the hop takes seconds.
  proxy.throttle(300 * 1024);
  const base = proxy.forwardedBytes();
  const sending = sendOnce(frankfurt.smtp, [bob], msg.body, 60_000);
  await waitUntil('a third of the message on the mesh hop', () => proxy!.forwardedBytes() - base > SIZE / 3, 30_000, 10);
  await kill9(m.sidecars.get('osaka-1')!);
  const first = await sending;
  tally.note([first]);
  assert.ok(first.code >= 400 && first.code < 500, `expected 4xx, got ${first.code} ${first.message}`);
  assert.equal(await copiesOf(m, bob, msg.id), 0);

  proxy.throttle(0);
  await m.restartSidecar('osaka-1');
  tally.survived++;
  const retries = await sendUntilAccepted(frankfurt.smtp, [bob], msg.body, { timeoutMs: 60_000 });
  tally.note(retries);
  assert.ok(isAccepted(retries.at(-1)!), `retry not accepted: ${JSON.stringify(retries.at(-1))}`);
  const n = await copiesOf(m, bob, msg.id);
  tally.landed(n);
  assert.equal(n, 1);
  // Sending the same bytes again (a sender that never heard our 250) is still one copy.
  const again = await sendOnce(frankfurt.smtp, [bob], msg.body);
  tally.note([again]);
  assert.equal(again.code, 250);
  assert.equal(await copiesOf(m, bob, msg.id), 1);
});
