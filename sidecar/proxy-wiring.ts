import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from '../common/log.ts';
import type { SidecarMetrics } from '../common/metrics.ts';
import { route, type CompiledPolicy } from '../policies/index.ts';
import type { SidecarConfig } from './config.ts';
import { splitAddress } from './config.ts';
import type { MeshDialer } from './mesh/dialer.ts';
import { startImapProxy } from './imap/proxy.ts';
import { startPop3Proxy } from './pop3/proxy.ts';
import type { MailProxyHandle, MailProxyOptions } from './proxy/types.ts';
import type { MeshView } from './view.ts';

async function connectLocal(address: string): Promise<Duplex> {
  const { host, port } = splitAddress(address);
  const s = net.connect(port, host);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

/**
 * Start the public IMAP and POP3 proxies that are configured: the login name picks the shard;
 * a local user goes to the local Dovecot, anyone else over the mesh (ALPN `mailmesh-imap` /
 * `mailmesh-pop3`) to the owning shard's sidecar, which splices to its Dovecot. After a policy
 * change, sessions of users who moved away are closed cleanly so clients reconnect to the new
 * owner.
 */
export async function startMailProxies(
  cfg: SidecarConfig, view: MeshView, dialer: MeshDialer, metrics: SidecarMetrics, log: Logger, closers: (() => Promise<void> | void)[],
): Promise<Record<string, string>> {
  const addresses: Record<string, string> = {};
  if (!cfg.listen.imap && !cfg.listen.imaps && !cfg.listen.pop3 && !cfg.listen.pop3s) return addresses;
  let secure: tls.SecureContext | undefined;
  if (cfg.publicTls) {
    secure = tls.createSecureContext({ key: await readFile(cfg.publicTls.key), cert: await readFile(cfg.publicTls.cert), minVersion: 'TLSv1.2' });
  }
  const owner = (compiled: CompiledPolicy | undefined, login: string) => {
    if (!compiled) return undefined;
    const r = route(compiled, login);
    return r.kind === 'shard' ? r.shard : undefined;
  };
  const base: Omit<MailProxyOptions, 'host' | 'port' | 'implicitTls'> = {
    tls: secure ? { secureContext: () => secure } : undefined,
    route: (login) => {
      const shard = owner(view.compiled, login);
      if (!shard) return { kind: 'unknown' };
      return shard === cfg.shard ? { kind: 'local' } : { kind: 'remote', shardId: shard };
    },
    connectBackend: async (target, protocol) => {
      if (target.kind === 'local') {
        const backend = protocol === 'imap' ? cfg.backends.imap : cfg.backends.pop3;
        if (!backend) throw new Error(`no local ${protocol} backend configured`);
        return connectLocal(backend);
      }
      const lease = await dialer.acquire(target.shardId, protocol === 'imap' ? 'mailmesh-imap' : 'mailmesh-pop3');
      // A proxied session owns its connection: it is never returned to the pool.
      lease.socket.once('close', () => lease.release(false));
      return lease.socket;
    },
    allowPlaintextLogin: cfg.allowPlaintextLogin ?? false,
    preauthTimeoutMs: 60_000, idleTimeoutMs: 30 * 60_000, maxLineLength: 8192, maxLiteral: 8192, maxAuthAttempts: 3,
    failureDelay: () => new Promise((r) => setTimeout(r, 1000)),
    log,
  };
  const handles: { protocol: 'imap' | 'pop3'; handle: MailProxyHandle }[] = [];
  const start = async (key: 'imap' | 'imaps' | 'pop3' | 'pop3s') => {
    const where = cfg.listen[key];
    if (!where) return;
    const a = splitAddress(where);
    const implicitTls = key.endsWith('s');
    if (implicitTls && !secure) throw new Error(`listen.${key} needs publicTls (implicit TLS)`);
    const protocol = key.startsWith('imap') ? 'imap' : 'pop3';
    const handle = await (protocol === 'imap' ? startImapProxy : startPop3Proxy)({ ...base, host: a.host, port: a.port, implicitTls });
    handles.push({ protocol, handle });
    closers.push(() => handle.close());
    addresses[key] = `${a.host}:${handle.port}`;
  };
  for (const key of ['imap', 'imaps', 'pop3', 'pop3s'] as const) await start(key);

  view.onChange((previous) => {
    // Users whose owner changed: close their sessions (BYE) so they reconnect to the new shard.
    for (const { handle } of handles) {
      const moved = handle.closeSessions((login) => owner(previous, login) !== owner(view.compiled, login));
      if (moved > 0) log.info({ event: 'proxy.moved', closed: moved }, 'closed sessions of users moved to another shard');
    }
  });
  const timer = setInterval(() => {
    for (const p of ['imap', 'pop3'] as const) metrics.proxySessions.set({ protocol: p }, handles.filter((h) => h.protocol === p).reduce((n, h) => n + h.handle.sessions().length, 0));
  }, 5000);
  timer.unref();
  closers.push(() => clearInterval(timer));
  return addresses;
}
