/**
 * The `dashboard` listener of `checkid serve`: opens the verdict history (config
 * `dashboard.history`), records every final verdict into it (an engine observer), and serves
 * the dashboard on `dashboard.listen`.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { Logger } from '../engine/engine.ts';
import { HistoryRecorder } from '../history/recorder.ts';
import { type HistoryStore, MemoryHistoryStore, SqliteHistoryStore } from '../history/store.ts';
import type { Runtime } from '../cli/runtime.ts';
import type { ListenerKind, RunningListener } from '../cli/serve.ts';
import type { RedisConnection } from '../redis/connection.ts';
import { RedisHistoryStore } from '../redis/history-store.ts';
import { DEFAULT_DASHBOARD_LISTEN, type DashboardConfig, isLoopback, listenHost } from './config.ts';
import { createDashboard } from './server.ts';

export const HISTORY_FILE = 'history.db';

/** The history store the config asks for (the state directory's history.db by default). */
export function openHistory(cfg: DashboardConfig, stateDir: () => string, log: Logger, redis?: RedisConnection): HistoryStore {
  const h = cfg.history;
  if (h.db === 'memory') return new MemoryHistoryStore({ capacity: h.memoryRecords });
  if (h.db === 'redis') {
    if (!redis) throw new Error('dashboard.history.db is redis, but there is no Redis connection (redis.url)');
    return new RedisHistoryStore(redis, {
      retentionDays: h.retentionDays,
      onBadRecord: (member, error) => log('warn', 'dashboard: unreadable verdict history record skipped', { store: 'redis', member, error }),
      onListenerError: (err) => log('error', 'dashboard: live feed listener failed', { error: (err as Error).message }),
    });
  }
  let path = h.db;
  if (path === '') {
    try {
      path = join(stateDir(), HISTORY_FILE);
    } catch (err) {
      log('warn', 'dashboard: no state directory for the verdict history; keeping it in memory (lost at restart)', { error: (err as Error).message });
      return new MemoryHistoryStore({ capacity: h.memoryRecords });
    }
  }
  return new SqliteHistoryStore({
    path,
    retentionDays: h.retentionDays,
    onBadRow: (seq, error) => log('warn', 'dashboard: unreadable verdict history row skipped', { path, seq, error }),
    onListenerError: (err) => log('error', 'dashboard: live feed listener failed', { error: (err as Error).message }),
  });
}

function parseHostPort(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen.trim());
  if (!m || Number(m[3]) > 65535) throw new Error(`dashboard.listen ${listen}: expected HOST:PORT (or [IPv6]:PORT)`);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

export const dashboardListener: ListenerKind = {
  name: 'dashboard',
  configured: (runtime) => runtime.store.current().config.dashboard.listen,
  async start(runtime: Runtime, listen: string, log: Logger): Promise<RunningListener> {
    const cfg = runtime.store.current().config.dashboard;
    const { host, port } = parseHostPort(listen);
    if (cfg.users.length === 0 && !isLoopback(listenHost(listen))) {
      throw new Error(`${listen} is not a loopback address and dashboard.users is empty: add a user (sign-in) or listen on 127.0.0.1`);
    }
    const server = createServer();
    server.listen(port, host);
    try {
      await Promise.race([
        once(server, 'listening'),
        once(server, 'error').then(([err]) => {
          throw err;
        }),
      ]);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // the default address taken (another checkid on this host): run without a dashboard
      if (code === 'EADDRINUSE' && !cfg.listenConfigured && listen === DEFAULT_DASHBOARD_LISTEN) {
        log('warn', `dashboard: ${listen} is in use, so no dashboard and no verdict history; set dashboard.listen to another address (or '' for none)`);
        return { name: 'dashboard', address: `off (${listen} in use)`, close: async () => {} };
      }
      throw err;
    }
    let history: HistoryStore;
    try {
      history = openHistory(cfg, () => runtime.stateDir(), log, runtime.redis);
    } catch (err) {
      server.close();
      throw new Error(`verdict history: ${(err as Error).message}`);
    }
    const recorder = new HistoryRecorder({ store: history, log });
    if (runtime.telemetry) recorder.registerMetrics(runtime.telemetry.registry);
    const stopObserving = runtime.observe(recorder.observer);
    const applyTarget = runtime.configPath
      ? { file: runtime.configPath, overlay: false }
      : runtime.overlayPath
        ? { file: runtime.overlayPath, overlay: true }
        : null;
    const dashboard = createDashboard({
      history,
      policy: { current: () => runtime.store.current(), reload: () => runtime.store.reload() },
      applyTarget,
      applyUnavailable: 'checkid runs without a config file and has no usable state directory for the overlay (set state_dir, or run with --config)',
      users: cfg.users,
      listen,
      secure: cfg.secure,
      trustedProxies: cfg.trustedProxies,
      ...(cfg.publicOrigin ? { publicOrigin: cfg.publicOrigin } : {}),
      recorder: () => recorder.stats(),
      log,
    });
    server.on('request', dashboard.handler);
    const a = server.address();
    const address = typeof a === 'object' && a ? (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`) : String(a);
    log('info', 'dashboard: verdict history', { store: history.name, apply: applyTarget?.file ?? null, sign_in: cfg.users.length > 0 });
    return {
      name: 'dashboard',
      address,
      async close() {
        stopObserving();
        dashboard.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await recorder.close();
        await history.close();
      },
    };
  },
};
