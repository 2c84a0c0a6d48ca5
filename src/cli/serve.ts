/** `checkid serve` (every enabled listener) and `checkid http` (the HTTP API alone). */
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { createHttpAdapter } from '../adapters/http/server.ts';
import type { Logger } from '../engine/engine.ts';
import { ConfigError } from '../policy/config.ts';
import { startRuntime } from './runtime.ts';
import { USAGE } from './usage.ts';

export const DEFAULT_HTTP_LISTEN = '127.0.0.1:8080';

const OPTIONS = {
  config: { type: 'string' },
  resolver: { type: 'string', multiple: true },
  listen: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseListen(spec: string): { host: string; port: number } {
  const m = /^(?:inet:)?(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(spec);
  if (!m) throw new Error(`--listen ${spec}: expected HOST:PORT (or [IPv6]:PORT)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`--listen ${spec}: port out of range`);
  return { host: m[1] ?? m[2]!, port };
}

const jsonLog: Logger = (level, message, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`);
};

export async function runServe(command: 'serve' | 'http', argv: string[]): Promise<number> {
  let values: { config?: string; resolver?: string[]; listen?: string; help?: boolean };
  let listen: { host: string; port: number };
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false }));
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    listen = parseListen(values.listen ?? DEFAULT_HTTP_LISTEN);
  } catch (err) {
    process.stderr.write(`checkid ${command}: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  let runtime: Awaited<ReturnType<typeof startRuntime>>;
  try {
    runtime = await startRuntime({
      ...(values.config ? { configPath: values.config } : {}),
      ...(values.resolver ? { resolverServers: values.resolver } : {}),
      log: jsonLog,
      monitor: true,
    });
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    process.stderr.write(`checkid ${command}: configuration error:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    return 3;
  }
  runtime.store.watch();
  const server = createHttpAdapter({ engine: runtime.engine });
  server.listen(listen.port, listen.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    process.stderr.write(`checkid ${command}: cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}\n`);
    await runtime.close();
    return 1;
  }
  const address = server.address();
  const where = typeof address === 'object' && address ? `${address.address}:${address.port}` : String(address);
  jsonLog('info', 'checkid listening', { http: where, config: values.config ?? '(embedded defaults)', authserv_id: runtime.store.current().config.authservId });

  const onHup = () => void runtime.store.reload();
  process.on('SIGHUP', onHup);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      jsonLog('info', 'stopping: draining connections', { signal });
      server.close(() => resolve());
      server.closeIdleConnections();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  process.off('SIGHUP', onHup);
  await runtime.close();
  return 0;
}
