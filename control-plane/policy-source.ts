import { watch, type FSWatcher } from 'node:fs';
import { loadPolicy, compilePolicy, serializeCompiled, formatProblem, PolicyError, type Policy } from '../policies/index.ts';
import type { Clock } from '../common/clock.ts';
import { systemClock } from '../common/clock.ts';
import type { Logger } from '../common/log.ts';
import { policyRevision } from './revision.ts';

/** A policy that loaded and compiled. */
export interface LoadedPolicy {
  revision: string;
  policy: Policy;
  /** serializeCompiled output, as it goes into snapshots. */
  placement: string;
  shardIds: ReadonlySet<string>;
}

/** The last failed load. */
export interface PolicyFailure {
  at: number;
  /** One line per problem, `file:line:col: message`. */
  message: string;
}

/** Settings of {@link PolicySource}; the constructor fills the defaults. */
export interface PolicySourceConfig {
  dir: string;
  log: Logger;
  clock?: Clock;
  /** Quiet time after the last file event before reloading (editors write in bursts). Default 250 ms. */
  debounceMs?: number;
  /** Watch the directory with fs.watch. Default true. */
  watch?: boolean;
  /** Called with every new good revision (not with an unchanged one); `reload()` resolves after it. */
  onChange: (p: LoadedPolicy) => void | Promise<void>;
  /** Called after every load attempt with its outcome (metrics). */
  onResult?: (result: 'changed' | 'unchanged' | 'error') => void;
}

/**
 * The policy directory as a stream of good revisions. `reload()` loads, validates and compiles;
 * an invalid change is recorded (`lastError`, `errorsTotal`, a log line) and the last good policy
 * stays current. Changes are picked up by fs.watch (debounced) and by explicit `reload()` (SIGHUP).
 */
export class PolicySource {
  current: LoadedPolicy | undefined;
  lastError: PolicyFailure | undefined;
  errorsTotal = 0;
  private readonly cfg: Required<PolicySourceConfig>;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(cfg: PolicySourceConfig) {
    this.cfg = { clock: systemClock, debounceMs: 250, watch: true, onResult: () => {}, ...cfg };
  }

  /** Load once (throws when the first load fails: there is nothing to serve), then start watching. */
  async start(): Promise<LoadedPolicy> {
    const first = await this.reload();
    if (first === 'error' || !this.current) throw new PolicyError('ERR_POLICY_INVALID', `policy in ${this.cfg.dir} is invalid:\n${this.lastError?.message ?? ''}`);
    if (this.cfg.watch) {
      this.watcher = watch(this.cfg.dir, { recursive: true }, () => this.schedule());
      this.watcher.on('error', (err) => this.cfg.log.warn({ err, dir: this.cfg.dir }, 'policy watch failed; use SIGHUP to reload'));
    }
    return this.current;
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload();
    }, this.cfg.debounceMs);
    this.timer.unref();
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
    let policy: Policy, placement: string;
    try {
      policy = loadPolicy(dir);
      placement = serializeCompiled(compilePolicy(policy));
    } catch (err) {
      const message = err instanceof PolicyError && err.problems.length > 0 ? err.problems.map(formatProblem).join('\n') : (err as Error).message;
      this.lastError = { at: this.cfg.clock.now(), message };
      this.errorsTotal++;
      log.error({ dir, problems: message.split('\n'), serving: this.current?.revision ?? null }, 'policy change refused; still serving the last good revision');
      return 'error';
    }
    const revision = await policyRevision(dir, policy.digest);
    this.lastError = undefined;
    if (this.current && this.current.revision === revision && this.current.placement === placement) return 'unchanged';
    this.current = { revision, policy, placement, shardIds: new Set(policy.shards.map((s) => s.id)) };
    log.info({ revision }, 'policy loaded');
    await this.cfg.onChange(this.current);
    return 'changed';
  }

  close(): void {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
  }
}
