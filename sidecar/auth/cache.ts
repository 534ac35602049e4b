import type { Clock } from '../../common/clock.ts';

interface Entry<V> {
  value: V;
  expiresAt: number;
}

/**
 * A bounded LRU map whose entries expire. A `Map` keeps insertion order, so re-inserting on
 * every hit makes the first key the least recently used one; eviction drops it. O(1) per call.
 */
export class TtlLru<V> {
  private readonly map = new Map<string, Entry<V>>();
  private readonly max: number;
  private readonly clock: Clock;

  constructor(max: number, clock: Clock) {
    this.max = Math.max(1, max);
    this.clock = clock;
  }

  /** The live value for `key`, or undefined when absent or expired (expired entries are dropped). */
  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.clock.now()) {
      this.map.delete(key);
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  /** Store `value` for `ttlMs` milliseconds; a TTL of 0 or less stores nothing. */
  set(key: string, value: V, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.map.delete(key);
    this.map.set(key, { value, expiresAt: this.clock.now() + ttlMs });
    while (this.map.size > this.max) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
    }
  }

  /** Number of entries held (expired ones included until touched). */
  get size(): number {
    return this.map.size;
  }

  /** Drop everything. */
  clear(): void {
    this.map.clear();
  }
}
