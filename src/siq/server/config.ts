/**
 * The `siq_server:` section of the config file (docs/siq-server.md): its schema, defaults and
 * reader. src/policy/config.ts calls these, so errors come out with file, line and key like every
 * other section's.
 */
import { resolve } from 'node:path';
import { compileZones, type DnsblZoneConfig } from '../../checks/dnsbl/index.ts';
import type { Schema } from '../../policy/schema.ts';
import { CHECK_IDS, cloneProfile, DEFAULT_PROFILE, parseProfile, type SiqProfile } from './profile.ts';

export type SiqReplyLayout = '00' | '01' | '02';

export interface SiqServerConfig {
  /** UDP HOST:PORT for SIQ queries; '' = off */
  listen: string;
  /** HTTP HOST:PORT for the draft's HTTP form and the gateway report channel; '' = off */
  httpListen: string;
  /** the SQLite database, absolute; '' = in memory (lost on restart) */
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
  return c;
}

/** Problems the schema cannot see (zone names and filters, the profile), with their key paths inside the section. */
export function siqServerProblems(
  section: unknown,
): Array<{ path: Array<string | number>; message: string }> {
  if (section === null || typeof section !== 'object') return [];
  const s = section as Raw;
  const out: Array<{ path: Array<string | number>; message: string }> = [];
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
