import net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from '../../common/log.ts';
import { endpointsOf, formatEndpoint, type Endpoints } from './address.ts';
import { upgradeToTls } from './tls.ts';
import type { MailProtocol, MailProxyHandle, SessionInfo } from './types.ts';

/** What a protocol handler gets for one accepted connection. */
export interface Connection {
  /** The client stream: the TCP socket, or the TLS socket under implicit TLS. */
  socket: net.Socket | tls.TLSSocket;
  endpoints: Endpoints;
  /** True under implicit TLS (STARTTLS upgrades are the handler's business). */
  secure: boolean;
  /** The registry entry: the handler fills `login` and `moved` once the session is spliced. */
  entry: SessionEntry;
}

/** One live connection in the registry. */
export interface SessionEntry {
  client: string;
  login?: string;
  /** Close because the mailbox moved (set once logged in). */
  moved?: () => void;
  /** Tear down at once (listener shutdown). */
  kill: () => void;
}

/** Options of {@link listenMailProxy}. */
export interface ListenOptions {
  host: string;
  port: number;
  protocol: MailProtocol;
  implicitTls: boolean;
  secureContext?: () => tls.SecureContext;
  handshakeTimeoutMs: number;
  log: Logger;
}

/**
 * The listener and session registry shared by the IMAP and POP3 proxies: accepts connections,
 * does implicit TLS when asked, tracks sessions for `sessions()` / `closeSessions()`, and hands
 * each connection to the protocol `handler`.
 */
export async function listenMailProxy(o: ListenOptions, handler: (c: Connection) => Promise<void>): Promise<MailProxyHandle> {
  const live = new Set<SessionEntry>();
  // allowHalfOpen: a client's FIN must not cut the backend's last reply short (the splice ends us).
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (raw) => {
    const endpoints = endpointsOf(raw);
    const entry: SessionEntry = { client: formatEndpoint(endpoints.remoteIp, endpoints.remotePort), kill: () => raw.destroy() };
    live.add(entry);
    raw.once('close', () => live.delete(entry));
    raw.on('error', () => raw.destroy());
    void (async () => {
      let socket: net.Socket | tls.TLSSocket = raw;
      if (o.implicitTls) {
        if (!o.secureContext) throw new Error('implicit TLS needs a TLS configuration');
        socket = await upgradeToTls(raw, o.secureContext(), o.handshakeTimeoutMs);
        const s = socket;
        entry.kill = () => s.destroy();
      }
      await handler({ socket, endpoints, secure: o.implicitTls, entry });
    })().catch((err: unknown) => {
      o.log.debug({ err, client: entry.client, protocol: o.protocol }, 'session ended with an error');
      raw.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  o.log.info({ protocol: o.protocol, host: o.host, port, implicitTls: o.implicitTls }, 'mail proxy listening');
  return {
    port,
    close: async () => {
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const e of live) e.kill();
      await done;
    },
    sessions: (): SessionInfo[] =>
      [...live].filter((e) => e.login !== undefined && e.moved).map((e) => ({ login: e.login!, protocol: o.protocol, client: e.client })),
    closeSessions: (predicate: (login: string) => boolean): number => {
      let n = 0;
      for (const e of live) {
        if (e.login !== undefined && e.moved && predicate(e.login)) {
          e.moved();
          n++;
        }
      }
      return n;
    },
  };
}
