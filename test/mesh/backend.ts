// A trivial line-oriented backend standing in for Dovecot LMTP: greets, answers each line with
// `250 <line>`, ends its side when the client ends (half-close), and records what it received.
import net from 'node:net';

/** A running test backend. */
export interface TestBackend {
  port: number;
  address: string;
  /** Every line received, over all connections. */
  lines: string[];
  connections: number;
  /** Serve a connection that arrived another way (an in-process ingress backend). */
  serve(socket: net.Socket): void;
  close(): Promise<void>;
}

/** Start the backend on 127.0.0.1, port 0, or on a Unix socket (`address` is then `unix:PATH`). */
export async function startBackend(greeting = '220 backend ready', opts: { unixPath?: string } = {}): Promise<TestBackend> {
  const sockets = new Set<net.Socket>();
  const state = { lines: [] as string[], connections: 0 };
  const serve = (s: net.Socket) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.write(`${greeting}\r\n`);
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        state.lines.push(line);
        s.write(`250 ${line.length > 40 ? `${line.length} bytes` : line}\r\n`);
      }
    });
    s.on('end', () => s.end('221 bye\r\n'));
  };
  const server = net.createServer({ allowHalfOpen: true }, serve);
  await new Promise<void>((r) => (opts.unixPath ? server.listen(opts.unixPath, r) : server.listen(0, '127.0.0.1', r)));
  const port = opts.unixPath ? 0 : (server.address() as net.AddressInfo).port;
  return {
    port,
    address: opts.unixPath ? `unix:${opts.unixPath}` : `127.0.0.1:${port}`,
    serve,
    get lines() {
      return state.lines;
    },
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Read from a stream until `re` matches the accumulated text (or it ends); returns the text. */
export function readUntil(stream: NodeJS.ReadableStream, re: RegExp, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      // Keep later bytes buffered for the next reader instead of letting them flow away.
      stream.pause();
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (d: Buffer | string) => {
      text += d.toString();
      if (re.test(text)) done();
    };
    const onEnd = () => done(new Error(`stream ended before ${re} matched; got ${JSON.stringify(text)}`));
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${re}; got ${JSON.stringify(text)}`)), timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.resume();
  });
}
