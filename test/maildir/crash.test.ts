// The two-phase delivery record: a crash between "rename into new/" and "record done" must not
// give a second copy on retry, and a crash before the rename must not lose the message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rename, writeFile, unlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliverOnce, deliveryKey } from '../../sidecar/maildir/store.ts';
import { maildirPath } from '../../sidecar/maildir/paths.ts';

const rcpt = 'bob@mail.test';
const message = Buffer.from('Subject: crash\r\n\r\nbody\r\n');

test('a pending record whose file reached the Maildir counts as delivered (crash after rename)', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'mm-crash-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  assert.equal(await deliverOnce(root, rcpt, message), 'delivered');
  const marker = join(root, '.delivered', deliveryKey(message, rcpt));
  const [file] = await readdir(join(maildirPath(root, rcpt), 'new'));
  await writeFile(marker, `pending\n${rcpt}\nnew/${file}\n`);
  assert.equal(await deliverOnce(root, rcpt, message), 'duplicate');
  assert.equal((await readdir(join(maildirPath(root, rcpt), 'new'))).length, 1);
  assert.match(await readFile(marker, 'utf8'), /^done\n/);
  // A reader moved it to cur/ with flags: still found.
  await rename(join(maildirPath(root, rcpt), 'new', file), join(maildirPath(root, rcpt), 'cur', `${file}:2,S`));
  await writeFile(marker, `pending\n${rcpt}\nnew/${file}\n`);
  assert.equal(await deliverOnce(root, rcpt, message), 'duplicate');
});

test('a pending record whose file never reached the Maildir is delivered again (crash before rename)', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'mm-crash-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  assert.equal(await deliverOnce(root, rcpt, message), 'delivered');
  const dir = join(maildirPath(root, rcpt), 'new');
  const [file] = await readdir(dir);
  await unlink(join(dir, file));
  await writeFile(join(root, '.delivered', deliveryKey(message, rcpt)), `pending\n${rcpt}\nnew/${file}\n`);
  assert.equal(await deliverOnce(root, rcpt, message), 'delivered');
  const files = await readdir(dir);
  assert.equal(files.length, 1);
  assert.deepEqual(await readFile(join(dir, files[0])), message);
});

test('the idempotency key ignores the Authentication-Results our front door prepends per attempt', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'mm-key-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const first = Buffer.concat([Buffer.from('Authentication-Results: mx.mail.test; spf=pass\r\n smtp.mailfrom=a@b.test; dmarc=pass\r\n'), message]);
  const retry = Buffer.concat([Buffer.from('Authentication-Results: mx.mail.test; spf=temperror\r\nX-Mailmesh-Quarantine: dmarc=fail\r\n'), message]);
  assert.equal(deliveryKey(first, rcpt), deliveryKey(retry, rcpt));
  assert.notEqual(deliveryKey(message, rcpt), deliveryKey(Buffer.concat([message, Buffer.from('x')]), rcpt));
  // A field that is not one of ours, or ours further down, still counts.
  assert.notEqual(deliveryKey(Buffer.concat([Buffer.from('Received: x\r\n'), message]), rcpt), deliveryKey(message, rcpt));
  assert.equal(await deliverOnce(root, rcpt, first), 'delivered');
  assert.equal(await deliverOnce(root, rcpt, retry), 'duplicate');
  assert.equal((await readdir(join(maildirPath(root, rcpt), 'new'))).length, 1);
});
