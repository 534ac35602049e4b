import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { createControlPlaneMetrics, createSidecarMetrics } from '../../common/metrics.ts';

const guide = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'operator-guide.md'), 'utf8');

/** mailmesh_* metric names on a registry (default process metrics are Node's, not ours to document). */
const ours = (r: Registry) => r.getMetricsAsArray().map((m) => m.name).filter((n) => n.startsWith('mailmesh_'));

/** Names the guide does not document in a table row (`| \`name\` |`). */
function undocumented(text: string, names: string[]): string[] {
  return names.filter((n) => !text.includes(`| \`${n}\` |`));
}

test('the operator guide documents every mailmesh metric of the sidecar and the control plane', () => {
  const names = [...ours(createSidecarMetrics().registry), ...ours(createControlPlaneMetrics().registry)];
  assert.ok(names.length >= 15, `found only ${names.length} metrics`);
  assert.deepEqual(undocumented(guide, names), []);
});

test('the documentation check notices a metric missing from the guide', () => {
  const broken = guide.replace('| `mailmesh_snapshot_age_seconds` |', '| snapshot age |');
  assert.notEqual(broken, guide);
  assert.deepEqual(undocumented(broken, ours(createSidecarMetrics().registry)), ['mailmesh_snapshot_age_seconds']);
});
