// A raw TCP client for the fuzzers: writes exactly the bytes it is given (in the chunks given),
// records everything the server sends and how the connection ended. Bounded in time.
import net from 'node:net';

/** What one raw session saw. */
export interface RawResult {
  /** Every byte the server sent, as latin1 (byte-preserving). */
  output: string;
  /** The server closed the connection (FIN or reset) before our deadline. */
  serverClosed: boolean;
  /** Milliseconds from connect to the end of the session. */
  ms: number;
  /** A connect error (the listener is down). */
  connectError?: string;
}

/** Options of {@link rawSession}. */
export interface RawOptions {
  port: number;
  /** Byte chunks written one after another (a chunk per write, `gapMs` apart). */
  chunks: Buffer[];
  /** Wait for the first line of the server (greeting) before writing. Default true. */
  waitGreeting?: boolean;
  gapMs?: number;
  /** Give up (and destroy) after this long. */
  deadlineMs: number;
  /** End the session as soon as the output matches (then destroy). */
  until?: RegExp;
  localAddress?: string;
}

/** Run one raw session; never throws. */
export function rawSession(o: RawOptions): Promise<RawResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let output = '';
    let done = false;
    let greeted: (() => void) | undefined;
    const greeting = new Promise<void>((r) => (greeted = r));
    const socket = net.connect({ port: o.port, host: '127.0.0.1', localAddress: o.localAddress });
    const finish = (serverClosed: boolean, connectError?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ output, serverClosed, ms: Date.now() - t0, connectError });
    };
    const timer = setTimeout(() => finish(false), o.deadlineMs);
    socket.on('data', (d: Buffer) => {
      output += d.toString('latin1');
      if (output.includes('\n')) greeted?.();
      if (o.until?.test(output)) finish(false);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') finish(false, err.message);
    });
    socket.on('close', () => {
      greeted?.();
      finish(true);
    });
    socket.once('connect', () => {
      void (async () => {
        if (o.waitGreeting ?? true) await greeting;
        for (const c of o.chunks) {
          if (done || socket.destroyed) return;
          socket.write(c);
          if (o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
        }
      })();
    });
  });
}

/** The complete CRLF-terminated lines of an output, and the unterminated tail. */
export function linesOf(output: string): { lines: string[]; tail: string } {
  const parts = output.split('\r\n');
  const tail = parts.pop() ?? '';
  return { lines: parts, tail };
}
