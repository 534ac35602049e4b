// The control plane's CA reload: a broken CA directory is refused and the last good CA stays in
// use; an unchanged one is a no-op; a restart after a rotation serves the same (+caN) revision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rotateIssuer } from '../../ca/rotate.ts';
import { makeWorld, startTestControlPlane } from '../control-plane/helpers.ts';

test('reloadCa: broken files are refused (last good CA kept), unchanged is a no-op, a restart keeps the revision', async () => {
  const w = await makeWorld();
  let cp = await startTestControlPlane(w.config);
  try {
    const r0 = cp.revision();
    assert.equal(await cp.reloadCa(), 'unchanged');
    const rotated = await rotateIssuer({ dir: w.config.caDir });
    const keyFile = join(w.config.caDir, 'issuer.key');
    const goodKey = await readFile(keyFile, 'utf8');
    await writeFile(keyFile, 'not a key');
    assert.equal(await cp.reloadCa(), 'error');
    assert.equal(cp.revision(), r0, 'still serving the last good CA');
    assert.equal(cp.caGeneration(), 0);
    await writeFile(keyFile, goodKey, { mode: 0o600 });
    assert.equal(await cp.reloadCa(), 'changed');
    assert.equal(cp.revision(), `${r0}+ca1`);
    assert.equal(cp.identity().chainPem.endsWith(rotated.issuer.certPem), true, 'own certificate from the new issuing CA');
    await cp.close();
    cp = await startTestControlPlane(w.config);
    assert.equal(cp.revision(), `${r0}+ca1`, 'a restarted control plane names the same revision');
  } finally {
    await cp.close();
    await w.cleanup();
  }
});
