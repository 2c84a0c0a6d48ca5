/**
 * Token buckets per client address: `perSecond` tokens a second up to `burst`; a request takes
 * one. At most `maxKeys` buckets are kept (the oldest created is dropped first), so a flood of
 * spoofed sources costs bounded memory; a dropped bucket starts full again, which only ever errs
 * towards answering.
 */
export interface RateLimitOptions {
  perSecond: number;
  burst: number;
  /** default 100 000 */
  maxKeys?: number;
  /** ms, monotonic (default performance.now) */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly burst: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(options: RateLimitOptions) {
    if (!(options.perSecond > 0) || !(options.burst >= 1))
      throw new Error('rate limit: per_second must be > 0 and burst >= 1');
    this.perMs = options.perSecond / 1000;
    this.burst = options.burst;
    this.maxKeys = options.maxKeys ?? 100_000;
    this.now = options.now ?? (() => performance.now());
  }

  /** Takes a token for `key`; false when its bucket is empty. */
  take(key: string): boolean {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    } else if (t > b.at) {
      b.tokens = Math.min(this.burst, b.tokens + (t - b.at) * this.perMs);
      b.at = t;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }
}
