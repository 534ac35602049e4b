import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary, findBinary } from '../helpers/real.ts';
import { lmtpDeliver, startDovecot } from '../helpers/dovecot.ts';

test('private Dovecot: LMTP delivery lands in Maildir/new and survives stop/start', async (t) => {
  if (!requireBinary(t, 'dovecot', 'dovecot-core')) return;
  const dc = await startDovecot({ users: [{ address: 'bob@mail.test', password: 'secret' }] });
  try {
    await lmtpDeliver(dc.lmtpPort, 'alice@example.org', ['bob@mail.test'], 'Subject: hello\r\n\r\nfirst\r\n');
    const newDir = join(dc.maildirOf('bob@mail.test'), 'new');
    let files = await readdir(newDir);
    assert.equal(files.length, 1);
    assert.match(await readFile(join(newDir, files[0]), 'utf8'), /first/);

    await dc.stop();
    await dc.start();
    // An independent client: swaks speaking LMTP to the restarted instance, same port.
    if (findBinary('swaks')) {
      const r = spawnSync('swaks', ['--protocol', 'LMTP', '--server', `127.0.0.1:${dc.lmtpPort}`, '--to', 'bob@mail.test',
        '--from', 'carol@example.org', '--body', 'second'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    } else {
      await lmtpDeliver(dc.lmtpPort, 'carol@example.org', ['bob@mail.test'], 'Subject: x\r\n\r\nsecond\r\n');
    }
    files = await readdir(newDir);
    assert.equal(files.length, 2);
    assert.match(await readFile(dc.logPath, 'utf8'), /lmtp/);
  } finally {
    await dc.destroy();
  }
});
