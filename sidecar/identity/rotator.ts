import { generateKeyPair, privateKeyToPem, type KeyAlgorithm } from '../../ca/keys.ts';
import { createCsr } from '../../ca/csr.ts';
import type { Clock } from '../../common/clock.ts';
import type { Logger } from '../../common/log.ts';
import { IdentityError } from './errors.ts';
import { buildIdentity, identityState, type Identity, type IdentityState } from './identity.ts';
import { runReloadCommand } from './reload.ts';
import { backoffDelay, nextRotationAt, shouldRotate, type BackoffConfig } from './rotation.ts';
import type { IdentitySource } from './source.ts';
import { loadIdentity, writeIdentityFiles } from './store.ts';

/** File names written into `tlsDir` for Postfix (`smtp_tls_cert_file`…) and Dovecot (`ssl_cert`). */
/** Longest wait between attempts while the node has no valid certificate. */
export const EXPIRED_RETRY_MS = 30_000;

export const TLS_FILES = { key: 'node.key', chain: 'node.crt', bundle: 'bundle.pem' } as const;

/** Configuration of {@link IdentityRotator}; the constructor fills the defaults. */
export interface IdentityRotatorConfig {
  source: IdentitySource;
  clock: Clock;
  /** Where the node key, certificate and bundle survive restarts. */
  stateDir: string;
  /** Where PEM files for Postfix/Dovecot go (node.crt = leaf + issuer, node.key 0600, bundle.pem). */
  tlsDir?: string;
  /** Shell command run after each rotation, e.g. `postfix reload && doveadm reload`. */
  reloadCommand?: string;
  /** Kill the reload command after this long (default 30 s). */
  reloadTimeoutMs?: number;
  /** One-time join token, used only while the node has no certificate. */
  joinToken?: string;
  keyAlgorithm?: KeyAlgorithm;
  /** Called after every successful rotation (and after loading a certificate on start). */
  onRotate?: (identity: Identity) => void;
  /** Retry delays after a failure (default 1 s doubling up to 5 min). */
  backoff?: BackoffConfig;
  log?: Logger;
  /** 0..1; drives jitter and backoff (tests pass a fixed one). */
  random?: () => number;
  /** Longest sleep of the timer loop, so a stepped wall clock is noticed (default 60 s). */
  maxSleepMs?: number;
}

/** Counters of a rotator. */
export interface RotatorStats {
  rotations: number;
  failures: number;
  reloadFailures: number;
  /** Consecutive failed attempts (0 after a success). */
  attempt: number;
}

type Filled = Required<Omit<IdentityRotatorConfig, 'tlsDir' | 'reloadCommand' | 'joinToken' | 'onRotate' | 'log'>> &
  Pick<IdentityRotatorConfig, 'tlsDir' | 'reloadCommand' | 'joinToken' | 'onRotate' | 'log'>;

/**
 * Keeps the node's mesh certificate fresh: generates a key locally (it never leaves the node),
 * joins with the token the first time, renews with the current certificate at the jittered
 * half-life, writes the files Postfix/Dovecot read, runs the reload command and tells listeners
 * (ingress, dialer) to swap their TLS contexts. Failures keep the current certificate and retry
 * with exponential backoff; past notAfter `state()` is `expired` and the mesh fails closed until
 * the control plane is back.
 *
 * `tick()` does one step if one is due and says when the next is; `start()` runs it on a timer.
 * Tests drive `tick()` with a `ManualClock`.
 *
 * @example
 * const rotator = new IdentityRotator({ source, clock: systemClock, stateDir, tlsDir, joinToken });
 * rotator.onRotate(() => { ingress.updateIdentity(); dialer.updateIdentity(); });
 * await rotator.start();
 */
export class IdentityRotator {
  readonly stats: RotatorStats = { rotations: 0, failures: 0, reloadFailures: 0, attempt: 0 };
  private readonly cfg: Filled;
  private readonly listeners = new Set<(identity: Identity) => void>();
  private identity: Identity | undefined;
  private jitter = 0;
  private nextAttemptAt = 0;
  private loaded = false;
  private inFlight: Promise<number> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(cfg: IdentityRotatorConfig) {
    this.cfg = {
      keyAlgorithm: 'P-256',
      backoff: { initialMs: 1000, maxMs: 300_000 },
      random: Math.random,
      reloadTimeoutMs: 30_000,
      maxSleepMs: 60_000,
      ...cfg,
    };
    if (cfg.onRotate) this.listeners.add(cfg.onRotate);
    this.jitter = this.drawJitter();
  }

  /** The current identity, or undefined before the first certificate. */
  current(): Identity | undefined {
    return this.identity;
  }

  /** `valid`, `expired` (fail closed) or `none` (never joined), at the clock's now. */
  state(): IdentityState {
    return identityState(this.identity, this.cfg.clock.now());
  }

  /** When the next renewal (or retry) is due, ms since epoch. */
  nextDueAt(): number {
    return this.nextAttemptAt;
  }

  /** Add a rotation listener; returns a function that removes it. */
  onRotate(listener: (identity: Identity) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Load the key and certificate a previous run left in `stateDir`. Renewal then waits until
   * `shouldRotate` says so: a restart does not cost the control plane a signature.
   */
  async load(): Promise<IdentityState> {
    this.loaded = true;
    const found = await loadIdentity(this.cfg.stateDir);
    if (found) {
      this.identity = found;
      this.jitter = this.drawJitter();
      this.nextAttemptAt = nextRotationAt(found, this.jitter);
      this.cfg.log?.info({ spiffeId: found.spiffeId, serial: found.serial, notAfter: found.notAfter.toISOString(), state: this.state() }, 'identity loaded from state dir');
      this.notify(found);
    }
    return this.state();
  }

  /**
   * Do one step if one is due: renew when there is no certificate or `shouldRotate` says so and
   * no backoff is pending. Never throws for a failed renewal (logged, counted, retried later).
   * Returns when the next step is due (ms since epoch).
   */
  tick(): Promise<number> {
    if (!this.inFlight) {
      this.inFlight = this.step().finally(() => {
        this.inFlight = undefined;
      });
    }
    return this.inFlight;
  }

  /** Load, then run {@link tick} on a timer until {@link stop}. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (!this.loaded) await this.load();
    const loop = async () => {
      if (!this.running) return;
      const due = await this.tick();
      if (!this.running) return;
      const wait = Math.max(0, Math.min(this.cfg.maxSleepMs, due - this.cfg.clock.now()));
      this.timer = setTimeout(() => void loop(), wait);
      this.timer.unref();
    };
    await loop();
  }

  /** Stop the timer loop (an in-flight request finishes on its own). */
  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private drawJitter(): number {
    return (this.cfg.random() * 2 - 1) * 0.1;
  }

  private async step(): Promise<number> {
    if (!this.loaded) await this.load();
    const now = this.cfg.clock.now();
    if (now < this.nextAttemptAt) return this.nextAttemptAt;
    if (this.identity && !shouldRotate(now, this.identity, this.jitter)) {
      this.nextAttemptAt = nextRotationAt(this.identity, this.jitter);
      return this.nextAttemptAt;
    }
    try {
      await this.renew();
      this.stats.attempt = 0;
      this.nextAttemptAt = nextRotationAt(this.identity!, this.jitter);
    } catch (err) {
      this.stats.failures++;
      this.stats.attempt++;
      // Without a valid certificate the mesh is closed: keep retrying at least every 30 s so the
      // node is back soon after the control plane is.
      const backoff = backoffDelay(this.stats.attempt, this.cfg.backoff, this.cfg.random);
      const delay = this.state() === 'valid' ? backoff : Math.min(backoff, EXPIRED_RETRY_MS);
      this.nextAttemptAt = now + delay;
      this.cfg.log?.warn(
        { code: (err as { code?: string }).code, err: (err as Error).message, attempt: this.stats.attempt, retryInMs: delay, state: this.state() },
        'certificate renewal failed; keeping the current certificate',
      );
    }
    return this.nextAttemptAt;
  }

  private async renew(): Promise<void> {
    const keyPair = generateKeyPair(this.cfg.keyAlgorithm);
    const keyPem = privateKeyToPem(keyPair.privateKey);
    const csrDer = createCsr(keyPair);
    const current = this.identity;
    // Renew with the current certificate while it is still valid; the join token is only for a
    // node without one (the control plane accepts each token once).
    // The whole chain: the control plane's TLS layer verifies it against its roots (it has no
    // copy of our issuing CA, which after an issuing-CA rotation may not be its current one).
    const usable = current && this.state() === 'valid' ? { certPem: current.chainPem, keyPem: current.keyPem } : undefined;
    // Past expiry (the control plane was down too long) the node rejoins by itself: its last
    // key signs the new CSR (DESIGN.md: "recover by themselves when the control plane returns").
    const expired = current && !usable ? { certPem: current.chainPem, keyPem: current.keyPem } : undefined;
    if (!usable && !expired && !this.cfg.joinToken) throw new IdentityError('ERR_IDENTITY_NONE', 'no certificate and no join token: pass joinTokenFile');
    let res;
    try {
      res = await this.cfg.source.sign({ csrDer, ...(usable ? { current: usable } : expired ? { expired } : { joinToken: this.cfg.joinToken }) });
    } catch (err) {
      throw new IdentityError('ERR_IDENTITY_SOURCE', `the control plane did not sign: ${(err as Error).message}`, { cause: err });
    }
    const identity = buildIdentity({ keyPem, chainPem: res.chainPem, bundlePem: res.bundlePem });
    await writeIdentityFiles(this.cfg.stateDir, identity);
    if (this.cfg.tlsDir) await writeIdentityFiles(this.cfg.tlsDir, identity, TLS_FILES);
    this.identity = identity;
    this.jitter = this.drawJitter();
    this.stats.rotations++;
    this.cfg.log?.info({ spiffeId: identity.spiffeId, serial: identity.serial, notAfter: identity.notAfter.toISOString(), joined: !usable }, 'certificate rotated');
    if (this.cfg.reloadCommand) {
      const r = await runReloadCommand(this.cfg.reloadCommand, this.cfg.reloadTimeoutMs);
      if (!r.ok) {
        this.stats.reloadFailures++;
        this.cfg.log?.error({ exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, stderr: r.stderr }, 'reload command failed; Postfix/Dovecot may still use the previous certificate');
      }
    }
    this.notify(identity);
  }

  private notify(identity: Identity): void {
    for (const l of this.listeners) {
      try {
        l(identity);
      } catch (err) {
        this.cfg.log?.error({ err: (err as Error).message }, 'rotation listener failed');
      }
    }
  }
}
