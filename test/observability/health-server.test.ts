import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { certificateAndSnapshotReadiness, startHealthServer, type Readiness } from '../../common/health-server.ts';
import { ManualClock } from '../../common/clock.ts';
import { serve } from './scrape.ts';

test('readyz flips from 503 with reasons to 200 once certificate and snapshot exist', async (t) => {
  const clock = new ManualClock();
  const state: { certificateNotAfter?: Date; snapshotRevision?: string } = {};
  const { server, base } = await serve(new Registry(), () => certificateAndSnapshotReadiness({ now: clock.now(), ...state }));
  t.after(() => server.close());

  let res = await fetch(`${base}/readyz`);
  assert.equal(res.status, 503);
  let body = (await res.json()) as Readiness;
  assert.equal(body.ok, false);
  assert.equal(body.reasons.length, 2);
  assert.match(body.reasons.join('\n'), /certificate/);
  assert.match(body.reasons.join('\n'), /snapshot/);

  state.certificateNotAfter = new Date(clock.now() + 3_600_000);
  res = await fetch(`${base}/readyz`);
  assert.equal(res.status, 503);
  body = (await res.json()) as Readiness;
  assert.deepEqual(body.reasons.length, 1);
  assert.match(body.reasons[0], /snapshot/);

  state.snapshotRevision = 'abc';
  res = await fetch(`${base}/readyz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, reasons: [] });

  // Past expiry the sidecar fails closed and must leave the load balancer.
  clock.advance(3_600_000);
  res = await fetch(`${base}/readyz`);
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as Readiness).reasons[0], /expired/);
});

test('healthz is 200 while live and 503 when not; liveness ignores readiness', async (t) => {
  let alive = true;
  const { server, base } = await serve(new Registry(), () => ({ ok: false, reasons: ['x'] }), () => alive);
  t.after(() => server.close());
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  alive = false;
  assert.equal((await fetch(`${base}/healthz`)).status, 503);
});

test('healthz defaults to live; unknown paths 404; POST 405; a throwing ready() is 503', async (t) => {
  const server = await startHealthServer({
    host: '127.0.0.1',
    port: 0,
    registry: new Registry(),
    ready: () => {
      throw new Error('boom');
    },
  });
  t.after(() => server.close());
  const base = `http://127.0.0.1:${server.port}`;
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/nope`)).status, 404);
  assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
  const res = await fetch(`${base}/readyz`);
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as Readiness).reasons[0], /boom/);
});

test('/metrics is Prometheus text with its content type', async (t) => {
  const registry = new Registry();
  const { server, base } = await serve(registry);
  t.after(() => server.close());
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
});

test('close() releases the port even with a keep-alive client', async () => {
  const server = await startHealthServer({ host: '127.0.0.1', port: 0, registry: new Registry(), ready: () => ({ ok: true, reasons: [] }) });
  await fetch(`http://127.0.0.1:${server.port}/healthz`);
  await server.close();
  await assert.rejects(fetch(`http://127.0.0.1:${server.port}/healthz`));
});
