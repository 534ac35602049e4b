import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, nextRotationAt, shouldRotate } from '../../sidecar/identity/rotation.ts';

const t0 = Date.UTC(2026, 0, 1);
const H = 3_600_000;
const cert = { notBefore: new Date(t0), notAfter: new Date(t0 + H) };

test('shouldRotate: false before half-life, true from it', () => {
  assert.equal(shouldRotate(t0, cert, 0), false);
  assert.equal(shouldRotate(t0 + H / 2 - 1, cert, 0), false);
  assert.equal(shouldRotate(t0 + H / 2, cert, 0), true);
});

test('shouldRotate: jitter shifts the half-life by jitter × lifetime, clamped to ±10%', () => {
  assert.equal(shouldRotate(t0 + 0.45 * H, cert, -0.05), true);
  assert.equal(shouldRotate(t0 + 0.45 * H, cert, 0.05), false);
  assert.equal(nextRotationAt(cert, 0.1), t0 + 0.6 * H);
  assert.equal(nextRotationAt(cert, 5), t0 + 0.6 * H);
  assert.equal(nextRotationAt(cert, -5), t0 + 0.4 * H);
  assert.equal(nextRotationAt(cert, Number.NaN), t0 + 0.5 * H);
});

test('shouldRotate: always true once expired, even with maximal jitter', () => {
  assert.equal(shouldRotate(t0 + H, cert, 0.1), true);
  assert.equal(shouldRotate(t0 + 2 * H, cert, 0.1), true);
});

test('shouldRotate: an empty or inverted validity window rotates at once', () => {
  assert.equal(shouldRotate(t0 - 5, { notBefore: new Date(t0), notAfter: new Date(t0) }, 0), true);
});

test('backoffDelay doubles from initial, stays within [d/2, d], and is capped', () => {
  const cfg = { initialMs: 1000, maxMs: 10_000 };
  assert.equal(backoffDelay(1, cfg, () => 1), 1000);
  assert.equal(backoffDelay(1, cfg, () => 0), 500);
  assert.equal(backoffDelay(2, cfg, () => 1), 2000);
  assert.equal(backoffDelay(3, cfg, () => 1), 4000);
  assert.equal(backoffDelay(10, cfg, () => 1), 10_000);
  assert.equal(backoffDelay(100, cfg, () => 0), 5000);
});
