import net from 'node:net';
import type { Duplex } from 'node:stream';

/** A connection lent by a pool; give it back with `release(reusable)`. */
export interface Lease {
  socket: Duplex;
  release(reusable: boolean): void;
}

/** Opens (or lends) a connection to a shard's mail store. */
export type Connector = (shardId: string) => Promise<Lease>;

/**
 * A small pool of plain TCP connections to one loopback address (the local Dovecot LMTP or the
 * embedded store). Connections are reused across transactions, like Postfix's own LMTP
 * connection cache; an idle connection that the server closed is dropped.
 */
export class TcpPool {
  private readonly idle: net.Socket[] = [];
  private readonly host: string;
  private readonly port: number;
  private readonly maxIdle: number;
  private readonly connectTimeoutMs: number;
  /** `maxIdle`: at least the senders' concurrency (Postfix: up to 20 parallel deliveries), or
   * connections are closed and reopened on every burst. */
  constructor(address: string, maxIdle = 32, connectTimeoutMs = 10_000) {
    this.connectTimeoutMs = connectTimeoutMs;
    const i = address.lastIndexOf(':');
    this.host = address.slice(0, i).replace(/^\[|\]$/g, '');
    this.port = Number(address.slice(i + 1));
    this.maxIdle = maxIdle;
  }

  /** Lend a connection (an idle one when there is one). */
  async acquire(): Promise<Lease> {
    let socket = this.idle.pop();
    while (socket && (socket.destroyed || !socket.writable)) socket = this.idle.pop();
    if (!socket) {
      const s = net.connect(this.port, this.host);
      await new Promise<void>((resolve, reject) => {
        // A backend that never answers the SYN must not hold the delivery: give up, the caller
        // turns it into a 4xx.
        const timer = setTimeout(() => {
          s.destroy();
          reject(new Error(`connect to ${this.host}:${this.port} timed out after ${this.connectTimeoutMs} ms`));
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
      s.setNoDelay(true);
      socket = s;
    }
    const sock = socket;
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
