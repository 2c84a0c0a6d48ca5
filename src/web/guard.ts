/**
 * Cross-site request forgery defences for state-changing requests (every POST):
 *  1. the browser's own word: `Sec-Fetch-Site` must be same-origin (or "none": typed by the user),
 *     and `Origin`, when sent, must be this site's origin;
 *  2. a token the page got from us: the per-session token for signed-in visitors, or for forms
 *     shown before sign-in an HMAC of a random "pre-session" cookie (double submit, signed).
 * SameSite=Strict cookies are a third layer. Tokens are compared in constant time.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { appendSetCookie, parseCookies, serializeCookie } from './cookies.ts';
import { WebError } from './respond.ts';
import { randomToken } from './session.ts';

/** The origin this request was addressed to: `publicOrigin` when configured, else scheme + Host. */
export function expectedOrigin(
  req: IncomingMessage,
  opts: { publicOrigin?: string; secure?: boolean },
): string | null {
  if (opts.publicOrigin) return new URL(opts.publicOrigin).origin;
  const host = req.headers.host;
  if (!host || !/^[A-Za-z0-9.\-[\]:]+$/.test(host)) return null;
  return `${opts.secure ? 'https' : 'http'}://${host.toLowerCase()}`;
}

/** Throws 403 when the browser says the request comes from another site. */
export function checkOrigin(
  req: IncomingMessage,
  opts: { publicOrigin?: string; secure?: boolean } = {},
): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new WebError(403, `cross-site request refused (Sec-Fetch-Site: ${String(site).slice(0, 40)})`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const want = expectedOrigin(req, opts);
    if (!want || origin.toLowerCase() !== want) {
      throw new WebError(403, `request from another origin refused (Origin: ${origin.slice(0, 100)})`);
    }
  }
}

const fresh = new WeakMap<IncomingMessage, string>();

export function tokensEqual(a: string | null | undefined, b: string | null | undefined): boolean {
  if (typeof a !== 'string' || typeof b !== 'string' || a.length === 0) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The token for forms shown before sign-in (sign-in, sign-up): bound to a random HttpOnly cookie
 * by an HMAC with the server's key, so another site can neither read nor forge it.
 */
export class PreSessionTokens {
  private readonly key: Buffer;
  readonly cookieName: string;
  private readonly secure: boolean;

  constructor(opts: { key?: Buffer; secure?: boolean; cookieName?: string } = {}) {
    this.key = opts.key ?? randomBytes(32);
    this.secure = opts.secure ?? false;
    this.cookieName = (this.secure ? '__Host-' : '') + (opts.cookieName ?? 'checkid_pre');
  }

  private mac(nonce: string): string {
    return createHmac('sha256', this.key).update(`pre-session|${nonce}`).digest('base64url');
  }

  /** The token for a form; sets the cookie when the visitor has none yet. */
  token(req: IncomingMessage, res: ServerResponse): string {
    let nonce = parseCookies(req).get(this.cookieName);
    if (!nonce || !/^[A-Za-z0-9_-]{43}$/.test(nonce)) {
      nonce = fresh.get(req);
      if (!nonce) {
        nonce = randomToken(32);
        fresh.set(req, nonce); // the same request may render the token twice: one cookie
        appendSetCookie(
          res,
          serializeCookie(this.cookieName, nonce, { secure: this.secure, maxAge: 2 * 3600 }),
        );
      }
    }
    return this.mac(nonce);
  }

  verify(req: IncomingMessage, token: string | null | undefined): boolean {
    const nonce = parseCookies(req).get(this.cookieName);
    if (!nonce || !/^[A-Za-z0-9_-]{43}$/.test(nonce)) return false;
    return tokensEqual(token, this.mac(nonce));
  }
}

/**
 * The client's address: the socket's peer, or when that peer is one of `trustedProxies` the
 * last X-Forwarded-For entry that is not itself a trusted proxy.
 */
export function clientAddress(req: IncomingMessage, trustedProxies: readonly string[] = []): string {
  const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  if (trustedProxies.length === 0 || !trustedProxies.includes(peer)) return peer;
  const xff = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(xff) ? xff.join(',') : (xff ?? ''))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) if (!trustedProxies.includes(hops[i]!)) return hops[i]!;
  return peer;
}
