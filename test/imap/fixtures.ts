import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { pino } from 'pino';

/** A silent logger for proxies under test. */
export const silentLog = pino({ level: 'silent' });

/** A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI. */
export interface TestPki {
  caPem: string;
  caPath: string;
  certPem: string;
  keyPem: string;
  dir: string;
  cleanup(): void;
}

/** Make a throwaway CA and server certificate with `openssl` (production code has no built-in certs). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'mailmesh-pki-'));
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=mailmesh test CA', '-days', '1',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  run(['req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '1', '-extfile', 'ext.cnf']);
  return {
    caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    caPath: join(dir, 'ca.pem'),
    certPem: readFileSync(join(dir, 'srv.pem'), 'utf8'),
    keyPem: readFileSync(join(dir, 'srv.key'), 'utf8'),
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * A stand-in for the remote shard's sidecar: a TLS server that splices each connection to a
 * TCP port (the other Dovecot), to prove the proxy's backend stream may be TLS.
 */
export async function startTlsSplice(pki: TestPki, targetPort: number): Promise<{ port: number; connect(): Promise<Duplex>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ cert: pki.certPem, key: pki.keyPem }, (s) => {
    const up = net.connect({ host: '127.0.0.1', port: targetPort, noDelay: true });
    s.setNoDelay(true);
    sockets.add(s);
    sockets.add(up);
    s.on('close', () => sockets.delete(s));
    up.on('close', () => sockets.delete(up));
    s.on('error', () => up.destroy());
    up.on('error', () => s.destroy());
    s.pipe(up).pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connect: () =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: pki.caPem, servername: 'localhost' }, () => resolve(s));
        s.once('error', reject);
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Open a plain TCP connection to a local port. */
export function tcpConnect(port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** A line-oriented test client over a raw socket. */
export class RawClient {
  readonly lines: string[] = [];
  socket: net.Socket | tls.TLSSocket;
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;

  constructor(socket: net.Socket | tls.TLSSocket) {
    this.socket = socket;
    this.attach(socket);
  }

  private attach(s: net.Socket | tls.TLSSocket): void {
    s.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      let i: number;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 2);
      }
      this.notify();
    });
    s.on('close', () => {
      this.closed = true;
      this.notify();
    });
    s.on('error', () => {});
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Connect to 127.0.0.1:port, optionally from another loopback address. */
  static async connect(port: number, localAddress?: string): Promise<RawClient> {
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(c));
      c.once('error', reject);
    });
    return new RawClient(s);
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Wait for (and consume up to) the next line matching `re`; fails after `ms`. */
  async expect(re: RegExp, ms = 5000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const idx = this.lines.findIndex((l) => re.test(l));
      if (idx >= 0) {
        const [line] = this.lines.splice(0, idx + 1).slice(-1);
        return line;
      }
      if (this.closed) throw new Error(`connection closed while waiting for ${re}; got ${JSON.stringify(this.lines)}`);
      if (Date.now() > deadline) throw new Error(`timeout waiting for ${re}; got ${JSON.stringify(this.lines)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  /** Wait until the server closed the connection. */
  async waitClosed(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Upgrade to TLS (after STARTTLS/STLS was accepted). */
  async startTls(caPem: string): Promise<void> {
    this.socket.removeAllListeners('data');
    const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const t = tls.connect({ socket: this.socket as net.Socket, ca: caPem, servername: 'localhost' }, () => resolve(t));
      t.once('error', reject);
    });
    this.socket = s;
    this.attach(s);
  }

  close(): void {
    this.socket.destroy();
  }
}
