import type { X509Certificate } from 'node:crypto';
import { loadCa, type LoadedCa } from '../ca/load.ts';
import { certificatesToPem } from '../ca/pem.ts';
import { issuersInForce, readMetadata } from '../ca/rotation.ts';
import type { Clock } from '../common/clock.ts';
import { systemClock } from '../common/clock.ts';
import type { Logger } from '../common/log.ts';

/** The CA directory as the control plane uses it. */
export interface CaState {
  ca: LoadedCa;
  /** Every root of bundle.pem, PEM (what snapshots and Sign responses carry). */
  bundlePem: string;
  /** Issuing CAs whose leaves are in use: current first, then a staged next one and the previous
   * one while they chain to the bundle (ca/rotation.ts `issuersInForce`). */
  issuers: X509Certificate[];
  issuersPem: string;
  /** Rotations so far (ca.json `generation`, 0 before the first). */
  generation: number;
}

/** Settings of {@link CaSource}; the constructor fills the defaults. */
export interface CaSourceConfig {
  dir: string;
  log: Logger;
  clock?: Clock;
  /** Called with every new CA state (not with an unchanged one); `reload()` resolves after it. */
  onChange: (state: CaState) => void | Promise<void>;
  /** Called after every reload attempt with its outcome (metrics, logs). */
  onResult?: (result: 'changed' | 'unchanged' | 'error') => void;
}

const fingerprintOf = (s: CaState) => [s.generation, s.ca.issuer.cert.fingerprint256, ...s.ca.bundle.roots.map((r) => r.fingerprint256), '|', ...s.issuers.map((c) => c.fingerprint256)].join(',');

/** Load the CA directory (the issuing CA proves itself in loadCa) and the rotation state. */
export async function loadCaState(dir: string, now: number): Promise<CaState> {
  const ca = await loadCa(dir, { now });
  const meta = await readMetadata(dir);
  const issuers = await issuersInForce(dir, ca.issuer.cert, ca.bundle, now);
  return { ca, bundlePem: ca.bundle.toPem(), issuers, issuersPem: certificatesToPem(issuers), generation: meta.generation ?? 0 };
}

/**
 * The CA directory as a stream of good states, like PolicySource for the policy: `reload()` (on
 * SIGHUP, or `ControlPlane.reloadCa()`) reads issuer.pem/issuer.key/bundle.pem/ca.json and the
 * rotation files again; a CA that fails to load or to prove itself (e.g. files caught half-way
 * through a copy) is logged and counted, and the last good one stays in use. A CA of another
 * trust domain is refused: a mesh cannot change its name under running nodes.
 */
export class CaSource {
  current!: CaState;
  lastError: { at: number; message: string } | undefined;
  errorsTotal = 0;
  private readonly cfg: Required<CaSourceConfig>;
  private running: Promise<unknown> = Promise.resolve();

  constructor(cfg: CaSourceConfig) {
    this.cfg = { clock: systemClock, onResult: () => {}, ...cfg };
  }

  /** Load once (throws when it fails: there is nothing to issue with). */
  async start(): Promise<CaState> {
    this.current = await loadCaState(this.cfg.dir, this.cfg.clock.now());
    return this.current;
  }

  /** Reload now. Reloads are serialized; resolves to what happened. */
  reload(): Promise<'changed' | 'unchanged' | 'error'> {
    const next = this.running.then(() => this.load()).then((r) => {
      this.cfg.onResult(r);
      return r;
    });
    this.running = next.catch(() => {});
    return next;
  }

  private async load(): Promise<'changed' | 'unchanged' | 'error'> {
    const { dir, log } = this.cfg;
    let state: CaState;
    try {
      state = await loadCaState(dir, this.cfg.clock.now());
      if (state.ca.trustDomain !== this.current.ca.trustDomain) {
        throw new Error(`the CA in ${dir} is for trust domain ${state.ca.trustDomain}, this mesh is ${this.current.ca.trustDomain}`);
      }
    } catch (err) {
      this.lastError = { at: this.cfg.clock.now(), message: (err as Error).message };
      this.errorsTotal++;
      log.error({ dir, err: (err as Error).message, code: (err as { code?: string }).code, issuer: this.current.ca.issuer.cert.fingerprint256 }, 'CA reload refused; still using the last good CA');
      return 'error';
    }
    this.lastError = undefined;
    if (fingerprintOf(state) === fingerprintOf(this.current)) return 'unchanged';
    this.current = state;
    log.info({ generation: state.generation, issuer: state.ca.issuer.cert.fingerprint256, roots: state.ca.bundle.roots.map((r) => r.fingerprint256), issuers: state.issuers.length }, 'CA reloaded');
    await this.cfg.onChange(state);
    return 'changed';
  }
}
