import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, postProcess, ROOT } from '../../api/generate.ts';

test('api/generated matches what api/generate.ts makes from api/mailmesh.proto (no drift)', async () => {
  const out = await mkdtemp(join(tmpdir(), 'mm-gen-'));
  try {
    const files = await generate(out);
    assert.ok(files.includes('mailmesh.ts') && files.includes(join('mailmesh', 'v1', 'ControlPlane.ts')), files.join(' '));
    for (const f of files) {
      const fresh = await readFile(join(out, f), 'utf8');
      const have = await readFile(join(ROOT, 'api/generated', f), 'utf8').catch(() => '(missing)');
      assert.equal(have, fresh, `api/generated/${f} is stale: run node api/generate.ts and commit the result`);
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('postProcess adds .ts to relative imports only and allows any only where used', () => {
  const src = "import type { A } from './a/B';\nimport type * as grpc from '@grpc/grpc-js';\nimport { C } from '../c.ts';\n";
  const out = postProcess(src);
  assert.match(out, /from '\.\/a\/B\.ts'/);
  assert.match(out, /from '@grpc\/grpc-js'/);
  assert.match(out, /from '\.\.\/c\.ts'/);
  assert.doesNotMatch(out, /\.ts\.ts/);
  assert.doesNotMatch(out, /eslint-disable/);
  assert.match(postProcess('type X = any;\n'), /eslint-disable @typescript-eslint\/no-explicit-any/);
});
