/** Cookie header parsing and Set-Cookie serialising (RFC 6265), bounded. */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** name → value of the request's Cookie header; the first of a repeated name wins; at most 64. */
export function parseCookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  const header = req.headers.cookie;
  if (!header || header.length > 8192) return out;
  for (const part of header.split(';')) {
    if (out.size >= 64) break;
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (name && !out.has(name)) out.set(name, value);
  }
  return out;
}

export interface CookieOptions {
  /** seconds; 0 deletes the cookie; absent = a browser-session cookie */
  maxAge?: number;
  secure?: boolean;
  /** default Strict */
  sameSite?: 'Strict' | 'Lax';
  /** default true */
  httpOnly?: boolean;
  /** default '/' */
  path?: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VALUE = /^[!#-+\--:<-[\]-~]*$/; // cookie-octet: no space, DQUOTE, comma, semicolon, backslash

export function serializeCookie(name: string, value: string, opts: CookieOptions = {}): string {
  if (!TOKEN.test(name)) throw new TypeError(`bad cookie name ${JSON.stringify(name)}`);
  if (!VALUE.test(value)) throw new TypeError(`bad cookie value for ${name}`);
  let out = `${name}=${value}; Path=${opts.path ?? '/'}`;
  if (opts.maxAge !== undefined) out += `; Max-Age=${Math.max(0, Math.floor(opts.maxAge))}`;
  if (opts.httpOnly ?? true) out += '; HttpOnly';
  out += `; SameSite=${opts.sameSite ?? 'Strict'}`;
  if (opts.secure) out += '; Secure';
  return out;
}

/** Adds a Set-Cookie header, keeping those already set on the response. */
export function appendSetCookie(res: ServerResponse, cookie: string): void {
  const prev = res.getHeader('set-cookie');
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)];
  res.setHeader('set-cookie', [...list, cookie]);
}
