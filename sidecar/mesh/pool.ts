import type { TLSSocket } from 'node:tls';

/** An idle pooled connection and what undoes its idle state. */
interface IdleEntry {
  socket: TLSSocket;
  timer: NodeJS.Timeout;
  cleanup: () => void;
}

/**
 * Idle connections per key (shard + ALPN), most recently used first (LIFO keeps a few
 * connections warm instead of spreading load over all of them so extras can time out).
 * An idle connection that the peer closes, or that sends anything while nobody owns it (a
 * `421` timeout notice, garbage, EOF), is dropped: it is no longer at a transaction boundary.
 */
export class IdlePool {
  private readonly idle = new Map<string, IdleEntry[]>();
  private readonly maxPerKey: number;
  private readonly idleTimeoutMs: number;

  constructor(maxPerKey: number, idleTimeoutMs: number) {
    this.maxPerKey = maxPerKey;
    this.idleTimeoutMs = idleTimeoutMs;
  }

  /** Take a live idle connection for `key`, or undefined. */
  take(key: string): TLSSocket | undefined {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const e = list.pop()!;
      e.cleanup();
      if (!e.socket.destroyed && e.socket.writable && e.socket.readable) return e.socket;
      e.socket.destroy();
    }
    return undefined;
  }

  /** Park a connection; returns false (and the caller should destroy it) when the pool is full. */
  put(key: string, socket: TLSSocket): boolean {
    if (socket.destroyed || !socket.writable || this.maxPerKey <= 0) return false;
    let list = this.idle.get(key);
    if (!list) this.idle.set(key, (list = []));
    if (list.length >= this.maxPerKey) return false;
    const drop = () => {
      const l = this.idle.get(key);
      const i = l ? l.indexOf(entry) : -1;
      if (i >= 0) l!.splice(i, 1);
      entry.cleanup();
      socket.destroy();
    };
    const timer = setTimeout(drop, this.idleTimeoutMs);
    timer.unref();
    // A 'readable' listener (not 'data'): it never consumes bytes, and removing it returns the
    // stream to its initial state, so the next owner can use 'data', pipe or read() as usual.
    const onReadable = () => drop();
    const onClose = () => drop();
    socket.on('readable', onReadable);
    socket.once('end', onClose);
    socket.once('close', onClose);
    const entry: IdleEntry = {
      socket,
      timer,
      cleanup: () => {
        clearTimeout(timer);
        socket.off('readable', onReadable);
        socket.off('end', onClose);
        socket.off('close', onClose);
      },
    };
    list.push(entry);
    return true;
  }

  /** Number of idle connections (all keys, or one). */
  size(key?: string): number {
    if (key !== undefined) return this.idle.get(key)?.length ?? 0;
    let n = 0;
    for (const l of this.idle.values()) n += l.length;
    return n;
  }

  /** Close every idle connection. */
  clear(): void {
    for (const list of this.idle.values()) {
      for (const e of list) {
        e.cleanup();
        e.socket.destroy();
      }
    }
    this.idle.clear();
  }
}
