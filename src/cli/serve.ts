/**
 * `checkid serve` starts every listener the config enables; `checkid http` (and each other
 * listener command) starts one alone with the same flags. SIGHUP or a file change reloads the
 * policy; SIGTERM/SIGINT stop accepting, drain, and exit 0.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createHttpAdapter } from '../adapters/http/server.ts';
import type { Logger } from '../engine/engine.ts';
import { ConfigError } from '../policy/config.ts';
import { milterListener } from './milter.ts';
import { policyListener } from './policy.ts';
import { readsocketListener } from './readsocket.ts';
import { type Runtime, startRuntime } from './runtime.ts';
import { smtpListener } from './smtp.ts';
import { siqServerListener } from './siq-listener.ts';
import { createStructuredLog, levelFromEnv, type StructuredLog, stdoutLines } from '../telemetry/log.ts';
import { Telemetry } from '../telemetry/telemetry.ts';
import { dashboardListener } from '../dashboard/listener.ts';
import { USAGE } from './usage.ts';

/** A running listener: where it listens, and how to stop it (finishing work in progress). */
export interface RunningListener {
  name: string;
  address: string;
  close(): Promise<void>;
}

/** A listener kind: its config key and how to start it on an address. */
export interface ListenerKind {
  name: string;
  /** the address from the config ('' = off) */
  configured(runtime: Runtime): string;
  start(runtime: Runtime, listen: string, log: Logger): Promise<RunningListener>;
}

export function parseListen(spec: string): { host: string; port: number } {
  const m = /^(?:inet:)?(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(spec);
  if (!m) throw new Error(`--listen ${spec}: expected HOST:PORT (or [IPv6]:PORT)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`--listen ${spec}: port out of range`);
  return { host: m[1] ?? m[2]!, port };
}

const http: ListenerKind = {
  name: 'http',
  configured: (runtime) => runtime.store.current().config.http.listen,
  async start(runtime, listen) {
    const { host, port } = parseListen(listen);
    const telemetry = runtime.telemetry;
    const server = createHttpAdapter({
      engine: runtime.engine,
      ...(telemetry ? { metrics: () => telemetry.metrics(), connections: telemetry.connections } : {}),
    });
    server.listen(port, host);
    await once(server, 'listening');
    const a = server.address();
    return {
      name: 'http',
      address: typeof a === 'object' && a ? `${a.address}:${a.port}` : String(a),
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        }),
    };
  },
};

/** Every listener kind, in start order. */
export const LISTENERS: ListenerKind[] = [http, milterListener, policyListener, readsocketListener, smtpListener, siqServerListener, dashboardListener];

const OPTIONS = {
  config: { type: 'string' },
  resolver: { type: 'string', multiple: true },
  listen: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

let structured: StructuredLog | undefined;

/** The daemon's JSON log on stderr (pino, made at first use; level from CHECKID_LOG_LEVEL). */
function structuredLog(): StructuredLog {
  structured ??= createStructuredLog({ level: levelFromEnv(process.env.CHECKID_LOG_LEVEL) });
  return structured;
}

export const jsonLog: Logger = (level, message, fields) => structuredLog().log(level, message, fields);

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * Runs `serve` (every configured listener) or one listener alone (`only`, with `--listen`
 * overriding its configured address). Resolves with the exit status once stopped.
 */
export async function runListeners(command: string, argv: string[], only?: string): Promise<number> {
  let values: { config?: string; resolver?: string[]; listen?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false }));
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (!only && values.listen) throw new Error('serve takes its addresses from the config (milter.listen, http.listen, policy.listen, readsocket.listen, smtp.listen); --listen goes with a single listener command');
  } catch (err) {
    process.stderr.write(`checkid ${command}: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  let runtime: Runtime;
  try {
    runtime = await startRuntime({
      ...(values.config ? { configPath: values.config } : {}),
      ...(values.resolver ? { resolverServers: values.resolver } : {}),
      log: jsonLog,
      monitor: true,
      // without --config, the dashboard's Apply writes (and the policy reads) an overlay in the state directory
      overlay: true,
      // gateway reports to a SIQ server after each verdict, when siq.report.url is set
      siqReports: true,
      // one mail-log line per final verdict on stdout; metrics on the HTTP API's GET /metrics
      telemetry: new Telemetry({ mailLog: stdoutLines(), version: version(), ...(structuredLog().enabled('debug') ? { verdictLog: jsonLog } : {}) }),
    });
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    process.stderr.write(`checkid ${command}: configuration error:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    return 3;
  }
  const kinds = only ? LISTENERS.filter((k) => k.name === only) : LISTENERS;
  const running: RunningListener[] = [];
  for (const kind of kinds) {
    const listen = (only ? values.listen : undefined) ?? kind.configured(runtime);
    if (!listen) continue;
    try {
      running.push(await kind.start(runtime, listen, jsonLog));
    } catch (err) {
      process.stderr.write(`checkid ${command}: cannot start ${kind.name} on ${listen}: ${(err as Error).message}\n`);
      for (const r of running) await r.close();
      await runtime.close();
      return 1;
    }
  }
  if (running.length === 0) {
    process.stderr.write(`checkid ${command}: no listener is enabled in the config\n`);
    await runtime.close();
    return 3;
  }
  runtime.store.watch();
  let stateDir: string;
  try {
    stateDir = runtime.stateDir();
  } catch (err) {
    stateDir = '(none)';
    jsonLog('warn', 'no state directory: state that should outlive a restart is kept in memory', { error: (err as Error).message });
  }
  jsonLog('info', 'checkid listening', {
    ...Object.fromEntries(running.map((r) => [r.name, r.address])),
    config: values.config ?? '(embedded defaults)',
    authserv_id: runtime.store.current().config.authservId,
    state_dir: stateDir,
  });
  const onHup = () => void runtime.store.reload();
  process.on('SIGHUP', onHup);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  jsonLog('info', 'stopping: draining connections', { signal });
  process.off('SIGHUP', onHup);
  await Promise.all(running.map((r) => r.close()));
  await runtime.close();
  structuredLog().flush();
  return 0;
}
