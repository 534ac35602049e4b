// The mail path with real Postfix and Dovecot (DESIGN.md "The mail path"): a message for three
// shards sent to one node's front door → that node's Postfix queue → socketmap placement → local
// Dovecot LMTP or the egress → mesh mTLS → the owner's ingress → its Dovecot. Exactly one copy per
// owner, none anywhere else; a stopped Dovecot costs a retry from Postfix's queue, never a loss or
// a duplicate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ImapFlow } from 'imapflow';
import { requireBinary } from '../helpers/real.ts';
import { copiesOf, eventually, meshFor, ownerOf, passwordOf, smtpSend, tokenMessage } from './lib.ts';

const ALICE = 'alice@mail.test'; // tokyo-1
const BOB = 'bob@mail.test'; // osaka-1
const CAROL = 'carol@mail.test'; // frankfurt-1

test('real Postfix + Dovecot mail path', { timeout: 240_000 }, async (t) => {
  if (!requireBinary(t, 'postfix') || !requireBinary(t, 'dovecot', 'dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd')) return;
  const mesh = await meshFor('real');
  const { info } = mesh;
  const shard = (id: string) => info.shards.find((s) => s.id === id)!;
  try {
    assert.equal(info.backends, 'real');
    assert.deepEqual([ALICE, BOB, CAROL].map((a) => ownerOf(info, a)), ['tokyo-1', 'osaka-1', 'frankfurt-1']);

    await t.test('three shards through one front door: 250, one copy in each owner\'s Dovecot, none elsewhere', async () => {
      const { token, body } = tokenMessage([ALICE, BOB, CAROL], 'three');
      // Osaka's front door: one local recipient, two over the mesh.
      const replies = await smtpSend(shard('osaka-1').smtp, [ALICE, BOB, CAROL], body);
      assert.deepEqual(replies.map((r) => r.code), [250, 250, 250], JSON.stringify(replies));
      assert.match(replies[0].text, /queued as/, 'the sender hears Postfix\'s own answer');
      const expected = [
        { shard: 'frankfurt-1', mailbox: CAROL },
        { shard: 'osaka-1', mailbox: BOB },
        { shard: 'tokyo-1', mailbox: ALICE },
      ];
      assert.ok(await eventually(async () => (await copiesOf(info, token)).length >= 3, 30_000), 'all three delivered');
      // Postfix's queue is empty: nothing is left to retry, so the listing below is final.
      assert.ok(await eventually(async () => (await mesh.real.get('osaka-1')!.postfix.queued()) === 0, 10_000));
      assert.deepEqual(await copiesOf(info, token), expected);

      // Read back from each owner's Dovecot over IMAP (directly, as the owner stores it).
      for (const address of [ALICE, BOB, CAROL]) {
        const owner = shard(ownerOf(info, address));
        const [host, port] = owner.dovecot!.imap.split(':');
        const c = new ImapFlow({ host, port: Number(port), secure: false, auth: { user: address, pass: passwordOf(info, address) }, logger: false });
        await c.connect();
        try {
          const lock = await c.getMailboxLock('INBOX');
          try {
            const uids = await c.search({ subject: token }, { uid: true });
            assert.equal((uids || []).length, 1, `${address} on ${owner.id} over IMAP`);
          } finally {
            lock.release();
          }
        } finally {
          await c.logout();
        }
      }
    });

    await t.test('a stopped Dovecot: 250 from Postfix, the other shard has it at once, the stopped one after restart, once', async () => {
      const osaka = mesh.real.get('osaka-1')!;
      const tokyo = mesh.real.get('tokyo-1')!;
      await osaka.dovecot.stop();
      let restarted = false;
      try {
        const { token, body } = tokenMessage([ALICE, BOB], 'retry');
        const replies = await smtpSend(shard('tokyo-1').smtp, [ALICE, BOB], body);
        assert.deepEqual(replies.map((r) => r.code), [250, 250], 'Postfix queued it: the sender is done');
        assert.ok(await eventually(async () => (await copiesOf(info, token)).length >= 1, 20_000), 'alice (tokyo) gets it while osaka is down');
        assert.deepEqual(await copiesOf(info, token), [{ shard: 'tokyo-1', mailbox: ALICE }]);
        // Bob's copy waits in tokyo's queue (deferred by the 4xx from the mesh), not lost.
        assert.ok(await eventually(async () => (await tokyo.postfix.queued()) === 1, 10_000), 'bob\'s delivery is queued on tokyo');
        const deferred = /to=<bob@mail\.test>.*status=deferred/;
        assert.ok(await eventually(async () => deferred.test(await readFile(tokyo.postfix.maillog, 'utf8')), 20_000), 'Postfix deferred bob');
        assert.doesNotMatch(await readFile(tokyo.postfix.maillog, 'utf8'), /to=<bob@mail\.test>.*status=(bounced|sent)/, 'neither bounced nor sent while osaka is down');

        await osaka.dovecot.start();
        restarted = true;
        await tokyo.postfix.flush();
        assert.ok(await eventually(async () => (await copiesOf(info, token)).length >= 2, 30_000), 'bob gets it after the restart');
        assert.ok(await eventually(async () => (await tokyo.postfix.queued()) === 0, 10_000), 'tokyo\'s queue drained');
        assert.deepEqual(await copiesOf(info, token), [{ shard: 'osaka-1', mailbox: BOB }, { shard: 'tokyo-1', mailbox: ALICE }], 'exactly once each');
      } finally {
        if (!restarted) await osaka.dovecot.start();
      }
    });

    await t.test('unknown user and unhosted domain are refused at the front door; no queue entry', async () => {
      const { body } = tokenMessage(['nobody@mail.test'], 'unknown');
      const [unknown] = await smtpSend(shard('tokyo-1').smtp, ['nobody@mail.test'], body);
      assert.equal(unknown.code, 550, unknown.text);
      assert.match(unknown.text, /5\.1\.1/);
      const [unhosted] = await smtpSend(shard('tokyo-1').smtp, ['someone@elsewhere.example'], body);
      assert.equal(unhosted.code, 550, unhosted.text);
      assert.match(unhosted.text, /5\.7\.1/);
      assert.equal(await mesh.real.get('tokyo-1')!.postfix.queued(), 0);
    });

    await t.test('SIGTERM stops every sidecar at once, pooled sessions to Postfix, the mesh and Dovecot included', async () => {
      // Tokyo and osaka have handed mail to Postfix and carried it over the mesh above: their pools
      // hold open sessions, which must not keep the process alive until the SIGKILL.
      for (const [id, sidecar] of mesh.sidecars) {
        const started = Date.now();
        await sidecar.stop(10_000);
        assert.equal(sidecar.child.signalCode, null, `${id} needed SIGKILL after ${Date.now() - started} ms`);
        assert.equal(sidecar.child.exitCode, 0, id);
      }
    });
  } finally {
    await mesh.cleanup();
  }
});
