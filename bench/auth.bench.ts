// auth.verify: messages/s through the sidecar's inbound path — verifyMessage + decide +
// addAuthResults — on 10 KB RSA-2048 DKIM-signed messages, DNS answered from an in-memory zone
// behind the project's caching resolver (no network latency: this measures CPU cost).
// auth.ceiling: mailauth `authenticate` alone on the same messages and zone, same run.
// Both use one worker thread per core (2 on this machine).
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { authenticate, type DNSResolver } from 'mailauth';
import { result, type BenchFn } from './harness.ts';
import { createResolver, type DnsAnswer, type LookupFn } from '../sidecar/auth/resolver.ts';
import { verifyMessage } from '../sidecar/auth/verify.ts';
import { decide } from '../sidecar/auth/decide.ts';
import { addAuthResults } from '../sidecar/auth/headers.ts';
import { createSigner } from '../sidecar/auth/sign.ts';

type Mode = 'verify' | 'ceiling';

interface Job {
  authBench: true;
  /** Length of one timed slice; the modes alternate slice by slice (ABBA…). */
  sliceMs: number;
  rounds: number;
  messages: Uint8Array[];
  zone: [string, string[][]][];
}

const IP = '192.0.2.25';
const HELO = 'mx.sender.example';
const FROM = 'alice@sender.example';

function zoneLookup(zone: Map<string, string[][]>): (name: string, type: string) => Promise<DnsAnswer> {
  return async (name, type) => {
    const recs = type === 'TXT' ? zone.get(name.toLowerCase()) : undefined;
    if (!recs) throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
    return { records: recs };
  };
}

type Rates = Record<Mode, { n: number; secs: number }>;

function makeOnce(mode: Mode, upstream: (name: string, type: string) => Promise<DnsAnswer>): (m: Buffer) => Promise<unknown> {
  if (mode === 'verify') {
    const resolver = createResolver({ upstream });
    return async (message) => {
      const v = await verifyMessage({ message, ip: IP, helo: HELO, mailFrom: FROM, resolver, authservId: 'mx.mail.test' });
      const d = decide(v, 'enforce');
      if (d.action !== 'accept') throw new Error(`bench message not accepted: ${d.reason}`);
      return addAuthResults(message, v.authservId, v.headerValue, d.headers);
    };
  }
  const resolver: LookupFn = async (name, type) => (await upstream(name, type)).records;
  return async (message) => {
      const r = await authenticate(message, { ip: IP, helo: HELO, sender: FROM, mta: 'mx.mail.test', resolver: resolver as unknown as DNSResolver, disableBimi: true });
    if (!r.dmarc || r.dmarc.status.result !== 'pass') throw new Error('bench message did not pass DMARC');
    return r;
  };
}

// The machine is shared: alternating short slices (ceiling, verify, verify, ceiling, …) makes
// both modes see the same background load, instead of one mode getting a quiet minute.
async function worker(job: Job): Promise<Rates> {
  const messages = job.messages.map((m) => Buffer.from(m));
  const upstream = zoneLookup(new Map(job.zone));
  const fns: Record<Mode, (m: Buffer) => Promise<unknown>> = { verify: makeOnce('verify', upstream), ceiling: makeOnce('ceiling', upstream) };
  const rates: Rates = { verify: { n: 0, secs: 0 }, ceiling: { n: 0, secs: 0 } };
  for (const mode of ['verify', 'ceiling'] as const) for (let i = 0; i < 30; i++) await fns[mode](messages[i % messages.length]); // warm-up
  for (let r = 0; r < job.rounds; r++) {
    const order: Mode[] = r % 2 === 0 ? ['ceiling', 'verify'] : ['verify', 'ceiling'];
    for (const mode of order) {
      const start = performance.now();
      let n = 0;
      while (performance.now() - start < job.sliceMs) {
        await fns[mode](messages[n % messages.length]);
        n++;
      }
      rates[mode].n += n;
      rates[mode].secs += (performance.now() - start) / 1000;
    }
  }
  return rates;
}

async function onAllCores(job: Job, threads: number): Promise<Record<Mode, number>> {
  const runs = Array.from({ length: threads }, () => {
    const w = new Worker(new URL(import.meta.url), { workerData: job });
    return new Promise<Rates>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => code !== 0 && reject(new Error(`bench worker exited with ${code}`)));
    });
  });
  const rs = await Promise.all(runs);
  return {
    verify: rs.reduce((sum, r) => sum + r.verify.n / r.verify.secs, 0),
    ceiling: rs.reduce((sum, r) => sum + r.ceiling.n / r.ceiling.secs, 0),
  };
}

/** Build the zone and the signed messages once, in the main thread, so both modes see the same. */
async function fixtures(): Promise<{ zone: [string, string[][]][]; messages: Uint8Array[] }> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const p = createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).toString('base64');
  const txt = `v=DKIM1; k=rsa; p=${p}`;
  const zone: [string, string[][]][] = [
    ['sender.example', [['v=spf1 ip4:192.0.2.0/24 -all']]],
    ['_dmarc.sender.example', [['v=DMARC1; p=reject']]],
    ['rsa1._domainkey.sender.example', [[txt.slice(0, 255), txt.slice(255)]]],
  ];
  const signer = createSigner({ keys: [{ domain: 'sender.example', selector: 'rsa1', algorithm: 'rsa-sha256', privateKeyPem: pem }] });
  const line = 'The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopq.\r\n';
  const messages: Uint8Array[] = [];
  for (let i = 0; i < 32; i++) {
    const head = `From: Alice <${FROM}>\r\nTo: bob@mail.test\r\nSubject: bench ${i}\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <b${i}@sender.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n`;
    let body = '';
    while (head.length + body.length < 10 * 1024) body += line;
    messages.push(new Uint8Array(await signer.sign(Buffer.from(head + body), 'sender.example')));
  }
  return { zone, messages };
}

/** Benchmark entry point (see bench/harness.ts). */
export const run: BenchFn = async ({ quick }) => {
  const threads = Math.max(1, Math.min(2, availableParallelism()));
  const { zone, messages } = await fixtures();
  const r = await onAllCores({ authBench: true, sliceMs: 500, rounds: quick ? 2 : 8, messages, zone }, threads);
  return [
    result('auth.ceiling', r.ceiling, 'msg/s', null),
    result('auth.verify', r.verify, 'msg/s', r.ceiling, `mailauth authenticate alone, ${threads} threads`),
  ];
};

if (!isMainThread && (workerData as Job | undefined)?.authBench) {
  parentPort!.postMessage(await worker(workerData as Job));
}
