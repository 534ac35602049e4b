// Internal listeners (egress, outbound filter, embedded store) greet at once: smtp-server's own
// 100 ms pause before each greeting (a check for clients that talk first, kept on the public
// front door) would delay every delivery that Postfix makes on a new connection. The clock is
// mocked: smtp-server's pause is a setTimeout, so without greetAtOnce no greeting can arrive
// until the mocked clock moves. Also pins what greetAtOnce re-implements (maxClients → 421).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { SMTPServer } from 'smtp-server';
import { greetAtOnce } from '../../sidecar/mail/smtp-listener.ts';

async function server(opts: { quick: boolean; maxClients?: number }) {
  const s = new SMTPServer({ logger: false, authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], disableReverseLookup: true, maxClients: opts.maxClients });
  if (opts.quick) greetAtOnce(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  return { s, port: (s.server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => s.close(() => r())) };
}

/** Connect and collect what the server sends; `line()` resolves with the first complete line. */
async function client(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  await once(socket, 'connect');
  return {
    socket,
    received: () => got,
    line: async () => {
      while (!got.includes('\r\n')) await once(socket, 'data');
      return got.slice(0, got.indexOf('\r\n'));
    },
  };
}

/** Let the server side run what it does at once for a connection (bounded). */
async function settle(s: SMTPServer, connections: number) {
  for (let i = 0; i < 1000 && s.connections.size < connections; i++) await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

test('greetAtOnce: the greeting needs no timer; plain smtp-server greets only after its 100 ms pause', { timeout: 10_000 }, async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const quick = await server({ quick: true });
  const plain = await server({ quick: false });
  try {
    const a = await client(quick.port);
    assert.match(await a.line(), /^220 /, 'greeted with the clock standing still');

    const b = await client(plain.port);
    await settle(plain.s, 1);
    assert.equal(b.received(), '', 'smtp-server alone waits for its timer');
    t.mock.timers.tick(100);
    assert.match(await b.line(), /^220 /);

    // The session behind an early greeting is a normal one.
    a.socket.write('EHLO client.test\r\n');
    while (!/\r\n250 /.test(a.received())) await once(a.socket, 'data');
    a.socket.destroy();
    b.socket.destroy();
  } finally {
    await quick.close();
    await plain.close();
  }
});

test('greetAtOnce: maxClients still refuses the connection over the limit with 421', { timeout: 10_000 }, async () => {
  const quick = await server({ quick: true, maxClients: 1 });
  try {
    const a = await client(quick.port);
    assert.match(await a.line(), /^220 /);
    const b = await client(quick.port);
    assert.match(await b.line(), /^421 .*Too many connected clients/);
    a.socket.destroy();
    b.socket.destroy();
  } finally {
    await quick.close();
  }
});
