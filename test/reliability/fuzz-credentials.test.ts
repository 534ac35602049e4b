// Malformed credentials: CSRs (random DER, truncations, byte flips, bad signature, wrong
// algorithm OIDs), join tokens (random strings, alg=none, HS256 keyed with the public key,
// expired, wrong audience, tampered payload, other key) and snapshots (tampered payload, wrong
// typ, no x5c, x5c from another CA, signed by a node identity). Each is refused with its own code
// and never accepted — a mutation is only ever accepted when it decodes to exactly the original.
import assert from 'node:assert/strict';
import { createPrivateKey, sign } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CompactSign, SignJWT, UnsecuredJWT, exportJWK } from 'jose';
import { OID } from '../../ca/algorithms.ts';
import { createCsr, readCsr } from '../../ca/csr.ts';
import { TAG, bitString, children, expect, oid, seq, whole } from '../../ca/der.ts';
import { isCaError } from '../../ca/errors.ts';
import { generateKeyPair } from '../../ca/keys.ts';
import { isApiError } from '../../api/errors.ts';
import { SNAPSHOT_TYP, verifySnapshot, type SnapshotPayload } from '../../api/snapshot.ts';
import { ManualClock } from '../../common/clock.ts';
import { isControlPlaneError } from '../../control-plane/errors.ts';
import { issueSelfIdentity } from '../../control-plane/self-identity.ts';
import { signSnapshot } from '../../control-plane/snapshot.ts';
import { createJoinToken, loadOrCreateTokenKey, verifyJoinToken, type TokenKey } from '../../control-plane/token.ts';
import { issueIdentity, makeCa } from '../mesh/pki.ts';
import { Rng, fuzzSeed, iterations, replayHint } from './fuzz-kit.ts';
import { summary } from './summary.ts';

const seed = fuzzSeed();
const sum = summary('credentials-fuzz');
sum.set('seed', seed);

function flip(r: Rng, b: Buffer, n = 1 + r.int(3)): Buffer {
  const c = Buffer.from(b);
  for (let i = 0; i < n; i++) c[r.int(c.length)] ^= 1 << r.int(8);
  return c;
}

describe('CSRs', () => {
  const kp = generateKeyPair('P-256');
  const good = createCsr(kp);
  const goodSpki = readCsr(good).spki;

  /** Refused with ERR_CSR_INVALID, or accepted with exactly the original key. */
  function check(input: Uint8Array | string, what: string): 'refused' | 'same' {
    try {
      const got = readCsr(input);
      assert.ok(got.spki.equals(goodSpki), replayHint(seed, `${what}: accepted a CSR with another key`));
      return 'same';
    } catch (err) {
      assert.ok(isCaError(err, 'ERR_CSR_INVALID'), replayHint(seed, `${what}: ${String(err)}`));
      return 'refused';
    }
  }

  test('random DER, truncations and byte flips are refused with ERR_CSR_INVALID', () => {
    const r = new Rng(seed);
    const n = iterations(1500);
    let refused = 0;
    for (let i = 0; i < n; i++) {
      let input: Buffer;
      const mode = i % 4;
      if (mode === 0) input = r.bytes(r.int(300));
      else if (mode === 1) input = Buffer.concat([Buffer.from([0x30, 0x82, r.int(256), r.int(256)]), r.bytes(r.int(300))]);
      else if (mode === 2) input = good.subarray(0, r.int(good.length));
      else input = flip(r, good);
      if (check(input, `csr #${i} mode ${mode}`) === 'refused') refused++;
      sum.add('csr_inputs');
    }
    // Truncations and random bytes never are the original; flips essentially never.
    assert.ok(refused >= n - 5, `${n - refused} mutated CSRs accepted`);
    sum.add('csr_refused', refused);
  });

  test('a bad signature, a foreign key signature and each wrong algorithm OID are refused', () => {
    const cases: [string, Buffer | string][] = [];
    const badSig = Buffer.from(good);
    badSig[badSig.length - 3] ^= 0x40;
    cases.push(['signature bit flipped', badSig]);
    // Signed by another key: the CSR proves nothing about the key inside.
    const [info, alg] = children(good, expect(good, 0, TAG.SEQUENCE));
    const foreignSig = sign('sha256', whole(good, info), generateKeyPair('P-256').privateKey);
    cases.push(['signature of another key', seq(whole(good, info), whole(good, alg), bitString(foreignSig))]);
    const sha256 = oid(OID.ecdsaWithSHA256);
    for (const [name, replacement] of [
      ['ecdsa-with-SHA384 on a P-256 signature', oid(OID.ecdsaWithSHA384)],
      ['Ed25519 OID on an ECDSA key', oid(OID.ed25519)],
      ['sha256WithRSAEncryption', oid('1.2.840.113549.1.1.11')],
      ['md5WithRSAEncryption', oid('1.2.840.113549.1.1.4')],
    ] as const) {
      const at = good.lastIndexOf(sha256);
      assert.ok(at > 0);
      const body = Buffer.concat([good.subarray(0, at), replacement, good.subarray(at + sha256.length)]);
      // Re-encode the outer and AlgorithmIdentifier lengths when the OID length changed.
      const delta = replacement.length - sha256.length;
      if (delta !== 0) {
        body[at - 1] += delta; // AlgorithmIdentifier SEQUENCE length (short form)
        const outerLen = body.readUInt16BE(2) + delta;
        body.writeUInt16BE(outerLen, 2);
      }
      cases.push([name, body]);
    }
    cases.push(['PEM of a certificate, not a CSR', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n']);
    cases.push(['empty', Buffer.alloc(0)]);
    cases.push(['PEM with garbage base64', '-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n']);
    for (const [name, input] of cases) {
      assert.throws(() => readCsr(input), (e) => isCaError(e, 'ERR_CSR_INVALID'), name);
      sum.add('csr_cases');
    }
  });
});

describe('join tokens', () => {
  let dir: string;
  let key: TokenKey;
  let otherKey: TokenKey;
  const clock = new ManualClock(Date.now());
  const audience = 'spiffe://mail.test/control-plane';
  const opts = () => ({ key, audience, trustDomain: 'mail.test', clock });
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mm-rel-token-'));
    key = await loadOrCreateTokenKey(join(dir, 'a'));
    otherKey = await loadOrCreateTokenKey(join(dir, 'b'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const make = (over: { key?: TokenKey; audience?: string; trustDomain?: string; ttlMs?: number } = {}) =>
    createJoinToken({ key: over.key ?? key, audience: over.audience ?? audience, trustDomain: over.trustDomain ?? 'mail.test', shard: 'tokyo-1', node: 'n1', ttlMs: over.ttlMs ?? 600_000, clock });

  async function code(token: string): Promise<string> {
    try {
      await verifyJoinToken(token, opts());
      return 'ACCEPTED';
    } catch (err) {
      assert.ok(isControlPlaneError(err), `not a ControlPlaneError: ${String(err)}`);
      return err.code;
    }
  }

  test('each forged or wrong token has its own code', async () => {
    const good = (await make()).token;
    assert.equal(await code(good), 'ACCEPTED');
    const [h, p] = good.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const pubJwk = await exportJWK(key.publicKey);
    const hsSecret = new TextEncoder().encode(JSON.stringify(pubJwk));
    const now = Math.floor(clock.now() / 1000);
    const cases: [string, string | Promise<string>, string][] = [
      ['alg=none', new UnsecuredJWT(payload).encode(), 'ERR_TOKEN_INVALID'],
      ['alg=none header on a real signature', `${enc({ alg: 'none', typ: 'mailmesh-join+jwt' })}.${p}.${good.split('.')[2]}`, 'ERR_TOKEN_INVALID'],
      ['HS256 keyed with the public key', new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(hsSecret), 'ERR_TOKEN_INVALID'],
      ['wrong audience', make({ audience: 'spiffe://other.test/control-plane' }).then((t) => t.token), 'ERR_TOKEN_AUDIENCE'],
      ['signed by another key', make({ key: otherKey }).then((t) => t.token), 'ERR_TOKEN_INVALID_SIGNATURE'],
      ['tampered payload (sub changed)', `${h}.${enc({ ...payload, sub: 'spiffe://mail.test/shard/osaka-1/node/evil' })}.${good.split('.')[2]}`, 'ERR_TOKEN_INVALID_SIGNATURE'],
      ['tampered payload (exp extended)', `${h}.${enc({ ...payload, exp: now + 86_400 })}.${good.split('.')[2]}`, 'ERR_TOKEN_INVALID_SIGNATURE'],
      ['subject not a node', new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('spiffe://mail.test/control-plane').setAudience(audience).setJti('j').setIssuedAt(now).setExpirationTime(now + 60).sign(key.privateKey), 'ERR_TOKEN_INVALID'],
      ['subject in another trust domain', new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('spiffe://other.test/shard/a/node/b').setAudience(audience).setJti('j').setIssuedAt(now).setExpirationTime(now + 60).sign(key.privateKey), 'ERR_TOKEN_INVALID'],
      ['no jti', new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('spiffe://mail.test/shard/a/node/b').setAudience(audience).setIssuedAt(now).setExpirationTime(now + 60).sign(key.privateKey), 'ERR_TOKEN_INVALID'],
      ['no exp', new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('spiffe://mail.test/shard/a/node/b').setAudience(audience).setJti('j').setIssuedAt(now).sign(key.privateKey), 'ERR_TOKEN_INVALID'],
      ['not yet valid', new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('spiffe://mail.test/shard/a/node/b').setAudience(audience).setJti('j').setIssuedAt(now).setNotBefore(now + 3600).setExpirationTime(now + 7200).sign(key.privateKey), 'ERR_TOKEN_INVALID'],
      ['empty', '', 'ERR_TOKEN_INVALID'],
      ['two parts', `${h}.${p}`, 'ERR_TOKEN_INVALID'],
    ];
    for (const [name, token, want] of cases) {
      assert.equal(await code(await token), want, name);
      sum.add('token_cases');
    }
    // Expiry: the same token, later.
    const short = (await make({ ttlMs: 60_000 })).token;
    clock.advance(10 * 60_000);
    try {
      assert.equal(await code(short), 'ERR_TOKEN_EXPIRED');
    } finally {
      clock.advance(-10 * 60_000);
    }
    sum.add('token_cases');
  });

  test('random strings and mutated tokens are refused (or decode to the very same claims)', async () => {
    const r = new Rng(seed ^ 0xabcdef);
    const good = (await make()).token;
    const original = await verifyJoinToken(good, opts());
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    const codes = new Set(['ERR_TOKEN_INVALID', 'ERR_TOKEN_INVALID_SIGNATURE', 'ERR_TOKEN_EXPIRED', 'ERR_TOKEN_AUDIENCE']);
    for (let i = 0, n = iterations(600); i < n; i++) {
      let t: string;
      if (i % 3 === 0) t = Array.from({ length: r.int(200) }, () => alphabet[r.int(alphabet.length)]).join('');
      else {
        const chars = good.split('');
        for (let k = 0, m = 1 + r.int(3); k < m; k++) chars[r.int(chars.length)] = alphabet[r.int(alphabet.length)];
        t = chars.join('');
      }
      try {
        const claims = await verifyJoinToken(t, opts());
        assert.deepEqual(claims, original, replayHint(seed, `mutated token #${i} accepted with other claims`));
        sum.add('token_same');
      } catch (err) {
        assert.ok(isControlPlaneError(err) && codes.has(err.code), replayHint(seed, `token #${i}: ${String(err)}`));
        sum.add('token_refused');
      }
      sum.add('token_inputs');
    }
  });
});

describe('snapshots', () => {
  const ca = makeCa('mail.test');
  const otherCa = makeCa('mail.test');
  const self = issueSelfIdentity(ca.issuer, 3_600_000, Date.now());
  const foreign = issueSelfIdentity(otherCa.issuer, 3_600_000, Date.now());
  const payload: SnapshotPayload = { v: 1, revision: 'r1', policyRevision: 'r1', trustDomain: 'mail.test', issuedAt: Date.now(), placement: '{}', bundlePem: ca.bundlePem, revokedSerials: [], revokedIds: [] };

  async function code(jws: string): Promise<string> {
    try {
      await verifySnapshot(jws, ca.bundle, 'mail.test');
      return 'ACCEPTED';
    } catch (err) {
      assert.ok(isApiError(err), `not an ApiError: ${String(err)}`);
      return err.code;
    }
  }

  test('tampered, mistyped, unsigned, foreign and node-signed snapshots each have their code', async () => {
    const good = await signSnapshot(payload, { privateKey: self.keyPair.privateKey, chain: self.chain });
    assert.equal(await code(good), 'ACCEPTED');
    const [h, p, s] = good.split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const x5c = (chain: { raw: Buffer }[]) => chain.map((c) => c.raw.toString('base64'));
    const sign = (hdr: Record<string, unknown>, body: unknown, key = self.keyPair.privateKey) =>
      new CompactSign(Buffer.from(JSON.stringify(body))).setProtectedHeader(hdr as { alg: string }).sign(key);
    const node = issueIdentity(ca, 'tokyo-1', 'a');
    const nodeKey = createPrivateKey(node.keyPem);
    const cases: [string, string | Promise<string>, string][] = [
      ['tampered payload', `${h}.${enc({ ...payload, revokedIds: [], placement: '{"evil":1}' })}.${s}`, 'ERR_SNAPSHOT_INVALID'],
      ['wrong typ', sign({ ...header, typ: 'JWT' }, payload), 'ERR_SNAPSHOT_INVALID'],
      ['no typ', sign({ alg: 'ES256', x5c: header.x5c }, payload), 'ERR_SNAPSHOT_INVALID'],
      ['no x5c', sign({ alg: 'ES256', typ: SNAPSHOT_TYP }, payload), 'ERR_SNAPSHOT_SIGNER'],
      ['empty x5c', sign({ alg: 'ES256', typ: SNAPSHOT_TYP, x5c: [] }, payload), 'ERR_SNAPSHOT_SIGNER'],
      ['garbage x5c', sign({ alg: 'ES256', typ: SNAPSHOT_TYP, x5c: ['AAAA'] }, payload), 'ERR_SNAPSHOT_SIGNER'],
      ['x5c from another CA', sign({ alg: 'ES256', typ: SNAPSHOT_TYP, x5c: x5c(foreign.chain) }, payload, foreign.keyPair.privateKey), 'ERR_SNAPSHOT_SIGNER'],
      ['signed by a node identity', sign({ alg: 'ES256', typ: SNAPSHOT_TYP, x5c: x5c(node.chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!.map((pem) => ({ raw: Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64') }))) }, payload, nodeKey), 'ERR_SNAPSHOT_SIGNER'],
      ['right x5c, wrong key', sign({ alg: 'ES256', typ: SNAPSHOT_TYP, x5c: header.x5c }, payload, foreign.keyPair.privateKey), 'ERR_SNAPSHOT_INVALID'],
      ['alg none', `${enc({ alg: 'none', typ: SNAPSHOT_TYP, x5c: header.x5c })}.${p}.`, 'ERR_SNAPSHOT_INVALID'],
      ['other trust domain in payload', sign(header, { ...payload, trustDomain: 'other.test' }), 'ERR_SNAPSHOT_INVALID'],
      ['payload not JSON', `${h}.${Buffer.from('not json').toString('base64url')}.${s}`, 'ERR_SNAPSHOT_INVALID'],
      ['not a JWS', 'hello', 'ERR_SNAPSHOT_INVALID'],
    ];
    for (const [name, jws, want] of cases) {
      assert.equal(await code(await jws), want, name);
      sum.add('snapshot_cases');
    }
  });

  test('mutated snapshots are refused (or verify to the very same payload)', async () => {
    const r = new Rng(seed ^ 0x51a9);
    const good = await signSnapshot(payload, { privateKey: self.keyPair.privateKey, chain: self.chain });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    for (let i = 0, n = iterations(300); i < n; i++) {
      const chars = good.split('');
      for (let k = 0, m = 1 + r.int(3); k < m; k++) chars[r.int(chars.length)] = alphabet[r.int(alphabet.length)];
      const jws = r.chance(0.1) ? chars.join('').slice(0, r.int(chars.length)) : chars.join('');
      try {
        const got = await verifySnapshot(jws, ca.bundle, 'mail.test');
        assert.deepEqual(got, payload, replayHint(seed, `mutated snapshot #${i} accepted with another payload`));
        sum.add('snapshot_same');
      } catch (err) {
        assert.ok(isApiError(err, 'ERR_SNAPSHOT_INVALID') || isApiError(err, 'ERR_SNAPSHOT_SIGNER'), replayHint(seed, `snapshot #${i}: ${String(err)}`));
        sum.add('snapshot_refused');
      }
      sum.add('snapshot_inputs');
    }
  });
});
