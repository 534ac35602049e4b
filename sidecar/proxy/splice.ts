import type { Duplex } from 'node:stream';

/**
 * Knows whether the bytes forwarded so far end at a point where the proxy may speak to the
 * client itself (between two complete server responses), so that a BYE/-ERR it injects is never
 * read as part of a message body.
 */
export interface ResponseBoundary {
  /** Bytes the client sent (forwarded to the backend). */
  fromClient(chunk: Buffer): void;
  /** Bytes the backend sent (forwarded to the client). */
  fromBackend(chunk: Buffer): void;
  /** True when every response the backend started has been forwarded completely. */
  atBoundary(): boolean;
}

/** Options of {@link splice}. */
export interface SpliceOptions {
  /** Client bytes read during the login dialogue but not yet consumed: sent to the backend first. */
  clientLeftover?: Buffer;
  /** Backend bytes read during the login dialogue but not yet consumed: sent to the client first. */
  backendLeftover?: Buffer;
  /** No byte either way for this long → {@link Splice.closeWith}(`idleMessage`). */
  idleTimeoutMs: number;
  /** The line sent to the client on idle timeout (without CRLF). */
  idleMessage: string;
  /** How long {@link Splice.closeWith} waits for the backend to finish a response before cutting. */
  closeGraceMs?: number;
  boundary: ResponseBoundary;
}

/** A running splice. */
export interface Splice {
  /**
   * Close cleanly: stop forwarding client commands, let the backend finish the response it is
   * sending, then send `line` to the client and close both sides.
   */
  closeWith(line: string): void;
  /** Resolves when both sockets are closed. */
  readonly closed: Promise<void>;
}

/**
 * Connect a logged-in client to its backend, both ways, with back-pressure (a side that cannot
 * take more pauses the other) and half-close propagation (an end from one side ends the other
 * after pending bytes are flushed). Either side failing or closing tears down both.
 */
export function splice(client: Duplex, backend: Duplex, o: SpliceOptions): Splice {
  // Interactive protocol relayed chunk by chunk: Nagle on the backend leg would add a
  // delayed-ACK wait (~40 ms) to small request/response exchanges.
  for (const s of [client, backend] as (Duplex & { setNoDelay?: (on: boolean) => unknown })[]) s.setNoDelay?.(true);
  let closingLine: string | undefined;
  let stopClient = false;
  let grace: NodeJS.Timeout | undefined;
  const idle = setTimeout(() => closeWith(o.idleMessage), o.idleTimeoutMs);

  const closed = new Promise<void>((resolve) => {
    let n = 0;
    const one = () => {
      if (++n === 2) {
        clearTimeout(idle);
        clearTimeout(grace);
        resolve();
      }
    };
    client.once('close', () => {
      backend.destroy();
      one();
    });
    backend.once('close', () => {
      // Let what the backend said reach the client, then close it.
      if (!client.writableEnded) client.end();
      setTimeout(() => client.destroy(), 2000).unref();
      one();
    });
  });
  client.on('error', () => client.destroy());
  backend.on('error', () => backend.destroy());

  const finishClosing = () => {
    if (closingLine === undefined) return;
    const line = closingLine;
    closingLine = undefined;
    backend.unpipe?.();
    backend.destroy();
    client.end(`${line}\r\n`);
  };

  client.on('data', (chunk: Buffer) => {
    if (stopClient) return;
    idle.refresh();
    o.boundary.fromClient(chunk);
    if (!backend.write(chunk)) client.pause();
  });
  backend.on('drain', () => {
    if (!stopClient) client.resume();
  });
  client.on('end', () => {
    if (!stopClient) backend.end();
  });

  backend.on('data', (chunk: Buffer) => {
    idle.refresh();
    o.boundary.fromBackend(chunk);
    if (!client.write(chunk)) backend.pause();
    if (closingLine !== undefined && o.boundary.atBoundary()) finishClosing();
  });
  client.on('drain', () => backend.resume());
  backend.on('end', () => client.end());

  function closeWith(line: string): void {
    if (closingLine !== undefined || client.destroyed) return;
    stopClient = true;
    client.pause();
    closingLine = line;
    if (o.boundary.atBoundary()) {
      finishClosing();
      return;
    }
    grace = setTimeout(() => {
      client.destroy();
      backend.destroy();
    }, o.closeGraceMs ?? 5000);
  }

  if (o.clientLeftover?.length) {
    o.boundary.fromClient(o.clientLeftover);
    backend.write(o.clientLeftover);
  }
  if (o.backendLeftover?.length) {
    o.boundary.fromBackend(o.backendLeftover);
    client.write(o.backendLeftover);
  }
  client.resume();
  backend.resume();
  return { closeWith, closed };
}
