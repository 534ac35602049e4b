import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertTrustDomain, controlPlaneSpiffeId, nodeSpiffeId, parseSpiffeId } from '../../ca/spiffe.ts';

test('node and control-plane IDs follow DESIGN.md', () => {
  assert.equal(nodeSpiffeId('mail.example', 'tokyo-1', 'tokyo-1a'), 'spiffe://mail.example/shard/tokyo-1/node/tokyo-1a');
  assert.equal(controlPlaneSpiffeId('mail.example'), 'spiffe://mail.example/control-plane');
  assert.deepEqual(parseSpiffeId('spiffe://mail.example/shard/a'), { id: 'spiffe://mail.example/shard/a', trustDomain: 'mail.example', path: '/shard/a' });
});

test('invalid SPIFFE IDs are refused with ERR_NOT_SPIFFE', () => {
  for (const bad of ['http://mail.example/x', 'SPIFFE://mail.example/x', 'spiffe://Mail.example/x', 'spiffe://mail.example:8080/x', 'spiffe://u@mail.example/x',
    'spiffe://mail.example/x/', 'spiffe://mail.example//x', 'spiffe://mail.example/./x', 'spiffe://mail.example/../x', 'spiffe://mail.example/x?q', 'spiffe://mail.example/x#f', 'spiffe:///x', `spiffe://a/${'x'.repeat(2100)}`]) {
    assert.throws(() => parseSpiffeId(bad), { code: 'ERR_NOT_SPIFFE' }, bad);
  }
  assert.throws(() => nodeSpiffeId('mail.example', 'a/b', 'c/'), { code: 'ERR_NOT_SPIFFE' });
});

test('trust domain names are checked', () => {
  assert.equal(assertTrustDomain('mail.example'), 'mail.example');
  for (const bad of ['', 'Mail.Example', 'mail example', 'mail/example']) assert.throws(() => assertTrustDomain(bad), { code: 'ERR_BAD_TRUST_DOMAIN' });
});
