/**
 * A TTL-aware cache in front of any Resolver: positive answers and negative ones (NXDOMAIN,
 * NODATA; RFC 2308) are kept for their TTL clamped to the configured bounds; failures are not
 * cached, except SERVFAIL when `servfailTtl` is set (RFC 2308 §7.1 allows up to 5 minutes). The
 * size is bounded; the least recently used entry goes first. Time comes from an injected Clock,
 * and the TTL handed out is the remaining one.
 */
import { type Clock, systemClock } from '../common/clock.ts';
import { canonicalName } from './codec.ts';
import type { DnsResult, QueryOptions, RecordType, Resolver } from './types.ts';

export interface CacheOptions {
  /** lower bound for positive and negative TTLs, seconds (default 0: a TTL of 0 is not cached) */
  minTtl?: number;
  /** upper bound for positive TTLs, seconds (default 86400) */
  maxTtl?: number;
  /** upper bound for NXDOMAIN/NODATA TTLs, seconds (default 3600) */
  negativeMaxTtl?: number;
  /** seconds to remember a SERVFAIL (default 0: never); capped at 300 */
  servfailTtl?: number;
  /** entries kept at most (default 10000) */
  maxEntries?: number;
  clock?: Clock;
}

export interface CacheStats {
  hits: number;
  misses: number;
  /** answers stored */
  inserts: number;
  /** entries dropped to stay under maxEntries */
  evictions: number;
  /** entries found expired on lookup */
  expired: number;
  entries: number;
}

type AnyResult = DnsResult<RecordType>;

interface Entry {
  result: AnyResult;
  /** epoch ms at which it was stored */
  stored: number;
  /** epoch ms after which it is stale */
  expires: number;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function seconds(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new Error(`${what} must be a number >= 0`);
  return value;
}

export class CachingResolver implements Resolver {
  readonly inner: Resolver;
  private readonly clock: Clock;
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly negativeMaxTtl: number;
  private readonly servfailTtl: number;
  private readonly maxEntries: number;
  /** Map iteration order is insertion order: re-inserting on a hit makes it an LRU list */
  private readonly entries = new Map<string, Entry>();
  private readonly counters = { hits: 0, misses: 0, inserts: 0, evictions: 0, expired: 0 };

  constructor(inner: Resolver, options: CacheOptions = {}) {
    this.inner = inner;
    this.clock = options.clock ?? systemClock;
    this.minTtl = seconds(options.minTtl, 0, 'minTtl');
    this.maxTtl = seconds(options.maxTtl, 86400, 'maxTtl');
    this.negativeMaxTtl = seconds(options.negativeMaxTtl, 3600, 'negativeMaxTtl');
    this.servfailTtl = Math.min(300, seconds(options.servfailTtl, 0, 'servfailTtl'));
    this.maxEntries = Math.max(1, Math.floor(seconds(options.maxEntries, 10000, 'maxEntries')));
    if (this.minTtl > this.maxTtl) throw new Error('minTtl is above maxTtl');
  }

  stats(): CacheStats {
    return { ...this.counters, entries: this.entries.size };
  }

  /** Forgets everything (or one name, all types). */
  clear(name?: string): void {
    if (name === undefined) {
      this.entries.clear();
      return;
    }
    const prefix = `${keyName(name)}/`;
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  async query<T extends RecordType>(name: string, type: T, options?: QueryOptions): Promise<DnsResult<T>> {
    let key: string;
    try {
      key = `${keyName(name)}/${type}`;
    } catch {
      // not a valid name: let the inner resolver word the error
      return this.inner.query(name, type, options);
    }
    const now = this.clock.now();
    const hit = this.entries.get(key);
    if (hit) {
      if (hit.expires > now) {
        this.counters.hits++;
        this.entries.delete(key);
        this.entries.set(key, hit);
        return withTtl(hit, now) as DnsResult<T>;
      }
      this.entries.delete(key);
      this.counters.expired++;
    }
    this.counters.misses++;
    const result = await this.inner.query(name, type, options);
    return this.store(key, result, this.clock.now()) as DnsResult<T>;
  }

  /** Stores what may be stored; returns the result with its TTL clamped to the bounds. */
  private store(key: string, result: AnyResult, now: number): AnyResult {
    let ttl: number;
    switch (result.status) {
      case 'ok':
        ttl = Math.min(this.maxTtl, Math.max(this.minTtl, result.ttl));
        break;
      case 'nxdomain':
      case 'nodata':
        ttl = Math.min(this.negativeMaxTtl, Math.max(this.minTtl, result.ttl));
        break;
      case 'servfail':
        ttl = this.servfailTtl;
        break;
      default:
        return result; // timeouts, REFUSED, FORMERR, local errors: never cached
    }
    const clamped = result.status === 'servfail' ? result : deepFreeze({ ...result, ttl });
    if (!(ttl > 0)) return clamped;
    this.entries.delete(key);
    this.entries.set(key, { result: deepFreeze(clamped), stored: now, expires: now + ttl * 1000 });
    this.counters.inserts++;
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.counters.evictions++;
    }
    return clamped;
  }
}

function keyName(name: string): string {
  return canonicalName(name).toLowerCase();
}

/** The stored answer with the TTL it has left (whole seconds, rounded down). */
function withTtl(entry: Entry, now: number): AnyResult {
  const r = entry.result;
  if (r.status === 'ok' || r.status === 'nxdomain' || r.status === 'nodata') {
    const left = Math.floor((entry.expires - now) / 1000);
    return { ...r, ttl: Math.max(0, left) };
  }
  return r;
}
