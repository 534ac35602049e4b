// Counts of one reliability test file (inputs tried, refusals by reason, crashes), printed as one
// block at the end of the file so a run shows what was actually exercised:
//   reliability: smtp-fuzz seed=1234 sessions=600 inputs=... crashes=0
import { after } from 'node:test';

/** Counters of one fuzzer or matrix, printed by {@link summary}'s `after` hook. */
export class Summary {
  readonly name: string;
  private readonly counts = new Map<string, number | string>();

  constructor(name: string) {
    this.name = name;
  }

  /** Add `n` to counter `key`. */
  add(key: string, n = 1): void {
    const v = this.counts.get(key);
    this.counts.set(key, (typeof v === 'number' ? v : 0) + n);
  }

  /** Set `key` to a value (a seed, a peak, a label). */
  set(key: string, value: number | string): void {
    this.counts.set(key, value);
  }

  /** The current value of a numeric counter (0 when never added). */
  get(key: string): number {
    const v = this.counts.get(key);
    return typeof v === 'number' ? v : 0;
  }

  /** One line: `reliability: NAME k=v k=v …`, in insertion order. */
  line(): string {
    return `reliability: ${this.name} ${[...this.counts].map(([k, v]) => `${k}=${v}`).join(' ')}`;
  }
}

/**
 * A summary for this test file, printed with console.log in an `after` hook of the file (so it
 * shows once per file, after every test ran, whatever their outcome). `crashes` starts at 0 and
 * is printed even when nothing crashed.
 */
export function summary(name: string): Summary {
  const s = new Summary(name);
  s.set('crashes', 0);
  after(() => {
    console.log(s.line());
  });
  return s;
}
