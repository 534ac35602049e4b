import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ManualClock } from '../../common/clock.ts';
import { CertRotator, ROTATE_FILES, type RotateEvent } from '../../api/rotate.ts';
import { makeWorld, startTestControlPlane, TD } from './helpers.ts';

test('the cert rotate daemon loop renews at half-life, keeps the old files on failure and backs off', async () => {
  const world = await makeWorld();
  const cp = await startTestControlPlane(world.config);
  const clock = new ManualClock(Date.now());
  const out = join(world.dir, 'out');
  const events: RotateEvent[] = [];
  try {
    const { token } = await cp.createJoinToken({ shard: 'frankfurt-1', node: 'mx' });
    const rot = new CertRotator({ address: cp.address, bundlePem: cp.bundlePem, outDir: out, joinToken: token, clock, onEvent: (e) => events.push(e) });
    const first = await rot.tick();
    assert.equal(first.outcome, 'renewed');
    const crt1 = await readFile(join(out, ROTATE_FILES.cert), 'utf8');
    assert.equal((await stat(join(out, ROTATE_FILES.key))).mode & 0o777, 0o600);
    assert.equal(await readFile(join(out, ROTATE_FILES.bundle), 'utf8'), cp.bundlePem);
    assert.equal(rot.held?.spiffeId, `spiffe://${TD}/shard/frankfurt-1/node/mx`);
    // 1 h certificate (demo policy): next check at ~30 min.
    assert.ok(first.nextInMs > 25 * 60_000 && first.nextInMs <= 31 * 60_000, String(first.nextInMs));

    assert.equal((await rot.tick()).outcome, 'not-due');
    clock.advance(first.nextInMs);
    const second = await rot.tick();
    assert.equal(second.outcome, 'renewed');
    const crt2 = await readFile(join(out, ROTATE_FILES.cert), 'utf8');
    assert.notEqual(crt2, crt1);
    assert.equal(rot.held?.spiffeId, `spiffe://${TD}/shard/frankfurt-1/node/mx`);

    // Control plane gone: temporary failure, old files kept, exponential backoff.
    await cp.close();
    clock.advance(second.nextInMs);
    const f1 = await rot.tick();
    const f2 = await rot.tick();
    assert.equal(f1.outcome, 'failed');
    assert.equal(f1.error?.temporary, true);
    assert.equal(f1.error?.code, 'ERR_UNAVAILABLE');
    assert.equal(f1.nextInMs, 1000);
    assert.equal(f2.nextInMs, 2000);
    assert.equal(await readFile(join(out, ROTATE_FILES.cert), 'utf8'), crt2);
    assert.deepEqual(events.map((e) => e.event), ['renewed', 'renewed', 'failed', 'failed']);
  } finally {
    await cp.close();
    await world.cleanup();
  }
});

test('a revoked node is refused for good (not temporary)', async () => {
  const world = await makeWorld();
  const cp = await startTestControlPlane(world.config);
  const clock = new ManualClock(Date.now());
  try {
    const { token } = await cp.createJoinToken({ shard: 'tokyo-1', node: 'gone' });
    const rot = new CertRotator({ address: cp.address, bundlePem: cp.bundlePem, outDir: join(world.dir, 'out'), joinToken: token, clock });
    assert.equal((await rot.tick()).outcome, 'renewed');
    await cp.revoke({ identities: [`spiffe://${TD}/shard/tokyo-1/node/gone`] });
    clock.advance(rot.msUntilDue());
    const r = await rot.tick();
    assert.equal(r.outcome, 'failed');
    assert.equal(r.error?.code, 'ERR_REVOKED_IDENTITY');
    assert.equal(r.error?.temporary, false);
  } finally {
    await cp.close();
    await world.cleanup();
  }
});
