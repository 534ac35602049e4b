// A running mesh (control plane + three sidecar processes, embedded backends): /readyz is 200,
// /metrics shows the certificate, the policy revision, and message counters moving with traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalMesh } from '../../cli/demo/local-mesh.ts';
import { MailClient } from '../../sidecar/lmtp/client.ts';

function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) total += Number(m[3]);
  }
  return total;
}

test('sidecar /metrics and /readyz move with traffic', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mm-metrics-'));
  const mesh = await startLocalMesh({ dir, backends: 'embedded' } as Parameters<typeof startLocalMesh>[0]);
  try {
    const tokyo = mesh.info.shards.find((s) => s.id === 'tokyo-1')!;
    const base = `http://${tokyo.metrics}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
    const before = await (await fetch(`${base}/metrics`)).text();
    assert.ok(sample(before, 'mailmesh_certificate_expiry_timestamp_seconds') > Date.now() / 1000, 'certificate expiry is in the future');
    assert.match(before, /mailmesh_policy_revision_info\{revision="[^"]+"\} 1/);
    const delivered = (t: string) => sample(t, 'mailmesh_messages_total', { result: 'accepted' });

    const [host, port] = tokyo.smtp.split(':');
    const socket = net.connect(Number(port), host);
    await new Promise((r) => socket.once('connect', r));
    const client = await MailClient.open(socket, { lmtp: false, heloName: 'metrics.test', timeoutMs: 20_000 });
    const body = Buffer.from('From: m@sender.test\r\nSubject: metrics\r\n\r\nhello\r\n');
    for (let i = 0; i < 3; i++) {
      const res = await client.send({ from: 'm@sender.test', recipients: ['alice@mail.test', 'bob@mail.test'], body: Buffer.concat([body, Buffer.from(`${i}\r\n`)]) });
      assert.deepEqual(res.recipients.map((r) => r.code), [250, 250]);
    }
    await client.quit();
    const after = await (await fetch(`${base}/metrics`)).text();
    assert.equal(delivered(after) - delivered(before), 6, 'six recipients accepted');
    assert.equal(sample(after, 'mailmesh_messages_total', { result: 'accepted', shard: 'osaka-1' }) - sample(before, 'mailmesh_messages_total', { result: 'accepted', shard: 'osaka-1' }), 3);
    // Osaka's ingress accepted mesh connections from Tokyo's dialer.
    // Telemetry copies the mesh counters every 2 s: the negotiated group is the hybrid
    // post-quantum one (Node 24 / OpenSSL 3.5 default), seen on both ends.
    const tokyoMetrics = `${base}/metrics`;
    const osakaMetrics = `http://${mesh.info.shards.find((s) => s.id === 'osaka-1')!.metrics}/metrics`;
    const deadline = Date.now() + 10_000;
    let inbound = 0;
    let outbound = 0;
    while (Date.now() < deadline && (inbound < 1 || outbound < 1)) {
      inbound = sample(await (await fetch(osakaMetrics)).text(), 'mailmesh_mesh_connections_total', { direction: 'inbound', group: 'X25519MLKEM768' });
      outbound = sample(await (await fetch(tokyoMetrics)).text(), 'mailmesh_mesh_connections_total', { direction: 'outbound', group: 'X25519MLKEM768' });
      if (inbound < 1 || outbound < 1) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(inbound >= 1, 'osaka counted inbound X25519MLKEM768 mesh connections');
    assert.ok(outbound >= 1, 'tokyo counted outbound X25519MLKEM768 mesh connections');
  } finally {
    await mesh.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
