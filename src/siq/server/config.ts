/**
 * The `siq_server:` section of the config file (docs/siq-server.md): its schema, defaults and
 * reader. src/policy/config.ts calls these, so errors come out with file, line and key like every
 * other section's.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { compileZones, type DnsblZoneConfig } from '../../checks/dnsbl/index.ts';
import type { Schema } from '../../policy/schema.ts';
import { CHECK_IDS, cloneProfile, DEFAULT_PROFILE, parseProfile, type SiqProfile } from './profile.ts';

export type SiqReplyLayout = '00' | '01' | '02';

/** Where accounts, profiles, lists and reports live. */
export type SiqServerStoreKind = 'sqlite' | 'memory' | 'redis';

/** `siq_server.web:`, the postmaster pages' settings (src/siq/server/web/app.ts options). */
export interface SiqWebSettings {
  /** the site's origin as browsers see it (https://siq.example.net); '' = scheme + Host header */
  publicOrigin: string;
  /** served over HTTPS (directly or by a TLS proxy): Secure cookies, HSTS; null = publicOrigin is https:// */
  secure: boolean | null;
  /** reverse proxies whose X-Forwarded-For names the client */
  trustedProxies: string[];
  /** visitors may create accounts */
  allowSignup: boolean;
  /** what the overview tells postmasters to query ('' = from listen and public_origin) */
  siqAddress: string;
  /** where gateways send reports, shown with the API key ('' = from http_listen and public_origin) */
  reportUrl: string;
  sessionIdleMinutes: number;
  sessionMaxHours: number;
}

export interface SiqServerConfig {
  /** UDP HOST:PORT for SIQ queries; '' = off */
  listen: string;
  /** HTTP HOST:PORT for the draft's HTTP form and the gateway report channel; '' = off */
  httpListen: string;
  /** the SQLite database, absolute; '' = siq.db in the state directory (src/cli/siq-listener.ts) */
  db: string;
  /** seconds an answer is kept in the server's answer cache at most (also bounded by the profile's ttl); 0 = no cache */
  cacheTtl: number;
  cacheMaxEntries: number;
  rateLimit: { perSecond: number; burst: number; action: 'drop' | 'tempfail' };
  /** reported counts halve every this many days */
  reportHalfLifeDays: number;
  /** reports on fewer messages than this (after decay) say nothing */
  reportMinMessages: number;
  /** the layout of UDP replies */
  replyLayout: SiqReplyLayout;
  /** the checks of one query must finish within this, ms; later ones count as DNS trouble */
  checkTimeoutMs: number;
  /** DNS list zones for the dnsbl (weight ≥ 0) and dnswl (weight < 0) checks */
  dnsbl: DnsblZoneConfig[];
  /** the profile of accounts without one, and the base of every account's profile */
  defaultProfile: SiqProfile;
  /** keep each account's recent queries (for the web UI) */
  queryLog: boolean;
  /** HTTP HOST:PORT for the postmaster pages (sign-up, profile, lists, API key); '' = off */
  webListen: string;
  web: SiqWebSettings;
  /** sqlite (the `db` file, '' = siq.db in the state directory), memory, or redis (the `redis:` section, shared by several servers) */
  store: SiqServerStoreKind;
}

export function defaultSiqWebSettings(): SiqWebSettings {
  return {
    publicOrigin: '',
    secure: null,
    trustedProxies: [],
    allowSignup: true,
    siqAddress: '',
    reportUrl: '',
    sessionIdleMinutes: 30,
    sessionMaxHours: 12,
  };
}

export function defaultSiqServerConfig(): SiqServerConfig {
  return {
    listen: '',
    httpListen: '',
    db: '',
    cacheTtl: 300,
    cacheMaxEntries: 100_000,
    rateLimit: { perSecond: 200, burst: 400, action: 'drop' },
    reportHalfLifeDays: 7,
    reportMinMessages: 3,
    replyLayout: '02',
    checkTimeoutMs: 1500,
    dnsbl: [],
    defaultProfile: cloneProfile(DEFAULT_PROFILE),
    queryLog: true,
    webListen: '',
    web: defaultSiqWebSettings(),
    store: 'sqlite',
  };
}

const num = (min: number, max: number, integer = true): Schema => ({ type: 'number', min, max, integer });
const listen: Schema = { type: 'string', pattern: /^$|^\S+:\d{1,5}$/, description: "'' (off) or HOST:PORT" };
const weights: Schema = {
  type: 'nullable',
  inner: {
    type: 'object',
    props: {
      enabled: { type: 'boolean' },
      pass: num(-100, 100),
      fail: num(-100, 100),
      neutral: num(-100, 100),
    },
  },
};

export const PROFILE_SCHEMA: Schema = {
  type: 'object',
  props: {
    base: num(0, 100),
    ttl: num(0, 65_535),
    checks: { type: 'object', props: Object.fromEntries(CHECK_IDS.map((id) => [id, weights])) },
  },
};

export const SIQ_SERVER_SCHEMA: Schema = {
  type: 'object',
  props: {
    listen,
    http_listen: listen,
    db: { type: 'string' },
    cache_ttl: num(0, 86_400),
    cache_max_entries: num(0, 10_000_000),
    rate_limit: {
      type: 'object',
      props: {
        per_second: num(1, 1_000_000, false),
        burst: num(1, 10_000_000),
        action: { type: 'string', enum: ['drop', 'tempfail'] },
      },
    },
    report_half_life_days: num(0.01, 3650, false),
    report_min_messages: num(0, 1_000_000, false),
    reply_layout: { type: 'string', enum: ['00', '01', '02'] },
    check_timeout_ms: num(50, 60_000),
    dnsbl: {
      type: 'array',
      items: {
        type: 'object',
        props: {
          zone: { type: 'string' },
          filter: {
            type: 'string',
            pattern: /^[0-9.;[\]-]+$/,
            description: 'a postscreen-style address pattern like 127.0.0.[2..11]',
          },
          weight: num(-1000, 1000),
          error_filter: {
            type: 'string',
            pattern: /^[0-9.;[\]-]+$/,
            description: 'a postscreen-style address pattern',
          },
        },
        required: ['zone'],
      },
    },
    default_profile: PROFILE_SCHEMA,
    query_log: { type: 'boolean' },
    web_listen: listen,
    web: {
      type: 'object',
      props: {
        public_origin: {
          type: 'string',
          pattern: /^$|^https?:\/\/[^/\s?#]+$/,
          description: 'like https://siq.example.net (scheme and host, no path)',
        },
        secure: { type: 'boolean' },
        trusted_proxies: {
          type: 'array',
          items: { type: 'string', valid: (s) => isIP(s) !== 0, description: 'an IP address' },
        },
        allow_signup: { type: 'boolean' },
        siq_address: { type: 'string', pattern: /^$|^\S+$/, description: 'HOST:PORT, no spaces' },
        report_url: {
          type: 'string',
          pattern: /^$|^https?:\/\/\S+$/,
          description: 'an http:// or https:// URL',
        },
        session_idle_minutes: num(1, 10_080),
        session_max_hours: num(1, 8_760),
      },
    },
    store: { type: 'string', enum: ['sqlite', 'memory', 'redis'] },
  },
};

type Raw = Record<string, unknown>;

function zonesOf(list: unknown): DnsblZoneConfig[] {
  if (!Array.isArray(list)) return [];
  return (list as Raw[]).map((z) => ({
    zone: String(z.zone),
    type: 'ip' as const,
    weight: typeof z.weight === 'number' ? z.weight : 1,
    ...(typeof z.filter === 'string' ? { filter: z.filter } : {}),
    ...(typeof z.error_filter === 'string' ? { errorFilter: z.error_filter } : {}),
  }));
}

/** The section (already validated against SIQ_SERVER_SCHEMA) on top of the defaults. */
export function siqServerConfigFrom(section: unknown, baseDir = process.cwd()): SiqServerConfig {
  const c = defaultSiqServerConfig();
  if (section === null || typeof section !== 'object') return c;
  const s = section as Raw;
  if (typeof s.listen === 'string') c.listen = s.listen;
  if (typeof s.http_listen === 'string') c.httpListen = s.http_listen;
  if (typeof s.db === 'string' && s.db !== '') c.db = resolve(baseDir, s.db);
  if (typeof s.cache_ttl === 'number') c.cacheTtl = s.cache_ttl;
  if (typeof s.cache_max_entries === 'number') c.cacheMaxEntries = s.cache_max_entries;
  const rl = (s.rate_limit ?? {}) as Raw;
  if (typeof rl.per_second === 'number') c.rateLimit.perSecond = rl.per_second;
  if (typeof rl.burst === 'number') c.rateLimit.burst = rl.burst;
  if (rl.action === 'drop' || rl.action === 'tempfail') c.rateLimit.action = rl.action;
  if (typeof s.report_half_life_days === 'number') c.reportHalfLifeDays = s.report_half_life_days;
  if (typeof s.report_min_messages === 'number') c.reportMinMessages = s.report_min_messages;
  if (s.reply_layout === '00' || s.reply_layout === '01' || s.reply_layout === '02')
    c.replyLayout = s.reply_layout;
  if (typeof s.check_timeout_ms === 'number') c.checkTimeoutMs = s.check_timeout_ms;
  if (Array.isArray(s.dnsbl)) c.dnsbl = zonesOf(s.dnsbl);
  const p = parseProfile(s.default_profile ?? null);
  if (p.ok) c.defaultProfile = p.profile;
  if (typeof s.query_log === 'boolean') c.queryLog = s.query_log;
  if (typeof s.web_listen === 'string') c.webListen = s.web_listen;
  const w = (s.web ?? {}) as Raw;
  if (typeof w.public_origin === 'string') c.web.publicOrigin = w.public_origin;
  if (typeof w.secure === 'boolean') c.web.secure = w.secure;
  if (Array.isArray(w.trusted_proxies)) c.web.trustedProxies = w.trusted_proxies as string[];
  if (typeof w.allow_signup === 'boolean') c.web.allowSignup = w.allow_signup;
  if (typeof w.siq_address === 'string') c.web.siqAddress = w.siq_address;
  if (typeof w.report_url === 'string') c.web.reportUrl = w.report_url;
  if (typeof w.session_idle_minutes === 'number') c.web.sessionIdleMinutes = w.session_idle_minutes;
  if (typeof w.session_max_hours === 'number') c.web.sessionMaxHours = w.session_max_hours;
  if (s.store === 'sqlite' || s.store === 'memory' || s.store === 'redis') c.store = s.store;
  return c;
}

/** The host of HOST:PORT, [IPv6]:PORT or HOST. */
export function listenHostOf(listen: string): string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(listen.trim());
  return m ? (m[1] ?? m[2]!) : listen.trim();
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1' || h === '::ffff:127.0.0.1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * Why the postmaster pages may not listen on `webListen` with these settings, or null. Off
 * loopback they are a sign-up site on the network: its public origin must be named (the CSRF
 * origin check then does not rest on the Host header, and postmasters are sent to the right
 * address), normally an https:// one behind a TLS proxy.
 */
export function siqWebListenProblem(webListen: string, web: SiqWebSettings): string | null {
  if (webListen === '' || isLoopbackHost(listenHostOf(webListen)) || web.publicOrigin !== '') return null;
  return `is ${webListen}, not a loopback address, and siq_server.web.public_origin is empty: the pages take sign-ups and passwords, so name the site's address (public_origin: https://siq.example.net, behind a TLS proxy) or listen on 127.0.0.1 with a proxy in front`;
}

/**
 * Problems the schema cannot see (zone names and filters, the profile, the web pages off
 * loopback without a public origin, a Redis store without Redis), with their key paths inside
 * the section. `redisUrl` is the config's `redis.url`.
 */
export function siqServerProblems(
  section: unknown,
  redisUrl?: string,
): Array<{ path: Array<string | number>; message: string }> {
  if (section === null || typeof section !== 'object') return [];
  const s = section as Raw;
  const out: Array<{ path: Array<string | number>; message: string }> = [];
  const c = siqServerConfigFrom(section);
  const web = siqWebListenProblem(c.webListen, c.web);
  if (web) out.push({ path: ['web_listen'], message: web });
  if (c.store === 'redis' && redisUrl === '')
    out.push({
      path: ['store'],
      message: 'is redis, but redis.url is not set: say where Redis is (docs/redis.md) or use store: sqlite',
    });
  zonesOf(s.dnsbl).forEach((zone, i) => {
    try {
      compileZones([zone]);
    } catch (err) {
      out.push({ path: ['dnsbl', i], message: (err as Error).message.replace(/^DNSBL zone #1: /, '') });
    }
  });
  const p = parseProfile(s.default_profile ?? null);
  if (!p.ok)
    for (const problem of p.problems)
      out.push({ path: ['default_profile', ...problem.path], message: problem.message });
  return out;
}
