// SMTP front door under bad input: valid session skeletons mutated (byte flips, truncations,
// repeated/deleted/swapped commands, overlong lines, bare CR/LF, NULs, pipelining floods, DATA
// without RCPT, RCPT before MAIL, BDAT, huge SIZE, invalid addresses, TLS bytes on the plaintext
// port) against the real startFrontDoor with an in-memory handoff. Proves: the server stays up
// and still delivers a clean session, every reply line is `NNN[ -]` with a 2xx–5xx code, a
// delivery is recorded exactly when a 250 for it was sent, memory stays bounded, and slowloris
// clients are disconnected by the server's timeouts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { Placement } from '../../sidecar/mail/deliver.ts';
import { startFrontDoor, type FrontDoor } from '../../sidecar/mail/frontdoor.ts';
import { Rng, fuzzSeed, iterations, pool, replayHint, retainedBytes, sleep } from './fuzz-kit.ts';
import { summary } from './summary.ts';
import { linesOf, rawSession, type RawResult } from './wire.ts';

const seed = fuzzSeed();
const sum = summary('smtp-fuzz');
sum.set('seed', seed);

const MAX_SIZE = 16 * 1024;
const MAX_RCPT = 5;
const SOCKET_TIMEOUT_MS = 400;
const REPLY_LINE = /^[2-5]\d\d[ -]/;
const QUEUED = /^250 2\.0\.0 queued as Q(\d+)$/;

const placement: Placement = (address) => {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return { kind: 'invalid' };
  return address.slice(at + 1).toLowerCase() === 'mail.test' ? { kind: 'shard', shardId: 'tokyo-1' } : { kind: 'not-hosted' };
};
const isKnownUser = (address: string) => !address.toLowerCase().startsWith('nobody');

interface Delivery {
  id: number;
  from: string;
  recipients: string[];
  size: number;
}

const HOSTED = ['alice@mail.test', 'bob@mail.test', 'Carol@MAIL.test', 'postmaster@mail.test'];
const BAD_ADDRESSES = [
  '<>', '<@>', '<a@>', '<@mail.test>', '<a b@mail.test>', '<"unterminated@mail.test>', '<a@[300.1.1.1]>',
  `<${'a'.repeat(300)}@mail.test>`, '<a@mail.test', 'a@mail.test>', '<a@mail.test> FOO=BAR', '<ä@mail.test>',
  '<a\u0000b@mail.test>', '<nobody@mail.test>', '<x@elsewhere.test>', '<@relay.test:a@mail.test>', '<a@mail.test\r>',
  '<<a@mail.test>>', '<a@@mail.test>', '<"a\\"b"@mail.test>', ':<a@mail.test>', '<a@-mail-.test>',
];
const SIZES = ['SIZE=99999999999999999999', 'SIZE=-1', 'SIZE=abc', 'SIZE=', `SIZE=${MAX_SIZE + 1}`, 'SIZE=0', 'BODY=8BITMIME', 'SMTPUTF8', 'BODY=BINARYMIME', 'RET=FULL ENVID=x'];
const EXTRA = ['NOOP', 'RSET', 'HELP', 'VRFY alice@mail.test', 'EXPN staff', 'STARTTLS', 'AUTH PLAIN AGFsaWNlAHNlY3JldA==', 'BDAT 10 LAST', 'BDAT 99999999999', 'ETRN mail.test', 'TURN', 'XCLIENT ADDR=1.2.3.4', 'XFORWARD NAME=x', 'HELO', 'EHLO', 'MAIL FROM:', 'RCPT TO:', 'DATA x', 'QUIT now'];

/** A valid session: one or more transactions. */
function skeleton(r: Rng): string[] {
  const lines: string[] = [r.chance(0.8) ? 'EHLO client.sender.test' : 'HELO client.sender.test'];
  const transactions = 1 + r.int(3);
  for (let t = 0; t < transactions; t++) {
    lines.push(`MAIL FROM:<s${t}@sender.test>${r.chance(0.3) ? ' SIZE=200' : ''}`);
    const n = 1 + r.int(3);
    for (let i = 0; i < n; i++) lines.push(`RCPT TO:<${r.pick(HOSTED)}>`);
    lines.push('DATA', `Subject: fuzz ${t}`, `Message-ID: <${r.int(1e9)}@sender.test>`, '', 'hello', '..dot-stuffed line', 'bye', '.');
  }
  lines.push('QUIT');
  return lines;
}

const LONG_LENGTHS = [1001, 10_001, 100_001];

/** Mutate a skeleton; returns the bytes to send and the names of the mutations applied. */
function mutate(r: Rng, lines: string[], allowHuge: boolean): { payload: Buffer; ops: string[] } {
  const ops: string[] = [];
  const n = r.int(4);
  const eol: string[] = lines.map(() => '\r\n');
  const at = () => r.int(lines.length + 1);
  const insert = (i: number, l: string, e = '\r\n') => {
    lines.splice(i, 0, l);
    eol.splice(i, 0, e);
  };
  for (let k = 0; k < n; k++) {
    const op = r.int(15);
    switch (op) {
      case 0: {
        const i = r.int(lines.length);
        const times = 1 + r.int(r.chance(0.2) ? 300 : 5);
        for (let j = 0; j < times; j++) insert(i, lines[i]);
        ops.push(`repeat×${times}`);
        break;
      }
      case 1:
        if (lines.length > 1) {
          const i = r.int(lines.length);
          lines.splice(i, 1);
          eol.splice(i, 1);
        }
        ops.push('delete');
        break;
      case 2: {
        const i = r.int(lines.length);
        const j = r.int(lines.length);
        [lines[i], lines[j]] = [lines[j], lines[i]];
        ops.push('swap');
        break;
      }
      case 3: {
        const len = allowHuge && r.chance(0.15) ? 1_000_001 : r.pick(LONG_LENGTHS);
        const filler = 'x'.repeat(len);
        insert(at(), r.pick([`EHLO ${filler}`, `MAIL FROM:<${filler}@sender.test>`, `RCPT TO:<${filler}@mail.test>`, filler, `NOOP ${filler}`]));
        ops.push(`long${len}`);
        break;
      }
      case 4: {
        const i = r.int(eol.length);
        eol[i] = r.pick(['\n', '\r', '\n\r', '\r\r\n', '']);
        ops.push('bare-eol');
        break;
      }
      case 5: {
        const i = r.int(lines.length);
        const p = r.int(lines[i].length + 1);
        lines[i] = lines[i].slice(0, p) + '\u0000' + lines[i].slice(p);
        ops.push('nul');
        break;
      }
      case 6: {
        const cmd = r.pick(['NOOP', 'RSET', 'RCPT TO:<alice@mail.test>', 'MAIL FROM:<a@b.test>', 'HELP', 'VRFY x', 'DATA']);
        const times = 50 + r.int(400);
        insert(at(), Array.from({ length: times }, () => cmd).join('\r\n'));
        ops.push(`flood-${cmd.split(' ')[0]}×${times}`);
        break;
      }
      case 7:
        insert(r.int(Math.max(1, lines.length)), 'DATA');
        ops.push('early-data');
        break;
      case 8:
        insert(1, `RCPT TO:<${r.pick(HOSTED)}>`);
        ops.push('rcpt-before-mail');
        break;
      case 9: {
        const i = lines.findIndex((l) => l.startsWith('MAIL FROM'));
        if (i >= 0) lines[i] = `MAIL FROM:<s@sender.test> ${r.pick(SIZES)}`;
        ops.push('size-param');
        break;
      }
      case 10: {
        const i = lines.findIndex((l) => (r.chance(0.5) ? l.startsWith('RCPT') : l.startsWith('MAIL')));
        if (i >= 0) lines[i] = `${lines[i].startsWith('RCPT') ? 'RCPT TO:' : 'MAIL FROM:'}${r.pick(BAD_ADDRESSES)}`;
        ops.push('bad-address');
        break;
      }
      case 11:
        insert(at(), r.pick(EXTRA));
        ops.push('extra-command');
        break;
      case 12: {
        // A TLS record header (handshake, TLS 1.0 record version) and random bytes.
        const garbage = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), r.bytes(64 + r.int(400))]);
        insert(r.chance(0.5) ? 0 : at(), garbage.toString('latin1'), '');
        ops.push('tls-bytes');
        break;
      }
      case 13: {
        const i = lines.findIndex((l) => l === 'hello');
        if (i >= 0) lines[i] = 'z'.repeat(MAX_SIZE + 1 + r.int(4096));
        ops.push('oversize-body');
        break;
      }
      default:
        insert(at(), r.bytes(1 + r.int(200)).toString('latin1'));
        ops.push('garbage');
    }
  }
  let text = lines.map((l, i) => l + eol[i]).join('');
  // Byte flips and truncation work on the whole stream.
  if (r.chance(0.3)) {
    const b = Buffer.from(text, 'latin1');
    const flips = 1 + r.int(4);
    for (let i = 0; i < flips && b.length > 0; i++) b[r.int(b.length)] ^= 1 << r.int(8);
    text = b.toString('latin1');
    ops.push(`flip×${flips}`);
  }
  if (r.chance(0.15)) {
    text = text.slice(0, r.int(text.length + 1));
    ops.push('truncate');
  }
  // Whatever state the server is in, end an open DATA and say QUIT, so every session ends.
  return { payload: Buffer.from(`${text}\r\n.\r\nQUIT\r\n`, 'latin1'), ops };
}

/** Split a payload into writes: one (pipelining), per line, or random cuts. */
function chunksOf(r: Rng, payload: Buffer): Buffer[] {
  const mode = r.int(3);
  if (mode === 0 || payload.length > 200_000) return [payload];
  if (mode === 1) {
    const out: Buffer[] = [];
    let start = 0;
    for (let i = payload.indexOf(10); i >= 0; i = payload.indexOf(10, i + 1)) {
      out.push(payload.subarray(start, i + 1));
      start = i + 1;
    }
    if (start < payload.length) out.push(payload.subarray(start));
    return out.slice(0, 2000);
  }
  const out: Buffer[] = [];
  let p = 0;
  while (p < payload.length) {
    const n = 1 + r.int(300);
    out.push(payload.subarray(p, p + n));
    p += n;
  }
  return out;
}

/** Every reply line is `NNN[ -]` with a 2xx–5xx code; returns the codes. */
function checkReplies(res: RawResult, what: string): number[] {
  const { lines, tail } = linesOf(res.output);
  assert.equal(tail, '', replayHint(seed, `${what}: unterminated reply ${JSON.stringify(tail.slice(0, 80))}`));
  for (const l of lines) assert.match(l, REPLY_LINE, replayHint(seed, `${what}: bad reply line ${JSON.stringify(l.slice(0, 120))}`));
  return lines.map((l) => Number(l.slice(0, 3)));
}

describe('SMTP front door fuzzing', () => {
  let door: FrontDoor;
  const deliveries: Delivery[] = [];
  let nextId = 1;
  before(async () => {
    door = await startFrontDoor({
      host: '127.0.0.1',
      port: 0,
      hostname: 'mx.mail.test',
      maxSize: MAX_SIZE,
      maxRecipients: MAX_RCPT,
      maxClients: 64,
      socketTimeoutMs: SOCKET_TIMEOUT_MS,
      placement,
      isKnownUser,
      handoff: async (envelope, message) => {
        // Called at DATA; the message arrives when read and checked, undefined when refused.
        const body = await message;
        if (!body) return { code: 451, enhanced: '4.3.0', message: 'withdrawn' };
        const id = nextId++;
        deliveries.push({ id, from: envelope.from, recipients: [...envelope.recipients], size: body.length });
        return { code: 250, enhanced: '2.0.0', message: `queued as Q${id}` };
      },
      log: pino({ level: 'silent' }),
    });
  });
  after(async () => {
    await door?.close();
  });

  /** A clean transaction: must get 250 and be recorded. */
  async function cleanSession(tag: string): Promise<void> {
    const before = deliveries.length;
    const res = await rawSession({
      port: door.port,
      chunks: [Buffer.from(`EHLO clean.test\r\nMAIL FROM:<ok@sender.test>\r\nRCPT TO:<alice@mail.test>\r\nDATA\r\nSubject: ${tag}\r\n\r\nclean\r\n.\r\nQUIT\r\n`)],
      deadlineMs: 10_000,
    });
    assert.equal(res.connectError, undefined, `listener down after ${tag}`);
    const codes = checkReplies(res, `clean session after ${tag}`);
    assert.deepEqual(codes.slice(-3), [354, 250, 221], replayHint(seed, `clean session after ${tag}: ${res.output}`));
    assert.equal(deliveries.length, before + 1);
    sum.add('clean_sessions');
  }

  test('mutated sessions: well-formed replies, deliveries only with a 250, server stays up, memory bounded', async () => {
    const rng = new Rng(seed);
    const total = iterations(1000);
    await cleanSession('start');
    const baseline = retainedBytes();
    let huge = 0;
    const seen = new Set<number>();
    const inputs = Array.from({ length: total }, () => rng.fork());
    const t0 = Date.now();
    await pool(inputs, 16, async (r, i) => {
      const allowHuge = huge < 3 && r.chance(0.05);
      if (allowHuge) huge++;
      const { payload, ops } = mutate(r, skeleton(r), allowHuge);
      const res = await rawSession({ port: door.port, chunks: chunksOf(r, payload), deadlineMs: 15_000 });
      const what = `session #${i} [${ops.join(',')}]`;
      assert.equal(res.connectError, undefined, replayHint(seed, `${what}: listener refused`));
      assert.equal(res.serverClosed, true, replayHint(seed, `${what}: server did not end the session (QUIT or 421) within 15 s`));
      const codes = checkReplies(res, what);
      for (const c of codes) sum.add(`reply_${Math.floor(c / 100)}xx`);
      for (const l of linesOf(res.output).lines) {
        const m = QUEUED.exec(l);
        if (m) seen.add(Number(m[1]));
      }
      sum.add('inputs');
      sum.add('bytes_sent', payload.length);
      for (const op of ops) sum.add(`op_${op.replace(/[×\d]+.*$/, '')}`);
    });
    sum.set('fuzz_ms', Date.now() - t0);
    sum.set('huge_lines', huge);
    // Exactly the deliveries the clients were told about (250 … queued as Qn), each one sane.
    const recorded = deliveries.filter((d) => d.id > 1);
    assert.deepEqual([...seen].sort((a, b) => a - b), recorded.map((d) => d.id), replayHint(seed, 'deliveries recorded ≠ 250 replies seen'));
    for (const d of recorded) {
      assert.ok(d.recipients.length >= 1 && d.recipients.length <= MAX_RCPT, `delivery Q${d.id}: ${d.recipients.length} recipients`);
      for (const rcpt of d.recipients) {
        assert.equal(placement(rcpt).kind, 'shard', `delivery Q${d.id} to unhosted ${rcpt}`);
        assert.equal(isKnownUser(rcpt), true, `delivery Q${d.id} to unknown ${rcpt}`);
      }
      assert.ok(d.size <= MAX_SIZE, `delivery Q${d.id} of ${d.size} bytes`);
    }
    sum.set('deliveries', recorded.length);
    await cleanSession('fuzz');
    const grown = retainedBytes() - baseline;
    sum.set('heap_growth_mb', (grown / 1048576).toFixed(1));
    assert.ok(grown < 100 * 1048576, `retained memory grew by ${(grown / 1048576).toFixed(1)} MB`);
  });

  test('slowloris: drip-fed lines, a stalled partial line and a drip-fed DATA are all closed by the server', async () => {
    const drip = async (prefix: string): Promise<RawResult> => {
      // One byte every 10 ms, never a newline: bounded to 400 bytes (4 s) on our side.
      const chunks = [Buffer.from(prefix), ...Array.from({ length: 400 }, () => Buffer.from('A'))];
      return rawSession({ port: door.port, chunks, gapMs: 10, deadlineMs: 8_000 });
    };
    const stall = () => rawSession({ port: door.port, chunks: [Buffer.from('EHLO half-a-li')], deadlineMs: 8_000 });
    const results = await Promise.all([
      ...Array.from({ length: 6 }, () => drip('')),
      drip('EHLO x\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<alice@mail.test>\r\nDATA\r\n'),
      drip('NOOP\r\nNOOP\r\nRCPT'),
      stall(),
      stall(),
    ]);
    for (const [i, res] of results.entries()) {
      assert.equal(res.serverClosed, true, `slow client #${i} was not disconnected: ${res.output}`);
      // Idle timeout or line deadline: a 421 and a close well before our 4 s drip ends.
      assert.match(res.output, /^421 /m, `slow client #${i}: ${res.output}`);
      assert.ok(res.ms < SOCKET_TIMEOUT_MS * 2 + 1500, `slow client #${i} held for ${res.ms} ms`);
      checkReplies(res, `slow client #${i}`);
      sum.add('slowloris_closed');
    }
    sum.add('slowloris', results.length);
    // Not a byte of the dripped DATA became a message.
    await cleanSession('slowloris');
  });

  test('slow but legitimate: a session whose lines each arrive in time is served', async () => {
    // Every line complete within the deadline, pauses between lines shorter than the idle timeout.
    const lines = ['EHLO slow.test', 'MAIL FROM:<slow@sender.test>', 'RCPT TO:<bob@mail.test>', 'DATA', 'Subject: slow', '', 'patience', '.', 'QUIT'];
    const before = deliveries.length;
    const res = await rawSession({ port: door.port, chunks: lines.map((l) => Buffer.from(`${l}\r\n`)), gapMs: SOCKET_TIMEOUT_MS / 2, deadlineMs: 10_000 });
    const codes = checkReplies(res, 'slow legitimate session');
    assert.deepEqual(codes.slice(-3), [354, 250, 221], res.output);
    assert.equal(deliveries.length, before + 1);
    await sleep(1);
  });
});
