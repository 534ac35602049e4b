import { createServer, type AddressInfo, type Socket } from 'node:net';
import { encodeNetstring, NetstringDecoder } from './netstring.ts';

/** The answer to one lookup, in socketmap_table(5) terms. */
export type LookupResult =
  | { kind: 'ok'; value: string }
  | { kind: 'notfound' }
  | { kind: 'temp'; reason: string }
  | { kind: 'perm'; reason: string };

/** Answers `name key` lookups (e.g. `transport bob@mail.test`). */
export type LookupFn = (name: string, key: string) => Promise<LookupResult>;

/** Configuration of {@link startSocketmapServer}. */
export interface SocketmapConfig {
  host: string;
  /** 0 for an ephemeral port. */
  port: number;
  lookup: LookupFn;
  /** Longest request or reply netstring, in bytes. Default and maximum: 100000 (socketmap_table(5)). */
  maxRequestLength?: number;
  /** Answer `TIMEOUT` when a lookup takes longer than this (ms). Default 5000, below Postfix's
   * 10 s socketmap timeout so Postfix hears why instead of dropping the connection. */
  lookupTimeoutMs?: number;
}

/** A running socketmap server. */
export interface SocketmapServer {
  port: number;
  /** Stop listening and close every connection. */
  close(): Promise<void>;
}

/** socketmap_table(5): "The maximal length of a request or reply is 100000 bytes". */
const MAX_LENGTH = 100_000;

/** Reply text must stay one line: replies are parsed by Postfix as `STATUS SP data`. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, ' ');
}

/** Encode a {@link LookupResult} as the socketmap reply payload. */
export function formatReply(result: LookupResult, maxLength = MAX_LENGTH): string {
  let reply: string;
  switch (result.kind) {
    case 'ok':
      reply = `OK ${clean(result.value)}`;
      break;
    case 'notfound':
      reply = 'NOTFOUND ';
      break;
    case 'temp':
      reply = `TEMP ${clean(result.reason)}`;
      break;
    case 'perm':
      reply = `PERM ${clean(result.reason)}`;
      break;
  }
  return Buffer.byteLength(reply) > maxLength ? 'PERM reply too long' : reply;
}

/**
 * Serve Postfix socketmap lookups (`socketmap:inet:HOST:PORT:name`, socketmap_table(5)): each
 * request is a netstring `name SP key`, each reply a netstring `OK value`, `NOTFOUND `,
 * `TEMP reason`, `TIMEOUT reason` or `PERM reason`. Postfix keeps the connection open for many
 * requests; we answer them in order. A lookup that throws answers `TEMP` (Postfix then defers and
 * retries: nothing is lost); a lookup slower than `lookupTimeoutMs` answers `TIMEOUT`. Malformed
 * or oversized input closes the connection.
 *
 * @example
 * const map = await startSocketmapServer({ host: '127.0.0.1', port: 0, lookup: makePostfixLookups(cfg) });
 * // main.cf: transport_maps = socketmap:inet:127.0.0.1:${map.port}:transport
 */
export async function startSocketmapServer(config: SocketmapConfig): Promise<SocketmapServer> {
  const maxLength = Math.min(config.maxRequestLength ?? MAX_LENGTH, MAX_LENGTH);
  const lookupTimeoutMs = config.lookupTimeoutMs ?? 5000;
  const sockets = new Set<Socket>();

  const answer = async (request: Buffer): Promise<string> => {
    const text = request.toString('utf8');
    const sp = text.indexOf(' ');
    if (sp <= 0 || sp === text.length - 1) return 'PERM malformed request: expected "name key"';
    const name = text.slice(0, sp);
    const key = text.slice(sp + 1);
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        config.lookup(name, key),
        new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), lookupTimeoutMs);
        }),
      ]);
      if (result === 'timeout') return `TIMEOUT lookup took longer than ${lookupTimeoutMs} ms`;
      return formatReply(result, maxLength);
    } catch (err) {
      return `TEMP ${clean(err instanceof Error ? err.message : String(err))}`.slice(0, maxLength);
    } finally {
      clearTimeout(timer);
    }
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const decoder = new NetstringDecoder(maxLength);
    // Replies go out in request order even if lookups finish out of order.
    let chain: Promise<void> = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      let requests: Buffer[];
      try {
        requests = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const req of requests) {
        const reply = answer(req);
        chain = chain.then(async () => {
          const text = await reply;
          if (!socket.destroyed) socket.write(encodeNetstring(text));
        });
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
