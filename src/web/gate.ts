/**
 * The sign-in gate: everything an app behind a password needs, given one function that checks a
 * user name and password. It serves GET/POST /signin and POST /signout, sends visitors without a
 * session to the sign-in page, sets the security headers, and hands the app a `Visit` whose
 * `form()`/`json()` read the body only after the origin and CSRF checks passed.
 *
 *   const gate = new SignInGate({ verify: async (user, pw) => (await check(user, pw)) ? user : null });
 *   createServer(gate.handler(async (visit) => {
 *     if (visit.url.pathname === '/') return sendHtml(visit.res, 200, html`<p>Hello ${visit.userId}</p>`);
 *     throw new WebError(404, 'no such page');
 *   }));
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Clock, systemClock } from '../common/clock.ts';
import { type BodyLimits, readForm, readJson } from './body.ts';
import { checkOrigin, clientAddress, PreSessionTokens, tokensEqual } from './guard.ts';
import { html, type SafeHtml } from './html.ts';
import { MAX_PASSWORD_LENGTH } from './password.ts';
import { addressKey, RateLimiter } from './rate-limit.ts';
import {
  applySecurityHeaders,
  redirect,
  safeLocalPath,
  sendHtml,
  sendJson,
  sendText,
  WebError,
} from './respond.ts';
import { type Session, SessionManager, type SessionOptions } from './session.ts';

/** What a page needs from the app's look: the title and the body, wrapped in the app's shell. */
export type Layout = (page: { title: string; body: SafeHtml; visit: Visit }) => SafeHtml;

export interface SignInGateOptions {
  /** the user's id when the name and password are right, else null (take the same time either way) */
  verify(username: string, password: string, visit: Visit): Promise<string | null>;
  /** a ready SessionManager, or options for one */
  sessions?: SessionManager | SessionOptions;
  clock?: Clock;
  /** served over HTTPS (directly or behind a TLS proxy): Secure cookies, HSTS, https origin */
  secure?: boolean;
  /** e.g. "https://siq.example.net": the origin POSTs must come from (default: scheme + Host) */
  publicOrigin?: string;
  /** peers whose X-Forwarded-For is believed (for the client address of rate limits and logs) */
  trustedProxies?: string[];
  /** sign-in tries per client address (IPv6: per /64); default 10 per 15 minutes */
  addressLimiter?: RateLimiter;
  /** sign-in tries per user name, from anywhere; default 30 per hour */
  accountLimiter?: RateLimiter;
  signInPath?: string;
  signOutPath?: string;
  /** where a successful sign-in goes without a `next` (default "/") */
  home?: string;
  /** paths (or a test) served without a session, besides the sign-in page */
  isPublic?: (pathname: string, method: string) => boolean;
  layout?: Layout;
  /** the app's name on the default sign-in page */
  title?: string;
  usernameLabel?: string;
  /** `email` shows the e-mail keyboard and autocomplete */
  usernameType?: 'email' | 'text';
  /** more markup under the sign-in form (e.g. a link to sign up) */
  signInFooter?: SafeHtml;
  bodyLimits?: BodyLimits;
  /** for unexpected errors (default: stderr) */
  onError?: (err: unknown, visit: Visit | null) => void;
}

/** One request as the app sees it. */
export class Visit {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** the client address (after trusted proxies) */
  readonly ip: string;
  session: Session | null;
  private readonly gate: SignInGate;

  constructor(
    gate: SignInGate,
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    ip: string,
    session: Session | null,
  ) {
    this.gate = gate;
    this.req = req;
    this.res = res;
    this.url = url;
    this.ip = ip;
    this.session = session;
  }

  get userId(): string | null {
    return this.session?.userId ?? null;
  }

  /** The signed-in user's id; 401 when there is none (for handlers behind `isPublic`). */
  requireUser(): string {
    if (!this.session) throw new WebError(401, 'sign in first');
    return this.session.userId;
  }

  /** The CSRF token for this visitor's forms and fetches. */
  csrfToken(): string {
    return this.session ? this.session.csrf : this.gate.preTokens.token(this.req, this.res);
  }

  /** `<input type="hidden" name="_csrf" ...>` for a form */
  csrfField(): SafeHtml {
    return html`<input type="hidden" name="_csrf" value="${this.csrfToken()}">`;
  }

  private checkToken(token: string | null | undefined): void {
    // the session's token, or the pre-session one (a form shown before sign-in, posted after it
    // in another tab): neither can be read or forged by another site
    const ok =
      (this.session && tokensEqual(token, this.session.csrf)) || this.gate.preTokens.verify(this.req, token);
    if (!ok)
      throw new WebError(
        403,
        'the form has expired or did not come from this site: reload the page and try again',
      );
  }

  private checkPost(): void {
    if (this.req.method !== 'POST') throw new WebError(405, 'use POST', { allow: 'POST' });
    checkOrigin(this.req, this.gate.originOptions);
  }

  /** A POSTed form, after the origin check and its `_csrf` field were verified. */
  async form(): Promise<URLSearchParams> {
    this.checkPost();
    const form = await readForm(this.req, this.gate.bodyLimits);
    this.checkToken(form.get('_csrf'));
    return form;
  }

  /** A POSTed JSON body, after the origin check and the `X-CSRF-Token` header were verified. */
  async json(): Promise<unknown> {
    this.checkPost();
    const header = this.req.headers['x-csrf-token'];
    this.checkToken(Array.isArray(header) ? header[0] : header);
    return readJson(this.req, this.gate.bodyLimits);
  }

  /** True when the client asked for JSON (fetch) rather than a page. */
  wantsJson(): boolean {
    return (
      /application\/json/.test(String(this.req.headers.accept ?? '')) &&
      !/text\/html/.test(String(this.req.headers.accept))
    );
  }
}

/**
 * A whole page: the head (charset, viewport, `title`, then `head`: the page's stylesheets and
 * scripts, each line ending in a newline) and `body` in <main>.
 */
export function htmlPage(title: string, body: SafeHtml, head: SafeHtml = html``): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
${head}</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

export const defaultLayout: Layout = ({ title, body }) => htmlPage(title, body);

export class SignInGate {
  readonly sessions: SessionManager;
  readonly preTokens: PreSessionTokens;
  readonly originOptions: { publicOrigin?: string; secure?: boolean };
  readonly bodyLimits: BodyLimits;
  readonly signInPath: string;
  readonly signOutPath: string;
  readonly home: string;
  readonly layout: Layout;
  private readonly opts: SignInGateOptions;
  private readonly addressLimiter: RateLimiter;
  private readonly accountLimiter: RateLimiter;

  constructor(opts: SignInGateOptions) {
    this.opts = opts;
    const clock = opts.clock ?? systemClock;
    const secure = opts.secure ?? false;
    this.sessions =
      opts.sessions instanceof SessionManager
        ? opts.sessions
        : new SessionManager({ clock, secure, ...(opts.sessions ?? {}) });
    this.preTokens = new PreSessionTokens({ secure });
    this.originOptions = { secure, ...(opts.publicOrigin ? { publicOrigin: opts.publicOrigin } : {}) };
    this.bodyLimits = opts.bodyLimits ?? { maxBytes: 64 * 1024, maxFields: 200 };
    this.signInPath = opts.signInPath ?? '/signin';
    this.signOutPath = opts.signOutPath ?? '/signout';
    this.home = opts.home ?? '/';
    this.layout = opts.layout ?? defaultLayout;
    this.addressLimiter =
      opts.addressLimiter ?? new RateLimiter({ capacity: 10, windowMs: 15 * 60_000, clock });
    this.accountLimiter =
      opts.accountLimiter ?? new RateLimiter({ capacity: 30, windowMs: 60 * 60_000, clock });
  }

  /**
   * Starts a request: security headers, the session, the gate's own pages. Resolves to the visit
   * when the app should answer it, or null when the gate already has.
   */
  async begin(req: IncomingMessage, res: ServerResponse): Promise<Visit | null> {
    applySecurityHeaders(res, { secure: this.originOptions.secure ?? false });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      throw new WebError(400, 'bad request target');
    }
    const session = await this.sessions.load(req);
    const visit = new Visit(this, req, res, url, clientAddress(req, this.opts.trustedProxies), session);
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === this.signInPath) {
      if (method === 'GET' || method === 'HEAD') {
        if (session) redirect(res, safeLocalPath(url.searchParams.get('next'), this.home));
        else this.renderSignIn(visit, { next: url.searchParams.get('next') });
      } else if (method === 'POST') await this.postSignIn(visit);
      else throw new WebError(405, 'use GET or POST', { allow: 'GET, HEAD, POST' });
      return null;
    }
    if (path === this.signOutPath) {
      await visit.form(); // POST with the CSRF token: a link elsewhere cannot sign anyone out
      await this.signOut(visit);
      redirect(res, this.signInPath);
      return null;
    }
    if (!session && !(this.opts.isPublic?.(path, method) ?? false)) {
      if ((method === 'GET' || method === 'HEAD') && !visit.wantsJson()) {
        redirect(res, `${this.signInPath}?next=${encodeURIComponent(path + url.search)}`);
        return null;
      }
      throw new WebError(401, 'sign in first');
    }
    return visit;
  }

  /** Signs `userId` in on this visit: a new session id (the old session, if any, ends). */
  async signIn(visit: Visit, userId: string): Promise<Session> {
    visit.session = await this.sessions.rotate(visit.res, visit.session, userId);
    return visit.session;
  }

  async signOut(visit: Visit): Promise<void> {
    await this.sessions.destroy(visit.res, visit.session);
    visit.session = null;
  }

  /** A request handler: `begin`, then the app, with errors turned into pages or JSON. */
  handler(app: (visit: Visit) => Promise<void> | void): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      let visit: Visit | null = null;
      (async () => {
        visit = await this.begin(req, res);
        if (visit) await app(visit);
      })().catch((err: unknown) => this.fail(req, res, visit, err));
    };
  }

  /** Answers an error: a WebError's status and message, anything else 500 (and onError). */
  fail(req: IncomingMessage, res: ServerResponse, visit: Visit | null, err: unknown): void {
    const known = err instanceof WebError;
    if (!known) (this.opts.onError ?? ((e) => console.error('web: internal error', e)))(err, visit);
    if (res.headersSent) return void res.destroy();
    const status = known ? err.status : 500;
    const message = known ? err.message : 'internal error';
    if (known) for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
    const json = visit
      ? visit.wantsJson() || req.headers['content-type']?.startsWith('application/json')
      : false;
    if (json) return void sendJson(res, status, { error: message });
    if (!visit) return void sendText(res, status, `${message}\n`);
    const body = html`<h1>${status === 404 ? 'Not found' : 'Sorry'}</h1>
<p role="alert">${message}</p>
<p><a href="${this.home}">Back</a></p>`;
    sendHtml(res, status, this.layout({ title: message, body, visit }));
  }

  renderSignIn(
    visit: Visit,
    opts: {
      error?: string;
      status?: number;
      username?: string;
      next?: string | null;
      headers?: Record<string, string>;
    } = {},
  ): void {
    const o = this.opts;
    const next = safeLocalPath(opts.next, '');
    const body = html`<h1>Sign in${o.title ? html` to ${o.title}` : ''}</h1>
${opts.error ? html`<p class="error" role="alert" id="signin-error">${opts.error}</p>` : ''}
<form method="post" action="${this.signInPath}" class="stack">
${visit.csrfField()}
${next ? html`<input type="hidden" name="next" value="${next}">` : ''}
<label for="username">${o.usernameLabel ?? 'User name'}</label>
<input id="username" name="username" type="${o.usernameType ?? 'text'}" required autocomplete="username" maxlength="320" value="${opts.username ?? ''}"${opts.error ? html` aria-describedby="signin-error"` : ''}>
<label for="password">Password</label>
<input id="password" name="password" type="password" required autocomplete="current-password" maxlength="${MAX_PASSWORD_LENGTH}">
<button type="submit">Sign in</button>
</form>
${o.signInFooter ?? ''}`;
    sendHtml(
      visit.res,
      opts.status ?? 200,
      this.layout({ title: 'Sign in', body, visit }),
      opts.headers ?? {},
    );
  }

  private async postSignIn(visit: Visit): Promise<void> {
    const form = await visit.form();
    const username = (form.get('username') ?? '').trim();
    const password = form.get('password') ?? '';
    const next = form.get('next');
    const wait = (ms: number) =>
      ms < 120_000 ? `${Math.ceil(ms / 1000)} seconds` : `${Math.ceil(ms / 60_000)} minutes`;
    const tooMany = (from: string, retryAfterMs: number) =>
      this.renderSignIn(visit, {
        status: 429,
        error: `Too many sign-in attempts ${from}; try again in ${wait(retryAfterMs)}.`,
        username,
        next,
        headers: { 'retry-after': String(Math.ceil(retryAfterMs / 1000)) },
      });
    const byAddress = this.addressLimiter.take(addressKey(visit.ip));
    if (!byAddress.allowed) return tooMany('from your address', byAddress.retryAfterMs);
    if (!username || !password || username.length > 320 || password.length > MAX_PASSWORD_LENGTH) {
      return this.renderSignIn(visit, {
        status: 400,
        error: 'Enter your user name and password.',
        username,
        next,
      });
    }
    const byAccount = this.accountLimiter.take(username.toLowerCase());
    if (!byAccount.allowed) return tooMany('for this account', byAccount.retryAfterMs);
    const userId = await this.opts.verify(username, password, visit);
    if (userId === null) {
      return this.renderSignIn(visit, { status: 401, error: 'Wrong user name or password.', username, next });
    }
    await this.signIn(visit, userId);
    redirect(visit.res, safeLocalPath(next, this.home));
  }
}
