import { X509Certificate } from 'node:crypto';
import { exec } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { createCsr } from '../ca/csr.ts';
import { generateKeyPair, privateKeyToPem } from '../ca/keys.ts';
import { parseSpiffeId } from '../ca/spiffe.ts';
import type { Clock } from '../common/clock.ts';
import { systemClock } from '../common/clock.ts';
import { PRIVATE_MODE, PUBLIC_MODE, writeFilesAtomic } from '../common/files.ts';
import { ControlPlaneClient, toApiError, type ClientCertificate } from './client.ts';
import { ApiError } from './errors.ts';

const sh = promisify(exec);

/** File names `mailmesh cert rotate` writes in its output directory. */
export const ROTATE_FILES = { cert: 'node.crt', key: 'node.key', bundle: 'bundle.pem' } as const;

/** A certificate on disk and what the loop needs to know about it. */
export interface HeldCertificate extends ClientCertificate {
  spiffeId: string;
  serial: string;
  notBefore: number;
  notAfter: number;
}

/** Settings of {@link rotateOnce} and {@link CertRotator}; the constructor fills the defaults. */
export interface RotatorConfig {
  /** Control plane `host:port`. */
  address: string;
  /** Trust bundle PEM used to verify the control plane. */
  bundlePem: string;
  outDir: string;
  /** First issuance: a join token. */
  joinToken?: string;
  /** Renewal: the current certificate (chain PEM) and key. */
  current?: ClientCertificate;
  /** Shell command run after new files are in place (e.g. `postfix reload`). */
  reloadCmd?: string;
  clock?: Clock;
  /** First retry delay after a failure (default 1 s), doubled up to `maxBackoffMs` (default 5 min). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Told about every renewal and failure (the CLI prints them). */
  onEvent?: (e: RotateEvent) => void;
}

/** What the loop reports. */
export type RotateEvent =
  | { event: 'renewed'; spiffeId: string; serial: string; notAfter: string; nextCheckInMs: number; reload?: 'ok' | 'failed' }
  | { event: 'failed'; code: string; message: string; temporary: boolean; retryInMs: number };

/** Read what the loop needs from a chain PEM. */
export function describeCertificate(cert: ClientCertificate): HeldCertificate {
  const c = new X509Certificate(cert.certPem);
  const uri = (c.subjectAltName ?? '').split(', ').find((s) => s.startsWith('URI:'))?.slice(4) ?? '';
  return { ...cert, spiffeId: uri, serial: c.serialNumber.toUpperCase(), notBefore: c.validFromDate.getTime(), notAfter: c.validToDate.getTime() };
}

/** The trust domain a join token or a certificate belongs to (to check the control plane's ID). */
export function trustDomainOf(source: { joinToken?: string; current?: ClientCertificate }): string {
  let id: string | undefined;
  try {
    id = source.current ? describeCertificate(source.current).spiffeId : String(decodeJwt(source.joinToken ?? '').sub ?? '');
    return parseSpiffeId(id).trustDomain;
  } catch (err) {
    throw new ApiError('ERR_CLIENT_CONFIG', source.current ? 'the current certificate has no SPIFFE ID' : 'the join token is not a mailmesh join token (no SPIFFE ID subject)', { cause: err });
  }
}

/**
 * One rotation: a new P-256 key made here (it never leaves this host), a CSR, Sign with the join
 * token or the current certificate, then DIR/node.key (0600), DIR/node.crt and DIR/bundle.pem
 * written atomically together, then the reload command. Throws {@link ApiError}; the old files
 * stay untouched on failure.
 */
export async function rotateOnce(cfg: RotatorConfig): Promise<{ held: HeldCertificate; reload?: 'ok' | 'failed' }> {
  const trustDomain = trustDomainOf(cfg);
  const kp = generateKeyPair('P-256');
  // An expired certificate cannot do mTLS: it rejoins with proof of possession instead (the
  // control plane accepts that for the newest certificate of the identity, within a grace period).
  const expired = cfg.current && new X509Certificate(cfg.current.certPem).validToDate.getTime() <= (cfg.clock ?? systemClock).now() ? cfg.current : undefined;
  const client = new ControlPlaneClient({ address: cfg.address, bundlePem: cfg.bundlePem, trustDomain, cert: expired ? undefined : cfg.current });
  let res;
  try {
    res = await client.sign({ csrDer: createCsr(kp), joinToken: cfg.current ? undefined : cfg.joinToken, expired });
  } catch (err) {
    throw toApiError(err);
  } finally {
    client.close();
  }
  const keyPem = privateKeyToPem(kp.privateKey);
  await writeFilesAtomic([
    { path: join(cfg.outDir, ROTATE_FILES.key), data: keyPem, mode: PRIVATE_MODE },
    { path: join(cfg.outDir, ROTATE_FILES.cert), data: res.chainPem, mode: PUBLIC_MODE },
    { path: join(cfg.outDir, ROTATE_FILES.bundle), data: res.bundlePem, mode: PUBLIC_MODE },
  ]);
  let reload: 'ok' | 'failed' | undefined;
  if (cfg.reloadCmd) {
    reload = await sh(cfg.reloadCmd, { timeout: 60_000 }).then(() => 'ok' as const, () => 'failed' as const);
  }
  return { held: describeCertificate({ certPem: res.chainPem, keyPem }), reload };
}

/**
 * The renewal loop of `mailmesh cert rotate --daemon`: renew at half-life; on failure keep the
 * old certificate and retry with exponential backoff. `tick()` is one step (tests call it with a
 * ManualClock); `start()` drives it with timers.
 */
export class CertRotator {
  held: HeldCertificate | undefined;
  failures = 0;
  private readonly cfg: Required<Omit<RotatorConfig, 'joinToken' | 'current' | 'reloadCmd'>> & RotatorConfig;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(cfg: RotatorConfig) {
    this.cfg = { clock: systemClock, minBackoffMs: 1000, maxBackoffMs: 300_000, onEvent: () => {}, ...cfg };
    if (cfg.current) this.held = describeCertificate(cfg.current);
  }

  /** Milliseconds until the held certificate reaches half its lifetime (0: renew now). */
  msUntilDue(): number {
    if (!this.held) return 0;
    const { notBefore, notAfter } = this.held;
    return Math.max(0, Math.ceil(notBefore + (notAfter - notBefore) / 2 - this.cfg.clock.now()));
  }

  /** One step: renew if due. Resolves to what happened and when to call again. */
  async tick(): Promise<{ outcome: 'renewed' | 'not-due' | 'failed'; nextInMs: number; error?: ApiError }> {
    const due = this.msUntilDue();
    if (due > 0) return { outcome: 'not-due', nextInMs: due };
    try {
      const { held, reload } = await rotateOnce({ ...this.cfg, current: this.held, joinToken: this.held ? undefined : this.cfg.joinToken });
      this.held = held;
      this.failures = 0;
      const nextInMs = this.msUntilDue();
      this.cfg.onEvent({ event: 'renewed', spiffeId: held.spiffeId, serial: held.serial, notAfter: new Date(held.notAfter).toISOString(), nextCheckInMs: nextInMs, reload });
      return { outcome: 'renewed', nextInMs };
    } catch (err) {
      const error = err instanceof ApiError ? err : new ApiError('ERR_GRPC', (err as Error).message, { cause: err });
      this.failures++;
      const backoff = Math.min(this.cfg.maxBackoffMs, this.cfg.minBackoffMs * 2 ** (this.failures - 1));
      // A rate-limit refusal says when to come back: never earlier than that.
      const nextInMs = Math.max(backoff, error.retryAfterMs ?? 0);
      this.cfg.onEvent({ event: 'failed', code: error.code, message: error.message, temporary: error.temporary, retryInMs: nextInMs });
      return { outcome: 'failed', nextInMs, error };
    }
  }

  /** Run `tick()` forever with timers until {@link stop}. */
  start(): void {
    const loop = () => {
      if (this.stopped) return;
      void this.tick().then((r) => {
        if (!this.stopped) this.timer = setTimeout(loop, Math.max(1000, r.nextInMs));
      });
    };
    loop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
