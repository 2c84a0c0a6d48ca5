/**
 * SIQ answers shared through Redis, so a fleet of checkid daemons asks the SIQ server once per
 * (servers, type, IP, domain) and TTL instead of once per daemon.
 *
 * The SiqClient decides what is cacheable and for how long (scores and -02 UNKNOWN with a TTL;
 * never TEMPFAIL, ERROR, REDIRECT, timeouts): this cache stores what it is given as JSON under
 * `<prefix>siq:<client key>` with PX = expiresAt − now, and hands back only entries not yet
 * expired. A Redis failure is a miss (get) or a dropped write (set: counted, logged, and thrown
 * so the client reports the answer as not cached; the client never fails a query for it).
 */
import { type Clock, systemClock } from '../common/clock.ts';
import type { MemorySiqCache, SiqCache, SiqCacheEntry } from '../siq/cache.ts';
import type { RedisConnection } from './connection.ts';
import { parseStoredObject } from './stored.ts';

/** an entry is a few hundred bytes; anything far larger is not ours */
const MAX_ENTRY_BYTES = 16_384;

const KINDS = new Set(['score', 'unknown', 'tempfail', 'redirect', 'error']);

/** Checks the shape of a stored entry (corrupt or foreign data is a miss, not a crash). */
export function readSiqEntry(text: string): SiqCacheEntry | null {
  const value = parseStoredObject(text, MAX_ENTRY_BYTES);
  if (!value) return null;
  const e = value as Record<string, unknown>;
  const r = e.reply as Record<string, unknown> | null | undefined;
  if (typeof e.server !== 'string' || typeof e.storedAt !== 'number' || typeof e.expiresAt !== 'number') return null;
  if (!r || typeof r !== 'object' || typeof r.score !== 'number' || typeof r.kind !== 'string' || !KINDS.has(r.kind)) return null;
  if (!Array.isArray(r.anomalies) || typeof r.id !== 'number' || typeof r.text !== 'string') return null;
  return value as SiqCacheEntry;
}

export interface RedisSiqCacheOptions {
  clock?: Clock;
}

export interface RedisSiqCacheStats {
  hits: number;
  misses: number;
  /** entries Redis held that were not ours or not valid JSON (each is a miss) */
  corrupt: number;
  inserts: number;
}

export class RedisSiqCache implements SiqCache {
  private readonly redis: RedisConnection;
  private readonly clock: Clock;
  private readonly counters: RedisSiqCacheStats = { hits: 0, misses: 0, corrupt: 0, inserts: 0 };

  constructor(redis: RedisConnection, options: RedisSiqCacheOptions = {}) {
    this.redis = redis;
    this.clock = options.clock ?? systemClock;
  }

  /** The Redis key of a client cache key. */
  keyOf(key: string): string {
    return this.redis.key('siq', key);
  }

  stats(): RedisSiqCacheStats {
    return { ...this.counters };
  }

  async get(key: string): Promise<SiqCacheEntry | undefined> {
    const text = await this.redis.attempt('siq.get', (c) => c.get(this.keyOf(key)), null);
    if (text === null) {
      this.counters.misses++;
      return undefined;
    }
    const entry = readSiqEntry(String(text));
    if (!entry) {
      this.counters.corrupt++;
      this.counters.misses++;
      return undefined;
    }
    if (entry.expiresAt <= this.clock.now()) {
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    return entry;
  }

  async set(key: string, entry: SiqCacheEntry): Promise<void> {
    const ms = Math.floor(entry.expiresAt - this.clock.now());
    if (!(ms > 0)) return;
    const ok = await this.redis.attempt(
      'siq.set',
      async (c) => {
        await c.set(this.keyOf(key), JSON.stringify(entry), { PX: ms });
        return true;
      },
      false,
      { write: true },
    );
    if (!ok) throw new Error('the SIQ answer was not stored in Redis (counted in checkid_redis_writes_dropped_total)');
    this.counters.inserts++;
  }
}

/**
 * A small in-memory cache in front of a shared one: hits stay in the process (no round trip),
 * a local miss asks the shared cache and keeps what it finds, stores go to both. Entries carry
 * their absolute expiry, so the local copy never outlives the shared one's TTL.
 */
export class TieredSiqCache implements SiqCache {
  readonly local: MemorySiqCache;
  readonly shared: SiqCache;

  constructor(local: MemorySiqCache, shared: SiqCache) {
    this.local = local;
    this.shared = shared;
  }

  async get(key: string): Promise<SiqCacheEntry | undefined> {
    const near = this.local.get(key);
    if (near) return near;
    let far: SiqCacheEntry | undefined;
    try {
      far = await this.shared.get(key);
    } catch {
      far = undefined;
    }
    if (far) this.local.set(key, far);
    return far;
  }

  async set(key: string, entry: SiqCacheEntry): Promise<void> {
    this.local.set(key, entry);
    try {
      await this.shared.set(key, entry);
    } catch {
      // the shared write is best effort; the local copy serves this daemon
    }
  }
}
