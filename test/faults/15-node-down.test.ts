// Fault: a whole node is down (embedded mode: kill -9 its sidecar, its store goes with it). Mail for
// its users is deferred (4xx) at every other front door, mail for everyone else is unaffected, and
// after the restart the senders' retries deliver every message exactly once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalMesh, type LocalMesh } from '../../cli/demo/local-mesh.ts';
import { copiesOf, isAccepted, kill9, makeMessage, sendOnce, sendUntilAccepted, shard, Tally } from './kit.ts';

const tally = new Tally();
let dir: string;
let mesh: LocalMesh | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mm-faults-node-'));
  mesh = await startLocalMesh({ dir, backends: 'embedded' });
});

after(async () => {
  await mesh?.stop();
  await rm(dir, { recursive: true, force: true });
  console.log(tally.line('faults(node-down)'));
});

test('osaka-1 down: its users get 4xx at tokyo-1 and frankfurt-1, others are delivered; retries land exactly once', async () => {
  const m = mesh!;
  const down = 'osaka-1';
  const victims = m.info.users.filter((u) => u.shard === down).map((u) => u.address);
  const others = m.info.users.filter((u) => u.shard !== down).map((u) => u.address);
  assert.ok(victims.length > 0 && others.length > 0);
  await kill9(m.sidecars.get(down)!);

  const doors = ['tokyo-1', 'frankfurt-1'].map((id) => shard(m, id).smtp);
  const deferred: { door: string; rcpt: string; msg: ReturnType<typeof makeMessage> }[] = [];
  const fine: { rcpt: string; id: string }[] = [];
  for (const door of doors) {
    for (const rcpt of victims) {
      const msg = makeMessage('node-down', rcpt, 2000);
      const o = await sendOnce(door, [rcpt], msg.body);
      tally.note([o]);
      assert.ok(o.code >= 400 && o.code < 500, `${rcpt} via ${door}: expected 4xx, got ${o.code} ${o.message}`);
      deferred.push({ door, rcpt, msg });
    }
    for (const rcpt of others) {
      const msg = makeMessage('node-up', rcpt, 2000);
      const o = await sendOnce(door, [rcpt], msg.body);
      tally.note([o]);
      assert.equal(o.code, 250, `${rcpt} via ${door}: ${o.message}`);
      fine.push({ rcpt, id: msg.id });
    }
  }
  // A message for both sides is deferred as a whole; the live owner's copy is already stored.
  const mixed = makeMessage('node-mixed', `${others[0]}, ${victims[0]}`, 2000);
  const o = await sendOnce(doors[0], [others[0], victims[0]], mixed.body);
  tally.note([o]);
  assert.ok(o.code >= 400 && o.code < 500, `mixed: ${o.code} ${o.message}`);
  for (const d of deferred) assert.equal(await copiesOf(m, d.rcpt, d.msg.id), 0);

  await m.restartSidecar(down);
  tally.survived++;
  for (const d of deferred) {
    const outcomes = await sendUntilAccepted(d.door, [d.rcpt], d.msg.body, { timeoutMs: 30_000 });
    tally.note(outcomes);
    assert.ok(isAccepted(outcomes.at(-1)!), `${d.rcpt}: ${JSON.stringify(outcomes.at(-1))}`);
  }
  const mixedRetry = await sendUntilAccepted(doors[0], [others[0], victims[0]], mixed.body, { timeoutMs: 30_000 });
  tally.note(mixedRetry);
  assert.ok(isAccepted(mixedRetry.at(-1)!));

  for (const d of deferred) {
    const n = await copiesOf(m, d.rcpt, d.msg.id);
    tally.landed(n);
    assert.equal(n, 1, `${d.rcpt} ${d.msg.id}`);
  }
  for (const f of fine) {
    const n = await copiesOf(m, f.rcpt, f.id);
    tally.landed(n);
    assert.equal(n, 1, `${f.rcpt} ${f.id}`);
  }
  for (const rcpt of [others[0], victims[0]]) {
    const n = await copiesOf(m, rcpt, mixed.id);
    tally.landed(n);
    assert.equal(n, 1, `mixed ${rcpt}`);
  }
});
