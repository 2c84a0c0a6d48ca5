/**
 * Token buckets per key (a client address, an account name): `capacity` tries at once, refilled
 * at `capacity` per `windowMs`. Bounded: beyond `maxKeys` the least recently used key is dropped.
 * IPv6 clients are keyed by their /64, since one host usually holds a whole /64.
 */
import { type Clock, systemClock } from '../common/clock.ts';
import { parseIp } from '../common/ip.ts';

export interface RateLimitOptions {
  capacity?: number;
  windowMs?: number;
  maxKeys?: number;
  clock?: Clock;
}

export interface RateDecision {
  allowed: boolean;
  /** when not allowed: how long until one more try is allowed */
  retryAfterMs: number;
  remaining: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly capacity: number;
  readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly clock: Clock;
  private readonly buckets = new Map<string, Bucket>();

  constructor(opts: RateLimitOptions = {}) {
    this.capacity = opts.capacity ?? 10;
    this.windowMs = opts.windowMs ?? 15 * 60_000;
    this.maxKeys = opts.maxKeys ?? 100_000;
    this.clock = opts.clock ?? systemClock;
    if (!(this.capacity >= 1) || !(this.windowMs > 0))
      throw new RangeError('rate limit: capacity >= 1 and windowMs > 0');
  }

  private refill(key: string): Bucket {
    const now = this.clock.now();
    const b = this.buckets.get(key) ?? { tokens: this.capacity, at: now };
    const rate = this.capacity / this.windowMs;
    b.tokens = Math.min(this.capacity, b.tokens + Math.max(0, now - b.at) * rate);
    b.at = now;
    this.buckets.delete(key);
    this.buckets.set(key, b);
    while (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    return b;
  }

  /** Takes one token for `key` when there is one. */
  take(key: string): RateDecision {
    const b = this.refill(key);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, retryAfterMs: 0, remaining: Math.floor(b.tokens) };
    }
    const rate = this.capacity / this.windowMs;
    return { allowed: false, retryAfterMs: Math.ceil((1 - b.tokens) / rate), remaining: 0 };
  }

  /** Forgets `key` (a full bucket again). */
  reset(key: string): void {
    this.buckets.delete(key);
  }
}

/** The rate-limit key of a client address: the address for IPv4, its /64 for IPv6. */
export function addressKey(address: string): string {
  const ip = parseIp(address);
  if (!ip) return address;
  if (ip.family === 4) return ip.bytes.join('.');
  return `${Buffer.from(ip.bytes.subarray(0, 8)).toString('hex')}::/64`;
}
