import type { Duplex } from 'node:stream';

/**
 * The client side of a pre-login proxy session (IMAP or POP3): the current socket (plain, then
 * TLS after STARTTLS/STLS), replies, hang-up, the pre-login deadline, and the backend being
 * logged in to, which the deadline also cuts.
 *
 * @example
 * const line = new ClientLine(c.socket, o.preauthTimeoutMs, '* BYE Disconnected for inactivity.');
 * line.write('* OK ready.');
 */
export class ClientLine {
  /** The client socket; replaced by its TLS wrapper after an upgrade. */
  socket: Duplex;
  /** True once the session is ending (hang-up, deadline): no further command is handled. */
  finished = false;
  private pendingBackend: Duplex | undefined;
  private readonly deadline: NodeJS.Timeout;

  constructor(socket: Duplex, preauthTimeoutMs: number, inactivityReply: string) {
    this.socket = socket;
    this.deadline = setTimeout(() => {
      this.pendingBackend?.destroy();
      this.hangUp(inactivityReply);
    }, preauthTimeoutMs);
  }

  write(line: string): void {
    if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.write(`${line}\r\n`);
  }

  /** Send a last line and close (destroyed after 1 s if the client does not finish). */
  hangUp(line: string): void {
    this.finished = true;
    this.write(line);
    this.socket.end();
    const s = this.socket;
    setTimeout(() => s.destroy(), 1000).unref();
  }

  /** The pre-login phase is over (logged in, or the session ends): stop the deadline. */
  stopDeadline(): void {
    clearTimeout(this.deadline);
  }

  /**
   * Open the routed backend and log in there with `login`. `'ended'`: the client went away or
   * the deadline fired meanwhile (the session is over); `'unavailable'`: the backend failed
   * (`onError` was called, the caller answers the client).
   */
  async loginToBackend<R>(
    open: () => Promise<Duplex>,
    login: (backend: Duplex) => Promise<R>,
    onError: (err: unknown) => void,
  ): Promise<{ backend: Duplex; result: R } | 'ended' | 'unavailable'> {
    let backend: Duplex;
    let result: R;
    try {
      backend = await open();
      (backend as Duplex & { setNoDelay?: (on: boolean) => unknown }).setNoDelay?.(true);
      this.pendingBackend = backend;
      result = await login(backend);
    } catch (err) {
      this.dropBackend();
      if (this.finished) return 'ended';
      onError(err);
      return 'unavailable';
    }
    if (this.finished) {
      this.dropBackend();
      return 'ended';
    }
    return { backend, result };
  }

  /** Close the backend of a failed login attempt. */
  dropBackend(): void {
    this.pendingBackend?.destroy();
    this.pendingBackend = undefined;
  }
}
