/**
 * The SIQ server's HTTP side (`siq_server.http_listen`):
 *
 *  - the draft's HTTP form (-02 §3.2): GET, HEAD or POST /siq/protocol-1 with ip=, qt=, qd=
 *    (extra= is ignored) as a query string or, for POST, an application/x-www-form-urlencoded
 *    body. The answer is in headers SIQ-Score, SIQ-IP-Score, SIQ-Domain-Score,
 *    SIQ-Relationship-Score, SIQ-Confidence, SIQ-TTL and SIQ-Comment (TEXT), also as `name: value`
 *    lines in the body of a GET/POST; 200 for a score, 404 for UNKNOWN, 503 for TEMPFAIL (rate
 *    limit with action tempfail), 500 for ERROR. The asking address must be a registered source
 *    IP (else 403), within its rate limit (else 429 when the action is drop).
 *  - the gateway report channel: POST /siq/report, JSON, `Authorization: Bearer <api key>`, from
 *    a source IP registered to the account the key belongs to (else 401/403):
 *      {"reports": [{"ip": "192.0.2.1", "domain": "sender.example", "result": "rejected", "count": 1}]}
 *    → 200 {"ok": true, "recorded": 2}; 400 {"ok": false, "error": "..."} on a bad body (nothing
 *    recorded). At most 1000 reports and 64 KiB per request.
 *
 * `createSiqHttpHandler` returns a request handler that answers those paths and returns false
 * for any other, so it can share a server with other handlers; `listenSiqHttp` runs it alone.
 */
import { timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { normalizeIp, parseIp } from '../../common/ip.ts';
import { ipField, ipFromField } from '../codec.ts';
import type { SiqServer } from './server.ts';
import { SiqStoreError } from './store.ts';

export const SIQ_HTTP_QUERY_PATH = '/siq/protocol-1';
export const SIQ_REPORT_PATH = '/siq/report';
const MAX_BODY = 64 * 1024;
const MAX_REPORTS = 1000;

function clientOf(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return normalizeIp(a) ?? a;
}

/** A request body the server refuses, with the HTTP status it answers. */
export class BodyError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new BodyError(413, `body over ${MAX_BODY} octets`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

function plain(
  res: ServerResponse,
  status: number,
  text: string,
  head = false,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=us-ascii',
    'content-length': head ? 0 : Buffer.byteLength(text),
    ...headers,
  });
  res.end(head ? undefined : text);
}

/** The IP of an HTTP query: colon notation with IPv4 as ::a.b.c.d per the draft, or a dotted quad. */
function queryIp(text: string): string | null {
  const addr = parseIp(text.trim());
  return addr ? ipFromField(ipField(addr)) : null;
}

/** Header values are printable US-ASCII; TEXT is latin1 octets, anything else becomes "?". */
function headerText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

async function handleQuery(
  server: SiqServer,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const head = req.method === 'HEAD';
  let params = url.searchParams;
  if (req.method === 'POST') {
    const body = await readBody(req);
    params = new URLSearchParams(body);
  } else if (req.method !== 'GET' && !head) {
    return plain(res, 405, 'use GET, HEAD or POST\n', false, { allow: 'GET, HEAD, POST' });
  }
  const ipText = params.get('ip');
  const ip = ipText === null ? null : queryIp(ipText);
  if (!ip) return plain(res, 400, 'ip= is missing or not an IP address\n', head);
  const qt = params.get('qt') ?? '0';
  if (qt !== '0' && qt !== '1') return plain(res, 400, 'qt= is 0 (MAIL FROM) or 1 (DATA)\n', head);
  const qd = params.get('qd') ?? '';
  if (qd.length > 255) return plain(res, 414, 'qd= over 255 octets\n', head);
  const d = await server.decide({
    client: clientOf(req),
    ip,
    domain: qd,
    type: qt === '1' ? 'data' : 'mail',
  });
  if (d.kind === 'drop') {
    return d.reason === 'unregistered'
      ? plain(res, 403, 'this address is not registered with the SIQ server\n', head)
      : plain(res, 429, 'rate limit\n', head);
  }
  const headers: Record<string, string> = {
    'SIQ-Score': String(d.score),
    'SIQ-IP-Score': String(d.ipScore),
    'SIQ-Domain-Score': String(d.domainScore),
    'SIQ-Relationship-Score': String(d.relScore),
    'SIQ-Confidence': String(d.confidence),
    'SIQ-TTL': String(d.ttl),
    'SIQ-Comment': headerText(d.text),
    'cache-control': d.ttl > 0 && d.score >= -1 ? `private, max-age=${d.ttl}` : 'no-store',
  };
  const status = d.score >= 0 ? 200 : d.score === -1 ? 404 : d.score === -2 ? 503 : 500;
  const body = Object.entries(headers)
    .filter(([k]) => k.startsWith('SIQ-'))
    .map(([k, v]) => `${k}: ${v}\n`)
    .join('');
  plain(res, status, body, head, headers);
}

export interface ReportItem {
  ip?: string;
  domain?: string;
  result: 'accepted' | 'rejected';
  count?: number;
}

/** Reads a report request body (JSON); throws BodyError for anything else. */
export function parseReports(body: string): ReportItem[] {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new BodyError(400, 'the body is not JSON');
  }
  const list = Array.isArray((value as { reports?: unknown })?.reports)
    ? (value as { reports: unknown[] }).reports
    : value && typeof value === 'object' && !Array.isArray(value)
      ? [value]
      : null;
  if (!list) throw new BodyError(400, 'expected {"reports": [...]} or one report object');
  if (list.length > MAX_REPORTS) throw new BodyError(413, `at most ${MAX_REPORTS} reports per request`);
  return list.map((item, i) => {
    if (!item || typeof item !== 'object' || Array.isArray(item))
      throw new BodyError(400, `reports[${i}] is not an object`);
    const r = item as Record<string, unknown>;
    for (const k of Object.keys(r))
      if (!['ip', 'domain', 'result', 'count'].includes(k))
        throw new BodyError(400, `reports[${i}]: unknown key "${k}"`);
    if (r.ip !== undefined && typeof r.ip !== 'string')
      throw new BodyError(400, `reports[${i}].ip is not a string`);
    if (r.domain !== undefined && typeof r.domain !== 'string')
      throw new BodyError(400, `reports[${i}].domain is not a string`);
    if (r.result !== 'accepted' && r.result !== 'rejected')
      throw new BodyError(400, `reports[${i}].result is "accepted" or "rejected"`);
    if (r.count !== undefined && typeof r.count !== 'number')
      throw new BodyError(400, `reports[${i}].count is not a number`);
    return {
      ...(r.ip ? { ip: r.ip as string } : {}),
      ...(r.domain ? { domain: r.domain as string } : {}),
      result: r.result,
      ...(r.count !== undefined ? { count: r.count as number } : {}),
    };
  });
}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function handleReport(server: SiqServer, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return json(res, 405, { ok: false, error: 'use POST' });
  }
  const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!auth) {
    res.setHeader('www-authenticate', 'Bearer realm="siq"');
    return json(res, 401, { ok: false, error: 'an Authorization: Bearer <api key> header is required' });
  }
  const accountId = await server.accountFor(clientOf(req));
  const account = accountId ? await server.store.getAccount(accountId) : null;
  // one answer for "address not registered" and "wrong key": no oracle for either
  if (!account || !sameKey(account.apiKey, auth[1]!))
    return json(res, 403, { ok: false, error: 'this address and key do not belong to one account' });
  const items = parseReports(await readBody(req));
  try {
    const recorded = await server.report(account.id, items);
    json(res, 200, { ok: true, recorded });
  } catch (err) {
    if (err instanceof SiqStoreError && err.code === 'invalid')
      return json(res, 400, { ok: false, error: err.message });
    throw err;
  }
}

/** A handler for the SIQ HTTP paths; false (nothing sent) for any other path. */
export function createSiqHttpHandler(
  server: SiqServer,
  log?: (message: string, error: string) => void,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://siq.invalid');
    const path = url.pathname;
    if (path !== SIQ_HTTP_QUERY_PATH && path !== SIQ_REPORT_PATH) return false;
    const work =
      path === SIQ_REPORT_PATH ? handleReport(server, req, res) : handleQuery(server, req, res, url);
    work.catch((err: unknown) => {
      if (err instanceof BodyError) {
        if (path === SIQ_REPORT_PATH) json(res, err.status, { ok: false, error: err.message });
        else plain(res, err.status, `${err.message}\n`);
        return;
      }
      log?.('SIQ HTTP request failed', (err as Error).message);
      if (!res.headersSent) json(res, 500, { ok: false, error: 'server error' });
      else res.destroy();
    });
    return true;
  };
}

/** An HTTP server with only the SIQ paths (404 elsewhere), listening on HOST:PORT. */
export async function listenSiqHttp(
  server: SiqServer,
  host: string,
  port: number,
  log?: (message: string, error: string) => void,
): Promise<{ server: Server; address: string; port: number; close(): Promise<void> }> {
  const handler = createSiqHttpHandler(server, log);
  const http = createServer((req, res) => {
    if (!handler(req, res))
      plain(res, 404, 'not found: the SIQ server answers /siq/protocol-1 and /siq/report\n');
  });
  http.headersTimeout = 10_000;
  http.requestTimeout = 30_000;
  http.listen(port, host);
  await once(http, 'listening');
  const a = http.address();
  const p = typeof a === 'object' && a ? a.port : port;
  return {
    server: http,
    address:
      typeof a === 'object' && a
        ? a.family === 'IPv6'
          ? `[${a.address}]:${a.port}`
          : `${a.address}:${a.port}`
        : String(a),
    port: p,
    close: () =>
      new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeIdleConnections();
      }),
  };
}
