/**
 * The SIQ answer cache, behind an interface so a shared one (Redis) can replace the in-memory
 * one. Entries are plain JSON data; the client decides what may be stored and for how long
 * (scores and UNKNOWN with a TTL > 0; never ERROR, TEMPFAIL, REDIRECT or a timeout).
 */
import { type Clock, systemClock } from '../common/clock.ts';
import { formatSiqServer, type SiqServer } from './address.ts';
import type { SiqQueryType, SiqReply } from './codec.ts';

export interface SiqCacheEntry {
  reply: SiqReply;
  /** the server that answered, "host:port" */
  server: string;
  /** epoch ms */
  storedAt: number;
  /** epoch ms after which the entry must not be used */
  expiresAt: number;
}

/**
 * A cache of SIQ answers. Methods may be synchronous or return promises (a network cache).
 * `get` must not return an entry past its `expiresAt`; a failing `get` is treated as a miss and
 * a failing `set` is ignored by the client.
 */
export interface SiqCache {
  get(key: string): SiqCacheEntry | undefined | Promise<SiqCacheEntry | undefined>;
  set(key: string, entry: SiqCacheEntry): void | Promise<void>;
}

/** The key: the server set (order-independent), the query type, the IP and the domain. */
export function siqCacheKey(servers: readonly Pick<SiqServer, 'host' | 'port'>[], type: SiqQueryType, ip: string, domain: string): string {
  const set = servers.map(formatSiqServer).sort().join(',');
  return `siq|${set}|${type}|${ip}|${domain.toLowerCase()}`;
}

export interface MemorySiqCacheOptions {
  /** entries kept at most; the least recently used goes first (default 10000) */
  maxEntries?: number;
  clock?: Clock;
}

export interface SiqCacheStats {
  hits: number;
  misses: number;
  inserts: number;
  evictions: number;
  expired: number;
  entries: number;
}

export class MemorySiqCache implements SiqCache {
  private readonly maxEntries: number;
  private readonly clock: Clock;
  /** insertion order is recency: a hit re-inserts */
  private readonly entries = new Map<string, SiqCacheEntry>();
  private readonly counters = { hits: 0, misses: 0, inserts: 0, evictions: 0, expired: 0 };

  constructor(options: MemorySiqCacheOptions = {}) {
    const max = options.maxEntries ?? 10_000;
    if (!Number.isInteger(max) || max < 1) throw new Error('maxEntries must be an integer >= 1');
    this.maxEntries = max;
    this.clock = options.clock ?? systemClock;
  }

  get(key: string): SiqCacheEntry | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.counters.misses++;
      return undefined;
    }
    this.entries.delete(key);
    if (this.clock.now() >= entry.expiresAt) {
      this.counters.expired++;
      this.counters.misses++;
      return undefined;
    }
    this.entries.set(key, entry);
    this.counters.hits++;
    return entry;
  }

  set(key: string, entry: SiqCacheEntry): void {
    if (entry.expiresAt <= this.clock.now()) return;
    this.entries.delete(key);
    this.entries.set(key, Object.freeze({ ...entry, reply: Object.freeze({ ...entry.reply }) }));
    this.counters.inserts++;
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.counters.evictions++;
    }
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  stats(): SiqCacheStats {
    return { ...this.counters, entries: this.entries.size };
  }
}
