// The embedded mail path (no Postfix, DESIGN.md "The mail path" §4) with real sidecar processes:
// the front door fans one message out to every owning shard over the mesh and answers 250 only
// when all stored; a shard whose sidecar is down makes it 451, and the sender's retry after the
// restart stores no second copy where the first succeeded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copiesOf, meshFor, ownerOf, smtpSend, tokenMessage } from './lib.ts';

const ALICE = 'alice@mail.test'; // tokyo-1
const BOB = 'bob@mail.test'; // osaka-1
const CAROL = 'carol@mail.test'; // frankfurt-1

test('embedded mail path through sidecar processes', { timeout: 180_000 }, async (t) => {
  const mesh = await meshFor('embedded');
  const { info } = mesh;
  const shard = (id: string) => info.shards.find((s) => s.id === id)!;
  try {
    assert.equal(info.backends, 'embedded');
    assert.deepEqual([ALICE, BOB, CAROL].map((a) => ownerOf(info, a)), ['tokyo-1', 'osaka-1', 'frankfurt-1']);

    await t.test('three shards through one front door: 250 once all stored, one copy each, none elsewhere', async () => {
      const { token, body } = tokenMessage([ALICE, BOB, CAROL], 'three');
      const replies = await smtpSend(shard('frankfurt-1').smtp, [ALICE, BOB, CAROL], body);
      assert.deepEqual(replies.map((r) => r.code), [250, 250, 250], JSON.stringify(replies));
      // 250 in embedded mode means stored: no waiting needed.
      assert.deepEqual(await copiesOf(info, token), [
        { shard: 'frankfurt-1', mailbox: CAROL },
        { shard: 'osaka-1', mailbox: BOB },
        { shard: 'tokyo-1', mailbox: ALICE },
      ]);
    });

    await t.test('a shard down: 451 to the sender; the retry after restart adds no duplicate', async () => {
      const { token, body } = tokenMessage([ALICE, BOB, CAROL], 'retry');
      await mesh.sidecars.get('osaka-1')!.stop();
      const first = await smtpSend(shard('tokyo-1').smtp, [ALICE, BOB, CAROL], body);
      assert.deepEqual(first.map((r) => r.code), [451, 451, 451], 'the sender keeps the message');
      assert.match(first[0].text, /^451 4\./);
      assert.deepEqual(await copiesOf(info, token), [{ shard: 'frankfurt-1', mailbox: CAROL }, { shard: 'tokyo-1', mailbox: ALICE }]);

      await mesh.restartSidecar('osaka-1');
      const retry = await smtpSend(shard('tokyo-1').smtp, [ALICE, BOB, CAROL], body);
      assert.deepEqual(retry.map((r) => r.code), [250, 250, 250], JSON.stringify(retry));
      assert.deepEqual(await copiesOf(info, token), [
        { shard: 'frankfurt-1', mailbox: CAROL },
        { shard: 'osaka-1', mailbox: BOB },
        { shard: 'tokyo-1', mailbox: ALICE },
      ], 'exactly one copy per owner after the retry');
    });
  } finally {
    await mesh.cleanup();
  }
});
