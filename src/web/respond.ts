/** Responses: security headers on every answer, HTML/JSON/redirect helpers, the error type. */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SafeHtml } from './html.ts';

/** An error that becomes an HTTP status with a message meant for the user. */
export class WebError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'WebError';
    this.status = status;
    this.headers = headers;
  }
}

/**
 * The content security policy: scripts, styles, images and fetches from this origin only and no
 * inline script or style (so JavaScript is served as files); forms post only here; no framing.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Sets the security headers every answer carries; `secure` adds HSTS (only over TLS). */
export function applySecurityHeaders(res: ServerResponse, opts: { secure?: boolean } = {}): void {
  res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'same-origin');
  res.setHeader('cross-origin-opener-policy', 'same-origin');
  res.setHeader('cross-origin-resource-policy', 'same-origin');
  res.setHeader('permissions-policy', 'camera=(), microphone=(), geolocation=(), payment=()');
  res.setHeader('cache-control', 'no-store');
  if (opts.secure) res.setHeader('strict-transport-security', 'max-age=31536000');
}

/** Sends `text` as the whole body (none for a HEAD request), with its length. */
function sendBody(
  res: ServerResponse,
  status: number,
  contentType: string,
  text: string,
  headers: Record<string, string>,
): void {
  const body = Buffer.from(text, 'utf8');
  res.writeHead(status, { ...headers, 'content-type': contentType, 'content-length': body.length });
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

export function sendHtml(
  res: ServerResponse,
  status: number,
  page: SafeHtml,
  headers: Record<string, string> = {},
): void {
  sendBody(res, status, 'text/html; charset=utf-8', page.text, headers);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  sendBody(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`, headers);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  sendBody(res, status, 'text/plain; charset=utf-8', text, headers);
}

/** 303 See Other: after a POST the browser GETs `location` (post/redirect/get). */
export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location, 'content-length': 0 });
  res.end();
}

/** A local path to go back to after sign-in: only "/..." and never "//host" or "/\host". */
export function safeLocalPath(next: string | null | undefined, fallback = '/'): string {
  if (!next || next.length > 2048) return fallback;
  if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return fallback;
  if (/[\u0000-\u001f\\]/.test(next)) return fallback;
  return next;
}

/** A static asset kept in memory, with a strong ETag. */
export interface StaticAsset {
  body: Buffer;
  type: string;
  etag: string;
}

export function staticAsset(body: Buffer | string, type: string): StaticAsset {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return { body: buf, type, etag: `"${createHash('sha256').update(buf).digest('base64url').slice(0, 27)}"` };
}

export function sendAsset(res: ServerResponse, asset: StaticAsset): void {
  // assets are public and carry no secrets: revalidate with the ETag instead of no-store
  res.setHeader('cache-control', 'no-cache');
  if (res.req?.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, { etag: asset.etag });
    return void res.end();
  }
  res.writeHead(200, { 'content-type': asset.type, 'content-length': asset.body.length, etag: asset.etag });
  res.end(res.req?.method === 'HEAD' ? undefined : asset.body);
}
