/**
 * The `siq-server` listener kind: `checkid serve` starts it when the config sets
 * `siq_server.listen`; `checkid siq serve` starts it alone (src/cli/siq-server.ts). UDP on the
 * listen address, HTTP (the draft's HTTP form and gateway reports) on `siq_server.http_listen`,
 * the postmaster pages on `siq_server.web_listen`, the store chosen by `siq_server.store`
 * (SQLite in `siq_server.db` or --db, memory, or the shared Redis). The checks use the runtime's
 * resolver; the server's figures go to the runtime's /metrics.
 */
import { join } from 'node:path';
import type { Logger } from '../engine/engine.ts';
import { parseRedisUrl, type RedisConfig } from '../redis/config.ts';
import { type RedisConnection, sharedRedis } from '../redis/connection.ts';
import { RedisSiqServerStore } from '../redis/siq-server-store.ts';
import { SIQ_PORT } from '../siq/codec.ts';
import {
  isLoopbackHost,
  listenHostOf,
  type SiqServerConfig,
  type SiqServerStoreKind,
  siqWebListenProblem,
} from '../siq/server/config.ts';
import { listenSiqHttp, SIQ_REPORT_PATH } from '../siq/server/http.ts';
import { SiqServer } from '../siq/server/server.ts';
import type { SiqServerStore } from '../siq/server/store.ts';
import { MemorySiqServerStore } from '../siq/server/store-memory.ts';
import { SqliteSiqServerStore } from '../siq/server/store-sqlite.ts';
import { createSiqWebApp, listenSiqWeb, serverFacts } from '../siq/server/web/app.ts';
import { registerSiqServerMetrics } from '../telemetry/siq.ts';
import type { ListenerKind } from './serve.ts';

/** Set by `checkid siq serve --db FILE / --web-listen HOST:PORT` before the listener starts; wins over the config. */
const overrides: { db?: string; webListen?: string } = {};

export function setSiqServerDb(path: string): void {
  overrides.db = path;
}

export function setSiqServerWebListen(listen: string): void {
  overrides.webListen = listen;
}

export interface OpenedSiqStore {
  store: SiqServerStore;
  /** where it is, for the log: "db /var/lib/checkid/siq.db", "db in memory", "redis redis://host:6379/" */
  where: string;
  /** lost on restart */
  ephemeral: boolean;
}

/**
 * The store behind a SIQ server or `checkid siq account`: SQLite at `db` (in memory when ''),
 * memory, or Redis. For Redis give the running process's connection (`connection`, shared and
 * not closed with the store) or the `redis:` settings (`redis`: a connection of its own, closed
 * with the store).
 */
/** The SQLite file in the state directory when neither siq_server.db nor --db names one. */
export const SIQ_DB_FILE = 'siq.db';

export function openSiqServerStore(options: {
  kind: SiqServerStoreKind;
  db: string;
  connection?: RedisConnection;
  redis?: RedisConfig;
}): OpenedSiqStore {
  if (options.kind === 'memory') return { store: new MemorySiqServerStore(), where: 'store in memory', ephemeral: true };
  if (options.kind === 'redis') {
    const config = options.redis;
    if (!options.connection && (!config || config.url === ''))
      throw new Error('siq_server.store is redis, but redis.url is not set (docs/redis.md)');
    const where = `redis ${config?.url ? parseRedisUrl(config.url).display : 'shared connection'}`;
    if (options.connection) return { store: new RedisSiqServerStore(options.connection), where, ephemeral: false };
    return {
      store: new RedisSiqServerStore(sharedRedis(config!), { ownsConnection: true }),
      where,
      ephemeral: false,
    };
  }
  return {
    store: new SqliteSiqServerStore({ path: options.db }),
    where: options.db ? `db ${options.db}` : 'db in memory',
    ephemeral: options.db === '',
  };
}

/** HOST:PORT, [IPv6]:PORT, or HOST alone (port 6262); port 0 takes any free one. */
export function parseSiqListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(listen.trim());
  const port = m?.[3] === undefined ? SIQ_PORT : Number(m[3]);
  if (!m || port > 65535)
    throw new Error(`${listen}: expected HOST:PORT, [IPv6]:PORT or HOST (port ${SIQ_PORT})`);
  return { host: m[1] ?? m[2]!, port };
}

const WILDCARD = new Set(['0.0.0.0', '::', '[::]', '']);

/**
 * The address postmasters should use for a bound socket's `address` (HOST:PORT): unchanged
 * when it names this host on the network, else (a wildcard or loopback bind) the host of the
 * public origin when there is one.
 */
export function publicAddress(address: string, publicOrigin: string): string {
  const host = listenHostOf(address);
  if (!WILDCARD.has(host) && !isLoopbackHost(host)) return address;
  if (publicOrigin === '') return address;
  const port = /:(\d{1,5})$/.exec(address)?.[1];
  const name = new URL(publicOrigin).hostname;
  return port ? `${name}:${port}` : name;
}

/** The pages' settings for `createSiqWebApp`, as `siq_server.web:` gives them. */
export function siqWebOptions(
  settings: SiqServerConfig,
  bound: { udp: string; http?: string },
): { secure: boolean; siqAddress: string; reportUrl?: string } {
  const web = settings.web;
  const secure = web.secure ?? web.publicOrigin.startsWith('https://');
  const siqAddress = web.siqAddress || publicAddress(bound.udp, web.publicOrigin);
  const http = bound.http ? publicAddress(bound.http, web.publicOrigin) : '';
  const reportUrl = web.reportUrl || (http ? `http://${http}${SIQ_REPORT_PATH}` : '');
  return { secure, siqAddress, ...(reportUrl ? { reportUrl } : {}) };
}

type Closer = { close(): Promise<void> };

export const siqServerListener: ListenerKind = {
  name: 'siq-server',
  configured: (runtime) => runtime.store.current().config.siqServer.listen,
  async start(runtime, listen, log: Logger) {
    const { host, port } = parseSiqListen(listen);
    const settings = () => runtime.store.current().config.siqServer;
    const first = settings();
    const webListen = overrides.webListen ?? first.webListen;
    const webProblem = siqWebListenProblem(webListen, first.web);
    if (webProblem) throw new Error(`siq_server.web_listen ${webProblem}`);
    // no file named: siq.db in the state directory, so accounts outlive a restart
    const db = overrides.db ?? (first.db || (first.store === 'sqlite' ? join(runtime.stateDir(), SIQ_DB_FILE) : ''));
    // --db names a SQLite file: it picks SQLite whatever siq_server.store says
    const kind = overrides.db !== undefined ? 'sqlite' : first.store;
    const { store, where, ephemeral } = openSiqServerStore({
      kind,
      db,
      ...(runtime.redis ? { connection: runtime.redis } : {}),
      redis: runtime.store.current().config.redis,
    });
    if (ephemeral)
      log(
        'warn',
        `SIQ server: ${kind === 'memory' ? 'siq_server.store is memory' : 'no database file (siq_server.db or --db)'}: accounts and reports are kept in memory and lost on restart`,
      );
    const server = new SiqServer({ store, resolver: runtime.resolver, config: settings, log });
    let udp: Awaited<ReturnType<SiqServer['listenUdp']>> | undefined;
    let http: (Closer & { address: string }) | undefined;
    let web: (Closer & { address: string }) | undefined;
    try {
      udp = await server.listenUdp(host, port);
      const httpListen = first.httpListen;
      if (httpListen) {
        const h = parseSiqListen(httpListen);
        http = await listenSiqHttp(server, h.host, h.port, (message, error) =>
          log('error', message, { error }),
        );
      }
      if (webListen) {
        const w = parseSiqListen(webListen);
        const options = siqWebOptions(first, { udp: udp.address, ...(http ? { http: http.address } : {}) });
        const app = createSiqWebApp({
          store,
          facts: serverFacts(server),
          defaultProfile: () => settings().defaultProfile,
          ...options,
          ...(first.web.publicOrigin ? { publicOrigin: first.web.publicOrigin } : {}),
          trustedProxies: first.web.trustedProxies,
          allowSignup: first.web.allowSignup,
          sessions: {
            idleMs: first.web.sessionIdleMinutes * 60_000,
            absoluteMs: first.web.sessionMaxHours * 3_600_000,
          },
          onError: (err) =>
            log('error', 'SIQ web pages: unexpected error', {
              error: (err as Error)?.message ?? String(err),
              stack: (err as Error)?.stack,
            }),
        });
        web = await listenSiqWeb(app, w.host, w.port);
        if (!options.secure && !isLoopbackHost(w.host))
          log(
            'warn',
            'SIQ web pages: served without TLS off loopback: passwords and session cookies cross the network in clear. Put a TLS proxy in front and set siq_server.web.secure (or an https:// public_origin)',
            { web: web.address },
          );
      }
    } catch (err) {
      await web?.close();
      await http?.close();
      await server.close();
      await store.close();
      throw err;
    }
    const unregister = runtime.telemetry
      ? registerSiqServerMetrics(runtime.telemetry.registry, () => server.stats())
      : () => {};
    return {
      name: 'siq-server',
      address: `udp ${udp.address}${http ? `, http ${http.address}` : ''}${web ? `, web ${web.address}` : ''}, ${where}`,
      close: async () => {
        await web?.close();
        await http?.close();
        unregister();
        await server.close();
        await store.close();
      },
    };
  },
};
