/**
 * The engine: owns the injected dependencies (resolver, clock, live policy, logger) and opens
 * sessions. `checkID()` is the seed interface, a one-shot run through the stages.
 */
import { systemClock, type Clock } from '../common/clock.ts';
import type { Resolver } from '../dns/types.ts';
import { compileZones, type DnsblZoneConfig, type DnsblZoneHealth } from '../checks/dnsbl/index.ts';
import { LocalLists } from '../checks/locallist/index.ts';
import { DnsRegistry } from '../checks/ratings/registry.ts';
import type { RatingProvider } from '../checks/ratings/types.ts';
import { SiqRatingProvider } from '../siq/provider.ts';
import type { SiqCache } from '../siq/cache.ts';
import type { Config } from '../policy/config.ts';
import type { PolicyStore } from '../policy/store.ts';
import type { PolicyHook } from '../policy/hook.ts';
import { Session, type SessionOptions } from './session.ts';
import type { Verdict } from './verdict.ts';
import type { EngineObserver } from './observer.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

/** Compiled from a config when it loads; a throw here rejects the config (last good one stays). */
export interface Prepared {
  localList: LocalLists;
  /** DNS lists by what they look up; validated (compileZones) when the config loads */
  ipZones: DnsblZoneConfig[];
  domainZones: DnsblZoneConfig[];
  ratingProviders: RatingProvider[];
  /** the SIQ servers, asked about the client IP and MAIL FROM domain (docs/siq.md) */
  siq?: SiqRatingProvider;
}

export interface EngineContext {
  resolver: Resolver;
  clock: Clock;
  policy: Pick<PolicyStore<Prepared>, 'current'>;
  dnsblMonitor?: DnsblZoneHealth;
  log: Logger;
  /** told each stage's verdict and each check's result (logs, metrics): observer.ts */
  observer?: EngineObserver;
}

export interface EngineOptions {
  resolver: Resolver;
  policy: Pick<PolicyStore<Prepared>, 'current'>;
  clock?: Clock;
  dnsblMonitor?: DnsblZoneHealth;
  log?: Logger;
  observer?: EngineObserver;
}

/**
 * Builds what a config needs at run time (the PolicyStore's `prepare`). `shared.siqCache`
 * replaces the SIQ client's own memory cache (the runtime passes a Redis-backed one).
 */
export function prepareConfig(config: Config, resolver: Resolver, extra?: (config: Config) => RatingProvider[], shared: { siqCache?: SiqCache } = {}): Prepared {
  const zones = config.prescreen.dnsbl;
  compileZones(zones);
  return {
    localList: new LocalLists({ allow: config.prescreen.allow, block: config.prescreen.block }),
    ipZones: zones.filter((z) => z.type !== 'domain'),
    domainZones: zones.filter((z) => z.type === 'domain'),
    ratingProviders: [...config.ratings.registries.map((r) => new DnsRegistry(r.zone, resolver)), ...(extra?.(config) ?? [])],
    ...(config.siq.servers.length > 0 ? { siq: siqProvider(config, shared.siqCache) } : {}),
  };
}

function siqProvider(config: Config, cache?: SiqCache): SiqRatingProvider {
  const s = config.siq;
  return new SiqRatingProvider(
    {
      servers: s.servers,
      timeoutMs: s.timeoutMs,
      attempts: s.attempts,
      queryNullSender: s.queryNullSender,
      followRedirects: s.followRedirects,
      cacheMaxEntries: s.cache.maxEntries,
      defaultTtl: s.cache.defaultTtl,
      minTtl: s.cache.minTtl,
      maxTtl: s.cache.maxTtl,
      ...(cache ? { cache } : {}),
    },
    { service: s.service, subScores: s.subScores },
  );
}

/** The checkID() input: what is known at call time. Hdrs/Body only after DATA. */
export interface CheckIdInput {
  ip: string;
  id?: string | null;
  helo?: string | null;
  mailFrom?: string | null;
  rcpt?: string[];
  /** received header fields as [name, value] pairs, or the raw header block */
  headers?: Array<[string, string]> | string | null;
  body?: string | Uint8Array | null;
  /** how string headers and body become octets for DKIM: utf8 (default) or latin1 (raw bytes) */
  encoding?: 'utf8' | 'latin1';
}

export interface CheckIdResult {
  action: Verdict['action'];
  reply: Verdict['reply'];
  headers: Verdict['headers'];
  /** the full verdict (stage, reason, explanation, header removals) and the facts behind it */
  verdict: Verdict;
  /** the verdict for each recipient, when recipients were given */
  recipients: Array<{ rcpt: string; verdict: Verdict }>;
  session: Session;
}

export class Engine {
  readonly context: EngineContext;

  constructor(options: EngineOptions) {
    this.context = {
      resolver: options.resolver,
      clock: options.clock ?? systemClock,
      policy: options.policy,
      ...(options.dnsblMonitor ? { dnsblMonitor: options.dnsblMonitor } : {}),
      log: options.log ?? (() => {}),
      ...(options.observer ? { observer: options.observer } : {}),
    };
  }

  /** A session for one SMTP connection from `ip`. */
  session(ip: string, options?: SessionOptions): Session {
    return new Session(this.context, ip, options);
  }

  /**
   * The seed interface: runs the stages for which input is given, stopping at the first final
   * verdict. Without headers or body it ends before DATA (CONTINUE when nothing is certain yet).
   */
  async checkID(input: CheckIdInput): Promise<CheckIdResult> {
    const session = this.session(input.ip, input.encoding ? { encoding: input.encoding } : {});
    const recipients: CheckIdResult['recipients'] = [];
    const done = (verdict: Verdict): CheckIdResult => ({ action: verdict.action, reply: verdict.reply, headers: verdict.headers, verdict, recipients, session });
    const hasMessage = (input.headers !== undefined && input.headers !== null) || (input.body !== undefined && input.body !== null);
    const headers = typeof input.headers === 'string' ? parseHeaderBlock(input.headers) : (input.headers ?? []);
    let v = await session.connect();
    if (v.action !== 'CONTINUE') return done(v);
    if (input.helo) {
      v = await session.helo(input.helo);
      if (v.action !== 'CONTINUE') return done(v);
    }
    if (input.id) {
      v = await session.id(input.id);
      if (v.action !== 'CONTINUE') return done(v);
    }
    if (input.mailFrom !== undefined && input.mailFrom !== null) {
      v = await session.mailFrom(input.mailFrom);
      if (v.action !== 'CONTINUE') return done(v);
    }
    // the header fields are known to the caller already: record them before any final verdict, so
    // an early ACCEPT still lists forged Authentication-Results for removal
    for (const [name, value] of headers) session.header(name, value);
    if ((input.rcpt ?? []).length > 0) {
      // every recipient is decided (per-recipient thresholds); like an MTA, the message goes on
      // for the recipients that were not refused
      for (const rcpt of input.rcpt ?? []) recipients.push({ rcpt, verdict: await session.rcpt(rcpt) });
      const open = recipients.filter((r) => r.verdict.action === 'CONTINUE');
      const accepted = recipients.filter((r) => r.verdict.action === 'ACCEPT' || r.verdict.action === 'FILTER' || r.verdict.action === 'DISCARD');
      if (open.length === 0) return done((accepted[0] ?? recipients[0]!).verdict);
      v = open[0]!.verdict;
    }
    if (!hasMessage) return done(v);
    session.endOfHeaders();
    if (input.body !== undefined && input.body !== null) session.body(input.body);
    return done(await session.endOfMessage());
  }
}

/** Splits a raw header block into [name, value] pairs (values keep their folding). */
export function parseHeaderBlock(block: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const lines = block.split(/\r?\n/);
  for (const line of lines) {
    if (line === '') break;
    if (/^[ \t]/.test(line)) {
      // a continuation; one before any field has nothing to continue and is dropped
      if (out.length > 0) out[out.length - 1]![1] += `\r\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trimEnd() : '';
    if (name === '') continue;
    out.push([name, line.slice(colon + 1).replace(/^[ \t]/, '')]);
  }
  return out;
}

/** Splits a whole message into its header block and body. */
export function splitMessage(raw: string): { headers: Array<[string, string]>; body: string } {
  const m = /\r?\n\r?\n/.exec(raw);
  if (!m) return { headers: parseHeaderBlock(raw), body: '' };
  return { headers: parseHeaderBlock(raw.slice(0, m.index)), body: raw.slice(m.index + m[0].length) };
}

/** A fixed policy (no reloading), for library use and tests. */
export function staticPolicy(config: Config, resolver: Resolver, hook?: PolicyHook): Pick<PolicyStore<Prepared>, 'current'> {
  const loaded = { config, prepared: prepareConfig(config, resolver), generation: 1, loadedAt: 0, ...(hook ? { hook } : {}) };
  return { current: () => loaded };
}
