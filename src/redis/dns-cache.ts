/**
 * A shared second-level DNS cache: sits between the in-memory CachingResolver and the stub
 * resolver (createResolver's `secondLevel`), so a lookup one daemon made serves the others.
 *
 * What it keeps follows the memory cache's rules (src/dns/cache.ts): answers (`ok`) for their
 * TTL clamped to [minTtl, maxTtl], NXDOMAIN and NODATA (RFC 2308) clamped to
 * [minTtl, negativeMaxTtl]; a TTL of 0 and every failure (SERVFAIL, timeout, REFUSED…) are
 * never shared. Entries hold their absolute expiry and Redis drops them then (PX); a hit is
 * handed up with the TTL it has left. Writes do not hold up the lookup; a Redis failure is a
 * miss or a dropped write (counted in the connection's stats).
 *
 * Every daemon sharing a prefix should use the same upstream resolvers: an answer (and its AD
 * bit) is shared whichever resolver gave it.
 */
import { type Clock, systemClock } from '../common/clock.ts';
import { canonicalName } from '../dns/codec.ts';
import type { DnsResult, QueryOptions, RecordType, Resolver } from '../dns/types.ts';
import type { RedisConnection } from './connection.ts';
import { parseStoredObject } from './stored.ts';

export interface RedisDnsCacheOptions {
  /** seconds; as CacheOptions (defaults 0, 86400, 3600) */
  minTtl?: number;
  maxTtl?: number;
  negativeMaxTtl?: number;
  clock?: Clock;
}

export interface RedisDnsCacheStats {
  hits: number;
  misses: number;
  /** stored entries that did not parse (each is a miss) */
  corrupt: number;
  /** writes handed to Redis */
  stores: number;
}

type Shared = Extract<DnsResult<RecordType>, { status: 'ok' | 'nxdomain' | 'nodata' }>;

interface StoredEntry {
  /** the answer, TTL as clamped when stored */
  r: Shared;
  /** epoch ms after which it is stale */
  x: number;
}

const MAX_ENTRY_BYTES = 65_536;

function readEntry(text: string): StoredEntry | null {
  const v = parseStoredObject(text, MAX_ENTRY_BYTES);
  if (!v) return null;
  const e = v as { r?: { status?: unknown; ttl?: unknown; records?: unknown; authenticated?: unknown }; x?: unknown };
  if (typeof e.x !== 'number' || !e.r || typeof e.r.ttl !== 'number') return null;
  if (e.r.status === 'ok') {
    if (!Array.isArray(e.r.records) || typeof e.r.authenticated !== 'boolean') return null;
  } else if (e.r.status !== 'nxdomain' && e.r.status !== 'nodata') return null;
  return v as StoredEntry;
}

export class RedisDnsCache implements Resolver {
  readonly inner: Resolver;
  private readonly redis: RedisConnection;
  private readonly clock: Clock;
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly negativeMaxTtl: number;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly counters: RedisDnsCacheStats = { hits: 0, misses: 0, corrupt: 0, stores: 0 };

  constructor(inner: Resolver, redis: RedisConnection, options: RedisDnsCacheOptions = {}) {
    this.inner = inner;
    this.redis = redis;
    this.clock = options.clock ?? systemClock;
    this.minTtl = options.minTtl ?? 0;
    this.maxTtl = options.maxTtl ?? 86_400;
    this.negativeMaxTtl = options.negativeMaxTtl ?? 3_600;
  }

  stats(): RedisDnsCacheStats {
    return { ...this.counters };
  }

  /** Resolves when the writes started so far are done (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  async query<T extends RecordType>(name: string, type: T, options?: QueryOptions): Promise<DnsResult<T>> {
    let key: string;
    try {
      key = this.redis.key('dns', `${canonicalName(name).toLowerCase()}/${type}`);
    } catch {
      return this.inner.query(name, type, options);
    }
    const text = await this.redis.attempt('dns.get', (c) => c.get(key), null);
    if (text !== null) {
      const entry = readEntry(String(text));
      const now = this.clock.now();
      if (!entry) this.counters.corrupt++;
      else if (entry.x > now) {
        this.counters.hits++;
        return { ...entry.r, ttl: Math.max(0, Math.floor((entry.x - now) / 1000)) } as DnsResult<T>;
      }
    }
    this.counters.misses++;
    const result = await this.inner.query(name, type, options);
    this.store(key, result);
    return result;
  }

  private store(key: string, result: DnsResult<RecordType>): void {
    let ttl: number;
    if (result.status === 'ok') ttl = Math.min(this.maxTtl, Math.max(this.minTtl, result.ttl));
    else if (result.status === 'nxdomain' || result.status === 'nodata') ttl = Math.min(this.negativeMaxTtl, Math.max(this.minTtl, result.ttl));
    else return;
    if (!(ttl > 0)) return;
    const entry: StoredEntry = { r: { ...result, ttl }, x: this.clock.now() + ttl * 1000 };
    this.counters.stores++;
    const write = this.redis.attempt(
      'dns.set',
      async (c) => {
        await c.set(key, JSON.stringify(entry), { PX: Math.round(ttl * 1000) });
        return true;
      },
      false,
      { write: true },
    );
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
  }
}
