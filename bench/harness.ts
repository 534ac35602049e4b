/** One benchmark figure, printed next to the baseline measured in the same run. */
export interface BenchResult {
  /** Dotted name, e.g. `ca.issue`. */
  name: string;
  value: number;
  /** e.g. `certs/s`, `msg/s`, `ms`. */
  unit: string;
  /** The baseline figure from the same run (same unit), or null where there is none. */
  baseline: number | null;
  /** What the baseline is, e.g. `raw ECDSA P-256 sign+verify`. */
  baselineName?: string;
  /** value / baseline, or null. */
  ratio: number | null;
  /** A goal from the issue, for the reader; never enforced. */
  goal?: string;
}

/** A benchmark file in `bench/` exports `run` returning its figures. */
export type BenchFn = (opts: { quick: boolean }) => Promise<BenchResult[]>;

/** Build a result with its ratio computed. */
export function result(name: string, value: number, unit: string, baseline: number | null, baselineName?: string, goal?: string): BenchResult {
  return { name, value, unit, baseline, baselineName, ratio: baseline ? value / baseline : null, goal };
}

/** Run `fn` repeatedly for about `ms` milliseconds; returns operations per second. */
export async function rate(fn: () => unknown | Promise<unknown>, ms = 1500, batch = 1): Promise<number> {
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < ms) {
    for (let i = 0; i < batch; i++) await fn();
    n += batch;
  }
  return n / ((performance.now() - start) / 1000);
}

/** Synchronous variant of {@link rate}, without await overhead. */
export function rateSync(fn: () => unknown, ms = 1500, batch = 100): number {
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < ms) {
    for (let i = 0; i < batch; i++) fn();
    n += batch;
  }
  return n / ((performance.now() - start) / 1000);
}

/** The p-th percentile (0..100) of a list of numbers. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}
