import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCsr, csrToPem, parseCsr, readCsr } from '../../ca/csr.ts';
import { generateKeyPair, KEY_ALGORITHMS } from '../../ca/keys.ts';

test('CSRs round-trip for every algorithm, DER and PEM', () => {
  for (const alg of KEY_ALGORITHMS) {
    const kp = generateKeyPair(alg);
    const der = createCsr(kp);
    const key = parseCsr(der);
    assert.ok(key.equals(kp.publicKey), alg);
    assert.ok(parseCsr(csrToPem(der)).equals(kp.publicKey), alg);
  }
});

test('a CSR whose signature does not match its key is refused (proof of possession)', () => {
  const der = createCsr(generateKeyPair());
  const forged = Buffer.from(der);
  forged[forged.length - 5] ^= 0x01; // flip a bit inside the signature
  assert.throws(() => parseCsr(forged), { code: 'ERR_CSR_INVALID' });
  // Another key's signature over the same request info: swap in the SPKI of a different key.
  const a = generateKeyPair();
  const b = generateKeyPair();
  const da = createCsr(a);
  const spkiA = a.publicKey.export({ type: 'spki', format: 'der' });
  const spkiB = b.publicKey.export({ type: 'spki', format: 'der' });
  const swapped = Buffer.from(da.toString('hex').replace(spkiA.toString('hex'), spkiB.toString('hex')), 'hex');
  assert.notDeepEqual(swapped, da);
  assert.throws(() => parseCsr(swapped), { code: 'ERR_CSR_INVALID' });
});

test('garbage and non-CSR PEM are refused with ERR_CSR_INVALID', () => {
  assert.throws(() => parseCsr(Buffer.from('3003020100', 'hex')), { code: 'ERR_CSR_INVALID' });
  assert.throws(() => parseCsr('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), { code: 'ERR_CSR_INVALID' });
  assert.throws(() => parseCsr(Buffer.alloc(0)), { code: 'ERR_CSR_INVALID' });
});

test('the CSR subject is returned only as opaque bytes', () => {
  const r = readCsr(createCsr(generateKeyPair(), { commonName: 'spiffe://mail.example/control-plane' }));
  assert.ok(r.subject.includes(Buffer.from('control-plane')));
});
