// IMAP and POP3 login proxies under bad pre-auth input, against the real startImapProxy /
// startPop3Proxy with a fake backend that records every command it parses (splitting on CR, LF or
// CRLF, like the most lenient server would). Proves: no crash; every response is well formed
// (IMAP: untagged `*`, continuation `+`, or `tag OK|NO|BAD` with a tag the client sent, RFC 9051
// §7.1); limits close the connection (line length, literal size, failed logins, pre-auth time);
// and nothing after a CR/LF in a login name or password reaches a backend as a separate command.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { startImapProxy } from '../../sidecar/imap/proxy.ts';
import { startPop3Proxy } from '../../sidecar/pop3/proxy.ts';
import type { MailProxyHandle, MailProxyOptions, RouteResult } from '../../sidecar/proxy/types.ts';
import { GOOD_PASS, GOOD_USER, startFakeImap, startFakePop3, type FakeBackend } from './fake-mail-backends.ts';
import { Rng, fuzzSeed, iterations, pool, replayHint } from './fuzz-kit.ts';
import { summary } from './summary.ts';
import { linesOf, rawSession, type RawResult } from './wire.ts';

const seed = fuzzSeed();
const sum = summary('imap-pop3-fuzz');
sum.set('seed', seed);

const LIMITS = { preauthTimeoutMs: 1500, idleTimeoutMs: 3000, maxLineLength: 1024, maxLiteral: 1024, maxAuthAttempts: 3 };
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const IMAP_LINE = /^(\* |\+( |$)|[^\s]+ (OK|NO|BAD)( |$))/;
const POP3_LINE = /^(\+OK|-ERR|\+ ?$|\.$|[A-Z0-9-]+( |$))/;

let imapBackend: FakeBackend;
let pop3Backend: FakeBackend;
let imap: MailProxyHandle;
let pop3: MailProxyHandle;
let routed = 0;

const route = (login: string): RouteResult => {
  routed++;
  // "ghost…" users are unknown to placement: refused without a backend connection.
  return login.toLowerCase().startsWith('ghost') ? { kind: 'unknown' } : { kind: 'remote', shardId: 'osaka-1' };
};

function connectTo(port: number) {
  return () =>
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
}

before(async () => {
  imapBackend = await startFakeImap();
  pop3Backend = await startFakePop3();
  const common = (backendPort: number): MailProxyOptions => ({
    host: '127.0.0.1',
    port: 0,
    route,
    connectBackend: connectTo(backendPort),
    allowPlaintextLogin: true,
    log: pino({ level: 'silent' }),
    ...LIMITS,
  });
  imap = await startImapProxy(common(imapBackend.port));
  pop3 = await startPop3Proxy(common(pop3Backend.port));
});
after(async () => {
  await imap?.close();
  await pop3?.close();
  await imapBackend?.close();
  await pop3Backend?.close();
});

/** Commands a backend may see before a successful login. */
const IMAP_PRELOGIN = /^\S+ (ID|LOGIN|AUTHENTICATE) /i;
const POP3_PRELOGIN = /^(USER|PASS|AUTH) /i;

/**
 * Every backend connection saw the proxy's own ID (IMAP) and then exactly the client's one login
 * command (IMAP: one; POP3: USER+PASS or AUTH), and nothing more unless that login succeeded.
 */
function checkBackends(backend: FakeBackend, protocol: 'imap' | 'pop3', from: number): void {
  for (const [i, cmds] of backend.connections.slice(from).entries()) {
    const pre = protocol === 'imap' ? IMAP_PRELOGIN : POP3_PRELOGIN;
    const loginOk = protocol === 'imap'
      ? cmds.some((c) => new RegExp(`^\\S+ LOGIN "${GOOD_USER}" "${GOOD_PASS}"$`).test(c) || c.includes(b64(`\0${GOOD_USER}\0${GOOD_PASS}`)))
      : cmds.includes(`PASS ${GOOD_PASS}`) || cmds.some((c) => c.includes(b64(`\0${GOOD_USER}\0${GOOD_PASS}`)));
    const expected = protocol === 'imap' ? 2 : cmds[0]?.toUpperCase().startsWith('AUTH') ? 1 : 2;
    if (!loginOk) {
      assert.ok(cmds.length <= expected, replayHint(seed, `${protocol} backend connection ${from + i} got ${JSON.stringify(cmds)}`));
    }
    for (const c of cmds.slice(0, expected)) assert.match(c, pre, replayHint(seed, `${protocol} backend connection ${from + i}: ${JSON.stringify(c)}`));
  }
}

function checkImapOutput(res: RawResult, sentTags: Set<string>, what: string): { no: number; bye: boolean } {
  const { lines } = linesOf(res.output);
  let no = 0;
  for (const l of lines) {
    assert.match(l, IMAP_LINE, replayHint(seed, `${what}: malformed response ${JSON.stringify(l.slice(0, 100))}`));
    if (!l.startsWith('* ') && !l.startsWith('+')) {
      // The proxy decodes lines as UTF-8 (invalid bytes become U+FFFD) and echoes the tag.
      const u = Buffer.from(l, 'latin1').toString('utf8');
      const tag = u.slice(0, u.indexOf(' '));
      assert.ok(sentTags.has(tag), replayHint(seed, `${what}: response for a tag never sent: ${JSON.stringify(l.slice(0, 100))}`));
      if (/^\S+ NO \[AUTHENTICATIONFAILED\]/.test(l)) no++;
    }
  }
  return { no, bye: lines.some((l) => l.startsWith('* BYE')) };
}

// ---------- IMAP ----------

const IMAP_COMMANDS = [
  'CAPABILITY', 'NOOP', 'ID ("name" "fuzz")', 'ID NIL', `LOGIN ${GOOD_USER} wrong`, 'LOGIN "ghost@mail.test" "x"', `AUTHENTICATE PLAIN ${b64(`\0${GOOD_USER}\0nope`)}`,
  'AUTHENTICATE PLAIN', 'AUTHENTICATE CRAM-MD5', 'STARTTLS', 'SELECT INBOX', 'LOGIN', 'LOGIN a', 'LOGIN a b c', 'LOGIN (a) b', 'ENABLE UTF8=ACCEPT',
];

/** Adversarial pieces: bad literals, quotes, long names, bad base64, injection attempts. */
function imapAttack(r: Rng, tag: string): string {
  const long = 'u'.repeat(r.pick([257, 600, 1000, 1100, 5000]));
  return r.pick([
    `${tag} LOGIN {999999999}\r\n`,
    `${tag} LOGIN {-1}\r\n`,
    `${tag} LOGIN {1+}\r\nx pass\r\n`,
    `${tag} LOGIN {00000000001}\r\n`,
    `${tag} LOGIN {99999999999}\r\n`,
    `${tag} LOGIN a {5000+}\r\n${'z'.repeat(100)}\r\n`,
    `${tag} LOGIN {4}\r\nab`,
    `${tag} LOGIN {3+}\r\n`,
    `${tag} LOGIN "unterminated pass\r\n`,
    `${tag} LOGIN "a\\x" b\r\n`,
    `${tag} LOGIN "${long}" pass\r\n`,
    `${tag} LOGIN ${long} pass\r\n`,
    `${tag} AUTHENTICATE PLAIN !!!notbase64!!!\r\n`,
    `${tag} AUTHENTICATE PLAIN ${b64('no-nuls-here')}\r\n`,
    `${tag} AUTHENTICATE PLAIN =\r\n`,
    `${tag} AUTHENTICATE PLAIN\r\n${r.pick(['*', 'abc', '====', b64('\0\0'), 'x'.repeat(2000)])}\r\n`,
    // CRLF injection: the name carries a second command.
    `${tag} LOGIN {${GOOD_USER.length + 22}+}\r\n${GOOD_USER}\r\nX1 DELETE INBOX\r\n wrong\r\n`,
    `${tag} LOGIN "${GOOD_USER}\rX2 DELETE INBOX" wrong\r\n`,
    `${tag} LOGIN "${GOOD_USER}\nX3 DELETE INBOX" wrong\r\n`,
    `${tag} LOGIN ${GOOD_USER} {14+}\r\nx\r\nX4 LOGOUT\r\n\r\n`,
    `${tag} AUTHENTICATE PLAIN ${b64(`\0${GOOD_USER}\r\nX5 DELETE INBOX\0wrong`)}\r\n`,
    `${tag} LOGIN {2}\r\n\r\n wrong\r\n`,
    `${tag}\u0000 NOOP\r\n`,
    `${tag} NO\u0000OP\r\n`,
    `(${tag}) NOOP\r\n`,
    `+${tag} NOOP\r\n`,
    ` ${tag} NOOP\r\n`,
    '\r\n',
    `${tag} LOGIN ((( )))\r\n`,
    `${tag} LOGIN "" ""\r\n`,
  ]);
}

function imapInput(r: Rng): { chunks: Buffer[]; tags: Set<string> } {
  const tags = new Set<string>();
  let text = '';
  const n = 1 + r.int(8);
  for (let i = 0; i < n; i++) {
    const tag = r.chance(0.1) ? `t${i}${r.pick(['%', '*', '"', '\\', '{', ']'])}` : `t${i}`;
    tags.add(tag);
    if (r.chance(0.5)) text += imapAttack(r, tag);
    else text += `${tag} ${r.pick(IMAP_COMMANDS)}\r\n`;
  }
  let b = Buffer.from(text, 'utf8');
  if (r.chance(0.25)) {
    b = Buffer.from(b);
    for (let i = 0, k = 1 + r.int(3); i < k; i++) b[r.int(b.length)] ^= 1 << r.int(8);
  }
  if (r.chance(0.1)) b = b.subarray(0, r.int(b.length + 1));
  if (r.chance(0.1)) b = Buffer.concat([b, r.bytes(1 + r.int(300))]);
  // Tags that a byte flip may have produced are possible too: collect every token at a line start.
  for (const line of b.toString('utf8').split(/\r?\n|\r/)) tags.add(line.split(' ')[0]);
  tags.add('zz');
  const end = Buffer.from('\r\nzz LOGOUT\r\n');
  const chunks = r.chance(0.5) ? [b, end] : [...splitRandom(r, b), end];
  return { chunks, tags };
}

function splitRandom(r: Rng, b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < b.length; ) {
    const n = 1 + r.int(64);
    out.push(b.subarray(p, p + n));
    p += n;
  }
  return out;
}

// ---------- POP3 ----------

const POP3_COMMANDS = ['CAPA', 'NOOP', 'STAT', 'LIST', `USER ${GOOD_USER}`, 'PASS wrong', 'USER ghost@mail.test', 'AUTH', 'AUTH PLAIN', 'AUTH CRAM-MD5', `AUTH PLAIN ${b64(`\0${GOOD_USER}\0bad`)}`, 'STLS', 'APOP a b', 'TOP 1 1', 'UIDL', 'RSET', 'PASS', 'USER'];

function pop3Attack(r: Rng): string {
  return r.pick([
    `USER ${GOOD_USER}\rDELE 1\r\nPASS wrong\r\n`,
    `USER ${GOOD_USER}\r\nPASS wrong\rDELE 1\r\n`,
    `USER ${GOOD_USER}\r\nPASS ${GOOD_PASS}\rDELE 1\r\n`,
    `USER ${GOOD_USER}\u0000DELE 1\r\nPASS wrong\r\n`,
    `USER ${'u'.repeat(r.pick([257, 1000, 2000]))}\r\n`,
    `AUTH PLAIN !!!bad!!!\r\n`,
    `AUTH PLAIN ${b64('x')}\r\n`,
    `AUTH PLAIN\r\n${r.pick(['*', '=', 'abc', b64(`\0${GOOD_USER}\rDELE 1\0wrong`)])}\r\n`,
    `AUTH PLAIN ${b64(`\0${GOOD_USER}\r\nDELE 1\0wrong`)}\r\n`,
    `${'X'.repeat(2000)}\r\n`,
    '\r\n',
    'PASS before user\r\n',
  ]);
}

function pop3Input(r: Rng): Buffer[] {
  let text = '';
  for (let i = 0, n = 1 + r.int(8); i < n; i++) text += r.chance(0.5) ? pop3Attack(r) : `${r.pick(POP3_COMMANDS)}\r\n`;
  let b = Buffer.from(text, 'utf8');
  if (r.chance(0.25)) {
    b = Buffer.from(b);
    for (let i = 0, k = 1 + r.int(3); i < k; i++) b[r.int(b.length)] ^= 1 << r.int(8);
  }
  if (r.chance(0.1)) b = Buffer.concat([b, r.bytes(1 + r.int(300))]);
  const end = Buffer.from('QUIT\r\n');
  return r.chance(0.5) ? [b, end] : [...splitRandom(r, b), end];
}

describe('IMAP proxy fuzzing', () => {
  test('random and mutated pre-auth sessions', async () => {
    const rng = new Rng(seed);
    const from = imapBackend.connections.length;
    const inputs = Array.from({ length: iterations(300) }, () => rng.fork());
    await pool(inputs, 12, async (r, i) => {
      const { chunks, tags } = imapInput(r);
      const res = await rawSession({ port: imap.port, chunks, deadlineMs: 8_000 });
      const what = `imap session #${i}`;
      assert.equal(res.connectError, undefined, replayHint(seed, `${what}: listener down`));
      // LOGOUT, a limit, or the pre-auth deadline ends every session.
      assert.equal(res.serverClosed, true, replayHint(seed, `${what}: still open after 8 s: ${res.output.slice(-300)}`));
      const { no, bye } = checkImapOutput(res, tags, what);
      assert.ok(no <= LIMITS.maxAuthAttempts, replayHint(seed, `${what}: ${no} failed logins on one connection`));
      if (no === LIMITS.maxAuthAttempts) assert.ok(bye, replayHint(seed, `${what}: no BYE after ${no} failures`));
      sum.add('imap_inputs');
      sum.add('imap_bytes', chunks.reduce((a, c) => a + c.length, 0));
      if (bye) sum.add('imap_bye');
      sum.add('imap_auth_failures', no);
    });
    checkBackends(imapBackend, 'imap', from);
    sum.add('imap_backend_logins', imapBackend.connections.length - from);
  });

  const cases: [string, string[], RegExp[], 'open' | 'closed'][] = [
    ['huge synchronizing literal', ['a LOGIN {999999999}', 'b NOOP'], [/^a BAD Literal too big/, /^b OK NOOP/], 'open'],
    ['negative literal', ['a LOGIN {-1}', 'b NOOP'], [/^a BAD Invalid literal\./, /^b OK/], 'open'],
    ['literal size with 11 digits', ['a LOGIN {99999999999}', 'b NOOP'], [/^a BAD Invalid literal\./, /^b OK/], 'open'],
    ['non-synchronizing literal over maxLiteral', ['a LOGIN x {5000+}'], [/^a BAD Literal too big/, /^\* BYE Cannot resynchronize/], 'closed'],
    ['unterminated quote', ['a LOGIN "alice pass', 'b NOOP'], [/^a BAD Unterminated quoted string\./, /^b OK/], 'open'],
    ['login name of 300 bytes', [`a LOGIN "${'u'.repeat(300)}" pass`, 'b NOOP'], [/^a BAD Login name too long\./, /^b OK/], 'open'],
    ['line over maxLineLength', [`a LOGIN ${'u'.repeat(2000)} pass`], [/^\* BYE Line too long\./], 'closed'],
    ['AUTHENTICATE with bad base64', ['a AUTHENTICATE PLAIN !!!', 'b NOOP'], [/^a BAD Invalid SASL PLAIN response\./, /^b OK/], 'open'],
    ['AUTHENTICATE continuation with bad base64', ['a AUTHENTICATE PLAIN', 'Zm9v', 'b NOOP'], [/^\+ ?$/, /^a BAD Invalid SASL PLAIN response\./, /^b OK/], 'open'],
    ['AUTHENTICATE cancelled', ['a AUTHENTICATE PLAIN', '*'], [/^a BAD Authentication aborted/], 'open'],
    ['unsupported mechanism', ['a AUTHENTICATE CRAM-MD5'], [/^a NO Unsupported authentication mechanism\./], 'open'],
    ['command not allowed before login', ['a SELECT INBOX'], [/^a BAD Command not permitted before login\./], 'open'],
    ['invalid tag', ['a* NOOP'], [/^\* BAD Invalid tag\./], 'open'],
    ['maxAuthAttempts failed logins', ['a LOGIN ghost1 x', 'b LOGIN ghost2 x', `c LOGIN ${GOOD_USER} wrong`, 'd NOOP'],
      [/^a NO \[AUTHENTICATIONFAILED\]/, /^b NO \[AUTHENTICATIONFAILED\]/, /^c NO \[AUTHENTICATIONFAILED\]/, /^\* BYE Too many invalid authentication attempts\./], 'closed'],
  ];
  for (const [name, send, expect, end] of cases) {
    test(`IMAP ${name}`, async () => {
      const res = await rawSession({ port: imap.port, chunks: send.map((l) => Buffer.from(`${l}\r\n`)), gapMs: 30, deadlineMs: 700 });
      const { lines } = linesOf(res.output);
      assert.match(lines[0], /^\* OK \[CAPABILITY /);
      let at = 1;
      for (const re of expect) {
        const k = lines.findIndex((l, j) => j >= at && re.test(l));
        assert.ok(k >= 0, `expected ${re} in ${JSON.stringify(lines.slice(at))}`);
        at = k + 1;
      }
      // 'open': the session is still there, waiting (we gave up first, before the pre-auth deadline).
      assert.equal(res.serverClosed, end === 'closed', JSON.stringify(lines));
      assert.ok(lines.every((l) => l.startsWith('* ') || l.startsWith('+') || /^\S+ (OK|NO|BAD) /.test(l)), JSON.stringify(lines));
      sum.add('imap_cases');
    });
  }

  test('IMAP pre-auth timeout: a silent client and a slow literal both get BYE and a close', async () => {
    const silent = rawSession({ port: imap.port, chunks: [], deadlineMs: 5000 });
    const slowLiteral = rawSession({ port: imap.port, chunks: [Buffer.from('a LOGIN {10}\r\n'), Buffer.from('ab')], gapMs: 100, deadlineMs: 5000 });
    for (const res of await Promise.all([silent, slowLiteral])) {
      assert.equal(res.serverClosed, true);
      assert.match(res.output, /\* BYE Disconnected for inactivity\.\r\n/);
      assert.ok(res.ms >= LIMITS.preauthTimeoutMs - 50 && res.ms < LIMITS.preauthTimeoutMs + 2000, `closed after ${res.ms} ms`);
    }
    sum.add('imap_cases', 2);
  });

  test('IMAP CRLF in a login name (literal, quoted, SASL) never becomes a backend command', async () => {
    const from = imapBackend.connections.length;
    const inject = [
      `a LOGIN {${GOOD_USER.length + 19}+}\r\n${GOOD_USER}\r\nX1 DELETE INBOX "wrong"\r\n`,
      `a LOGIN "${GOOD_USER}\rX2 DELETE INBOX" wrong\r\n`,
      `a AUTHENTICATE PLAIN ${b64(`\0${GOOD_USER}\r\nX3 DELETE INBOX\0wrong`)}\r\n`,
    ];
    for (const text of inject) {
      const res = await rawSession({ port: imap.port, chunks: [Buffer.from(text)], deadlineMs: 1500, until: /^a (OK|NO|BAD) .*\r\n/m });
      assert.match(res.output, /^a (NO|BAD) /m, res.output);
    }
    checkBackends(imapBackend, 'imap', from);
    for (const cmds of imapBackend.connections.slice(from)) assert.ok(!cmds.some((c) => /^X\d /.test(c)), JSON.stringify(cmds));
    // And a real login still works and is spliced.
    const ok = await rawSession({ port: imap.port, chunks: [Buffer.from(`a LOGIN ${GOOD_USER} ${GOOD_PASS}\r\nb SELECT INBOX\r\nc LOGOUT\r\n`)], deadlineMs: 3000 });
    assert.match(ok.output, /^a OK \[CAPABILITY IMAP4rev1\] Logged in\r\nb OK SELECT done\r\n/m, ok.output);
    sum.add('imap_cases', 4);
  });
});

describe('POP3 proxy fuzzing', () => {
  test('random and mutated pre-auth sessions', async () => {
    const rng = new Rng(seed ^ 0x5a5a5a5a);
    const from = pop3Backend.connections.length;
    const inputs = Array.from({ length: iterations(300) }, () => rng.fork());
    await pool(inputs, 12, async (r, i) => {
      const chunks = pop3Input(r);
      const res = await rawSession({ port: pop3.port, chunks, deadlineMs: 8_000 });
      const what = `pop3 session #${i}`;
      assert.equal(res.connectError, undefined, replayHint(seed, `${what}: listener down`));
      assert.equal(res.serverClosed, true, replayHint(seed, `${what}: still open after 8 s: ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 400))} → ${JSON.stringify(res.output.slice(-400))}`));
      const { lines } = linesOf(res.output);
      for (const l of lines) assert.match(l, POP3_LINE, replayHint(seed, `${what}: malformed ${JSON.stringify(l.slice(0, 100))}`));
      const failures = lines.filter((l) => l.startsWith('-ERR [AUTH] Authentication failed')).length;
      assert.ok(failures <= LIMITS.maxAuthAttempts, replayHint(seed, `${what}: ${failures} failures on one connection`));
      sum.add('pop3_inputs');
      sum.add('pop3_auth_failures', failures);
    });
    checkBackends(pop3Backend, 'pop3', from);
    for (const cmds of pop3Backend.connections.slice(from)) {
      assert.ok(!cmds.some((c) => /^DELE/i.test(c)), replayHint(seed, `a smuggled command reached the backend: ${JSON.stringify(cmds)}`));
    }
    sum.add('pop3_backend_logins', pop3Backend.connections.length - from);
  });

  const cases: [string, string[], RegExp[], 'open' | 'closed'][] = [
    ['USER with a CR-smuggled command', [`USER ${GOOD_USER}\rDELE 1`, 'NOOP'], [/^-ERR Invalid user name\.$/, /^-ERR Unknown command\./], 'open'],
    ['PASS with a CR-smuggled command', [`USER ${GOOD_USER}`, `PASS ${GOOD_PASS}\rDELE 1`], [/^\+OK$/, /^-ERR Invalid characters in password\.$/], 'open'],
    ['USER with a NUL', [`USER ${GOOD_USER}\u0000x`], [/^-ERR Invalid user name\.$/], 'open'],
    ['login name of 300 bytes', [`USER ${'u'.repeat(300)}`], [/^-ERR Invalid user name\./], 'open'],
    ['line over maxLineLength', ['X'.repeat(2000)], [/^-ERR Line too long\./], 'closed'],
    ['AUTH PLAIN bad base64', ['AUTH PLAIN !!!'], [/^-ERR Invalid SASL PLAIN response\./], 'open'],
    ['AUTH PLAIN continuation bad base64', ['AUTH PLAIN', 'Zm9v'], [/^\+ ?$/, /^-ERR Invalid SASL PLAIN response\./], 'open'],
    ['PASS without USER', ['PASS x'], [/^-ERR No username given\./], 'open'],
    ['maxAuthAttempts failed logins', ['USER ghost1', 'PASS x', 'USER ghost2', 'PASS x', `USER ${GOOD_USER}`, 'PASS wrong', 'CAPA'],
      [/^\+OK$/, /^-ERR \[AUTH\]/, /^\+OK$/, /^-ERR \[AUTH\]/, /^\+OK$/, /^-ERR \[AUTH\] Authentication failed\.$/], 'closed'],
  ];
  for (const [name, send, expect, end] of cases) {
    test(`POP3 ${name}`, async () => {
      const from = pop3Backend.connections.length;
      const res = await rawSession({ port: pop3.port, chunks: send.map((l) => Buffer.from(`${l}\r\n`)), gapMs: 30, deadlineMs: 700 });
      const { lines } = linesOf(res.output);
      assert.equal(lines[0], '+OK mailmesh ready.');
      let at = 1;
      for (const re of expect) {
        const k = lines.findIndex((l, j) => j >= at && re.test(l));
        assert.ok(k >= 0, `expected ${re} in ${JSON.stringify(lines.slice(at))}`);
        at = k + 1;
      }
      assert.equal(res.serverClosed, end === 'closed', JSON.stringify(lines));
      for (const cmds of pop3Backend.connections.slice(from)) assert.ok(!cmds.some((c) => /^DELE/i.test(c)), `smuggled: ${JSON.stringify(cmds)}`);
      sum.add('pop3_cases');
    });
  }

  test('POP3 pre-auth timeout closes a silent client', async () => {
    const res = await rawSession({ port: pop3.port, chunks: [Buffer.from('USER x\r\n')], deadlineMs: 5000 });
    assert.equal(res.serverClosed, true);
    assert.match(res.output, /-ERR Disconnected for inactivity\.\r\n$/);
    sum.add('pop3_cases');
  });

  test('both proxies still serve a clean login afterwards', async () => {
    const i = await rawSession({ port: imap.port, chunks: [Buffer.from(`a LOGIN ${GOOD_USER} ${GOOD_PASS}\r\nb LOGOUT\r\n`)], deadlineMs: 3000 });
    assert.match(i.output, /^a OK .*Logged in\r\n.*b OK LOGOUT done\r\n$/ms, i.output);
    const p = await rawSession({ port: pop3.port, chunks: [Buffer.from(`USER ${GOOD_USER}\r\nPASS ${GOOD_PASS}\r\nSTAT\r\nQUIT\r\n`)], deadlineMs: 3000 });
    assert.match(p.output, /\+OK Logged in\.\r\n\+OK done\r\n\+OK bye\r\n$/, p.output);
    sum.set('routed', routed);
  });
});
