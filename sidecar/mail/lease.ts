import net from 'node:net';
import type { Duplex } from 'node:stream';
import { parseEndpoint, type Endpoint } from '../mesh/address.ts';

/** A connection lent by a pool; give it back with `release(reusable)`. */
export interface Lease {
  socket: Duplex;
  release(reusable: boolean): void;
}

/** Opens (or lends) a connection to a shard's mail store. */
export type Connector = (shardId: string) => Promise<Lease>;

/**
 * A small pool of plain connections to one local address, `host:port` or `unix:/path` (the local
 * Dovecot LMTP or the embedded store). Connections are reused across transactions, like Postfix's own LMTP
 * connection cache; an idle connection that the server closed is dropped.
 */
export class TcpPool {
  private readonly idle: net.Socket[] = [];
  private readonly address: string;
  private readonly endpoint: Endpoint;
  private readonly maxIdle: number;
  private readonly connectTimeoutMs: number;
  /** `maxIdle`: near the senders' concurrency, or connections are closed and reopened on every
   * burst (the front door's sessions into Postfix: one per sender in DATA at once). */
  constructor(address: string, maxIdle = 32, connectTimeoutMs = 10_000) {
    this.connectTimeoutMs = connectTimeoutMs;
    this.address = address;
    this.endpoint = parseEndpoint(address);
    this.maxIdle = maxIdle;
  }

  /** Lend an idle connection if one is open now; never opens one. */
  takeIdle(): Lease | undefined {
    let socket = this.idle.pop();
    while (socket && (socket.destroyed || !socket.writable)) socket = this.idle.pop();
    return socket && this.lease(socket);
  }

  /** Lend a connection (an idle one when there is one). */
  async acquire(): Promise<Lease> {
    const idle = this.takeIdle();
    if (idle) return idle;
    const s = net.connect(this.endpoint);
    await new Promise<void>((resolve, reject) => {
      // A backend that never answers the SYN must not hold the delivery: give up, the caller
      // turns it into a 4xx.
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect to ${this.address} timed out after ${this.connectTimeoutMs} ms`));
      }, this.connectTimeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    s.on('error', () => s.destroy());
    if (!('path' in this.endpoint)) s.setNoDelay(true);
    return this.lease(s);
  }

  private lease(sock: net.Socket): Lease {
    return {
      socket: sock,
      release: (reusable) => {
        if (reusable && !sock.destroyed && this.idle.length < this.maxIdle) this.idle.push(sock);
        else sock.destroy();
      },
    };
  }

  /** Close every idle connection. */
  close(): void {
    for (const s of this.idle.splice(0)) s.destroy();
  }
}
