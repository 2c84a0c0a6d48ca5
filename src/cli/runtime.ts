/** Builds the running parts from command-line flags: config store, resolver, engine. */
import { createResolver } from '../dns/config.ts';
import type { Resolver } from '../dns/types.ts';
import { DnsblMonitor } from '../checks/dnsbl/index.ts';
import { Engine, type Logger, type Prepared, prepareConfig } from '../engine/engine.ts';
import type { Config } from '../policy/config.ts';
import { PolicyStore } from '../policy/store.ts';
import { resolveStateDir } from '../common/state-dir.ts';
import type { Telemetry } from '../telemetry/telemetry.ts';
import { type RedisConnection, releaseSharedRedis } from '../redis/connection.ts';
import { registerRedisMetrics } from '../redis/metrics.ts';
import { dnsSecondLevel, redisFor, siqCacheFor } from '../redis/wiring.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface RuntimeOptions {
  configPath?: string;
  resolverServers?: string[];
  log?: Logger;
  /** keep the DNSBL self-test monitor running (daemons); one-shot commands skip it */
  monitor?: boolean;
  /** watches the engine (mail-log line, metrics) and the resolver's statistics */
  telemetry?: Telemetry;
}

export interface Runtime {
  store: PolicyStore<Prepared>;
  engine: Engine;
  resolver: Resolver & { close(): unknown };
  telemetry?: Telemetry;
  /** the process's shared Redis connection when `redis.url` is set (docs/redis.md) */
  redis?: RedisConnection;
  /**
   * The state directory (config `state_dir`, systemd's $STATE_DIRECTORY, /var/lib/checkid or
   * ~/.local/state/checkid; src/common/state-dir.ts), made on first use; throws when none is usable.
   */
  stateDir(): string;
  close(): Promise<void>;
}

function resolverFor(config: Config, redis: RedisConnection | undefined) {
  const r = config.resolver;
  const secondLevel = dnsSecondLevel(config, redis);
  return createResolver({
    ...(r.servers.length > 0 ? { servers: r.servers } : {}),
    timeoutMs: r.timeoutMs,
    attempts: r.attempts,
    maxInFlight: r.maxInFlight,
    cache: r.cache && { minTtl: r.cache.minTtl, maxTtl: r.cache.maxTtl, negativeMaxTtl: r.cache.negativeMaxTtl, maxEntries: r.cache.maxEntries },
    ...(secondLevel ? { secondLevel } : {}),
  });
}

/** Loads the config (throws ConfigError) and wires the engine. */
export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  let resolver: ReturnType<typeof resolverFor> | undefined;
  // the Redis connection too (redis.* changed later needs a restart)
  let redis: RedisConnection | undefined;
  let redisMade = false;
  const override = (config: Config) => {
    if (options.resolverServers && options.resolverServers.length > 0) config.resolver.servers = options.resolverServers;
  };
  // the resolver is made from the first config; resolver settings changed later need a restart
  const store = new PolicyStore<Prepared>({
    ...(options.configPath ? { path: options.configPath } : {}),
    override,
    prepare: (config) => {
      if (!redisMade) {
        redisMade = true;
        redis = redisFor(config, options.log);
      }
      resolver ??= resolverFor(config, redis);
      const siqCache = siqCacheFor(config, redis, options.log);
      return prepareConfig(config, resolver, undefined, siqCache ? { siqCache } : {});
    },
    onReload: (o) => {
      const log = options.log;
      if (!log) return;
      if (!o.ok) return log('error', 'policy reload failed', { error: o.error });
      log('info', 'policy reloaded', { generation: o.generation });
      const now = store.current().config;
      if (JSON.stringify(now.resolver) !== startedWith.resolver || JSON.stringify(now.prescreen.dnsbl) !== startedWith.dnsbl) {
        log('warn', 'resolver settings and DNSBL self-test zones are read at start-up only: restart checkid to apply the new ones');
      }
      if (JSON.stringify(now.redis) !== startedWith.redis) log('warn', 'redis settings are read at start-up only: restart checkid to apply the new ones');
    },
  });
  await store.load();
  const startedWith = {
    resolver: JSON.stringify(store.current().config.resolver),
    dnsbl: JSON.stringify(store.current().config.prescreen.dnsbl),
    redis: JSON.stringify(store.current().config.redis),
  };
  const active = resolver!;
  let monitor: DnsblMonitor | undefined;
  if (options.monitor && store.current().config.prescreen.selfTestIntervalS > 0 && store.current().config.prescreen.dnsbl.length > 0) {
    monitor = new DnsblMonitor({ resolver: active }, {
      zones: store.current().config.prescreen.dnsbl,
      intervalMs: store.current().config.prescreen.selfTestIntervalS * 1000,
    });
    monitor.start();
  }
  const telemetry = options.telemetry;
  telemetry?.watchResolver(() => active.stats());
  if (telemetry && redis) registerRedisMetrics(telemetry.registry, redis);
  const engine = new Engine({
    resolver: active,
    policy: store,
    ...(monitor ? { dnsblMonitor: monitor } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(telemetry ? { observer: telemetry.observer } : {}),
  });
  let stateDir: string | undefined;
  return {
    store,
    engine,
    resolver: active,
    ...(redis ? { redis } : {}),
    stateDir: () => {
      stateDir ??= resolveStateDir(store.current().config.stateDir);
      return stateDir;
    },
    ...(telemetry ? { telemetry } : {}),
    async close() {
      monitor?.stop();
      await store.current().prepared.siq?.client.close();
      store.close();
      await active.close();
      if (redis) await releaseSharedRedis(redis);
    },
  };
}
