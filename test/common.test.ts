import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration, formatDuration } from '../common/duration.ts';
import { writeFileAtomic, writeFilesAtomic, PRIVATE_MODE } from '../common/files.ts';
import { isMailmeshError } from '../common/errors.ts';

test('runs on Node 24 (the node@24 devDependency)', () => {
  assert.ok(Number(process.versions.node.split('.')[0]) >= 24, process.version);
});

test('parseDuration accepts compound units and refuses 0, 2x, empty', () => {
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  for (const bad of ['0', '0s', '2x', '', '10', '-1h', '1h x']) {
    assert.throws(() => parseDuration(bad), (e) => isMailmeshError(e, 'ERR_BAD_DURATION'), bad);
  }
  assert.equal(formatDuration(5_400_000), '1h30m');
});

test('writeFileAtomic writes keys 0600 and leaves no temp files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mm-files-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFileAtomic(join(dir, 'a.key'), 'secret', PRIVATE_MODE);
  assert.equal((await stat(join(dir, 'a.key'))).mode & 0o777, 0o600);
  await writeFilesAtomic([{ path: join(dir, 'b.pem'), data: 'b' }, { path: join(dir, 'c.key'), data: 'c', mode: PRIVATE_MODE }]);
  assert.equal(await readFile(join(dir, 'b.pem'), 'utf8'), 'b');
  assert.equal((await stat(join(dir, 'b.pem'))).mode & 0o777, 0o644);
  assert.deepEqual((await readdir(dir)).sort(), ['a.key', 'b.pem', 'c.key']);
});
