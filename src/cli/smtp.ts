/**
 * `checkid smtp --listen 127.0.0.1:2525 --relay 127.0.0.1:25 [--tls-cert FILE --tls-key FILE]
 * [--hostname NAME] [--config FILE] [--resolver HOST:PORT]`: the SMTP front-end
 * (docs/adapters/smtp-front.md), through serve.ts's runner like every listener; `checkid serve`
 * starts it too when `smtp.listen` is set. The flags here override the config's `smtp` keys.
 */
import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { createSmtpFront } from '../adapters/smtp-front/adapter.ts';
import { trackSocket } from '../telemetry/connections.ts';
import type { ListenerKind } from './serve.ts';

/** The address syntax of smtp.listen and smtp.relay: HOST:PORT or [IPv6]:PORT. */
export function parseHostPort(spec: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(spec);
  if (!m) throw new Error(`${what} ${spec}: expected HOST:PORT (or [IPv6]:PORT)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`${what} ${spec}: port out of range`);
  return { host: m[1] ?? m[2]!, port };
}

/** The command-line flags of `checkid smtp` beyond the runner's own. */
const FLAGS = { '--relay': 'relay', '--tls-cert': 'tlsCert', '--tls-key': 'tlsKey', '--hostname': 'hostname' } as const;
type Overrides = Partial<Record<(typeof FLAGS)[keyof typeof FLAGS], string>>;
let overrides: Overrides = {};

/** Takes this command's own flags out of argv (the runner parses the rest strictly). */
export function splitSmtpFlags(argv: string[]): { overrides: Overrides; rest: string[] } {
  const found: Overrides = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = (eq > 0 ? arg.slice(0, eq) : arg) as keyof typeof FLAGS;
    if (!(flag in FLAGS)) {
      rest.push(arg);
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    found[FLAGS[flag]] = value;
  }
  return { overrides: found, rest };
}

export async function runSmtp(argv: string[]): Promise<number> {
  let rest: string[];
  try {
    ({ overrides, rest } = splitSmtpFlags(argv));
  } catch (err) {
    process.stderr.write(`checkid smtp: ${(err as Error).message}\n`);
    return 2;
  }
  // loaded here, not at the top: serve.ts imports this file for its listener list
  const { runListeners } = await import('./serve.ts');
  return runListeners('smtp', rest, 'smtp');
}

export const smtpListener: ListenerKind = {
  name: 'smtp',
  configured: (runtime) => runtime.store.current().config.smtp.listen,
  async start(runtime, listen, log) {
    const config = runtime.store.current().config;
    const s = { ...config.smtp, ...overrides };
    const { host, port } = parseHostPort(listen, '--listen');
    if (!s.relay) throw new Error('no back-end MTA: set smtp.relay in the config or give --relay HOST:PORT');
    const relay = parseHostPort(s.relay, 'smtp.relay');
    if (Boolean(s.tlsCert) !== Boolean(s.tlsKey)) throw new Error('STARTTLS needs both a certificate and a key (smtp.tls_cert and smtp.tls_key, or --tls-cert and --tls-key)');
    const name = s.hostname || config.authservId || osHostname();
    const front = createSmtpFront({
      engine: runtime.engine,
      hostname: name,
      relay: { host: relay.host, port: relay.port, heloName: name, starttls: s.relayStarttls },
      ...(s.tlsCert && s.tlsKey ? { tls: { cert: readFileSync(s.tlsCert), key: readFileSync(s.tlsKey) } } : {}),
      limits: { maxMessageSize: s.maxMessageSize, maxRecipients: s.maxRecipients },
      maxConnections: s.maxConnections,
      bareLineEnd: s.bareLf,
      log,
    });
    front.server.on('connection', (socket) => trackSocket(runtime.telemetry?.connections, 'smtp', socket));
    const bound = await front.listen(port, host);
    return {
      name: 'smtp',
      address: bound.address.includes(':') ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`,
      close: () => front.close(),
    };
  },
};
