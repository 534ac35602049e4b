// Issue 7: a user moved to another shard by a policy change. The open IMAP session on the old
// shard is closed cleanly (BYE [UNAVAILABLE]) so the client reconnects, and a new session from
// the same front door goes to the new owner's Dovecot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from '../helpers/real.ts';
import { eventually, meshFor, passwordOf, proxyClient } from './lib.ts';

const BOB = 'bob@mail.test'; // osaka-1 in the demo policy

test('moving a user closes their open session with BYE and routes the next login to the new shard', { timeout: 180_000 }, async (t) => {
  if (!requireBinary(t, 'postfix') || !requireBinary(t, 'dovecot', 'dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd')) return;
  const mesh = await meshFor('real');
  const { info } = mesh;
  const shard = (id: string) => info.shards.find((s) => s.id === id)!;
  const ca = await readFile(join(info.ca, 'bundle.pem'));
  const bob = { address: BOB, password: passwordOf(info, BOB) };
  const door = shard('frankfurt-1');
  try {
    const before = proxyClient(door.imap!, bob, ca);
    let closed = false;
    before.on('close', () => (closed = true));
    before.on('error', () => {}); // the server ending the session is expected here
    await before.connect();
    await before.mailboxOpen('INBOX');
    assert.match(await readFile(shard('osaka-1').dovecot!.log, 'utf8'), /imap-login: Info: Login: user=<bob@mail\.test>/);

    // The policy change: bob now lives on tokyo-1 (same region, so residency allows it).
    const users = join(mesh.dir, 'policy', 'users.csv');
    const csv = await readFile(users, 'utf8');
    assert.match(csv, /^bob@mail\.test,osaka-1,/m);
    await writeFile(users, csv.replace(/^bob@mail\.test,osaka-1,/m, 'bob@mail.test,tokyo-1,'));
    mesh.controlPlane.child.kill('SIGHUP');

    assert.ok(await eventually(() => closed, 30_000), 'the session on the old shard was closed');
    assert.equal(before.usable, false);

    // The next login through the same front door lands on tokyo-1's Dovecot.
    const tokyoLog = shard('tokyo-1').dovecot!.log;
    const after = proxyClient(door.imap!, bob, ca);
    await after.connect();
    try {
      await after.mailboxOpen('INBOX');
      assert.match(await readFile(tokyoLog, 'utf8'), /imap-login: Info: Login: user=<bob@mail\.test>/);
    } finally {
      await after.logout();
    }
  } finally {
    await mesh.cleanup();
  }
});
