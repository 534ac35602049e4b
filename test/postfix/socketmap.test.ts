import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { encodeNetstring, NetstringDecoder } from '../../sidecar/postfix/netstring.ts';
import { startSocketmapServer, type LookupFn, type SocketmapServer } from '../../sidecar/postfix/socketmap.ts';
import { lmtpNexthop, makePostfixLookups, type RouteAnswer } from '../../sidecar/postfix/lookups.ts';

const servers: SocketmapServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function start(lookup: LookupFn, extra: { maxRequestLength?: number; lookupTimeoutMs?: number } = {}): Promise<number> {
  const s = await startSocketmapServer({ host: '127.0.0.1', port: 0, lookup, ...extra });
  servers.push(s);
  return s.port;
}

/** A socketmap client: send raw bytes, read netstring replies. */
async function client(port: number): Promise<{ socket: Socket; ask(raw: Buffer | string, replies?: number): Promise<string[]>; closed: Promise<unknown> }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const decoder = new NetstringDecoder(100_000);
  const got: string[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    got.push(...decoder.push(d).map((b) => b.toString('utf8')));
    wake?.();
  });
  const closed = once(socket, 'close');
  return {
    socket,
    closed,
    async ask(raw, replies = 1) {
      socket.write(raw);
      while (got.length < replies) await new Promise<void>((r) => (wake = r));
      return got.splice(0, replies);
    },
  };
}

describe('netstrings', () => {
  test('encode and decode across chunk boundaries', () => {
    assert.equal(encodeNetstring('transport bob@mail.test').toString(), '23:transport bob@mail.test,');
    const d = new NetstringDecoder(100);
    assert.deepEqual(d.push(Buffer.from('3:ab')).map(String), []);
    assert.deepEqual(d.push(Buffer.from('c,0:,2:x')).map(String), ['abc', '']);
    assert.deepEqual(d.push(Buffer.from('y,')).map(String), ['xy']);
  });
  test('malformed or oversized input is refused', () => {
    assert.throws(() => new NetstringDecoder(100).push(Buffer.from('3:abcd')), { code: 'ERR_NETSTRING' });
    assert.throws(() => new NetstringDecoder(100).push(Buffer.from('x:')), { code: 'ERR_NETSTRING' });
    assert.throws(() => new NetstringDecoder(100).push(Buffer.from('101:')), { code: 'ERR_NETSTRING' });
    assert.throws(() => new NetstringDecoder(100).push(Buffer.from('9999')), { code: 'ERR_NETSTRING' });
    assert.throws(() => new NetstringDecoder(100).push(Buffer.from('03:abc,')), { code: 'ERR_NETSTRING' });
  });
});

describe('socketmap server', () => {
  const lookup: LookupFn = async (name, key) => {
    if (key === 'boom') throw new Error('directory\nunavailable');
    if (key === 'slow') return new Promise(() => {});
    if (key === 'perm') return { kind: 'perm', reason: 'bad' };
    if (key === 'temp') return { kind: 'temp', reason: 'later' };
    return key.endsWith('@mail.test') ? { kind: 'ok', value: `${name}:${key}` } : { kind: 'notfound' };
  };

  test('answers many pipelined requests on one connection, in order', async () => {
    const c = await client(await start(lookup));
    const req = Buffer.concat(['t a@mail.test', 't b@other.test', 't perm', 't temp', 't b@mail.test'].map((r) => encodeNetstring(r)));
    assert.deepEqual(await c.ask(req, 5), ['OK t:a@mail.test', 'NOTFOUND ', 'PERM bad', 'TEMP later', 'OK t:b@mail.test']);
    // Byte by byte, too.
    c.socket.write('1');
    assert.deepEqual(await c.ask('3:x c@mail.test,'), ['OK x:c@mail.test']);
    c.socket.destroy();
  });

  test('a lookup that throws answers TEMP on one line; a slow one answers TIMEOUT', async () => {
    const c = await client(await start(lookup, { lookupTimeoutMs: 100 }));
    assert.deepEqual(await c.ask(encodeNetstring('t boom')), ['TEMP directory unavailable']);
    assert.deepEqual(await c.ask(encodeNetstring('t slow')), ['TIMEOUT lookup took longer than 100 ms']);
    c.socket.destroy();
  });

  test('a request without a key answers PERM', async () => {
    const c = await client(await start(lookup));
    assert.deepEqual(await c.ask(encodeNetstring('transport')), ['PERM malformed request: expected "name key"']);
    c.socket.destroy();
  });

  test('malformed and oversized netstrings close the connection', async () => {
    const port = await start(lookup, { maxRequestLength: 1000 });
    const bad = await client(port);
    bad.socket.write('5:abcdefg,');
    await bad.closed;
    const big = await client(port);
    big.socket.write('1001:');
    await big.closed;
    // The server still serves others.
    const ok = await client(port);
    assert.deepEqual(await ok.ask(encodeNetstring('t z@mail.test')), ['OK t:z@mail.test']);
    ok.socket.destroy();
  });
});

describe('Postfix lookups', () => {
  const shards: Record<string, string> = { 'alice@mail.test': 'tokyo-1', 'bob@mail.test': 'osaka-1', 'hashed@mail.test': 'tokyo-1', 'gone@mail.test': 'tokyo-1' };
  const route = (a: string): RouteAnswer => {
    if (!a.includes('@')) return { kind: 'invalid' };
    if (!a.endsWith('@mail.test')) return { kind: 'not-hosted' };
    if (a === 'throws@mail.test') throw new Error('no snapshot');
    return { kind: 'shard', shardId: shards[a] ?? 'tokyo-1' };
  };
  const lookup = makePostfixLookups({
    route,
    isKnownUser: (a) => (a === 'gone@mail.test' ? false : a === 'hashed@mail.test' ? undefined : true),
    localShard: 'tokyo-1',
    localLmtp: '127.0.0.1:24',
    egress: '[::1]:10030',
    recipientDelimiter: '+',
  });

  test('transport: local user → local LMTP, remote shard → egress, other keys NOTFOUND', async () => {
    assert.deepEqual(await lookup('transport', 'alice@mail.test'), { kind: 'ok', value: 'lmtp:inet:127.0.0.1:24' });
    assert.deepEqual(await lookup('transport', 'Bob@Mail.Test'), { kind: 'ok', value: 'lmtp:inet:[::1]:10030' });
    assert.deepEqual(await lookup('transport', 'bob+lists@mail.test'), { kind: 'ok', value: 'lmtp:inet:[::1]:10030' });
    for (const key of ['mail.test', '.mail.test', '@mail.test', '*', 'x@elsewhere.test', 'mailer-daemon@mx.mail.test']) {
      assert.deepEqual(await lookup('transport', key), { kind: 'notfound' }, key);
    }
    await assert.rejects(lookup('transport', 'throws@mail.test'), /no snapshot/);
  });

  test('recipients: known and hashed OK, known-absent/unhosted/wildcard NOTFOUND', async () => {
    assert.deepEqual(await lookup('recipients', 'alice@mail.test'), { kind: 'ok', value: 'ok' });
    assert.deepEqual(await lookup('recipients', 'hashed@mail.test'), { kind: 'ok', value: 'ok' });
    assert.deepEqual(await lookup('recipients', 'gone@mail.test'), { kind: 'notfound' });
    assert.deepEqual(await lookup('recipients', 'x@elsewhere.test'), { kind: 'notfound' });
    assert.deepEqual(await lookup('recipients', '@mail.test'), { kind: 'notfound' });
    assert.equal((await lookup('virtual', 'alice@mail.test')).kind, 'perm');
  });

  test('host:port settings are validated', () => {
    assert.equal(lmtpNexthop('localhost:24'), 'lmtp:inet:localhost:24');
    assert.throws(() => lmtpNexthop('127.0.0.1'), { code: 'ERR_BAD_HOSTPORT' });
    assert.throws(() => lmtpNexthop('::1:24'), { code: 'ERR_BAD_HOSTPORT' });
    // Dovecot's LMTP socket: Postfix's unix: next-hop form (lmtp(8) "unix:pathname").
    assert.equal(lmtpNexthop('unix:/run/dovecot/lmtp'), 'lmtp:unix:/run/dovecot/lmtp');
    assert.throws(() => lmtpNexthop('unix:run/dovecot/lmtp'), { code: 'ERR_BAD_HOSTPORT' });
  });
});
