/**
 * The HTTP API adapter: `POST /v1/check` takes the checkID arguments as JSON and answers with the
 * verdict, for MTAs with their own plug-in mechanisms. Knows HTTP and the engine, no check.
 * `GET /metrics` serves the Prometheus text the `metrics` option renders (docs/operations.md).
 *
 *   {"ip": "192.0.2.1", "id": "example.com", "helo": "mx.example.com", "mail_from": "a@example.com",
 *    "rcpt": ["b@example.org"], "headers": "Subject: hi\r\n...", "body": "..."}
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Engine } from '../../engine/engine.ts';
import { type ConnectionTracker, trackSocket } from '../../telemetry/connections.ts';

export interface HttpAdapterOptions {
  engine: Engine;
  /** request bodies larger than this are refused with 413 (default 25 MiB) */
  maxBodyBytes?: number;
  /** the exposition text for GET /metrics; without it there is no /metrics */
  metrics?: () => string;
  /** counts the API's connections as listener "http" */
  connections?: ConnectionTracker;
}

export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Prometheus text exposition format 0.0.4 */
const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw new HttpError(413, `request body over ${max} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const optionalString = (v: unknown, key: string): string | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new HttpError(400, `"${key}" must be a string`);
  return v;
};

export function parseCheckRequest(text: string) {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `body is not JSON: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new HttpError(400, 'body must be a JSON object');
  const r = raw as Record<string, unknown>;
  const ip = optionalString(r.ip, 'ip');
  if (!ip) throw new HttpError(400, '"ip" is required');
  const rcpt = r.rcpt ?? [];
  if (!Array.isArray(rcpt) || !rcpt.every((x) => typeof x === 'string')) throw new HttpError(400, '"rcpt" must be a list of strings');
  let headers: string | Array<[string, string]> | undefined;
  if (typeof r.headers === 'string') headers = r.headers;
  else if (Array.isArray(r.headers)) {
    if (!r.headers.every((h) => Array.isArray(h) && h.length === 2 && h.every((x) => typeof x === 'string'))) {
      throw new HttpError(400, '"headers" must be the raw header block or a list of [name, value] pairs');
    }
    headers = r.headers as Array<[string, string]>;
  } else if (r.headers !== undefined && r.headers !== null) throw new HttpError(400, '"headers" must be a string or a list');
  const id = optionalString(r.id, 'id');
  const helo = optionalString(r.helo, 'helo');
  const mailFrom = optionalString(r.mail_from ?? r.mailFrom, 'mail_from');
  const body = optionalString(r.body, 'body');
  return {
    ip,
    ...(id ? { id } : {}),
    ...(helo ? { helo } : {}),
    ...(mailFrom !== undefined ? { mailFrom } : {}),
    rcpt: rcpt as string[],
    ...(headers !== undefined ? { headers } : {}),
    ...(body !== undefined ? { body } : {}),
  };
}

export function createHttpAdapter(options: HttpAdapterOptions): Server {
  const max = options.maxBodyBytes ?? 25 * 1024 * 1024;
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === '/healthz') return send(res, 200, { ok: true });
      if (url.pathname === '/metrics' && options.metrics) {
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.setHeader('allow', 'GET, HEAD');
          throw new HttpError(405, 'use GET');
        }
        const text = options.metrics();
        res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
        return void res.end(req.method === 'HEAD' ? undefined : text);
      }
      if (url.pathname !== '/v1/check') throw new HttpError(404, `no such endpoint ${url.pathname}; use POST /v1/check`);
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        throw new HttpError(405, 'use POST');
      }
      const input = parseCheckRequest(await readBody(req, max));
      let result: Awaited<ReturnType<Engine['checkID']>>;
      try {
        result = await options.engine.checkID(input);
      } catch (err) {
        if ((err as Error).name === 'SessionError') throw new HttpError(400, (err as Error).message);
        throw err;
      }
      const v = result.verdict;
      send(res, 200, {
        action: v.action,
        reply: v.reply,
        headers: v.headers,
        removeHeaders: v.removeHeaders,
        ...(v.subjectTag ? { subjectTag: v.subjectTag } : {}),
        stage: v.stage,
        reason: v.reason,
        explanation: v.explanation,
      });
    } catch (err) {
      if (err instanceof HttpError) return send(res, err.status, { error: err.message });
      send(res, 500, { error: 'internal error', detail: (err as Error).message });
    }
  });
  server.on('connection', (socket) => trackSocket(options.connections, 'http', socket));
  return server;
}
