import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createControlPlaneMetrics } from '../../common/metrics.ts';
import { serve, valueOf } from './scrape.ts';

test('control-plane series move on /metrics when incremented', async (t) => {
  const m = createControlPlaneMetrics();
  const { server, scrape } = await serve(m.registry);
  t.after(() => server.close());

  let s = await scrape();
  assert.equal(valueOf(s, 'mailmesh_watchers'), 0);
  assert.equal(valueOf(s, 'mailmesh_certificates_issued_total', { kind: 'join' }), undefined);

  m.certificatesIssued.inc({ kind: 'join' });
  m.certificatesIssued.inc({ kind: 'renew' }, 3);
  m.signFailures.inc({ code: 'ERR_TOKEN_REUSED' });
  m.policyReloads.inc({ result: 'error' });
  m.watchers.set(2);
  m.issuedCertificateExpiry.set(1_767_229_200);
  m.issuerExpiry.set(1_800_000_000);
  m.setPolicyRevision('r1');
  m.setPolicyRevision('r2');

  s = await scrape();
  assert.equal(valueOf(s, 'mailmesh_certificates_issued_total', { kind: 'join' }), 1);
  assert.equal(valueOf(s, 'mailmesh_certificates_issued_total', { kind: 'renew' }), 3);
  assert.equal(valueOf(s, 'mailmesh_sign_failures_total', { code: 'ERR_TOKEN_REUSED' }), 1);
  assert.equal(valueOf(s, 'mailmesh_policy_reload_total', { result: 'error' }), 1);
  assert.equal(valueOf(s, 'mailmesh_watchers'), 2);
  assert.equal(valueOf(s, 'mailmesh_issued_certificate_expiry_timestamp_seconds'), 1_767_229_200);
  assert.equal(valueOf(s, 'mailmesh_issuer_certificate_expiry_timestamp_seconds'), 1_800_000_000);
  assert.equal(valueOf(s, 'mailmesh_policy_revision_info', { revision: 'r2' }), 1);
  assert.equal(valueOf(s, 'mailmesh_policy_revision_info', { revision: 'r1' }), undefined);
  assert.ok(s.some((x) => x.name === 'process_resident_memory_bytes' || x.name === 'nodejs_heap_size_used_bytes'));
});
