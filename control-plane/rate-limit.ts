import type { Clock } from '../common/clock.ts';
import { systemClock } from '../common/clock.ts';

/** Token-bucket settings: `perMinute` sustained, `burst` at once. */
export interface RateLimitConfig {
  perMinute: number;
  burst: number;
  clock?: Clock;
  /** Buckets kept at most; the oldest are forgotten first (a full bucket holds no information). */
  maxKeys?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * One token bucket per key (peer identity or address). `take(key)` returns 0 when the request
 * may proceed, else how many milliseconds until a token is available.
 *
 * @example const rl = new RateLimiter({ perMinute: 60, burst: 10 }); if (rl.take('127.0.0.1') > 0) refuse();
 */
export class RateLimiter {
  private readonly perMs: number;
  private readonly burst: number;
  private readonly clock: Clock;
  private readonly maxKeys: number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(cfg: RateLimitConfig) {
    this.perMs = cfg.perMinute / 60_000;
    this.burst = Math.max(1, cfg.burst);
    this.clock = cfg.clock ?? systemClock;
    this.maxKeys = cfg.maxKeys ?? 100_000;
  }

  /** Take one token for `key`: 0 if granted, else the wait in ms before one is available. */
  take(key: string): number {
    const now = this.clock.now();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else {
      // A clock that steps back (NTP, tests) must not drain the bucket.
      b.tokens = Math.min(this.burst, b.tokens + Math.max(0, now - b.at) * this.perMs);
      b.at = Math.max(b.at, now);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return this.perMs > 0 ? Math.ceil((1 - b.tokens) / this.perMs) : 60_000;
  }
}
