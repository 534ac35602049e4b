// MeshView takes a snapshot whole or not at all: a snapshot that fails half-way (an unreadable
// bundle or issuer list) must not leave the new placement applied beside the old trust bundle and
// revocations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TrustBundle } from '../../ca/bundle.ts';
import type { SnapshotPayload } from '../../api/snapshot.ts';
import { compilePolicy, loadPolicy, serializeCompiled } from '../../policies/index.ts';
import { MeshView } from '../../sidecar/view.ts';

const placement = serializeCompiled(compilePolicy(loadPolicy(new URL('../../policies/examples/example-co-jp', import.meta.url).pathname)));
const snap = (over: Partial<SnapshotPayload>): SnapshotPayload => ({
  v: 1, revision: 'r1', policyRevision: 'r1', trustDomain: 'mail.example.co.jp', issuedAt: 1, placement,
  bundlePem: 'BUNDLE', revokedSerials: [], revokedIds: [], ...over,
});

test('a snapshot that fails to apply changes nothing', () => {
  const view = new MeshView('mail.example.co.jp', { toPem: () => 'BUNDLE' } as unknown as TrustBundle);
  view.apply(snap({}));
  const compiled = view.compiled;
  let changes = 0;
  view.onChange(() => changes++);
  assert.throws(() => view.apply(snap({ revision: 'r2', bundlePem: 'not a PEM', revokedSerials: ['AB'] })));
  assert.equal(view.compiled, compiled, 'placement of the refused snapshot was applied');
  assert.equal(view.revision, 'r1');
  assert.equal(view.serials.size, 0);
  assert.equal(changes, 0);
  assert.throws(() => view.apply(snap({ revision: 'r3', trustDomain: 'other.example' })));
  assert.equal(view.compiled, compiled);
});

test('a snapshot older than the one in use is refused (no rollback of revocations)', () => {
  const view = new MeshView('mail.example.co.jp', { toPem: () => 'BUNDLE' } as unknown as TrustBundle);
  view.apply(snap({ revision: 'r1', issuedAt: 1000 }));
  view.apply(snap({ revision: 'r2', issuedAt: 2000, revokedSerials: ['AB'] }));
  assert.throws(() => view.apply(snap({ revision: 'r1', issuedAt: 1000 })), /issued before the one in use/);
  assert.equal(view.revision, 'r2');
  assert.ok(view.serials.has('AB'), 'the revocation stays');
  view.apply(snap({ revision: 'r2', issuedAt: 2000, revokedSerials: ['AB'] }));
  assert.equal(view.revision, 'r2', 'the same snapshot again is harmless');
});
