// Shared pieces of the fuzzers: a seeded PRNG (print the seed, replay a failure with
// MAILMESH_FUZZ_SEED), iteration scaling (MAILMESH_FUZZ_ITERATIONS multiplies the defaults) and
// a garbage-collected memory reading.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same inputs. */
export class Rng {
  private s: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.s = this.seed;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` random bytes. */
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** A derived generator (for a sub-task that must not shift the parent's sequence). */
  fork(): Rng {
    return new Rng(this.int(0x100000000));
  }
}

/** The seed CI uses when none is given: CI runs are reproducible regression runs (the same
 * inputs every time, so a red CI always means a change broke something); exploration with fresh
 * seeds happens in developers' runs (and `MAILMESH_FUZZ_SEED` replays any failure). */
export const CI_SEED = 20261127;

/** The run's seed: `MAILMESH_FUZZ_SEED` when set (to replay a failure), {@link CI_SEED} in CI,
 * else a fresh one. */
export function fuzzSeed(): number {
  const env = process.env.MAILMESH_FUZZ_SEED;
  if (env !== undefined && /^\d+$/.test(env)) return Number(env) >>> 0;
  if (process.env.CI === 'true') return CI_SEED;
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}

/** `base` scaled by `MAILMESH_FUZZ_ITERATIONS` (a multiplier, default 1). */
export function iterations(base: number): number {
  const f = Number(process.env.MAILMESH_FUZZ_ITERATIONS ?? '1');
  return Math.max(1, Math.round(base * (Number.isFinite(f) && f > 0 ? f : 1)));
}

/** Text to put in every failure message so that it can be replayed. */
export function replayHint(seed: number, what: string): string {
  return `${what} (replay with MAILMESH_FUZZ_SEED=${seed})`;
}

let gcFn: (() => void) | undefined;
/** Run a full garbage collection (exposes `gc` once through V8 flags; no CLI flag needed). */
export function collectGarbage(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** heapUsed + arrayBuffers after a full GC, in bytes. */
export function retainedBytes(): number {
  collectGarbage();
  collectGarbage();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Run `fn` over `items` with at most `limit` in flight; results in order. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** A promise that resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
