/**
 * The SIQ server's web pages for postmasters: sign up, sign in and out, register source IPs, the
 * API key for gateway reports, the scoring profile with a live preview, allow/block lists, recent
 * queries, password change and account deletion. Built on src/web (sessions, CSRF, headers,
 * rate limits); state lives in the `SiqServerStore`; the preview scores the profile being edited
 * (`scoreQuery`) against the facts the server's checks find (`facts`, cached for a minute).
 *
 *   const siq = new SiqServer({ store, resolver, config });
 *   const handle = createSiqWebApp({ store, facts: serverFacts(siq), defaultProfile: config().defaultProfile });
 *   createServer(handle).listen(8062, '127.0.0.1');
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Clock, systemClock } from '../../../common/clock.ts';
import { isFqdn } from '../../../common/domain.ts';
import { parseIp, formatIp } from '../../../common/ip.ts';
import { SignInGate, type Visit } from '../../../web/gate.ts';
import { html } from '../../../web/html.ts';
import {
  DEFAULT_PASSWORD_PARAMS,
  hashPassword,
  needsRehash,
  type PasswordParams,
  passwordProblem,
  verifyPassword,
  verifyPasswordOrDummy,
} from '../../../web/password.ts';
import { addressKey, RateLimiter } from '../../../web/rate-limit.ts';
import { redirect, sendAsset, sendHtml, sendJson, staticAsset, WebError } from '../../../web/respond.ts';
import { Router } from '../../../web/router.ts';
import type { SessionOptions } from '../../../web/session.ts';
import {
  CHECK_IDS,
  cloneProfile,
  DEFAULT_PROFILE,
  formatProfileProblem,
  type ProfileProblem,
  parseProfile,
  profileToJson,
  type SiqProfile,
} from '../profile.ts';
import { answerDetails } from '../../codec.ts';
import { type SiqFacts, type SiqScore, scoreQuery } from '../score.ts';
import type { SiqServer } from '../server.ts';
import { newApiKey, type SiqServerStore, SiqStoreError } from '../store.ts';
import {
  accountPage,
  keyPage,
  layout,
  listsPage,
  type Nav,
  overviewPage,
  type PreviewView,
  profilePage,
  queriesPage,
  signupPage,
  ipsPage,
} from './pages.ts';
import { listEntryProblem, previewDomainProblem, sourceIpProblem } from './validate.ts';

export interface SiqFactsQuery {
  accountId: string;
  /** normalised IP address */
  ip: string;
  /** lower-case domain, '' for an IP-only question */
  domain: string;
}

export interface SiqWebOptions {
  store: SiqServerStore;
  /**
   * What the server's checks find about an IP and domain for this account (its lists and
   * reports included). Run every check, not only the enabled ones: the preview turns checks on
   * and off without asking again.
   */
  facts: (query: SiqFactsQuery) => Promise<SiqFacts>;
  /**
   * The server's default profile (siq_server.default_profile), or a function that reads it (so a
   * config reload applies): stored profiles' missing keys come from it.
   */
  defaultProfile?: SiqProfile | (() => SiqProfile);
  clock?: Clock;
  /** served over HTTPS (directly or behind a TLS proxy): Secure cookies, HSTS */
  secure?: boolean;
  /** the site's origin when the Host header does not name it, e.g. https://siq.example.net */
  publicOrigin?: string;
  /** reverse proxies whose X-Forwarded-For names the client */
  trustedProxies?: string[];
  /** let visitors create accounts (default true) */
  allowSignup?: boolean;
  /** password hashing (default Argon2id 19 MiB, 2 passes) */
  passwordParams?: PasswordParams;
  /** default 12 */
  minPasswordLength?: number;
  /** idle (default 30 min) and absolute (12 h) session limits */
  sessions?: SessionOptions;
  /** source IPs per account (default 64) */
  maxIps?: number;
  /** entries per list (default 1000) */
  maxListEntries?: number;
  /** "siq.example.net:6262": what gateways should query, shown on the overview */
  siqAddress?: string;
  /** where gateways send reports, shown with the API key */
  reportUrl?: string;
  /** rows on the recent-queries page (default 100) */
  queryLimit?: number;
  /** how long the preview reuses facts for the same IP and domain (default 60 s) */
  factsCacheMs?: number;
  /** unexpected errors (default: stderr) */
  onError?: (err: unknown) => void;
}

export type SiqWebApp = ((req: IncomingMessage, res: ServerResponse) => void) & { gate: SignInGate };

const ASSETS = {
  '/static/siq.js': staticAsset(
    readFileSync(new URL('./static/siq.js', import.meta.url)),
    'text/javascript; charset=utf-8',
  ),
  '/static/icon.svg': staticAsset(
    readFileSync(new URL('./static/icon.svg', import.meta.url)),
    'image/svg+xml',
  ),
  '/static/siq.css': staticAsset(
    readFileSync(new URL('./static/siq.css', import.meta.url)),
    'text/css; charset=utf-8',
  ),
} as const;

/** Fixed texts for `?done=` after a redirect (the URL never supplies the words). */
const DONE: Record<string, string> = {
  'ip-added': 'The IP address is registered.',
  'ip-known': 'That IP address was already registered to your account.',
  'ip-removed': 'The IP address is removed.',
  'key-new': 'A new API key is in place; the old one no longer works.',
  'list-added': 'The entry is on the list.',
  'list-removed': 'The entry is removed.',
  saved: 'The profile is saved; queries from your source IPs use it now.',
  reset: "The profile is back to the server's defaults.",
  password: 'The password is changed; other sessions were signed out.',
  welcome: 'Your account is ready. Register the IP addresses your gateways query from.',
};

type Handler = (visit: Visit, ctx: Ctx) => Promise<void>;

interface Ctx {
  opts: Required<Pick<SiqWebOptions, 'maxIps' | 'maxListEntries' | 'queryLimit' | 'minPasswordLength'>> &
    SiqWebOptions;
  store: SiqServerStore;
  gate: SignInGate;
}

export function createSiqWebApp(options: SiqWebOptions): SiqWebApp {
  const clock = options.clock ?? systemClock;
  const store = options.store;
  const defaultsOption = options.defaultProfile ?? DEFAULT_PROFILE;
  /** read on every use, so a config reload applies at once */
  const defaults = () => (typeof defaultsOption === 'function' ? defaultsOption() : defaultsOption);
  const params = options.passwordParams ?? DEFAULT_PASSWORD_PARAMS;
  const minLength = options.minPasswordLength ?? 12;
  const opts = {
    maxIps: 64,
    maxListEntries: 1000,
    queryLimit: 100,
    minPasswordLength: minLength,
    ...options,
  };
  const signupLimiter = new RateLimiter({ capacity: 5, windowMs: 60 * 60_000, clock });
  const factsLimiter = new RateLimiter({ capacity: 60, windowMs: 60_000, clock });
  const factsCache = new Map<string, { expires: number; facts: Promise<SiqFacts> }>();
  const factsCacheMs = options.factsCacheMs ?? 60_000;
  const allowSignup = options.allowSignup ?? true;

  const gate = new SignInGate({
    clock,
    title: 'the SIQ server',
    usernameLabel: 'E-mail address',
    usernameType: 'email',
    ...(options.secure !== undefined ? { secure: options.secure } : {}),
    ...(options.publicOrigin ? { publicOrigin: options.publicOrigin } : {}),
    ...(options.trustedProxies ? { trustedProxies: options.trustedProxies } : {}),
    ...(options.sessions
      ? { sessions: { ...options.sessions, ...(options.secure ? { secure: true } : {}) } }
      : {}),
    ...(options.onError ? { onError: (err: unknown) => options.onError!(err) } : {}),
    isPublic: (path) => path in ASSETS || path === '/signup' || path === '/healthz',
    layout: ({ title, body, visit }) => layout(visit, title, body, null, allowSignup),
    ...(allowSignup ? { signInFooter: html`<p>No account yet? <a href="/signup">Sign up</a>.</p>` } : {}),
    verify: async (email, password) => {
      const account = await store.getAccountByEmail(email.toLowerCase()).catch(() => null);
      if (!(await verifyPasswordOrDummy(password, account?.passwordHash))) return null;
      if (needsRehash(account!.passwordHash, params)) {
        await store.updateAccount(account!.id, { passwordHash: await hashPassword(password, params) });
      }
      return account!.id;
    },
  });

  const ctx: Ctx = { opts, store, gate };
  const page = (
    visit: Visit,
    status: number,
    title: string,
    body: ReturnType<typeof layout>,
    nav: Nav = null,
  ) => sendHtml(visit.res, status, layout(visit, title, body, nav, allowSignup));
  const done = (visit: Visit) => DONE[visit.url.searchParams.get('done') ?? ''];

  /** The signed-in account; a session whose account is gone ends here. */
  const account = async (visit: Visit) => {
    const a = await store.getAccount(visit.requireUser());
    if (!a) {
      await gate.signOut(visit);
      throw new WebError(401, 'this account no longer exists');
    }
    return a;
  };

  const effectiveProfile = async (accountId: string): Promise<{ profile: SiqProfile; warning?: string }> => {
    const stored = await store.getProfile(accountId);
    const parsed = parseProfile(stored, defaults());
    if (parsed.ok) return { profile: parsed.profile };
    return {
      profile: defaults(),
      warning: `The stored profile is not valid any more (${parsed.problems.map(formatProfileProblem).join('; ')}); the defaults are shown.`,
    };
  };

  const factsFor = (q: SiqFactsQuery): Promise<SiqFacts> => {
    const key = `${q.accountId}|${q.ip}|${q.domain}`;
    const now = clock.now();
    const hit = factsCache.get(key);
    if (hit && hit.expires > now) return hit.facts;
    if (!factsLimiter.take(q.accountId).allowed) {
      throw new WebError(429, 'Too many previews of new addresses in a minute; wait a little.');
    }
    const facts = options.facts(q);
    factsCache.set(key, { expires: now + factsCacheMs, facts });
    facts.catch(() => factsCache.delete(key));
    while (factsCache.size > 1000) factsCache.delete(factsCache.keys().next().value!);
    return facts;
  };

  /** The preview of `profile` for the form's preview_ip and preview_domain. */
  const preview = async (
    accountId: string,
    ipText: string,
    domainText: string,
    /** the profile, or the problems that keep the form from being one */
    profile: SiqProfile | ProfileProblem[],
  ): Promise<PreviewView> => {
    const view: PreviewView = { ip: ipText.trim(), domain: domainText.trim() };
    if (Array.isArray(profile)) {
      return { ...view, message: `Fix the marked values: ${profile.map(formatProfileProblem).join('; ')}.` };
    }
    if (view.ip === '') return view;
    const ip = view.ip.includes('%') ? null : parseIp(view.ip.replace(/^\[(.*)\]$/, '$1'));
    if (!ip) return { ...view, message: `${view.ip.slice(0, 64)} is not an IPv4 or IPv6 address.` };
    const d = previewDomainProblem(view.domain);
    if ('error' in d) return { ...view, message: d.error };

    const ipText2 = formatIp(ip);
    let facts: SiqFacts;
    try {
      facts = await factsFor({ accountId, ip: ipText2, domain: d.domain });
    } catch (err) {
      if (err instanceof WebError) return { ...view, message: err.message };
      options.onError?.(err);
      return { ...view, message: `The checks could not run: ${(err as Error).message}` };
    }
    return { ip: ipText2, domain: d.domain, result: scoreQuery(profile, facts) };
  };

  const router = new Router<Handler>();

  // ---- sign-up (public)
  router.get('/signup', async (visit) => {
    if (!allowSignup) throw new WebError(404, 'this server does not take new accounts; ask its operator');
    if (visit.userId) return redirect(visit.res, '/');
    page(visit, 200, 'Sign up', signupPage(visit, { minLength }));
  });
  router.post('/signup', async (visit) => {
    if (!allowSignup) throw new WebError(404, 'this server does not take new accounts; ask its operator');
    const form = await visit.form();
    const email = (form.get('email') ?? '').trim().toLowerCase();
    const password = form.get('password') ?? '';
    const refuse = (status: number, error: string) =>
      page(visit, status, 'Sign up', signupPage(visit, { minLength, error, email }));
    if (!isMailbox(email)) return refuse(400, 'Enter a valid e-mail address.');
    const weak = passwordProblem(password, { minLength, account: email });
    if (weak) return refuse(400, `${weak[0]!.toUpperCase()}${weak.slice(1)}.`);
    if (password !== form.get('password2')) return refuse(400, 'The two passwords differ.');
    const limit = signupLimiter.take(addressKey(visit.ip));
    if (!limit.allowed) {
      visit.res.setHeader('retry-after', String(Math.ceil(limit.retryAfterMs / 1000)));
      return refuse(429, 'Too many new accounts from your address; try again later.');
    }
    let created: { id: string };
    try {
      created = await store.createAccount({
        email,
        passwordHash: await hashPassword(password, params),
        createdAt: clock.now(),
      });
    } catch (err) {
      if (err instanceof SiqStoreError && err.code === 'conflict')
        return refuse(409, 'An account for this address exists: sign in instead.');
      if (err instanceof SiqStoreError && err.code === 'invalid')
        return refuse(400, 'Enter a valid e-mail address.');
      throw err;
    }
    await gate.signIn(visit, created.id);
    redirect(visit.res, '/ips?done=welcome');
  });

  // ---- overview
  router.get('/', async (visit) => {
    const a = await account(visit);
    const [ips, queries] = await Promise.all([
      store.listSourceIps(a.id),
      store.recentQueries(a.id, opts.queryLimit),
    ]);
    page(
      visit,
      200,
      'Overview',
      overviewPage({ account: a, ips, siqAddress: options.siqAddress, queries: queries.length }),
      'overview',
    );
  });

  // ---- source IPs
  const showIps = async (visit: Visit, status: number, extra: { error?: string; value?: string } = {}) => {
    const a = await account(visit);
    const ips = await store.listSourceIps(a.id);
    const d = done(visit);
    page(
      visit,
      status,
      'Source IPs',
      ipsPage(visit, { ips, max: opts.maxIps, ...extra, ...(d ? { done: d } : {}) }),
      'ips',
    );
  };
  router.get('/ips', (visit) => showIps(visit, 200));
  router.post('/ips', async (visit) => {
    const a = await account(visit);
    const form = await visit.form();
    const value = form.get('ip') ?? '';
    const checked = sourceIpProblem(value);
    if ('error' in checked) return showIps(visit, 400, { error: checked.error, value });
    const ips = await store.listSourceIps(a.id);
    if (ips.includes(checked.ip)) return redirect(visit.res, '/ips?done=ip-known');
    if (ips.length >= opts.maxIps)
      return showIps(visit, 400, {
        error: `An account may register at most ${opts.maxIps} addresses.`,
        value,
      });
    try {
      await store.addSourceIp(a.id, checked.ip);
    } catch (err) {
      if (err instanceof SiqStoreError && err.code === 'conflict') {
        return showIps(visit, 409, {
          error: `${checked.ip} is registered to another account. If your gateways use it, ask the server's operator.`,
          value,
        });
      }
      throw err;
    }
    redirect(visit.res, '/ips?done=ip-added');
  });
  router.post('/ips/remove', async (visit) => {
    const a = await account(visit);
    const form = await visit.form();
    const checked = sourceIpProblem(form.get('ip') ?? '');
    if ('error' in checked) return showIps(visit, 400, { error: checked.error });
    if (!(await store.removeSourceIp(a.id, checked.ip)))
      return showIps(visit, 404, { error: `${checked.ip} is not one of your source IPs.` });
    redirect(visit.res, '/ips?done=ip-removed');
  });

  // ---- API key
  router.get('/key', async (visit) => {
    const a = await account(visit);
    const d = done(visit);
    page(
      visit,
      200,
      'API key',
      keyPage(visit, { apiKey: a.apiKey, reportUrl: options.reportUrl, ...(d ? { done: d } : {}) }),
      'key',
    );
  });
  router.post('/key/regenerate', async (visit) => {
    const a = await account(visit);
    await visit.form();
    await store.updateAccount(a.id, { apiKey: newApiKey() });
    redirect(visit.res, '/key?done=key-new');
  });

  // ---- profile
  const showProfile = async (
    visit: Visit,
    status: number,
    extra: {
      fields?: URLSearchParams;
      problems?: ProfileProblem[];
      previewView?: PreviewView;
      error?: string;
    } = {},
  ) => {
    const a = await account(visit);
    const { profile, warning } = await effectiveProfile(a.id);
    const q = visit.url.searchParams;
    const view =
      extra.previewView ?? (await preview(a.id, q.get('ip') ?? '', q.get('domain') ?? '', profile));
    const problems = new Map((extra.problems ?? []).map((p) => [p.path.join('.'), p.message]));
    const d = done(visit);
    const error = extra.error ?? warning;
    page(
      visit,
      status,
      'Scoring profile',
      profilePage(visit, {
        profile,
        preview: view,
        problems,
        ...(extra.fields ? { fields: extra.fields } : {}),
        ...(error ? { error } : {}),
        ...(d ? { done: d } : {}),
      }),
      'profile',
    );
  };
  router.get('/profile', (visit) => showProfile(visit, 200));
  router.post('/profile', async (visit) => {
    const a = await account(visit);
    const form = await visit.form();
    const parsed = profileFromForm(form, defaults());
    if (!parsed.ok) {
      return showProfile(visit, 400, {
        fields: form,
        problems: parsed.problems,
        error: 'The profile is not saved: fix the marked values.',
        previewView: await preview(
          a.id,
          form.get('preview_ip') ?? '',
          form.get('preview_domain') ?? '',
          parsed.problems,
        ),
      });
    }
    await store.setProfile(a.id, profileToJson(parsed.profile));
    const back = new URLSearchParams({ done: 'saved' });
    const ip = (form.get('preview_ip') ?? '').trim();
    if (ip) {
      back.set('ip', ip.slice(0, 64));
      back.set('domain', (form.get('preview_domain') ?? '').trim().slice(0, 255));
    }
    redirect(visit.res, `/profile?${back}`);
  });
  router.post('/profile/reset', async (visit) => {
    const a = await account(visit);
    await visit.form();
    await store.setProfile(a.id, {});
    redirect(visit.res, '/profile?done=reset');
  });
  // the live preview: JSON for the page's script (Accept: application/json), the page without it
  router.post('/profile/preview', async (visit) => {
    const a = await account(visit);
    const form = await visit.form();
    const parsed = profileFromForm(form, defaults());
    const view = await preview(
      a.id,
      form.get('preview_ip') ?? '',
      form.get('preview_domain') ?? '',
      parsed.ok ? parsed.profile : parsed.problems,
    );
    if (visit.wantsJson())
      return sendJson(visit.res, 200, previewJson(view, parsed.ok ? [] : parsed.problems));
    return showProfile(visit, parsed.ok ? 200 : 400, {
      fields: form,
      previewView: view,
      ...(parsed.ok
        ? { error: 'Preview only: the profile is not saved yet.' }
        : { problems: parsed.problems, error: 'Fix the marked values.' }),
    });
  });

  // ---- lists
  const showLists = async (
    visit: Visit,
    status: number,
    extra: { error?: string; value?: string; list?: string } = {},
  ) => {
    const a = await account(visit);
    const lists = await store.getLists(a.id);
    const d = done(visit);
    page(
      visit,
      status,
      'Allow and block lists',
      listsPage(visit, { lists, max: opts.maxListEntries, ...extra, ...(d ? { done: d } : {}) }),
      'lists',
    );
  };
  router.get('/lists', (visit) => showLists(visit, 200));
  router.post('/lists/add', async (visit) => {
    const a = await account(visit);
    const form = await visit.form();
    const value = form.get('entry') ?? '';
    const list = form.get('list');
    if (list !== 'allow' && list !== 'block')
      return showLists(visit, 400, { error: 'Choose the allow or the block list.', value });
    const checked = listEntryProblem(value);
    if ('error' in checked) return showLists(visit, 400, { error: checked.error, value, list });
    const lists = await store.getLists(a.id);
    if (!lists[list].includes(checked.entry) && lists[list].length >= opts.maxListEntries) {
      return showLists(visit, 400, {
        error: `A list may hold at most ${opts.maxListEntries} entries.`,
        value,
        list,
      });
    }
    await store.addListEntry(a.id, list, checked.entry);
    factsCache.clear(); // local_ip/local_domain facts depend on the lists
    redirect(visit.res, '/lists?done=list-added');
  });
  router.post('/lists/remove', async (visit) => {
    const a = await account(visit);
    const form = await visit.form();
    const list = form.get('list');
    if (list !== 'allow' && list !== 'block')
      return showLists(visit, 400, { error: 'Choose the allow or the block list.' });
    const entry = form.get('entry') ?? '';
    if (!(await store.removeListEntry(a.id, list, entry)))
      return showLists(visit, 404, { error: 'That entry is not on the list.' });
    factsCache.clear();
    redirect(visit.res, '/lists?done=list-removed');
  });

  // ---- recent queries
  router.get('/queries', async (visit) => {
    const a = await account(visit);
    const entries = await store.recentQueries(a.id, opts.queryLimit);
    page(visit, 200, 'Recent queries', queriesPage(entries, opts.queryLimit), 'queries');
  });

  // ---- account: password change, deletion
  const showAccount = async (visit: Visit, status: number, error?: string) => {
    const a = await account(visit);
    const d = done(visit);
    page(
      visit,
      status,
      'Account',
      accountPage(visit, { account: a, minLength, ...(error ? { error } : {}), ...(d ? { done: d } : {}) }),
      'account',
    );
  };
  router.get('/account', (visit) => showAccount(visit, 200));
  router.post('/account/password', async (visit) => {
    const a = await account(visit);
    const form = await visit.form();
    if (!(await verifyPassword(form.get('current') ?? '', a.passwordHash)))
      return showAccount(visit, 401, 'The current password is wrong.');
    const password = form.get('password') ?? '';
    const weak = passwordProblem(password, { minLength, account: a.email });
    if (weak) return showAccount(visit, 400, `${weak[0]!.toUpperCase()}${weak.slice(1)}.`);
    if (password !== form.get('password2')) return showAccount(visit, 400, 'The two new passwords differ.');
    await store.updateAccount(a.id, { passwordHash: await hashPassword(password, params) });
    await gate.sessions.destroyUser(a.id);
    await gate.signIn(visit, a.id);
    redirect(visit.res, '/account?done=password');
  });
  router.post('/account/delete', async (visit) => {
    const a = await account(visit);
    const form = await visit.form();
    if (!(await verifyPassword(form.get('current') ?? '', a.passwordHash)))
      return showAccount(visit, 401, 'The password is wrong.');
    await store.deleteAccount(a.id);
    await gate.sessions.destroyUser(a.id);
    await gate.signOut(visit);
    redirect(visit.res, '/signin');
  });

  router.get('/healthz', async (visit) => sendJson(visit.res, 200, { ok: true }));

  const handler = gate.handler(async (visit) => {
    const asset = ASSETS[visit.url.pathname as keyof typeof ASSETS];
    if (asset && (visit.req.method === 'GET' || visit.req.method === 'HEAD'))
      return sendAsset(visit.res, asset);
    const m = router.match(visit.req.method ?? 'GET', visit.url.pathname);
    if (m.status === 404) throw new WebError(404, `no page ${visit.url.pathname.slice(0, 100)}`);
    if (m.status === 405)
      throw new WebError(405, `use ${m.allow.join(' or ')}`, { allow: m.allow.join(', ') });
    try {
      await m.handler(visit, ctx);
    } catch (err) {
      if (err instanceof SiqStoreError && err.code !== 'not-found')
        throw new WebError(err.code === 'conflict' ? 409 : 400, err.message);
      throw err;
    }
  }) as SiqWebApp;
  handler.gate = gate;
  return handler;
}

/** A plain mailbox: dot-atom local part (RFC 5322 atext) @ a host name. */
function isMailbox(email: string): boolean {
  const at = email.lastIndexOf('@');
  if (at < 1 || email.length > 254) return false;
  const local = email.slice(0, at);
  return (
    local.length <= 64 &&
    /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/.test(local) &&
    isFqdn(email.slice(at + 1))
  );
}

/** The form's values as a profile on top of `base`, with problems named by field. */
export function profileFromForm(form: URLSearchParams, base: SiqProfile) {
  const n = (name: string): unknown => {
    const v = form.get(name);
    if (v === null) return undefined;
    const t = v.trim();
    return /^[-+]?\d{1,9}$/.test(t) ? Number(t) : t;
  };
  const checks: Record<string, unknown> = {};
  for (const id of CHECK_IDS) {
    const c: Record<string, unknown> = { enabled: form.get(`checks.${id}.enabled`) === 'on' };
    for (const k of ['pass', 'fail', 'neutral'] as const) {
      const v = n(`checks.${id}.${k}`);
      if (v !== undefined) c[k] = v;
    }
    checks[id] = c;
  }
  const input: Record<string, unknown> = { checks };
  for (const k of ['base', 'ttl'] as const) {
    const v = n(k);
    if (v !== undefined) input[k] = v;
  }
  return parseProfile(input, base);
}

/** The preview as JSON for siq.js. */
export function previewJson(view: PreviewView, problems: ProfileProblem[]) {
  const r: SiqScore | undefined = view.result;
  return {
    ip: view.ip,
    domain: view.domain,
    message: view.message ?? null,
    problems: Object.fromEntries(problems.map((p) => [p.path.join('.'), p.message])),
    result: r
      ? { score: r.score, ...answerDetails(r), contributions: r.contributions }
      : null,
  };
}

/** The server's checks as the `facts` option: every check on, with the account's lists and reports. */
export function serverFacts(server: Pick<SiqServer, 'explain'>): (q: SiqFactsQuery) => Promise<SiqFacts> {
  const everything = cloneProfile(DEFAULT_PROFILE);
  for (const id of CHECK_IDS) everything.checks[id].enabled = true;
  return async ({ accountId, ip, domain }) => (await server.explain(accountId, ip, domain, everything)).facts;
}

/**
 * Serves the pages on HOST:PORT (port 0: any free one) with header and request time limits, for
 * `siq_server.web_listen`. Put a TLS proxy in front (and set `secure`) when it is reachable
 * from outside.
 */
export async function listenSiqWeb(
  app: SiqWebApp,
  host: string,
  port: number,
): Promise<{ server: Server; address: string; port: number; close(): Promise<void> }> {
  const server = createServer(app);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return {
    server,
    address: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`,
    port: a.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
