/**
 * The `siq-server` listener kind: `checkid serve` starts it when the config sets
 * `siq_server.listen`; `checkid siq serve` starts it alone (src/cli/siq-server.ts). UDP on the
 * listen address, HTTP (the draft's HTTP form and gateway reports) on `siq_server.http_listen`,
 * the store in `siq_server.db` (or --db). The checks use the runtime's resolver.
 */
import { SIQ_PORT } from '../siq/codec.ts';
import { listenSiqHttp } from '../siq/server/http.ts';
import { SiqServer } from '../siq/server/server.ts';
import type { SiqServerStore } from '../siq/server/store.ts';
import { SqliteSiqServerStore } from '../siq/server/store-sqlite.ts';
import type { ListenerKind } from './serve.ts';

/** Set by `checkid siq serve --db FILE` before the listener starts; wins over `siq_server.db`. */
const overrides: { db?: string } = {};

export function setSiqServerDb(path: string): void {
  overrides.db = path;
}

/** The store behind a running SIQ server: SQLite at `path`, in memory when ''. */
export function openSiqServerStore(path: string): SiqServerStore {
  return new SqliteSiqServerStore({ path });
}

/** HOST:PORT, [IPv6]:PORT, or HOST alone (port 6262); port 0 takes any free one. */
export function parseSiqListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(listen.trim());
  const port = m?.[3] === undefined ? SIQ_PORT : Number(m[3]);
  if (!m || port > 65535)
    throw new Error(`${listen}: expected HOST:PORT, [IPv6]:PORT or HOST (port ${SIQ_PORT})`);
  return { host: m[1] ?? m[2]!, port };
}

export const siqServerListener: ListenerKind = {
  name: 'siq-server',
  configured: (runtime) => runtime.store.current().config.siqServer.listen,
  async start(runtime, listen, log) {
    const { host, port } = parseSiqListen(listen);
    const settings = () => runtime.store.current().config.siqServer;
    const db = overrides.db ?? settings().db;
    const store = openSiqServerStore(db);
    if (db === '')
      log(
        'warn',
        'SIQ server: no database file (siq_server.db or --db): accounts and reports are kept in memory and lost on restart',
      );
    const server = new SiqServer({ store, resolver: runtime.resolver, config: settings, log });
    let udp: Awaited<ReturnType<SiqServer['listenUdp']>> | undefined;
    let http: Awaited<ReturnType<typeof listenSiqHttp>> | undefined;
    try {
      udp = await server.listenUdp(host, port);
      const httpListen = settings().httpListen;
      if (httpListen) {
        const h = parseSiqListen(httpListen);
        http = await listenSiqHttp(server, h.host, h.port, (message, error) =>
          log('error', message, { error }),
        );
      }
    } catch (err) {
      await server.close();
      await store.close();
      throw err;
    }
    return {
      name: 'siq-server',
      address: `udp ${udp.address}${http ? `, http ${http.address}` : ''}${db ? `, db ${db}` : ', db in memory'}`,
      close: async () => {
        await http?.close();
        await server.close();
        await store.close();
      },
    };
  },
};
