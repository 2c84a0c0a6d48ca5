/**
 * `checkid policy --listen inet:127.0.0.1:9998|unix:/path`: the Postfix policy delegation server
 * (docs/adapters/postfix-policy.md). Also started by `checkid serve` when `policy.listen` is set.
 * The socket address syntax and the listen/close plumbing are shared with `checkid readsocket`.
 */
import { once } from 'node:events';
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, type Server } from 'node:net';
import { createPolicyServer } from '../adapters/policyd/server.ts';
import { trackSocket } from '../telemetry/connections.ts';
import type { ListenerKind, RunningListener } from './serve.ts';

export type SocketSpec = { kind: 'inet'; host: string; port: number } | { kind: 'unix'; path: string };

/** inet:HOST:PORT, inet6:[HOST]:PORT, HOST:PORT, [IPv6]:PORT, unix:/path or local:/path. */
export function parseSocketSpec(spec: string): SocketSpec {
  const unix = /^(?:unix|local):(.+)$/.exec(spec);
  if (unix) {
    if (!unix[1]!.startsWith('/')) throw new Error(`${spec}: a unix socket needs an absolute path`);
    return { kind: 'unix', path: unix[1]! };
  }
  const m = /^(?:inet6?:)?(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(spec);
  if (!m) throw new Error(`${spec}: expected inet:HOST:PORT, inet6:[HOST]:PORT or unix:/path`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`${spec}: port out of range`);
  return { kind: 'inet', host: m[1] ?? m[2]!, port };
}

/** A unix socket file nobody listens on (left by a crash) is removed; a live one is an error. */
async function clearStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`${path}: another process is listening there`);
  unlinkSync(path);
}

/** Listens on a socket spec; unix sockets are made writable for the MTA's user (mode 0666). */
export async function listenOn(server: Server, spec: string): Promise<{ address: string; unlink?: string }> {
  const where = parseSocketSpec(spec);
  if (where.kind === 'unix') {
    await clearStaleSocket(where.path);
    server.listen(where.path);
    await once(server, 'listening');
    chmodSync(where.path, 0o666);
    return { address: `unix:${where.path}`, unlink: where.path };
  }
  server.listen(where.port, where.host);
  await once(server, 'listening');
  const a = server.address();
  const address = typeof a === 'object' && a ? (a.family === 'IPv6' ? `inet:[${a.address}]:${a.port}` : `inet:${a.address}:${a.port}`) : String(a);
  return { address };
}

export function removeSocket(path: string | undefined): void {
  if (!path) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

export const policyListener: ListenerKind = {
  name: 'policy',
  configured: (runtime) => runtime.store.current().config.policy.listen,
  async start(runtime, listen, log): Promise<RunningListener> {
    const policy = createPolicyServer({ engine: runtime.engine, log });
    policy.server.on('connection', (socket) => trackSocket(runtime.telemetry?.connections, 'policy', socket));
    const { address, unlink } = await listenOn(policy.server, listen);
    return {
      name: 'policy',
      address,
      async close() {
        await policy.shutdown();
        removeSocket(unlink);
      },
    };
  },
};
