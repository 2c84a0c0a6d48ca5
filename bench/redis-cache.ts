/**
 * The shared Redis SIQ cache against the in-memory one, in the same run: cache get/set operations
 * per second (one at a time, and 64 in flight), and what it adds to a verdict that finds its SIQ
 * answer in the cache: checkID over an in-memory zone with the SIQ cache in memory, in Redis
 * alone (one GET per verdict), and tiered (memory in front of Redis: the default for
 * `siq.cache.backend: redis`). A real redis-server on loopback (test/support/redis.ts).
 *
 *   node bench/redis-cache.ts [--n 20000]
 *
 * Prints one JSON object; without /usr/bin/redis-server it prints {"skipped": reason}.
 */
import { existsSync } from 'node:fs';
import { Engine, prepareConfig } from '../src/engine/engine.ts';
import { defaultConfig } from '../src/policy/config.ts';
import { defaultRedisConfig } from '../src/redis/config.ts';
import { RedisConnection } from '../src/redis/connection.ts';
import { RedisSiqCache, TieredSiqCache } from '../src/redis/siq-cache.ts';
import { MemorySiqCache, type SiqCache, type SiqCacheEntry } from '../src/siq/cache.ts';
import { seedZone } from '../test/support/fixtures.ts';
import { REDIS_SERVER, startRedisServer } from '../test/support/redis.ts';
import { siqReply, startSiqServer } from '../test/support/siq-server.ts';
import { Zone } from '../test/support/zone.ts';
import { numberArg } from './support/args.ts';
import { measure } from './support/dns-process.ts';
import { ZoneResolver } from './support/zone-resolver.ts';

const N = numberArg('n', 20_000);

if (!existsSync(REDIS_SERVER)) {
  process.stdout.write(`${JSON.stringify({ bench: 'redis-cache', skipped: `redis-server not found at ${REDIS_SERVER}` })}\n`);
  process.exit(0);
}

const reply = siqReply(73, { id: 1, ipScore: 80 });
const entry = (): SiqCacheEntry => ({ reply, server: '192.0.2.53:6262', storedAt: Date.now(), expiresAt: Date.now() + 3_600_000 });
const KEYS = 1000;
const key = (i: number) => `siq|192.0.2.53:6262|mail|192.0.2.${i % 250}|d${i % KEYS}.example`;

async function cacheOps(cache: SiqCache): Promise<Record<string, { perSecond: number }>> {
  for (let i = 0; i < KEYS; i++) await cache.set(key(i), entry());
  const set1 = await measure(N, 1, async (i) => cache.set(key(i), entry()));
  const get1 = await measure(N, 1, async (i) => {
    if (!(await cache.get(key(i)))) throw new Error('a miss in the cache benchmark');
  });
  const set64 = await measure(N, 64, async (i) => cache.set(key(i), entry()));
  const get64 = await measure(N, 64, async (i) => cache.get(key(i)));
  return {
    set_sequential: { perSecond: set1.perSecond },
    get_sequential: { perSecond: get1.perSecond },
    set_64_in_flight: { perSecond: set64.perSecond },
    get_64_in_flight: { perSecond: get64.perSecond },
  };
}

const redisServer = await startRedisServer();
const siq = await startSiqServer({ script: () => ({ reply: { score: 73, ipScore: 80, ttl: 3600, confidence: 90, text: 'bench' } }) });
const connections: RedisConnection[] = [];
const connect = (prefix: string) => {
  const c = new RedisConnection({ ...defaultRedisConfig(), url: redisServer.url, prefix });
  connections.push(c);
  return c;
};

try {
  const memoryOps = await cacheOps(new MemorySiqCache({ maxEntries: 10_000 }));
  const redisOps = await cacheOps(new RedisSiqCache(connect('bench-ops:')));

  /** mean microseconds per checkID (sequential) with this SIQ cache, its answers all cached */
  const verdicts = async (cache: SiqCache, redis?: RedisConnection): Promise<{ usPerVerdict: number; perSecond: number; redisGets?: number }> => {
    const resolver = new ZoneResolver(new Zone(seedZone()));
    const config = defaultConfig();
    config.authservId = 'mx.receiver.example';
    config.siq.servers = [siq.address];
    const prepared = prepareConfig(config, resolver, undefined, { siqCache: cache });
    const engine = new Engine({ resolver, policy: { current: () => ({ config, prepared, generation: 1, loadedAt: 0 }) } });
    const input = (i: number) => ({ ip: '192.0.2.1', helo: 'mx.example.com', mailFrom: `a@s${i % 50}.example`, rcpt: ['b@example.org'] });
    for (let i = 0; i < 50; i++) await engine.checkID(input(i)); // every SIQ answer now cached
    const before = siq.received.length;
    const gets = () => (redis?.stats().ops['siq.get']?.ok ?? 0) + (redis?.stats().ops['siq.get']?.unavailable ?? 0);
    const getsBefore = gets();
    const m = await measure(N, 1, async (i) => engine.checkID(input(i)));
    if (siq.received.length !== before) throw new Error('a verdict asked the SIQ server: the cache did not serve it');
    prepared.siq?.client.close();
    return { usPerVerdict: Number(((m.ms * 1000) / N).toFixed(1)), perSecond: m.perSecond, ...(redis ? { redisGets: gets() - getsBefore } : {}) };
  };
  const round = async () => {
    const r1 = connect('bench-verdict-redis:');
    const r2 = connect('bench-verdict-tiered:');
    return {
      memory: await verdicts(new MemorySiqCache()),
      redisOnly: await verdicts(new RedisSiqCache(r1), r1),
      tiered: await verdicts(new TieredSiqCache(new MemorySiqCache(), new RedisSiqCache(r2)), r2),
    };
  };
  await round(); // warm-up: the JIT and both caches, so the order of the three does not matter
  const { memory, redisOnly, tiered } = await round();

  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'redis-cache',
        node: process.version,
        n: N,
        siq_cache_memory: memoryOps,
        siq_cache_redis: redisOps,
        ratio_get_sequential_redis_vs_memory: +(redisOps.get_sequential!.perSecond / memoryOps.get_sequential!.perSecond).toFixed(4),
        ratio_get_64_in_flight_redis_vs_memory: +(redisOps.get_64_in_flight!.perSecond / memoryOps.get_64_in_flight!.perSecond).toFixed(4),
        verdict_siq_cached_memory: memory,
        verdict_siq_cached_redis_only: redisOnly,
        verdict_siq_cached_tiered: tiered,
        added_us_per_verdict_redis_only: Number((redisOnly.usPerVerdict - memory.usPerVerdict).toFixed(1)),
        added_us_per_verdict_tiered: Number((tiered.usPerVerdict - memory.usPerVerdict).toFixed(1)),
        ratio_verdict_time_redis_only_vs_memory: +(redisOnly.usPerVerdict / memory.usPerVerdict).toFixed(2),
        ratio_verdict_time_tiered_vs_memory: +(tiered.usPerVerdict / memory.usPerVerdict).toFixed(2),
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await Promise.all(connections.map((c) => c.close()));
  await siq.close();
  await redisServer.stop();
}
