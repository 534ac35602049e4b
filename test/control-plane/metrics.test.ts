// The control plane's /metrics, /healthz and /readyz move with what it does: issued certificates,
// refused Sign calls by code, policy reloads (good and refused), the revision served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { anonClient, makeWorld, newKey, startTestControlPlane } from './helpers.ts';

function value(text: string, name: string, label = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(name) && l.includes(label) && !l.startsWith('#'));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('control plane metrics count issuance, refusals and policy reloads', async () => {
  const world = await makeWorld();
  const cp = await startTestControlPlane({ ...world.config, metrics: '127.0.0.1:0' });
  const client = anonClient(cp);
  try {
    assert.ok(cp.metricsAddress);
    const base = `http://${cp.metricsAddress}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const scrape = async () => (await fetch(`${base}/metrics`)).text();
    let m = await scrape();
    assert.equal(value(m, 'mailmesh_policy_revision_info', `revision="${cp.revision()}"`), 1);
    assert.ok(value(m, 'mailmesh_issuer_certificate_expiry_timestamp_seconds') > Date.now() / 1000);

    const { token } = await cp.createJoinToken({ shard: 'tokyo-1', node: 'n1' });
    await client.sign({ csrDer: newKey().csrDer, joinToken: token });
    await assert.rejects(client.sign({ csrDer: newKey().csrDer, joinToken: token }), (e: Error & { code?: string }) => e.code === 'ERR_TOKEN_REPLAYED');
    m = await scrape();
    assert.equal(value(m, 'mailmesh_certificates_issued_total', 'kind="join"'), 1);
    assert.equal(value(m, 'mailmesh_sign_failures_total', 'code="ERR_TOKEN_REPLAYED"'), 1);
    assert.ok(value(m, 'mailmesh_issued_certificate_expiry_timestamp_seconds') > Date.now() / 1000);

    // A broken policy edit is refused and counted; the good revision stays served.
    const before = cp.revision();
    await appendFile(join(world.config.policyDir, 'mesh.yaml'), '\nnot-a-key: [\n');
    assert.equal(await cp.reloadPolicy(), 'error');
    m = await scrape();
    assert.equal(value(m, 'mailmesh_policy_reload_total', 'result="error"'), 1);
    assert.equal(value(m, 'mailmesh_policy_revision_info', `revision="${before}"`), 1);
  } finally {
    client.close();
    await cp.close();
    await world.cleanup();
  }
});
