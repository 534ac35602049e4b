// Test clients for the ingress: a node TLS client and a real `openssl s_client`, both reporting
// what the peer saw (bytes from the backend, or a close).
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';

/** What a client saw. */
export interface Seen {
  /** Everything received after the handshake. */
  data: string;
  /** The connection closed without the backend greeting. */
  refused: boolean;
}

/** Connect with node's TLS client (optionally with a cert), read until the greeting or close. */
export function nodeClient(port: number, opts: { keyPem?: string; chainPem?: string; alpn?: string[]; line?: string; timeoutMs?: number } = {}): Promise<Seen> {
  return new Promise((resolve) => {
    let data = '';
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      key: opts.keyPem,
      cert: opts.chainPem,
      ALPNProtocols: opts.alpn ?? ['mailmesh-lmtp'],
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ data, refused: !data.includes('220 backend ready') });
    };
    const timer = setTimeout(finish, opts.timeoutMs ?? 5000);
    socket.on('secureConnect', () => {
      if (opts.line) socket.write(`${opts.line}\r\n`);
    });
    socket.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.includes('220 backend ready') && (!opts.line || data.includes(`250 ${opts.line}`))) finish();
    });
    socket.on('error', () => finish());
    socket.on('close', () => finish());
  });
}

/**
 * Run `openssl s_client -tls1_3` against the port with the given client material, write one
 * line, and collect stdout until the echo arrives, the server closes, or the timeout (then the
 * process is killed by PID).
 */
export async function opensslClient(
  openssl: string,
  dir: string,
  port: number,
  opts: { keyPem?: string; chainPem?: string; caPem: string; line: string; timeoutMs?: number },
): Promise<Seen & { exitCode: number | null }> {
  const tag = Math.random().toString(36).slice(2);
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-alpn', 'mailmesh-lmtp', '-CAfile', join(dir, `${tag}.ca`), '-quiet'];
  await writeFile(join(dir, `${tag}.ca`), opts.caPem);
  if (opts.chainPem && opts.keyPem) {
    const certs = opts.chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
    await writeFile(join(dir, `${tag}.crt`), certs[0] ?? "");
    await writeFile(join(dir, `${tag}.chain`), certs.slice(1).join(''));
    await writeFile(join(dir, `${tag}.key`), opts.keyPem, { mode: 0o600 });
    args.push('-cert', join(dir, `${tag}.crt`), '-key', join(dir, `${tag}.key`));
    if (certs.length > 1) args.push('-cert_chain', join(dir, `${tag}.chain`));
  }
  const child = spawn(openssl, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let data = '';
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 5000);
    child.stdout.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.includes(`250 ${opts.line}`)) child.kill('SIGTERM');
    });
    child.stderr.resume();
    child.stdin.on('error', () => {});
    // s_client sends after its handshake; an early write just waits in the pipe.
    child.stdin.write(`${opts.line}\r\n`);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ data, refused: !data.includes('220 backend ready'), exitCode });
    });
  });
}
