/** Builds the running parts from command-line flags: config store, resolver, engine. */
import { createResolver } from '../dns/config.ts';
import type { Resolver } from '../dns/types.ts';
import { DnsblMonitor } from '../checks/dnsbl/index.ts';
import { Engine, type Logger, type Prepared, prepareConfig } from '../engine/engine.ts';
import type { EngineObserver } from '../engine/observer.ts';
import { join, resolve } from 'node:path';
import { type Config, ConfigError } from '../policy/config.ts';
import { OVERLAY_FILE, PolicyStore } from '../policy/store.ts';
import { resolveStateDir } from '../common/state-dir.ts';
import type { Telemetry } from '../telemetry/telemetry.ts';
import { type RedisConnection, releaseSharedRedis } from '../redis/connection.ts';
import { registerRedisMetrics } from '../redis/metrics.ts';
import { dnsSecondLevel, redisFor, siqCacheFor } from '../redis/wiring.ts';
import { SiqReporter } from '../siq/reporter.ts';
import { registerSiqReporterMetrics } from '../telemetry/siq.ts';

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
  /**
   * Without a config file, read the policy overlay from the state directory (the file the
   * dashboard's Apply writes, docs/dashboard.md): daemons do, one-shot commands need not.
   */
  overlay?: boolean;
  /**
   * Send gateway reports to the SIQ server after each verdict when the config sets
   * `siq.report.url` (docs/siq-server.md): daemons do; one-shot commands (check, replay) must not
   * report mail that was not received.
   */
  siqReports?: boolean;
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
  /** the config file given (absolute), if any */
  configPath?: string;
  /** without a config file: the overlay file the policy is read from when it exists */
  overlayPath?: string;
  /** adds an engine observer (the dashboard's history); the result removes it */
  observe(observer: EngineObserver): () => void;
  close(): Promise<void>;
}

/** Several engine observers as one; one that throws does not keep the others from their turn. */
function observerSet(): { observer: EngineObserver; add(o: EngineObserver): () => void } {
  const all = new Set<EngineObserver>();
  const each = (call: (o: EngineObserver) => void) => {
    let failure: unknown;
    for (const o of all) {
      try {
        call(o);
      } catch (err) {
        failure ??= err;
      }
    }
    // the engine logs it (observer.ts: notifyVerdict)
    if (failure !== undefined) throw failure;
  };
  return {
    observer: { verdict: (e) => each((o) => o.verdict?.(e)), check: (e) => each((o) => o.check?.(e)) },
    add(o) {
      const entry = { ...o };
      all.add(entry);
      return () => {
        all.delete(entry);
      };
    },
  };
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

/** Tells the user on stderr why `checkid COMMAND` cannot start: "configuration error:", then each problem indented. */
export function writeConfigError(command: string, problems: readonly string[]): void {
  process.stderr.write(`checkid ${command}: configuration error:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
}

/**
 * The runtime of a one-shot command (check, replay) from its --config and --resolver flags; null
 * once it has told the user on stderr why it could not start (the command then exits 3).
 */
export async function startCommandRuntime(
  command: string,
  flags: { config?: string; resolver?: string[] },
): Promise<Runtime | null> {
  try {
    return await startRuntime({
      ...(flags.config ? { configPath: flags.config } : {}),
      ...(flags.resolver ? { resolverServers: flags.resolver } : {}),
    });
  } catch (err) {
    if (err instanceof ConfigError) writeConfigError(command, err.problems);
    else process.stderr.write(`checkid ${command}: ${(err as Error).message}\n`);
    return null;
  }
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
  let overlayPath: string | undefined;
  if (!options.configPath && options.overlay) {
    try {
      overlayPath = join(resolveStateDir(''), OVERLAY_FILE);
    } catch {
      // no usable state directory: the embedded defaults, and the dashboard cannot apply changes
    }
  }
  // the resolver is made from the first config; resolver settings changed later need a restart
  const store = new PolicyStore<Prepared>({
    ...(options.configPath ? { path: options.configPath } : {}),
    ...(overlayPath ? { overlay: overlayPath } : {}),
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
  const observers = observerSet();
  if (telemetry) observers.add(telemetry.observer);
  let reporter: SiqReporter | undefined;
  if (options.siqReports) {
    // settings read at each verdict and batch: a reload that sets, changes or clears siq.report applies
    const made = new SiqReporter({ settings: () => store.current().config.siq.report, ...(options.log ? { log: options.log } : {}) });
    observers.add(made.observer);
    if (telemetry) registerSiqReporterMetrics(telemetry.registry, () => made.stats());
    reporter = made;
  }
  const engine = new Engine({
    resolver: active,
    policy: store,
    ...(monitor ? { dnsblMonitor: monitor } : {}),
    ...(options.log ? { log: options.log } : {}),
    observer: observers.observer,
  });
  let stateDir: string | undefined;
  return {
    store,
    engine,
    resolver: active,
    ...(redis ? { redis } : {}),
    ...(options.configPath ? { configPath: resolve(options.configPath) } : {}),
    ...(overlayPath ? { overlayPath } : {}),
    observe: (o) => observers.add(o),
    stateDir: () => {
      stateDir ??= resolveStateDir(store.current().config.stateDir);
      return stateDir;
    },
    ...(telemetry ? { telemetry } : {}),
    async close() {
      monitor?.stop();
      // the reports still queued go out now (one try, bounded by siq.report.timeout_ms)
      await reporter?.close();
      await store.current().prepared.siq?.client.close();
      store.close();
      await active.close();
      if (redis) await releaseSharedRedis(redis);
    },
  };
}
