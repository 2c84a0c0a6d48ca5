/**
 * `checkid siq query`: one SIQ question, the answer printed (siq.py / libsnert's `siq` CLI).
 *
 * Exit status: 0 a score (0..100) came back; 3 a server answered without a score (UNKNOWN,
 * TEMPFAIL, REDIRECT, ERROR, a reserved value); 4 no answer (timeout, unreachable servers);
 * 2 usage errors.
 */
import { parseArgs } from 'node:util';
import { parseSiqServer, type SiqServer } from '../siq/address.ts';
import { parseIp } from '../common/ip.ts';
import { SiqClient, type SiqResult, siqDomain } from '../siq/client.ts';
import { answerDetails } from '../siq/codec.ts';
import { safeText } from '../siq/provider.ts';
import { runSiqAccount, runSiqServe, SIQ_SERVE_USAGE } from './siq-server.ts';

export const SIQ_USAGE = `usage: checkid siq query --server HOST[:PORT] [--server ...] --ip IP [--domain DOMAIN]
                       [--type mail|data] [--timeout MS] [--attempts N] [--follow-redirect] [--json]

  Asks SIQ servers (UDP, port 6262 unless given; Outbound Index used 6264) about an IP address
  and a domain (the MAIL FROM domain; an address is cut to its domain). Without --domain the
  query carries the IP only. Servers are tried in turn until one answers, within --timeout
  (default 2000 ms for the whole query).

Exit status: 0 a score came back; 3 the server answered without a score (UNKNOWN, TEMPFAIL,
REDIRECT, ERROR); 4 no answer; 2 usage errors.
`;

const OPTIONS = {
  server: { type: 'string', multiple: true },
  ip: { type: 'string' },
  domain: { type: 'string' },
  type: { type: 'string' },
  timeout: { type: 'string' },
  attempts: { type: 'string' },
  'follow-redirect': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const SIQ_EXIT = { SCORE: 0, USAGE: 2, NO_SCORE: 3, NO_ANSWER: 4 } as const;

class SiqUsageError extends Error {}

function integer(text: string | undefined, what: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new SiqUsageError(`${what} must be an integer ${min}..${max}`);
  return Number(text);
}

export async function runSiq(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    process.stdout.write(`${SIQ_USAGE}\n${SIQ_SERVE_USAGE}`);
    return sub === undefined ? SIQ_EXIT.USAGE : 0;
  }
  if (sub === 'serve') return runSiqServe(rest);
  if (sub === 'account') return runSiqAccount(rest);
  if (sub !== 'query') {
    process.stderr.write(`checkid siq: unknown subcommand "${sub}"\n\n${SIQ_USAGE}`);
    return SIQ_EXIT.USAGE;
  }
  let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; args: string[] }>>['values'];
  let servers: SiqServer[];
  let timeoutMs: number | undefined;
  let attempts: number | undefined;
  try {
    ({ values } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: false }));
    if (values.help) {
      process.stdout.write(SIQ_USAGE);
      return 0;
    }
    if (!values.server?.length) throw new SiqUsageError('--server is required');
    if (!values.ip) throw new SiqUsageError('--ip is required');
    if (values.type !== undefined && values.type !== 'mail' && values.type !== 'data') throw new SiqUsageError('--type is mail or data');
    if (!parseIp(values.ip)) throw new SiqUsageError(`--ip: not an IP address: ${JSON.stringify(values.ip)}`);
    if (values.domain !== undefined && siqDomain(values.domain) === null) {
      throw new SiqUsageError(`--domain: ${JSON.stringify(values.domain)} cannot be sent in a SIQ query`);
    }
    servers = values.server.map((s) => parseSiqServer(s));
    timeoutMs = integer(values.timeout, '--timeout', 1, 600_000);
    attempts = integer(values.attempts, '--attempts', 1, 10);
  } catch (err) {
    process.stderr.write(`checkid siq query: ${(err as Error).message}\n\n${SIQ_USAGE}`);
    return SIQ_EXIT.USAGE;
  }
  const client = new SiqClient({
    servers,
    cache: false,
    queryNullSender: true,
    followRedirects: values['follow-redirect'] === true,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(attempts !== undefined ? { attempts } : {}),
  });
  const result = await client.query({ ip: values.ip!, domain: values.domain ?? '', type: (values.type as 'mail' | 'data' | undefined) ?? 'mail' });
  client.close();
  if (values.json) process.stdout.write(`${JSON.stringify(toJson(result))}\n`);
  else if (result.status === 'answer') process.stdout.write(readable(result));
  else process.stderr.write(`checkid siq query: ${result.status === 'skipped' ? result.reason : result.message}\n`);
  if (result.status !== 'answer') return SIQ_EXIT.NO_ANSWER;
  return result.reply.kind === 'score' ? SIQ_EXIT.SCORE : SIQ_EXIT.NO_SCORE;
}

function toJson(result: SiqResult): Record<string, unknown> {
  if (result.status !== 'answer') return { ...result };
  const r = result.reply;
  return {
    status: 'answer',
    server: result.server,
    ...(result.redirectedFrom ? { redirectedFrom: result.redirectedFrom } : {}),
    revision: `-${r.revision}`,
    id: r.id,
    score: r.score,
    kind: r.kind,
    ...answerDetails(r),
    extraId: r.extraId,
    extra: r.extra,
    redirect: r.redirect,
    anomalies: r.anomalies,
    tries: result.tries,
    elapsedMs: result.elapsedMs,
  };
}

const MEANING: Record<string, string> = {
  unknown: 'UNKNOWN: the server has no data',
  tempfail: 'TEMPFAIL: try again later (a 4xx to the sender)',
  redirect: 'REDIRECT: ask another server',
  error: 'ERROR: the server failed',
};

function sub(v: number): string {
  return v < 0 ? 'unknown (-1)' : String(v);
}

function readable(result: Extract<SiqResult, { status: 'answer' }>): string {
  const r = result.reply;
  const rows: Array<[string, string]> = [
    ['server', `${result.server}${result.redirectedFrom ? ` (redirected by ${result.redirectedFrom})` : ''}`],
    ['layout', `draft -${r.revision}${r.revision === '02' ? ' (or -03)' : ''}`],
    ['score', r.kind === 'score' ? String(r.score) : `${r.score} ${MEANING[r.kind] ?? ''}${r.kind === 'error' && r.score !== -4 ? ' (reserved value)' : ''}`],
    ['ip score', sub(r.ipScore)],
    ['domain score', sub(r.domainScore)],
    ['rel score', sub(r.relScore)],
    ['confidence', r.revision === '00' ? 'none (-00 layout)' : sub(r.confidence)],
    ['ttl', r.ttl === null ? 'none (-00 layout)' : `${r.ttl} s${r.ttl === 0 ? ' (do not cache)' : ''}`],
    ['text', `'${safeText(r.text, 255)}'`],
  ];
  if (r.redirect) rows.push(['redirect to', `${r.redirect.host} port ${r.redirect.port}`]);
  if (r.extraId !== null || r.extra !== '') rows.push(['extra', `${r.extraId !== null ? `id ${r.extraId} ` : ''}${r.extra || '(empty)'}`]);
  for (const a of r.anomalies) rows.push(['note', a]);
  rows.push(['query id', String(r.id)], ['time', `${result.elapsedMs} ms, ${result.tries} ${result.tries === 1 ? 'datagram' : 'datagrams'}`]);
  return rows.map(([k, v]) => `${k.padEnd(13)}${v}\n`).join('');
}
