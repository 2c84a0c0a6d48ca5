/**
 * The checkid configuration: YAML on disk (snake_case keys, documented in docs/configuration.md),
 * validated with errors that name the file, line and key, then turned into a typed Config.
 * Every key has a default, so an empty file (or none) is a working configuration.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Node as YamlNode } from 'yaml';
import type { Schema, SchemaError } from './schema.ts';
import { validate } from './schema.ts';
import { DEFAULT_SCALE, type ServiceScale } from '../checks/ratings/score.ts';

import { compileZones, type DnsblZoneConfig } from '../checks/dnsbl/index.ts';
import { LocalListError, LocalLists } from '../checks/locallist/index.ts';
import { isFqdn } from '../common/domain.ts';
import {
  defaultSiqServerConfig,
  SIQ_SERVER_SCHEMA,
  type SiqServerConfig,
  siqServerConfigFrom,
  siqServerProblems,
} from '../siq/server/config.ts';
import {
  CACHE_BACKENDS,
  type CacheBackend,
  defaultRedisConfig,
  REDIS_SCHEMA,
  type RedisConfig,
  readRedisConfig,
  redisConfigProblems,
} from '../redis/config.ts';
import {
  defaultSiqReportConfig,
  SIQ_REPORT_SCHEMA,
  type SiqReportConfig,
  siqReportConfigFrom,
  siqReportProblems,
} from '../siq/reporter.ts';
import {
  DASHBOARD_SCHEMA,
  type DashboardConfig,
  dashboardConfigFrom,
  dashboardConfigProblems,
  defaultDashboardConfig,
} from '../dashboard/config.ts';

export type HeaderKind = 'authentication-results' | 'authent';
export type { DnsblZoneConfig };

export interface Thresholds {
  /** ACCEPT when the weighted average is at least this ... */
  average?: number;
  /** ... and every rating at least this */
  min?: number;
  /** REJECT form: the best rating is at most this */
  max?: number;
}

export interface Config {
  /** where the config came from ('' = embedded defaults) */
  source: string;
  authservId: string;
  /**
   * where checkid keeps state that outlives a restart (history, SIQ server accounts); '' =
   * choose at start-up with resolveStateDir() (src/common/state-dir.ts)
   */
  stateDir: string;
  headers: HeaderKind[];
  onError: 'tempfail' | 'accept';
  deadlineMs: number;
  resolver: {
    servers: string[];
    timeoutMs: number;
    attempts: number;
    maxInFlight: number;
    /** backend redis: a shared second level under the memory cache (docs/redis.md) */
    cache:
      | false
      | { minTtl: number; maxTtl: number; negativeMaxTtl: number; maxEntries: number; backend: CacheBackend };
  };
  prescreen: {
    dnsbl: Array<DnsblZoneConfig & { weight: number; type: 'ip' | 'domain' }>;
    threshold: number;
    allowThreshold: number;
    selfTestIntervalS: number;
    allow: string[];
    block: string[];
  };
  iprev: { enabled: boolean; rejectFail: boolean };
  helo: { enabled: boolean; rejectInvalid: boolean; localNames: string[] };
  csa: { enabled: boolean; rejectFail: boolean };
  spf: { helo: boolean; mailFrom: boolean; rejectFail: boolean; rejectHeloFail: boolean };
  identity: { rejectFail: boolean; useHelo: boolean };
  ratings: {
    registries: Array<{ zone: string }>;
    trustUnlisted: boolean;
    defaultScale: ServiceScale;
    services: Record<string, ServiceScale>;
    accept: Thresholds | null;
    reject: Thresholds | null;
    recipients: Array<{ match: string[]; accept?: Thresholds | null; reject?: Thresholds | null }>;
    tempfailOnError: boolean;
  };
  filter: { subjectTag: string };
  dkim: { enabled: boolean; maxSignatures: number; minRsaBits: number };
  dmarc: { enabled: boolean; rejectOnPolicy: boolean; exempt: string[] };
  arc: { enabled: boolean; trustedSealers: string[] };
  /** SIQ reputation servers (docs/siq.md) and milter-siq's policy */
  siq: {
    servers: string[];
    timeoutMs: number;
    attempts: number;
    queryNullSender: boolean;
    followRedirects: boolean;
    service: string;
    subScores: boolean;
    /** backend redis: answers shared by every daemon on the same Redis (docs/redis.md) */
    cache: { maxEntries: number; defaultTtl: number; minTtl: number; maxTtl: number; backend: CacheBackend };
    tagScore: number;
    rejectScore: number;
    subjectTag: string;
    tempfailOnTempfail: boolean;
    reportHeader: string;
    /** gateway reports to a checkid SIQ server after each verdict (docs/siq-server.md); url '' = off */
    report: SiqReportConfig;
  };
  /** listeners `checkid serve` starts; '' = off */
  milter: {
    listen: string;
    /**
     * The first step the MTA waits for an answer at (docs/adapters/milter.md): 'connect' (CONNECT
     * and HELO answered), 'mail' (the default: their verdicts carried out at MAIL), or
     * 'end_of_message' (MAIL's too, and RCPT's unless the policy decides per recipient: every
     * refusal comes after DATA, one round trip fewer per message). Read when a filter connection
     * negotiates, so a reload applies to the next one.
     */
    answerAt: MilterAnswerAt;
  };
  http: { listen: string };
  /** the SMTP front-end (docs/adapters/smtp-front.md); tlsCert/tlsKey absolute paths or '' */
  smtp: {
    listen: string;
    relay: string;
    hostname: string;
    maxMessageSize: number;
    maxRecipients: number;
    maxConnections: number;
    bareLf: 'normalize' | 'reject';
    tlsCert: string;
    tlsKey: string;
    relayStarttls: boolean;
  };
  /** Postfix policy delegation server (check_policy_service) and Exim readsocket server; '' = off */
  policy: { listen: string };
  readsocket: { listen: string };
  /** the SIQ server (docs/siq-server.md); listen '' = off */
  siqServer: SiqServerConfig;
  /** absolute path of the policy hook module, or '' */
  hook: string;
  /** the shared Redis (docs/redis.md); url '' = none */
  redis: RedisConfig;
  /** the dashboard and its verdict history (docs/dashboard.md); listen '' = off */
  dashboard: DashboardConfig;
}

const SERVER =
  /^(?:\[[0-9A-Fa-f:.%a-z]+\](?::\d{1,5})?|[0-9.]+(?::\d{1,5})?|[0-9A-Fa-f:]+|[A-Za-z0-9.-]+(?::\d{1,5})?)$/;

/** milter.answer_at: the first step the MTA waits for an answer at (docs/adapters/milter.md) */
export const MILTER_ANSWER_AT = ['connect', 'mail', 'end_of_message'] as const;
export type MilterAnswerAt = (typeof MILTER_ANSWER_AT)[number];

const str = (extra: Omit<Extract<Schema, { type: 'string' }>, 'type'> = {}): Schema => ({
  type: 'string',
  ...extra,
});
const num = (min?: number, max?: number, integer = false): Schema => ({ type: 'number', min, max, integer });
const bool: Schema = { type: 'boolean' };
const list = (items: Schema): Schema => ({ type: 'array', items });
const obj = (props: Record<string, Schema>, required: string[] = []): Schema => ({
  type: 'object',
  props,
  required,
});

const thresholds: Schema = {
  type: 'nullable',
  inner: obj({ average: num(-1000, 1000), min: num(-1000, 1000), max: num(-1000, 1000) }),
};
const scale: Schema = obj({
  grades: { type: 'object', props: {}, additional: num(-1000, 1000) },
  weight: num(0, 1000),
});

export const CONFIG_SCHEMA: Schema = obj({
  authserv_id: str({
    pattern: /^[^\s;()"\\]+$/,
    description: 'a host name with no spaces, ";", quotes or parentheses',
  }),
  headers: list(str({ enum: ['authentication-results', 'authent'] })),
  state_dir: str(),
  on_error: str({ enum: ['tempfail', 'accept'] }),
  deadline_ms: num(100, 600_000, true),
  resolver: obj({
    servers: list(str({ pattern: SERVER, description: 'HOST, HOST:PORT or [IPv6]:PORT' })),
    timeout_ms: num(10, 60_000, true),
    attempts: num(1, 10, true),
    max_in_flight: num(1, 10_000, true),
    cache: {
      type: 'either',
      description: 'false, or a mapping with min_ttl, max_ttl, negative_max_ttl, max_entries',
      options: [
        { type: 'boolean' },
        obj({
          min_ttl: num(0, 604_800, true),
          max_ttl: num(0, 604_800, true),
          negative_max_ttl: num(0, 604_800, true),
          max_entries: num(0, 10_000_000, true),
          backend: str({ enum: CACHE_BACKENDS }),
        }),
      ],
    },
  }),
  prescreen: obj({
    dnsbl: list(
      obj(
        {
          zone: str({ valid: isFqdn, description: 'a DNS zone name' }),
          filter: str({
            pattern: /^[0-9.;[\]-]+$/,
            description: 'a postscreen-style address pattern like 127.0.0.[2..11]',
          }),
          weight: num(-1000, 1000, true),
          type: str({ enum: ['ip', 'domain'] }),
          txt: bool,
          error_filter: str({ pattern: /^[0-9.;[\]-]+$/, description: 'a postscreen-style address pattern' }),
          self_test: bool,
        },
        ['zone'],
      ),
    ),
    threshold: num(-1000, 1000, true),
    allow_threshold: num(-1000, 1000, true),
    self_test_interval_s: num(0, 86_400, true),
    allow: list(str()),
    block: list(str()),
  }),
  iprev: obj({ enabled: bool, reject_fail: bool }),
  helo: obj({ enabled: bool, reject_invalid: bool, local_names: list(str()) }),
  csa: obj({ enabled: bool, reject_fail: bool }),
  spf: obj({ helo: bool, mail_from: bool, reject_fail: bool, reject_helo_fail: bool }),
  identity: obj({ reject_fail: bool, use_helo: bool }),
  ratings: obj({
    registries: list(obj({ zone: str({ valid: isFqdn, description: 'a DNS zone name' }) }, ['zone'])),
    trust_unlisted: bool,
    default_scale: scale,
    services: { type: 'object', props: {}, additional: scale },
    accept: thresholds,
    reject: thresholds,
    recipients: list(obj({ match: list(str()), accept: thresholds, reject: thresholds }, ['match'])),
    tempfail_on_error: bool,
  }),
  filter: obj({ subject_tag: str() }),
  dkim: obj({ enabled: bool, max_signatures: num(0, 50, true), min_rsa_bits: num(512, 16384, true) }),
  dmarc: obj({
    enabled: bool,
    reject_on_policy: bool,
    exempt: list(str({ valid: isFqdn, description: 'a domain name' })),
  }),
  arc: obj({ enabled: bool, trusted_sealers: list(str({ valid: isFqdn, description: 'a domain name' })) }),
  siq: obj({
    servers: list(
      str({
        pattern: /^(\[[0-9A-Fa-f:.]+\]|[^\s:]+|[0-9A-Fa-f:]+)(:\d{1,5})?$/,
        description: 'HOST, HOST:PORT or [IPv6]:PORT',
      }),
    ),
    timeout_ms: num(50, 60_000, true),
    attempts: num(1, 10, true),
    query_null_sender: bool,
    follow_redirects: bool,
    service: str({ pattern: /^[A-Za-z][A-Za-z0-9]{0,12}$/, description: 'a service code like SIQ' }),
    sub_scores: bool,
    cache: obj({
      max_entries: num(0, 10_000_000, true),
      default_ttl: num(0, 604_800, true),
      min_ttl: num(0, 604_800, true),
      max_ttl: num(0, 604_800, true),
      backend: str({ enum: CACHE_BACKENDS }),
    }),
    tag_score: num(-1, 100, true),
    reject_score: num(-1, 100, true),
    subject_tag: str(),
    tempfail_on_tempfail: bool,
    report_header: str({
      pattern: /^$|^[A-Za-z][A-Za-z0-9-]*$/,
      description: 'a header name, or empty for none',
    }),
    report: SIQ_REPORT_SCHEMA,
  }),
  milter: obj({
    listen: str({
      pattern: /^$|^(inet6?:|unix:|local:)/,
      description: "'' (off), inet:HOST:PORT, inet6:[HOST]:PORT or unix:/path",
    }),
    answer_at: str({ enum: MILTER_ANSWER_AT }),
  }),
  http: obj({ listen: str({ pattern: /^$|^\S+:\d{1,5}$/, description: "'' (off) or HOST:PORT" }) }),
  smtp: obj({
    listen: str({ pattern: /^$|^\S+:\d{1,5}$/, description: "'' (off) or HOST:PORT" }),
    relay: str({ pattern: /^$|^\S+:\d{1,5}$/, description: 'the back-end MTA as HOST:PORT' }),
    hostname: str({ pattern: /^[^\s()]*$/, description: 'a host name' }),
    max_message_size: num(1024, 2_147_483_647, true),
    max_recipients: num(1, 100_000, true),
    max_connections: num(1, 100_000, true),
    bare_lf: str({ enum: ['normalize', 'reject'] }),
    tls_cert: str(),
    tls_key: str(),
    relay_starttls: bool,
  }),
  policy: obj({
    listen: str({
      pattern: /^$|^(?:inet6?:)?\S+:\d{1,5}$|^(?:unix|local):\//,
      description: "'' (off), inet:HOST:PORT or unix:/path",
    }),
  }),
  readsocket: obj({
    listen: str({
      pattern: /^$|^(?:inet6?:)?\S+:\d{1,5}$|^(?:unix|local):\//,
      description: "'' (off), inet:HOST:PORT or unix:/path",
    }),
  }),
  siq_server: SIQ_SERVER_SCHEMA,
  hook: str(),
  redis: REDIS_SCHEMA,
  dashboard: DASHBOARD_SCHEMA,
});

export function defaultConfig(): Config {
  return {
    source: '',
    authservId: hostname() || 'localhost',
    stateDir: '',
    headers: ['authentication-results', 'authent'],
    onError: 'tempfail',
    deadlineMs: 15_000,
    resolver: {
      servers: [],
      timeoutMs: 2_000,
      attempts: 2,
      maxInFlight: 64,
      cache: { minTtl: 0, maxTtl: 86_400, negativeMaxTtl: 3_600, maxEntries: 100_000, backend: 'memory' },
    },
    prescreen: { dnsbl: [], threshold: 1, allowThreshold: -1, selfTestIntervalS: 600, allow: [], block: [] },
    iprev: { enabled: true, rejectFail: false },
    helo: { enabled: true, rejectInvalid: false, localNames: [] },
    csa: { enabled: false, rejectFail: false },
    spf: { helo: true, mailFrom: true, rejectFail: true, rejectHeloFail: false },
    identity: { rejectFail: true, useHelo: true },
    ratings: {
      registries: [],
      trustUnlisted: true,
      defaultScale: { grades: { ...DEFAULT_SCALE.grades }, weight: DEFAULT_SCALE.weight },
      services: {},
      accept: { average: 7, min: 5 },
      reject: null,
      recipients: [],
      tempfailOnError: true,
    },
    filter: { subjectTag: '' },
    dkim: { enabled: true, maxSignatures: 5, minRsaBits: 1024 },
    dmarc: { enabled: true, rejectOnPolicy: true, exempt: [] },
    arc: { enabled: true, trustedSealers: [] },
    siq: {
      servers: [],
      timeoutMs: 2_000,
      attempts: 2,
      queryNullSender: false,
      followRedirects: false,
      service: 'SIQ',
      subScores: true,
      cache: { maxEntries: 10_000, defaultTtl: 0, minTtl: 0, maxTtl: 86_400, backend: 'memory' },
      tagScore: 50,
      rejectScore: -1,
      subjectTag: '[SPAM]',
      tempfailOnTempfail: true,
      reportHeader: 'SIQ-Report',
      report: defaultSiqReportConfig(),
    },
    milter: { listen: 'inet:127.0.0.1:8891', answerAt: 'mail' },
    http: { listen: '127.0.0.1:8080' },
    smtp: {
      listen: '',
      relay: '',
      hostname: '',
      maxMessageSize: 26_214_400,
      maxRecipients: 100,
      maxConnections: 1000,
      bareLf: 'normalize',
      tlsCert: '',
      tlsKey: '',
      relayStarttls: false,
    },
    policy: { listen: '' },
    readsocket: { listen: '' },
    siqServer: defaultSiqServerConfig(),
    hook: '',
    redis: defaultRedisConfig(),
    dashboard: defaultDashboardConfig(),
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.problems = problems;
  }
}

type Raw = Record<string, unknown>;

function thresholdsOf(v: unknown): Thresholds | null {
  if (v === null || v === undefined) return null;
  const r = v as Raw;
  const t: Thresholds = {};
  if (typeof r.average === 'number') t.average = r.average;
  if (typeof r.min === 'number') t.min = r.min;
  if (typeof r.max === 'number') t.max = r.max;
  return t;
}

function scaleOf(v: Raw | undefined, fallback: ServiceScale): ServiceScale {
  if (!v) return fallback;
  const grades: Record<string, number> = {};
  for (const [g, n] of Object.entries((v.grades as Raw | undefined) ?? fallback.grades))
    grades[g.toUpperCase()] = n as number;
  return { grades, weight: typeof v.weight === 'number' ? v.weight : fallback.weight };
}

/** Turns a validated raw object into a Config on top of the defaults. */
export function configFromObject(raw: Raw, source = '', baseDir = process.cwd()): Config {
  const c = defaultConfig();
  c.source = source;
  const sub = (k: string) => (raw[k] ?? {}) as Raw;
  if (typeof raw.authserv_id === 'string') c.authservId = raw.authserv_id;
  if (typeof raw.state_dir === 'string' && raw.state_dir !== '') c.stateDir = resolve(baseDir, raw.state_dir);
  if (Array.isArray(raw.headers)) c.headers = [...new Set(raw.headers as HeaderKind[])];
  if (raw.on_error) c.onError = raw.on_error as Config['onError'];
  if (typeof raw.deadline_ms === 'number') c.deadlineMs = raw.deadline_ms;

  const r = sub('resolver');
  if (Array.isArray(r.servers)) c.resolver.servers = r.servers as string[];
  if (typeof r.timeout_ms === 'number') c.resolver.timeoutMs = r.timeout_ms;
  if (typeof r.attempts === 'number') c.resolver.attempts = r.attempts;
  if (typeof r.max_in_flight === 'number') c.resolver.maxInFlight = r.max_in_flight;
  if (r.cache === false) c.resolver.cache = false;
  else if (r.cache && typeof r.cache === 'object' && c.resolver.cache) {
    const cc = r.cache as Raw;
    const d = c.resolver.cache;
    c.resolver.cache = {
      minTtl: (cc.min_ttl as number) ?? d.minTtl,
      maxTtl: (cc.max_ttl as number) ?? d.maxTtl,
      negativeMaxTtl: (cc.negative_max_ttl as number) ?? d.negativeMaxTtl,
      maxEntries: (cc.max_entries as number) ?? d.maxEntries,
      backend: (cc.backend as CacheBackend | undefined) ?? d.backend,
    };
  }

  const p = sub('prescreen');
  if (Array.isArray(p.dnsbl)) {
    c.prescreen.dnsbl = (p.dnsbl as Raw[]).map((z) => ({
      zone: String(z.zone),
      ...(typeof z.filter === 'string' ? { filter: z.filter } : {}),
      weight: typeof z.weight === 'number' ? z.weight : 1,
      type: (z.type as 'ip' | 'domain' | undefined) ?? 'ip',
      ...(typeof z.txt === 'boolean' ? { txt: z.txt } : {}),
      ...(typeof z.error_filter === 'string' ? { errorFilter: z.error_filter } : {}),
      ...(typeof z.self_test === 'boolean' ? { selfTest: z.self_test } : {}),
    }));
  }
  if (typeof p.threshold === 'number') c.prescreen.threshold = p.threshold;
  if (typeof p.allow_threshold === 'number') c.prescreen.allowThreshold = p.allow_threshold;
  if (typeof p.self_test_interval_s === 'number') c.prescreen.selfTestIntervalS = p.self_test_interval_s;
  if (Array.isArray(p.allow)) c.prescreen.allow = p.allow as string[];
  if (Array.isArray(p.block)) c.prescreen.block = p.block as string[];

  const ip = sub('iprev');
  if (typeof ip.enabled === 'boolean') c.iprev.enabled = ip.enabled;
  if (typeof ip.reject_fail === 'boolean') c.iprev.rejectFail = ip.reject_fail;
  const h = sub('helo');
  if (typeof h.enabled === 'boolean') c.helo.enabled = h.enabled;
  if (typeof h.reject_invalid === 'boolean') c.helo.rejectInvalid = h.reject_invalid;
  if (Array.isArray(h.local_names)) c.helo.localNames = h.local_names as string[];
  const cs = sub('csa');
  if (typeof cs.enabled === 'boolean') c.csa.enabled = cs.enabled;
  if (typeof cs.reject_fail === 'boolean') c.csa.rejectFail = cs.reject_fail;
  const s = sub('spf');
  if (typeof s.helo === 'boolean') c.spf.helo = s.helo;
  if (typeof s.mail_from === 'boolean') c.spf.mailFrom = s.mail_from;
  if (typeof s.reject_fail === 'boolean') c.spf.rejectFail = s.reject_fail;
  if (typeof s.reject_helo_fail === 'boolean') c.spf.rejectHeloFail = s.reject_helo_fail;
  const id = sub('identity');
  if (typeof id.reject_fail === 'boolean') c.identity.rejectFail = id.reject_fail;
  if (typeof id.use_helo === 'boolean') c.identity.useHelo = id.use_helo;

  const rt = sub('ratings');
  if (Array.isArray(rt.registries))
    c.ratings.registries = (rt.registries as Raw[]).map((x) => ({ zone: String(x.zone) }));
  if (typeof rt.trust_unlisted === 'boolean') c.ratings.trustUnlisted = rt.trust_unlisted;
  c.ratings.defaultScale = scaleOf(rt.default_scale as Raw | undefined, c.ratings.defaultScale);
  if (rt.services) {
    for (const [name, sc] of Object.entries(rt.services as Raw))
      c.ratings.services[name] = scaleOf(sc as Raw, c.ratings.defaultScale);
  }
  if ('accept' in rt) c.ratings.accept = thresholdsOf(rt.accept);
  if ('reject' in rt) c.ratings.reject = thresholdsOf(rt.reject);
  if (Array.isArray(rt.recipients)) {
    c.ratings.recipients = (rt.recipients as Raw[]).map((x) => ({
      match: (x.match as string[]).map((m) => m.toLowerCase()),
      ...('accept' in x ? { accept: thresholdsOf(x.accept) } : {}),
      ...('reject' in x ? { reject: thresholdsOf(x.reject) } : {}),
    }));
  }
  if (typeof rt.tempfail_on_error === 'boolean') c.ratings.tempfailOnError = rt.tempfail_on_error;
  const ml = sub('milter');
  if (typeof ml.listen === 'string') c.milter.listen = ml.listen;
  if (typeof ml.answer_at === 'string') c.milter.answerAt = ml.answer_at as MilterAnswerAt;
  const hl = sub('http');
  if (typeof hl.listen === 'string') c.http.listen = hl.listen;
  const sm = sub('smtp');
  if (typeof sm.listen === 'string') c.smtp.listen = sm.listen;
  if (typeof sm.relay === 'string') c.smtp.relay = sm.relay;
  if (typeof sm.hostname === 'string') c.smtp.hostname = sm.hostname;
  if (typeof sm.max_message_size === 'number') c.smtp.maxMessageSize = sm.max_message_size;
  if (typeof sm.max_recipients === 'number') c.smtp.maxRecipients = sm.max_recipients;
  if (typeof sm.max_connections === 'number') c.smtp.maxConnections = sm.max_connections;
  if (sm.bare_lf) c.smtp.bareLf = sm.bare_lf as Config['smtp']['bareLf'];
  if (typeof sm.tls_cert === 'string' && sm.tls_cert) c.smtp.tlsCert = resolve(baseDir, sm.tls_cert);
  if (typeof sm.tls_key === 'string' && sm.tls_key) c.smtp.tlsKey = resolve(baseDir, sm.tls_key);
  if (typeof sm.relay_starttls === 'boolean') c.smtp.relayStarttls = sm.relay_starttls;
  const pl = sub('policy');
  if (typeof pl.listen === 'string') c.policy.listen = pl.listen;
  const rl = sub('readsocket');
  if (typeof rl.listen === 'string') c.readsocket.listen = rl.listen;
  c.siqServer = siqServerConfigFrom(raw.siq_server, baseDir);
  const dk = sub('dkim');
  if (typeof dk.enabled === 'boolean') c.dkim.enabled = dk.enabled;
  if (typeof dk.max_signatures === 'number') c.dkim.maxSignatures = dk.max_signatures;
  if (typeof dk.min_rsa_bits === 'number') c.dkim.minRsaBits = dk.min_rsa_bits;
  const dm = sub('dmarc');
  if (typeof dm.enabled === 'boolean') c.dmarc.enabled = dm.enabled;
  if (typeof dm.reject_on_policy === 'boolean') c.dmarc.rejectOnPolicy = dm.reject_on_policy;
  if (Array.isArray(dm.exempt)) c.dmarc.exempt = (dm.exempt as string[]).map((d) => d.toLowerCase());
  const ac = sub('arc');
  if (typeof ac.enabled === 'boolean') c.arc.enabled = ac.enabled;
  if (Array.isArray(ac.trusted_sealers))
    c.arc.trustedSealers = (ac.trusted_sealers as string[]).map((d) => d.toLowerCase());
  const sq = sub('siq');
  if (Array.isArray(sq.servers)) c.siq.servers = sq.servers as string[];
  if (typeof sq.timeout_ms === 'number') c.siq.timeoutMs = sq.timeout_ms;
  if (typeof sq.attempts === 'number') c.siq.attempts = sq.attempts;
  if (typeof sq.query_null_sender === 'boolean') c.siq.queryNullSender = sq.query_null_sender;
  if (typeof sq.follow_redirects === 'boolean') c.siq.followRedirects = sq.follow_redirects;
  if (typeof sq.service === 'string') c.siq.service = sq.service;
  if (typeof sq.sub_scores === 'boolean') c.siq.subScores = sq.sub_scores;
  const sc = (sq.cache ?? {}) as Raw;
  for (const [key, field] of [
    ['max_entries', 'maxEntries'],
    ['default_ttl', 'defaultTtl'],
    ['min_ttl', 'minTtl'],
    ['max_ttl', 'maxTtl'],
  ] as const) {
    if (typeof sc[key] === 'number') c.siq.cache[field] = sc[key];
  }
  if (typeof sc.backend === 'string') c.siq.cache.backend = sc.backend as CacheBackend;
  if (typeof sq.tag_score === 'number') c.siq.tagScore = sq.tag_score;
  if (typeof sq.reject_score === 'number') c.siq.rejectScore = sq.reject_score;
  if (typeof sq.subject_tag === 'string') c.siq.subjectTag = sq.subject_tag;
  if (typeof sq.tempfail_on_tempfail === 'boolean') c.siq.tempfailOnTempfail = sq.tempfail_on_tempfail;
  if (typeof sq.report_header === 'string') c.siq.reportHeader = sq.report_header;
  c.siq.report = siqReportConfigFrom(sq.report, baseDir);
  const f = sub('filter');
  if (typeof f.subject_tag === 'string') c.filter.subjectTag = f.subject_tag;
  if (typeof raw.hook === 'string' && raw.hook.length > 0) c.hook = resolve(baseDir, raw.hook);
  c.redis = readRedisConfig(raw.redis);
  c.dashboard = dashboardConfigFrom(raw.dashboard, baseDir);
  return c;
}

/** Where a key path sits in the YAML source, as "line L, column C" (1-based). */
function locate(
  doc: ReturnType<typeof parseDocument>,
  lc: LineCounter,
  path: Array<string | number>,
): string {
  let node: unknown = doc.contents;
  let pos: [number, number] | undefined;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => {
        const k = it.key as { value?: unknown } | null;
        return k && String(k.value) === String(key);
      });
      if (!pair) break;
      const keyNode = pair.key as YamlNode | null;
      if (keyNode?.range) pos = [keyNode.range[0], 0];
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
      const n = node as YamlNode | undefined;
      if (n?.range) pos = [n.range[0], 0];
    } else break;
  }
  if (!pos) return 'line 1';
  const { line, col } = lc.linePos(pos[0]);
  return `line ${line}, column ${col}`;
}

function keyPath(path: Array<string | number>): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Parses and validates config text. Throws ConfigError listing every problem with file:line and key. */
export function parseConfig(text: string, source = '<config>', baseDir = process.cwd()): Config {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const { line, col } = lc.linePos(e.pos[0]);
        return `${source}: line ${line}, column ${col}: YAML syntax error: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  // Structural problems toJS() would throw or warn about: collection keys, unresolved aliases.
  const structural: string[] = [];
  const at = (node: { range?: [number, number, number] | null } | null | undefined) => {
    const { line, col } = lc.linePos(node?.range?.[0] ?? 0);
    return `${source}: line ${line}, column ${col}`;
  };
  visit(doc, {
    Pair(_, pair) {
      if (pair.key !== null && !isScalar(pair.key))
        structural.push(`${at(pair.key as YamlNode)}: a key must be a plain name, not a list or mapping`);
    },
    Alias(_, node) {
      if (!node.resolve(doc))
        structural.push(`${at(node)}: the alias *${node.source} names no anchor defined before it`);
    },
  });
  if (structural.length > 0) throw new ConfigError(structural);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    throw new ConfigError([`${source}: line 1: YAML error: ${(err as Error).message}`]);
  }
  const errors: SchemaError[] = validate(raw, CONFIG_SCHEMA);
  if (errors.length > 0) {
    throw new ConfigError(
      errors.map((e) => `${source}: ${locate(doc, lc, e.path)}: ${keyPath(e.path)} ${e.message}`),
    );
  }
  const config = configFromObject(raw as Raw, source, baseDir);
  const located = (path: Array<string | number>, message: string) =>
    `${source}: ${locate(doc, lc, path)}: ${keyPath(path)} ${message}`;
  const problems: string[] = [];
  try {
    new LocalLists({ allow: config.prescreen.allow, block: config.prescreen.block });
  } catch (err) {
    if (!(err instanceof LocalListError)) throw err;
    const index = config.prescreen[err.list].indexOf(err.entry);
    problems.push(located(['prescreen', err.list, index], err.message));
  }
  config.prescreen.dnsbl.forEach((zone, i) => {
    try {
      compileZones([zone]);
    } catch (e) {
      problems.push(located(['prescreen', 'dnsbl', i], (e as Error).message));
    }
  });
  for (const problem of redisConfigProblems(config)) problems.push(located(problem.path, problem.message));
  for (const problem of dashboardConfigProblems(config.dashboard, config.redis.url))
    problems.push(located(problem.path, problem.message));
  for (const p of siqReportProblems(config.siq.report))
    problems.push(located(['siq', 'report', ...p.path], p.message));
  for (const p of siqServerProblems((raw as Raw).siq_server, config.redis.url))
    problems.push(located(['siq_server', ...p.path], p.message));
  if (problems.length > 0) throw new ConfigError(problems);
  const c = config.resolver.cache;
  if (c && c.minTtl > c.maxTtl) {
    throw new ConfigError([
      `${source}: ${locate(doc, lc, ['resolver', 'cache'])}: resolver.cache min_ttl is above max_ttl`,
    ]);
  }
  return config;
}

/** Reads and parses a config file; a missing file is an error (the caller decides on defaults). */
export function loadConfigFile(path: string): Config {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ConfigError([
      `${abs}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    ]);
  }
  return parseConfig(text, abs, dirname(abs));
}
