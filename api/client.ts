import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { controlPlaneSpiffeId } from '../ca/spiffe.ts';
import type { Clock } from '../common/clock.ts';
import { systemClock } from '../common/clock.ts';
import type { ControlPlaneClient as GrpcClient } from './generated/mailmesh/v1/ControlPlane.ts';
import type { Snapshot__Output } from './generated/mailmesh/v1/Snapshot.ts';
import type { SignResponse__Output } from './generated/mailmesh/v1/SignResponse.ts';
import type { ReportResponse__Output } from './generated/mailmesh/v1/ReportResponse.ts';
import type { StatusResponse__Output } from './generated/mailmesh/v1/StatusResponse.ts';
import type { RevokeResponse__Output } from './generated/mailmesh/v1/RevokeResponse.ts';
import { ApiError } from './errors.ts';
import { loadProto, MAX_MESSAGE_BYTES } from './proto.ts';
import { signExpiredProof } from './expired-proof.ts';

export { verifySnapshot, type SnapshotPayload } from './snapshot.ts';
export { ApiError, isApiError } from './errors.ts';

/** A client certificate: leaf chain and key, PEM. */
export interface ClientCertificate {
  certPem: string;
  keyPem: string;
}

/** How to reach the control plane. */
export interface ControlPlaneClientOptions {
  /** `host:port`. */
  address: string;
  /** The trust bundle (roots), PEM: the control plane's certificate must chain to it. */
  bundlePem: string;
  /** The control plane must present `spiffe://<trustDomain>/control-plane`. */
  trustDomain: string;
  /** Our certificate for mTLS (renewal, Watch, Report, Status, Revoke). Absent: Sign with a join token only. */
  cert?: ClientCertificate;
  /** Deadline of each unary call (default 10 s). */
  deadlineMs?: number;
  clock?: Clock;
}

/** What Sign returns. */
export interface SignResult {
  /** Leaf then issuing CA, PEM. */
  chainPem: string;
  bundlePem: string;
  spiffeId: string;
  serial: string;
  notAfter: number;
}

/** The sidecar's view of certificate issuance (sidecar/identity expects exactly this). */
export interface IdentitySource {
  sign(req: { csrDer: Buffer; joinToken?: string; current?: ClientCertificate; expired?: ClientCertificate }): Promise<{ chainPem: string; bundlePem: string }>;
}

/** A snapshot as received (verify it with {@link verifySnapshot}). */
export interface SnapshotMessage {
  revision: string;
  jws: string;
}

/** Options of {@link ControlPlaneClient.watch}. */
export interface WatchOptions {
  /** The revision we already have (nothing is sent until a newer one exists). */
  revision?: string;
  /** Called with every snapshot. Absent: use the returned handle as an async iterator. */
  onSnapshot?: (snap: SnapshotMessage) => void;
  /** Called on every stream failure before the reconnect (with the delay chosen). */
  onError?: (err: ApiError, retryInMs: number) => void;
  /** First reconnect delay (default 500 ms), doubled up to `maxBackoffMs` (default 30 s), with jitter. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** A running watch: close it, or iterate it. */
export interface WatchHandle extends AsyncIterable<SnapshotMessage> {
  /** The last revision received (what a reconnect states). */
  readonly revision: string;
  close(): void;
}

/** What Report returns. */
export interface ReportResult {
  serverTimeMs: number;
  /** Our clock minus the control plane's, estimated from the round trip (NTP-style midpoint). */
  clockOffsetMs: number;
}

/** Status of the control plane (`mailmesh status --json` prints this). */
export interface ControlPlaneStatus {
  trustDomain: string;
  revision: string;
  lastPolicyError: string | null;
  lastPolicyErrorAt: number | null;
  policyErrorsTotal: number;
  serverTime: number;
  watchers: number;
  revokedSerials: number;
  revokedIdentities: number;
  nodes: { spiffeId: string; revision: string; certSerial: string; certNotAfter: number; lastReport: number; clockOffsetMs: number }[];
}

const TEMPORARY = new Set<number>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.ABORTED]);

/** Turn a gRPC error into an {@link ApiError} carrying the control plane's domain code. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as Partial<grpc.ServiceError>;
  const grpcCode = typeof e.code === 'number' ? e.code : undefined;
  const domain = e.metadata?.get('mailmesh-code')[0];
  const retry = e.metadata?.get('retry-after-ms')[0];
  const retryAfterMs = retry === undefined ? undefined : Number(retry);
  const code = domain !== undefined ? String(domain)
    : grpcCode === grpc.status.UNAVAILABLE ? 'ERR_UNAVAILABLE'
      : grpcCode === grpc.status.DEADLINE_EXCEEDED ? 'ERR_DEADLINE' : 'ERR_GRPC';
  const message = e.details || e.message || String(err);
  return new ApiError(code, message, { grpcCode, retryAfterMs, temporary: grpcCode !== undefined && TEMPORARY.has(grpcCode), cause: err });
}

/**
 * A typed client of the control plane over gRPC + mTLS. The server must present
 * `spiffe://TD/control-plane` chained to the bundle; errors come back as {@link ApiError} whose
 * `code` is the control plane's domain code (e.g. `ERR_TOKEN_REPLAYED`).
 *
 * @example
 * const cp = new ControlPlaneClient({ address: '127.0.0.1:7443', bundlePem, trustDomain: 'mail.example' });
 * const { chainPem } = await cp.sign({ csrDer, joinToken });
 * const w = cp.watch({ revision: cached, onSnapshot: async (s) => apply(await verifySnapshot(s.jws, bundlePem, td)) });
 */
export class ControlPlaneClient implements IdentitySource {
  readonly options: ControlPlaneClientOptions;
  private client: GrpcClient;
  private readonly clock: Clock;
  private readonly watches = new Set<() => void>();

  constructor(options: ControlPlaneClientOptions) {
    this.options = { ...options };
    this.clock = options.clock ?? systemClock;
    this.client = this.makeClient(options.cert);
  }

  private makeClient(cert: ClientCertificate | undefined): GrpcClient {
    const { address, bundlePem, trustDomain } = this.options;
    const expected = controlPlaneSpiffeId(trustDomain);
    const creds = grpc.credentials.createSsl(
      Buffer.from(bundlePem),
      cert ? Buffer.from(cert.keyPem) : null,
      cert ? Buffer.from(cert.certPem) : null,
      {
        // The control plane is named by its SPIFFE ID, not by a host name (node has already
        // verified the chain against the bundle when this runs).
        checkServerIdentity: (_host, peer) => {
          const uris = (peer.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
          if (uris.length === 1 && uris[0] === expected) return undefined;
          return new Error(`control plane at ${address} presented ${uris.join(' ') || 'no SPIFFE ID'}, expected ${expected}`);
        },
      },
    );
    const Ctor = loadProto().mailmesh.v1.ControlPlane;
    return new Ctor(address, creds, {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.default_authority': 'localhost',
    });
  }

  /** Use another client certificate from now on (after a renewal). */
  setCertificate(cert: ClientCertificate | undefined): void {
    this.options.cert = cert;
    const old = this.client;
    this.client = this.makeClient(cert);
    old.close();
  }

  /** Trust another bundle (roots, PEM) for the control plane from now on (a root rotation). */
  setTrustBundle(bundlePem: string): void {
    if (bundlePem === this.options.bundlePem) return;
    this.options.bundlePem = bundlePem;
    this.setCertificate(this.options.cert);
  }

  private deadline(): Date {
    return new Date(Date.now() + (this.options.deadlineMs ?? 10_000));
  }

  private unary<Res>(client: GrpcClient, call: (c: GrpcClient, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void): Promise<Res> {
    return new Promise((resolve, reject) => {
      call(client, { deadline: this.deadline() }, (err, res) => (err ? reject(toApiError(err)) : resolve(res as Res)));
    });
  }

  /**
   * Get a certificate for `csrDer`: with `joinToken` (first time) or over mTLS with `current` (or
   * the client's own certificate) for a renewal.
   */
  async sign(req: { csrDer: Buffer; joinToken?: string; current?: ClientCertificate; expired?: ClientCertificate }): Promise<SignResult> {
    const useOther = req.current && req.current !== this.options.cert;
    // A rejoin after expiry goes without a client certificate (TLS would refuse the expired one):
    // the old key's signature over the CSR proves possession instead.
    const client = req.expired ? this.makeClient(undefined) : useOther ? this.makeClient(req.current) : this.client;
    const expired = req.expired ? { expiredChainPem: req.expired.certPem, expiredProof: signExpiredProof(createPrivateKey(req.expired.keyPem), req.csrDer) } : {};
    try {
      const res = await this.unary<SignResponse__Output>(client, (c, o, cb) => c.sign({ csr: req.csrDer, joinToken: req.joinToken ?? '', ...expired }, o, cb));
      return { chainPem: res.chainPem, bundlePem: res.bundlePem, spiffeId: res.spiffeId, serial: res.serial, notAfter: Number(res.notAfterMs) };
    } finally {
      if (client !== this.client) client.close();
    }
  }

  /** Report node status; returns the server time and our estimated clock offset. */
  async report(r: { revision: string; certSerial?: string; certNotAfter?: number; clockOffsetMs?: number }): Promise<ReportResult> {
    const t0 = this.clock.now();
    const res = await this.unary<ReportResponse__Output>(this.client, (c, o, cb) =>
      c.report({ revision: r.revision, certSerial: r.certSerial ?? '', certNotAfterMs: String(r.certNotAfter ?? 0), clockOffsetMs: String(Math.round(r.clockOffsetMs ?? 0)), clientTimeMs: String(t0) }, o, cb),
    );
    const t1 = this.clock.now();
    const serverTimeMs = Number(res.serverTimeMs);
    return { serverTimeMs, clockOffsetMs: Math.round((t0 + t1) / 2 - serverTimeMs) };
  }

  /** Control plane status (needs an admin certificate). */
  async status(): Promise<ControlPlaneStatus> {
    const s = await this.unary<StatusResponse__Output>(this.client, (c, o, cb) => c.status({}, o, cb));
    return {
      trustDomain: s.trustDomain,
      revision: s.revision,
      lastPolicyError: s.lastPolicyError || null,
      lastPolicyErrorAt: s.lastPolicyError ? Number(s.lastPolicyErrorMs) : null,
      policyErrorsTotal: Number(s.policyErrorsTotal),
      serverTime: Number(s.serverTimeMs),
      watchers: Number(s.watchers),
      revokedSerials: Number(s.revokedSerials),
      revokedIdentities: Number(s.revokedIdentities),
      nodes: s.nodes.map((n) => ({
        spiffeId: n.spiffeId,
        revision: n.revision,
        certSerial: n.certSerial,
        certNotAfter: Number(n.certNotAfterMs),
        lastReport: Number(n.lastReportMs),
        clockOffsetMs: Number(n.clockOffsetMs),
      })),
    };
  }

  /** Revoke serials and/or identities (needs an admin certificate); resolves to the new revision. */
  async revoke(r: { serials?: string[]; identities?: string[]; reason?: string }): Promise<string> {
    const res = await this.unary<RevokeResponse__Output>(this.client, (c, o, cb) => c.revoke({ serials: r.serials ?? [], identities: r.identities ?? [], reason: r.reason ?? '' }, o, cb));
    return res.revision;
  }

  /**
   * Watch snapshots. Reconnects by itself with exponential backoff and jitter, stating the last
   * revision it received, so a reconnect costs nothing when nothing changed.
   */
  watch(opts: WatchOptions = {}): WatchHandle {
    const minB = opts.minBackoffMs ?? 500;
    const maxB = opts.maxBackoffMs ?? 30_000;
    let revision = opts.revision ?? '';
    let backoff = minB;
    let closed = false;
    let stream: grpc.ClientReadableStream<Snapshot__Output> | undefined;
    let timer: NodeJS.Timeout | undefined;
    const queue: SnapshotMessage[] = [];
    const waiters: ((r: IteratorResult<SnapshotMessage>) => void)[] = [];
    const deliver = (snap: SnapshotMessage) => {
      if (opts.onSnapshot) opts.onSnapshot(snap);
      else if (waiters.length > 0) waiters.shift()?.({ value: snap, done: false });
      else queue.push(snap);
    };
    const connect = () => {
      if (closed) return;
      const s = this.client.watch({ revision });
      stream = s;
      let failed = false;
      const retry = (err: ApiError) => {
        if (failed || closed) return;
        failed = true;
        const delay = Math.round(backoff * (0.5 + Math.random() / 2));
        backoff = Math.min(maxB, backoff * 2);
        opts.onError?.(err, delay);
        timer = setTimeout(connect, delay);
      };
      s.on('data', (m: Snapshot__Output) => {
        backoff = minB;
        revision = m.revision;
        deliver({ revision: m.revision, jws: m.jws });
      });
      s.on('error', (err: unknown) => retry(toApiError(err)));
      s.on('end', () => retry(new ApiError('ERR_UNAVAILABLE', 'watch stream ended by the control plane', { temporary: true })));
    };
    const stop = () => {
      if (closed) return;
      closed = true;
      this.watches.delete(stop);
      clearTimeout(timer);
      stream?.cancel();
      for (const w of waiters.splice(0)) w({ value: undefined, done: true });
    };
    this.watches.add(stop);
    connect();
    return {
      get revision() {
        return revision;
      },
      close: stop,
      [Symbol.asyncIterator]() {
        return {
          next: (): Promise<IteratorResult<SnapshotMessage>> => {
            const v = queue.shift();
            if (v) return Promise.resolve({ value: v, done: false });
            if (closed) return Promise.resolve({ value: undefined, done: true });
            return new Promise((resolve) => waiters.push(resolve));
          },
          return: (): Promise<IteratorResult<SnapshotMessage>> => {
            stop();
            return Promise.resolve({ value: undefined, done: true });
          },
        };
      },
    };
  }

  /** Stop every watch and close the channel. */
  close(): void {
    for (const stop of [...this.watches]) stop();
    this.client.close();
  }
}

/** The {@link IdentitySource} the sidecar's identity code expects, backed by a client. */
export function identitySourceFor(client: ControlPlaneClient): IdentitySource {
  return {
    async sign(req) {
      const r = await client.sign(req);
      return { chainPem: r.chainPem, bundlePem: r.bundlePem };
    },
  };
}

/** The serial (uppercase hex) and expiry of the first certificate in a PEM chain. */
export function certificateInfo(chainPem: string): { serial: string; notAfter: number; notBefore: number } {
  const c = new X509Certificate(chainPem);
  return { serial: c.serialNumber.toUpperCase(), notAfter: c.validToDate.getTime(), notBefore: c.validFromDate.getTime() };
}
