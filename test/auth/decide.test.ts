import './deny-dns.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, type AuthAction } from '../../sidecar/auth/decide.ts';
import type { DmarcVerdict, Verdict } from '../../sidecar/auth/types.ts';

function verdict(dmarc: Partial<DmarcVerdict>, over: Partial<Verdict> = {}): Verdict {
  return {
    authservId: 'mx.mail.test',
    spf: { result: 'fail', domain: 'sender.example' },
    dkim: [],
    dmarc: { result: 'fail', policy: 'reject', domain: 'sender.example', ...dmarc },
    arc: { result: 'none', instance: 0, trusted: false },
    headerValue: 'mx.mail.test; none',
    temporary: false,
    ...over,
  };
}

const TABLE: [string, Verdict, AuthAction, number | undefined, string | undefined][] = [
  ['dmarc pass', verdict({ result: 'pass' }), 'accept', undefined, undefined],
  ['dmarc pass despite a temporary SPF error', verdict({ result: 'pass' }, { temporary: true, spf: { result: 'temperror', domain: 's' } }), 'accept', undefined, undefined],
  ['dmarc none', verdict({ result: 'none', policy: 'none' }), 'accept', undefined, undefined],
  ['dmarc none with SPF temperror (nothing to enforce)', verdict({ result: 'none', policy: 'none' }, { temporary: true, spf: { result: 'temperror', domain: 's' } }), 'accept', undefined, undefined],
  ['dmarc temperror', verdict({ result: 'temperror', policy: 'none' }, { temporary: true }), 'tempfail', 451, '4.7.5'],
  ['dmarc permerror', verdict({ result: 'permerror', policy: 'none', skipReason: 'multiple-from-fields' }), 'quarantine', undefined, undefined],
  ['fail p=reject', verdict({}), 'reject', 550, '5.7.1'],
  ['fail p=quarantine', verdict({ policy: 'quarantine' }), 'quarantine', undefined, undefined],
  ['fail p=none', verdict({ policy: 'none' }), 'accept', undefined, undefined],
  ['fail p=reject + SPF temperror', verdict({}, { temporary: true, spf: { result: 'temperror', domain: 'sender.example' } }), 'tempfail', 451, '4.7.24'],
  ['fail p=quarantine + DKIM temperror', verdict({ policy: 'quarantine' }, { temporary: true, dkim: [{ result: 'temperror', domain: 'sender.example', selector: 'x', algorithm: 'rsa-sha256', aligned: false }] }), 'tempfail', 451, '4.7.5'],
  ['fail p=reject + temperror of an unrelated DKIM signature (spoofer-controlled DNS)', verdict({}, { temporary: true, dkim: [{ result: 'temperror', domain: 'attacker.example', selector: 'x', algorithm: 'rsa-sha256', aligned: false }] }), 'reject', 550, '5.7.1'],
  ['fail p=reject + SPF temperror of an unrelated MAIL FROM domain', verdict({}, { temporary: true, spf: { result: 'temperror', domain: 'bounces.other.example' } }), 'reject', 550, '5.7.1'],
  ['fail p=reject + DKIM temperror of a subdomain signature', verdict({}, { temporary: true, dkim: [{ result: 'temperror', domain: 'mail.sender.example', selector: 'x', algorithm: 'rsa-sha256', aligned: false }] }), 'tempfail', 451, '4.7.5'],
  ['fail p=reject + ARC key lookup failed for a trusted sealer', verdict({}, { temporary: true, arc: { result: 'fail', instance: 1, sealer: 'fwd.example', trusted: false, listed: true, temporary: true } }), 'tempfail', 451, '4.7.5'],
  ['fail p=reject + ARC fail of an untrusted sealer', verdict({}, { temporary: true, arc: { result: 'fail', instance: 1, sealer: 'x.example', trusted: false, temporary: true } }), 'reject', 550, '5.7.1'],
  ['fail p=reject + ARC override', verdict({ override: 'arc' }, { arc: { result: 'pass', instance: 1, sealer: 'fwd.example', trusted: true } }), 'accept', undefined, undefined],
];

for (const [name, v, action, code, enhanced] of TABLE) {
  test(`enforce: ${name} → ${action}`, () => {
    const d = decide(v, 'enforce');
    assert.equal(d.action, action);
    assert.equal(d.smtp?.code, code);
    assert.equal(d.smtp?.enhanced, enhanced);
    if (action === 'quarantine') assert.match(d.headers?.[0] ?? '', /^X-Mailmesh-Quarantine: dmarc=(fail policy=quarantine|permerror)/);
    else assert.equal(d.headers, undefined);
  });
  test(`monitor: ${name} → accept (would be ${action})`, () => {
    const d = decide(v, 'monitor');
    assert.equal(d.action, 'accept');
    assert.equal(d.wouldBe, action);
    assert.equal(d.smtp, undefined);
    assert.equal(d.headers, undefined);
  });
}

test('the quarantine header names the From domain for the sieve rule', () => {
  assert.deepEqual(decide(verdict({ policy: 'quarantine' }), 'enforce').headers, ['X-Mailmesh-Quarantine: dmarc=fail policy=quarantine header.from=sender.example']);
});
