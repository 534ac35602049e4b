import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../common/clock.ts';
import { createSidecarMetrics } from '../../common/metrics.ts';
import { serve, valueOf } from './scrape.ts';

test('sidecar series move on /metrics when incremented', async (t) => {
  const m = createSidecarMetrics({ clock: new ManualClock() });
  const { server, scrape } = await serve(m.registry);
  t.after(() => server.close());

  let s = await scrape();
  assert.equal(valueOf(s, 'mailmesh_messages_total', { result: 'delivered', shard: 'tokyo-1' }), undefined);
  assert.equal(valueOf(s, 'mailmesh_certificate_expiry_timestamp_seconds'), 0, 'no certificate yet reads as expired at epoch');

  m.messages.inc({ result: 'delivered', shard: 'tokyo-1' });
  m.messages.inc({ result: 'delivered', shard: 'tokyo-1' });
  m.rotations.inc({ result: 'ok' });
  m.handshakeFailures.inc({ reason: 'ERR_UNKNOWN_AUTHORITY' });
  m.meshConnections.inc({ direction: 'outbound', group: 'frankfurt-1' });
  m.authResults.inc({ method: 'dmarc', result: 'temperror' });
  m.proxySessions.inc({ protocol: 'imap' });
  m.setCertificateExpiry(new Date(Date.UTC(2026, 0, 1, 1)));

  s = await scrape();
  assert.equal(valueOf(s, 'mailmesh_messages_total', { result: 'delivered', shard: 'tokyo-1' }), 2);
  assert.equal(valueOf(s, 'mailmesh_rotations_total', { result: 'ok' }), 1);
  assert.equal(valueOf(s, 'mailmesh_mesh_handshake_failures_total', { reason: 'ERR_UNKNOWN_AUTHORITY' }), 1);
  assert.equal(valueOf(s, 'mailmesh_mesh_connections_total', { direction: 'outbound', group: 'frankfurt-1' }), 1);
  assert.equal(valueOf(s, 'mailmesh_auth_results_total', { method: 'dmarc', result: 'temperror' }), 1);
  assert.equal(valueOf(s, 'mailmesh_proxy_sessions', { protocol: 'imap' }), 1);
  assert.equal(valueOf(s, 'mailmesh_certificate_expiry_timestamp_seconds'), Date.UTC(2026, 0, 1, 1) / 1000);

  m.proxySessions.dec({ protocol: 'imap' });
  s = await scrape();
  assert.equal(valueOf(s, 'mailmesh_proxy_sessions', { protocol: 'imap' }), 0);
});

test('default process metrics are on the same registry', async (t) => {
  const m = createSidecarMetrics();
  const { server, scrape } = await serve(m.registry);
  t.after(() => server.close());
  const s = await scrape();
  assert.ok(s.some((x) => x.name === 'process_cpu_user_seconds_total'), 'process metrics missing');
  assert.ok(s.some((x) => x.name === 'nodejs_heap_size_used_bytes'), 'nodejs metrics missing');
});

test('event-loop busy seconds grow by at least the time the loop was kept busy', async (t) => {
  const m = createSidecarMetrics();
  const { server, scrape } = await serve(m.registry);
  t.after(() => server.close());
  const before = valueOf(await scrape(), 'mailmesh_event_loop_active_seconds_total');
  assert.equal(typeof before, 'number');
  // Keep the loop busy for 100 ms of wall clock (synchronous work: no I/O wait in between).
  const start = performance.now();
  while (performance.now() - start < 100);
  const after = valueOf(await scrape(), 'mailmesh_event_loop_active_seconds_total')!;
  assert.ok(after - before! >= 0.1, `grew by ${after - before!} s, expected at least 0.1 s`);
  const later = valueOf(await scrape(), 'mailmesh_event_loop_active_seconds_total')!;
  assert.ok(later >= after, 'a counter never goes down');
});

test('policy revision info keeps exactly one series, the current revision', async (t) => {
  const m = createSidecarMetrics();
  const { server, scrape } = await serve(m.registry);
  t.after(() => server.close());
  m.setPolicyRevision('aaa111');
  let s = await scrape();
  assert.equal(valueOf(s, 'mailmesh_policy_revision_info', { revision: 'aaa111' }), 1);
  m.setPolicyRevision('bbb222');
  s = await scrape();
  assert.equal(valueOf(s, 'mailmesh_policy_revision_info', { revision: 'bbb222' }), 1);
  assert.equal(valueOf(s, 'mailmesh_policy_revision_info', { revision: 'aaa111' }), undefined, 'old revision label must be removed');
  assert.equal(s.filter((x) => x.name === 'mailmesh_policy_revision_info').length, 1);
});

test('snapshot age is computed at scrape time from the clock', async (t) => {
  const clock = new ManualClock();
  const m = createSidecarMetrics({ clock });
  const { server, scrape } = await serve(m.registry);
  t.after(() => server.close());

  assert.equal(valueOf(await scrape(), 'mailmesh_snapshot_age_seconds'), Infinity, 'no snapshot reads as infinitely old');
  m.setSnapshotTime(clock.now());
  assert.equal(valueOf(await scrape(), 'mailmesh_snapshot_age_seconds'), 0);
  clock.advance(90_000);
  assert.equal(valueOf(await scrape(), 'mailmesh_snapshot_age_seconds'), 90);
  clock.advance(30_000);
  assert.equal(valueOf(await scrape(), 'mailmesh_snapshot_age_seconds'), 120);
  m.setSnapshotTime(clock.now() - 5_000);
  assert.equal(valueOf(await scrape(), 'mailmesh_snapshot_age_seconds'), 5);
});

test('two sidecars in one process do not share series', () => {
  const a = createSidecarMetrics();
  const b = createSidecarMetrics();
  a.rotations.inc({ result: 'error' });
  assert.notEqual(a.registry, b.registry);
  return b.registry.getSingleMetricAsString('mailmesh_rotations_total').then((text) => {
    assert.doesNotMatch(text, /result="error"/);
  });
});
