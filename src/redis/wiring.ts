/**
 * How the runtime (src/cli/runtime.ts) builds the Redis parts from a config: the process's shared
 * connection, the DNS second level and the SIQ cache. Each returns undefined when the config
 * does not ask for it, so the caller keeps its memory-only behaviour.
 */
import type { Logger } from '../engine/engine.ts';
import type { Resolver } from '../dns/types.ts';
import { MemorySiqCache, type SiqCache } from '../siq/cache.ts';
import type { RedisConfig } from './config.ts';
import { type RedisConnection, sharedRedis } from './connection.ts';
import { RedisDnsCache } from './dns-cache.ts';
import { RedisSiqCache, TieredSiqCache } from './siq-cache.ts';

/** The connection for `redis.url` (shared in the process), or undefined when no URL is set. */
export function redisFor(config: { redis: RedisConfig }, log?: Logger): RedisConnection | undefined {
  return config.redis.url ? sharedRedis(config.redis, log) : undefined;
}

interface ResolverCacheConfig {
  resolver: { cache: false | { minTtl: number; maxTtl: number; negativeMaxTtl: number; backend: 'memory' | 'redis' } };
}

/** The `secondLevel` for createResolver when `resolver.cache.backend` is redis. */
export function dnsSecondLevel(config: ResolverCacheConfig, redis: RedisConnection | undefined): ((stub: Resolver) => Resolver) | undefined {
  const c = config.resolver.cache;
  if (c === false || c.backend !== 'redis' || !redis) return undefined;
  return (stub) => new RedisDnsCache(stub, redis, { minTtl: c.minTtl, maxTtl: c.maxTtl, negativeMaxTtl: c.negativeMaxTtl });
}

interface SiqCacheConfig {
  siq: { cache: { maxEntries: number; backend: 'memory' | 'redis' } };
}

/**
 * The SIQ cache for `siq.cache.backend: redis`: the usual memory cache (max_entries) in front of
 * the shared Redis one (max_entries 0 = 10000, as for the client's own). Undefined for backend memory (the client makes its own).
 */
export function siqCacheFor(config: SiqCacheConfig, redis: RedisConnection | undefined, log?: Logger): SiqCache | undefined {
  if (config.siq.cache.backend !== 'redis') return undefined;
  if (!redis) {
    log?.('warn', 'siq.cache.backend is redis but checkid started without redis.url: the SIQ cache stays in memory until a restart');
    return undefined;
  }
  const local = new MemorySiqCache({ maxEntries: config.siq.cache.maxEntries || 10_000 });
  return new TieredSiqCache(local, new RedisSiqCache(redis));
}
