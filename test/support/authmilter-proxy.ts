/**
 * The proxy-mode authentication_milter cases through our SMTP front-end: the suite's zone on the
 * test DNS server, our front-end (createSmtpFront) relaying to the test SMTP sink (which offers
 * XFORWARD, as upstream's downstream did), and each message sent by a real SMTP client.
 *
 * The front-end takes the client from the TCP connection (it refuses a client's own XCLIENT or
 * XFORWARD), so the client address of a case must be real:
 * - `bindClient: true`: the client binds to the case's address. That needs the address on an
 *   interface: `runProxyIsolated()` runs this module in a private network namespace
 *   (unshare -n, or -rn without root) with the addresses added to its `lo`, and reads the
 *   results from its stdout. Nothing is changed outside the namespace.
 * - `bindClient: false` (no namespace available): the client connects from 127.0.0.1 and the
 *   engine's session is opened for the case's address instead; XFORWARD ADDR then says 127.0.0.1.
 * upstream changed the client between pipelined messages of one connection with XFORWARD;
 * our front-end cannot, so each message goes on a connection of its own (its MAIL, RCPT and DATA
 * still pipelined). Upstream's ip_map is applied by the client (see mappedClient).
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createSmtpFront } from '../../src/adapters/smtp-front/adapter.ts';
import { createResolver } from '../../src/dns/config.ts';
import type { SessionOptions } from '../../src/engine/session.ts';
import {
  caseMessages,
  checkidConfig,
  type E2eCase,
  type EomSnapshot,
  envelopeAddress,
  loadCases,
  loadZone,
  mappedClient,
  recordingEngine,
  sourceMessage,
  upstreamSettings,
  authservIdFor,
} from './authmilter-e2e.ts';
import { startDnsServer } from './dns-server.ts';
import { mailArgument, replyLine, SmtpClient, transaction } from './smtp-client.ts';
import { startSmtpSink } from './smtp-sink.ts';

export interface ProxyAttempt {
  /** the MAIL FROM argument sent */
  mailFrom: string;
  mail: string;
  rcpt: string;
  /** the reply to the final dot, or null when the transaction ended before DATA */
  data: string | null;
  /** what the sink received: the relayed header block and the XFORWARD attributes */
  relayed: { header: string; xforward: Record<string, string>; peer: string } | null;
  /** the engine's facts and verdict at the end of the message */
  eom: EomSnapshot | null;
}

export interface ProxyMessageResult {
  index: number;
  /** the client as connected (after upstream's ip_map), and whether the socket really had that address */
  client: { ip: string; helo: string; mapped: boolean; bound: boolean };
  attempt: ProxyAttempt;
  /**
   * Set when the front-end refused upstream's MAIL FROM as syntax (RFC 5321 §4.1.2): the same
   * message sent again with the white space taken out of the address, so its results can
   * still be compared.
   */
  retry?: ProxyAttempt;
}

export interface ProxyCaseResult {
  expected: string;
  authservId: string;
  messages: ProxyMessageResult[];
}

export async function runProxyCases(cases: E2eCase[], options: { bindClient: boolean }): Promise<ProxyCaseResult[]> {
  const dns = await startDnsServer({ zone: loadZone().data });
  const resolver = createResolver({ servers: [dns.address], cache: false });
  const sink = await startSmtpSink({ xforward: true });
  const out: ProxyCaseResult[] = [];
  try {
    for (const c of cases) {
      const settings = upstreamSettings(c.config);
      const authservId = authservIdFor(c);
      const { engine, taken } = recordingEngine(checkidConfig(settings, authservId), resolver);
      let clientIp = '127.0.0.1';
      if (!options.bindClient) {
        const open = engine.session.bind(engine);
        engine.session = (_ip: string, o?: SessionOptions) => open(clientIp, o);
      }
      const front = createSmtpFront({ engine, hostname: authservId, relay: { host: '127.0.0.1', port: sink.port, heloName: authservId } });
      const { port } = await front.listen(0, '127.0.0.1');
      const result: ProxyCaseResult = { expected: c.expected, authservId, messages: [] };
      try {
        for (const m of caseMessages(c)) {
          const client = mappedClient(settings, m.ip, m.helo);
          clientIp = client.ip;
          const smtp = await SmtpClient.connect(port, options.bindClient ? { localAddress: client.ip } : {});
          const env = envelopeAddress(m.mailFrom);
          const params = env.params.join(' ');
          const send = async (from: string): Promise<ProxyAttempt> => {
            const before = sink.messages.length;
            taken();
            const t = await transaction(smtp, { from, params, to: [envelopeAddress(m.rcptTo).address], message: sourceMessage(m.source), pipeline: true });
            const relayedMessage = t.final.code === 250 && t.data ? sink.messages[before] : undefined;
            const eom = taken();
            return {
              mailFrom: mailArgument(from, params),
              mail: replyLine(t.mail),
              rcpt: t.rcpt.map(replyLine).join(' | '),
              data: t.data ? replyLine(t.data) : null,
              relayed: relayedMessage
                ? { header: relayedMessage.data.slice(0, relayedMessage.data.indexOf('\r\n\r\n') + 2), xforward: relayedMessage.xforward, peer: relayedMessage.client.addr }
                : null,
              eom: eom.at(-1) ?? null,
            };
          };
          await smtp.ehlo(client.helo, { strict: false });
          const attempt = await send(env.address);
          const message: ProxyMessageResult = { index: m.index, client: { ...client, bound: options.bindClient }, attempt };
          if (attempt.mail.startsWith('501') && /\s/.test(env.address)) {
            message.retry = await send(env.address.replace(/\s+/g, ''));
          }
          await smtp.quit();
          result.messages.push(message);
        }
      } finally {
        await front.close();
      }
      out.push(result);
    }
  } finally {
    await sink.close();
    await resolver.close();
    await dns.close();
  }
  return out;
}

const RESULT_MARK = 'AUTHMILTER-PROXY-RESULTS ';

/** The client addresses the proxy cases connect from (after ip_map), loopback ones left out. */
export function proxyClientAddresses(cases: E2eCase[]): string[] {
  const set = new Set<string>();
  for (const c of cases) {
    const settings = upstreamSettings(c.config);
    for (const m of caseMessages(c)) {
      const ip = mappedClient(settings, m.ip, m.helo).ip;
      if (!ip.startsWith('127.')) set.add(ip);
    }
  }
  return [...set].sort();
}

function namespaceArgs(): string[] {
  return process.getuid?.() === 0 ? ['-n'] : ['-rn'];
}

/**
 * Whether a private network namespace with extra addresses on its `lo` can be made here; the
 * reason when not.
 */
export function namespaceProbe(): { ok: true } | { ok: false; why: string } {
  const r = spawnSync('unshare', [...namespaceArgs(), 'sh', '-c', 'ip link set lo up && ip addr add 192.0.2.1/32 dev lo'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return { ok: false, why: `unshare: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, why: `unshare ${namespaceArgs().join(' ')} with "ip addr add": ${(r.stderr || `exit ${r.status}`).trim()}` };
  return { ok: true };
}

/**
 * Runs every proxy case in a private network namespace whose `lo` carries every client address,
 * so each client really connects from its case's address. Rejects if the run fails.
 */
export async function runProxyIsolated(timeoutMs = 150_000): Promise<ProxyCaseResult[]> {
  const setup = ['ip link set lo up', ...proxyClientAddresses(proxyCases()).map((ip) => `ip addr add ${ip}/32 dev lo`)].join(' && ');
  const child = spawn('unshare', [...namespaceArgs(), 'sh', '-c', `${setup} && exec "$0" "$1"`, process.execPath, fileURLToPath(import.meta.url)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  clearTimeout(timer);
  const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
  if (status !== 0 || !line) throw new Error(`the proxy run in a network namespace failed (exit ${status}):\n${stderr.slice(-4000)}`);
  return JSON.parse(line.slice(RESULT_MARK.length)) as ProxyCaseResult[];
}

/** The suite's proxy-mode cases. */
export function proxyCases(): E2eCase[] {
  return loadCases().filter((c) => c.mode === 'smtp');
}

if (import.meta.main) {
  const results = await runProxyCases(proxyCases(), { bindClient: true });
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(results)}\n`);
}
