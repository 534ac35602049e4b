// A process-local TCP proxy that can be switched between forwarding and several kinds of network
// trouble, so fault tests can cut the path between two mesh nodes without root or namespaces.
import net from 'node:net';

/**
 * - `forward`: bytes flow both ways (optionally throttled, see {@link FaultProxy.throttle}).
 * - `blackhole`: new connections are accepted and never answered nor forwarded; existing ones stop
 *   moving bytes (a silent partition: only timeouts notice it).
 * - `reset`: every connection, open or new, is reset at once (a partition a TCP RST reports).
 * - `refuse`: the listener is closed (connection refused).
 */
export type ProxyMode = 'forward' | 'blackhole' | 'reset' | 'refuse';

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

/** A running proxy. */
export interface FaultProxy {
  port: number;
  address: string;
  mode(): ProxyMode;
  /** Switch mode; `reset` and `refuse` also kill open connections, `blackhole` freezes them. */
  set(mode: ProxyMode): Promise<void>;
  /** Limit the client→upstream direction to about `bytesPerSecond` (0 = unlimited). */
  throttle(bytesPerSecond: number): void;
  /** Once `forwardedBytes()` reaches `bytes`, drop everything upstream→client (the peer's replies
   * vanish, requests still pass); `undefined` turns it off. */
  dropRepliesAfter(bytes: number | undefined): void;
  /** Bytes forwarded client→upstream since start (tests wait for "DATA is in flight"). */
  forwardedBytes(): number;
  /** Connections accepted since start. */
  accepted(): number;
  close(): Promise<void>;
}

/** Start a proxy on 127.0.0.1 (port 0 unless given) forwarding to `target` (`host:port`). */
export async function startFaultProxy(target: string, port = 0): Promise<FaultProxy> {
  const [host, tport] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  let mode: ProxyMode = 'forward';
  let rate = 0;
  let dropAfter: number | undefined;
  let forwarded = 0;
  let acceptedCount = 0;
  const pairs = new Set<Pair>();

  const kill = (p: Pair) => {
    p.client.resetAndDestroy();
    p.upstream?.resetAndDestroy();
    pairs.delete(p);
  };

  const pump = (p: Pair) => {
    const up = p.upstream!;
    p.client.on('data', (chunk: Buffer) => {
      if (mode !== 'forward') return; // blackhole: dropped on the floor
      forwarded += chunk.length;
      if (!up.write(chunk)) p.client.pause();
      if (rate > 0) {
        // Throttle: pause the source for as long as this chunk "takes" at the configured rate.
        p.client.pause();
        setTimeout(() => { if (mode === 'forward' && !p.client.destroyed) p.client.resume(); }, Math.ceil((chunk.length / rate) * 1000)).unref();
      }
    });
    up.on('drain', () => { if (rate === 0 && mode === 'forward') p.client.resume(); });
    up.on('data', (chunk: Buffer) => {
      if (mode !== 'forward' || (dropAfter !== undefined && forwarded >= dropAfter)) return;
      if (!p.client.write(chunk)) up.pause();
    });
    p.client.on('drain', () => up.resume());
    p.client.on('end', () => { if (mode === 'forward') up.end(); });
    up.on('end', () => { if (mode === 'forward') p.client.end(); });
  };

  const onConnection = (client: net.Socket) => {
    acceptedCount++;
    const p: Pair = { client, upstream: undefined };
    pairs.add(p);
    client.on('error', () => {});
    client.on('close', () => { p.upstream?.destroy(); pairs.delete(p); });
    if (mode === 'reset') return kill(p);
    if (mode === 'blackhole') return; // accepted, never answered
    const up = net.connect(tport, host);
    p.upstream = up;
    up.on('error', () => {});
    up.on('close', () => { client.destroy(); pairs.delete(p); });
    client.pause();
    up.once('connect', () => {
      client.resume();
      pump(p);
    });
  };

  let server = net.createServer(onConnection);
  const listen = (s: net.Server, p: number) => new Promise<number>((resolve, reject) => {
    s.once('error', reject);
    s.listen(p, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port));
  });
  const boundPort = await listen(server, port);
  let listening = true;

  const api: FaultProxy = {
    port: boundPort,
    address: `127.0.0.1:${boundPort}`,
    mode: () => mode,
    async set(next) {
      mode = next;
      if (next === 'reset' || next === 'refuse') for (const p of [...pairs]) kill(p);
      if (next === 'refuse' && listening) {
        listening = false;
        await new Promise<void>((r) => server.close(() => r()));
      } else if (next !== 'refuse' && !listening) {
        server = net.createServer(onConnection);
        await listen(server, boundPort);
        listening = true;
      }
      if (next === 'forward') for (const p of pairs) { p.client.resume(); p.upstream?.resume(); }
    },
    throttle(bytesPerSecond) {
      rate = bytesPerSecond;
    },
    dropRepliesAfter(bytes) {
      dropAfter = bytes;
    },
    forwardedBytes: () => forwarded,
    accepted: () => acceptedCount,
    async close() {
      for (const p of [...pairs]) kill(p);
      if (listening) {
        listening = false;
        await new Promise<void>((r) => server.close(() => r()));
      }
    },
  };
  return api;
}
