import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ManualClock } from '../../common/clock.ts';
import { IdentityRotator } from '../../sidecar/identity/rotator.ts';
import { loadCachedSnapshot, saveSnapshot, SNAPSHOT_FILE } from '../../sidecar/identity/snapshot-cache.ts';
import { FakeSource, makeCa } from '../mesh/pki.ts';

const H = 3_600_000;
const ID = 'spiffe://mail.test/shard/s1/node/a';
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'mm-identity-'));
  dirs.push(d);
  return d;
}

function setup() {
  const clock = new ManualClock(Date.now());
  const ca = makeCa('mail.test', clock.now());
  const source = new FakeSource(ca, ID, () => clock.now(), H);
  return { clock, ca, source };
}

test('joins with the token, writes state and TLS files with the right modes, runs the reload command', async () => {
  const { clock, source } = setup();
  const stateDir = await tempDir();
  const tlsDir = await tempDir();
  const marker = join(tlsDir, 'reloaded');
  const rotated: string[] = [];
  const r = new IdentityRotator({
    source,
    clock,
    stateDir,
    tlsDir,
    joinToken: 'tok-1',
    reloadCommand: `echo reloaded >> '${marker}'`,
    onRotate: (id) => rotated.push(id.serial),
    random: () => 0.5,
  });
  assert.equal(await r.load(), 'none');
  const due = await r.tick();
  assert.equal(r.state(), 'valid');
  const id = r.current()!;
  assert.equal(id.spiffeId, ID);
  assert.deepEqual(source.calls, [{ joinToken: 'tok-1', currentSerial: undefined }]);
  assert.deepEqual(rotated, [id.serial]);
  // jitter 0 with random() = 0.5: due at half-life.
  assert.equal(due, id.notBefore.getTime() + (id.notAfter.getTime() - id.notBefore.getTime()) / 2);
  assert.equal((await stat(join(stateDir, 'node.key'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(tlsDir, 'node.key'))).mode & 0o777, 0o600);
  const crt = await readFile(join(tlsDir, 'node.crt'), 'utf8');
  assert.equal((crt.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'node.crt holds leaf + issuer');
  assert.equal(new X509Certificate(crt).serialNumber, id.serial);
  assert.match(await readFile(join(tlsDir, 'bundle.pem'), 'utf8'), /BEGIN CERTIFICATE/);
  assert.equal(await readFile(marker, 'utf8'), 'reloaded\n');

  // Not due yet: tick does nothing.
  clock.advance(10 * 60_000);
  await r.tick();
  assert.equal(source.calls.length, 1);
  // Past half-life: renews with the current certificate (no token), new key, reload runs again.
  clock.advance(25 * 60_000);
  await r.tick();
  assert.equal(source.calls.length, 2);
  assert.deepEqual(source.calls[1], { joinToken: undefined, currentSerial: id.serial });
  assert.notEqual(r.current()!.serial, id.serial);
  assert.notEqual(r.current()!.keyPem, id.keyPem, 'a fresh key per rotation');
  assert.equal(await readFile(marker, 'utf8'), 'reloaded\nreloaded\n');
  assert.equal(r.stats.rotations, 2);
});

test('a failing reload command is counted and logged, not fatal', async () => {
  const { clock, source } = setup();
  const r = new IdentityRotator({ source, clock, stateDir: await tempDir(), joinToken: 't', reloadCommand: 'exit 3' });
  await r.tick();
  assert.equal(r.state(), 'valid');
  assert.equal(r.stats.reloadFailures, 1);
});

test('restart loads key and certificate from the state dir and does not renew before half-life', async () => {
  const { clock, source } = setup();
  const stateDir = await tempDir();
  const first = new IdentityRotator({ source, clock, stateDir, joinToken: 't', random: () => 0.5 });
  await first.tick();
  const serial = first.current()!.serial;
  clock.advance(5 * 60_000);
  const second = new IdentityRotator({ source, clock, stateDir, random: () => 0.5 });
  const seen: string[] = [];
  second.onRotate((id) => seen.push(id.serial));
  assert.equal(await second.load(), 'valid');
  assert.deepEqual(seen, [serial], 'listeners hear about the loaded identity');
  await second.tick();
  assert.equal(source.calls.length, 1, 'no signing request on restart');
  assert.equal(second.current()!.serial, serial);
});

test('control plane down: keeps the certificate, backs off, expires (fail closed), recovers when it returns', async () => {
  const { clock, source } = setup();
  const stateDir = await tempDir();
  const r = new IdentityRotator({ source, clock, stateDir, joinToken: 't', random: () => 0.5, backoff: { initialMs: 1000, maxMs: 8000 } });
  await r.tick();
  const id = r.current()!;
  source.down = true;
  clock.set(r.nextDueAt());
  let due = await r.tick();
  assert.equal(r.stats.failures, 1);
  assert.equal(r.current()!.serial, id.serial, 'keeps the current certificate');
  assert.equal(due, clock.now() + 750, 'first retry after initial × [0.5, 1] (random 0.5)');
  const calls = source.calls.length;
  await r.tick();
  assert.equal(source.calls.length, calls, 'no retry before the backoff elapsed');
  for (let i = 0; i < 6; i++) {
    clock.set(due);
    due = await r.tick();
  }
  assert.ok(due - clock.now() <= 8000, 'backoff capped at maxMs');
  assert.equal(r.state(), 'valid');
  clock.set(id.notAfter.getTime() + 1);
  await r.tick();
  assert.equal(r.state(), 'expired');
  assert.equal(r.current()!.serial, id.serial);

  // Restart while down and expired: state comes back 'expired', never 'valid'.
  const restarted = new IdentityRotator({ source, clock, stateDir, random: () => 0.5 });
  assert.equal(await restarted.load(), 'expired');

  // Control plane back: the next due tick recovers. The join token was spent on the first join
  // (the control plane accepts each once), so the node rejoins with its expired certificate.
  source.down = false;
  clock.advance(10_000);
  await r.tick();
  assert.equal(r.state(), 'valid');
  assert.notEqual(r.current()!.serial, id.serial);
  assert.equal(source.calls.at(-1)!.expiredSerial, id.serial);
  assert.equal(source.calls.at(-1)!.joinToken, undefined);
  assert.equal(r.stats.attempt, 0);
});

test('expired without a join token: the node rejoins with its expired certificate once the control plane is back', async () => {
  const { clock, source } = setup();
  const stateDir = await tempDir();
  const r = new IdentityRotator({ source, clock, stateDir, joinToken: 't', random: () => 0.5 });
  await r.tick();
  const old = r.current()!;
  // Restarted without a token, the control plane down past the certificate's expiry.
  const restarted = new IdentityRotator({ source, clock, stateDir, random: () => 0.5 });
  clock.set(old.notAfter.getTime() + 1);
  source.down = true;
  await restarted.tick();
  assert.equal(restarted.state(), 'expired');
  assert.equal(restarted.stats.failures, 1);
  // Back: the next attempt presents the expired certificate (proof of possession), no token.
  source.down = false;
  clock.set(restarted.nextDueAt());
  await restarted.tick();
  assert.equal(restarted.state(), 'valid');
  assert.notEqual(restarted.current()!.serial, old.serial);
  assert.deepEqual(source.calls.at(-1), { joinToken: undefined, currentSerial: undefined, expiredSerial: old.serial });
});

test('snapshot cache: used when valid, ignored when corrupted or badly signed', async () => {
  const stateDir = await tempDir();
  const verify = async (jws: string) => {
    const [, payload, sig] = jws.split('.');
    if (sig !== 'good') throw Object.assign(new Error('bad signature'), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    return JSON.parse(Buffer.from(payload, 'base64url').toString()) as { version: number };
  };
  assert.equal(await loadCachedSnapshot(stateDir, verify), undefined, 'no cache yet');
  const payload = Buffer.from(JSON.stringify({ version: 7 })).toString('base64url');
  await saveSnapshot(stateDir, `eyJhbGciOiJFUzI1NiJ9.${payload}.good`);
  assert.deepEqual(await loadCachedSnapshot(stateDir, verify), { version: 7 });
  await saveSnapshot(stateDir, `eyJhbGciOiJFUzI1NiJ9.${payload}.forged`);
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as import('../../common/log.ts').Logger;
  assert.equal(await loadCachedSnapshot(stateDir, verify, log), undefined);
  await writeFile(join(stateDir, SNAPSHOT_FILE), '{"not":"a jws"}\n');
  assert.equal(await loadCachedSnapshot(stateDir, verify, log), undefined);
  assert.equal(warnings.length, 2);
});
