/**
 * The SIQ server: answers SIQ queries (UDP, and the draft's HTTP form through http.ts) with a
 * score the server computes itself from its checks (facts.ts) and the asking account's profile
 * (profile.ts, score.ts).
 *
 * Who asks: the datagram's source address must be a source IP an account registered (as with
 * the Outbound Index); anyone else gets no reply at all. Each source address has a token bucket
 * (`rate_limit`); over it the query is dropped (default) or answered TEMPFAIL (-2) with TTL 0.
 *
 * The answer cache holds the encoded reply per account, query type, IP and domain for the
 * profile's TTL (at most `cache_ttl`); a hit only patches the ID and the remaining TTL into a
 * copy. Any change to an account's configuration (profile, lists, IPs) drops that account's
 * entries at once through the store's watchers; changes made by another process sharing the
 * store are noticed by polling its change counter (every `pollMs`, default 1 s) and drop
 * everything. Gateway reports do not invalidate: a cached answer is at most its TTL old.
 *
 * Replies: SCORE 0..100 with IP-SCORE, DOMAIN-SCORE, REL-SCORE, CONFIDENCE, TTL and TEXT; -1
 * UNKNOWN when no check answered; -4 ERROR (TTL 0, never cached) when the store failed or the
 * query's domain is unusable. Malformed datagrams are dropped.
 */
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { LocalLists } from '../../checks/locallist/index.ts';
import { type Clock, systemClock } from '../../common/clock.ts';
import { normalizeIp } from '../../common/ip.ts';
import type { Resolver } from '../../dns/types.ts';
import type { Logger } from '../../engine/engine.ts';
import {
  type DecodedQuery,
  decodeQuery,
  encodeReply,
  SIQ_SCORE,
  SiqDecodeError,
  type SiqQueryType,
} from '../codec.ts';
import type { SiqServerConfig } from './config.ts';
import { gatherFacts } from './facts.ts';
import { parseProfile, type SiqProfile } from './profile.ts';
import { TokenBuckets } from './ratelimit.ts';
import { type SiqAnswer, type SiqFacts, type SiqScore, scoreQuery } from './score.ts';
import {
  normalizeReportKey,
  QUERY_LOG_KEEP,
  type SiqQueryLogEntry,
  type SiqReportCounts,
  type SiqReportKind,
  type SiqServerStore,
  SiqStoreError,
} from './store.ts';

export interface SiqServerOptions {
  store: SiqServerStore;
  resolver: Resolver;
  /** read on every query, so a config reload applies at once */
  config: () => SiqServerConfig;
  /** time for TTLs, reports and the query log (default: the system clock) */
  clock?: Clock;
  log?: Logger;
  /** ms between reads of the store's change counter (default 1000; 0 = never) */
  pollMs?: number;
  /** ms between query-log flushes (default 1000) */
  flushMs?: number;
}

export interface SiqServerStats {
  /** datagrams and HTTP queries received */
  received: number;
  /** replies sent */
  answered: number;
  cacheHits: number;
  /** from addresses no account registered: no reply */
  unregistered: number;
  rateLimited: number;
  /** datagrams that are not SIQ queries: no reply */
  malformed: number;
  /** ERROR replies (store failures, unusable domains) */
  errors: number;
  /** queries whose checks ran (cache misses) */
  computed: number;
  /** cache misses that joined an identical computation in flight */
  merged: number;
}

/** One question as the server sees it, from UDP or HTTP. */
export interface SiqQuestion {
  /** the asking client's address (the account's registered source IP) */
  client: string;
  ip: string;
  /** as sent; normalised by the server */
  domain: string;
  type: SiqQueryType;
}

/** What the server decided: a reply (or nothing: unregistered, rate-limited). */
export type SiqDecision =
  | { kind: 'drop'; reason: 'unregistered' | 'rate-limited' }
  | (SiqAnswer & { kind: 'reply'; accountId: string | null; cached: boolean });

interface CacheEntry {
  accountId: string;
  /** the -02/-01/-00 reply with ID 0 and the full TTL */
  bytes: Uint8Array;
  layout: SiqServerConfig['replyLayout'];
  score: SiqScore;
  /** ms, clock time */
  expiresAt: number;
}

type Reply = { kind: 'reply'; entry: CacheEntry; bytes: Uint8Array; ttl: number; cached: boolean };
type Drop = { readonly kind: 'drop'; readonly reason: 'unregistered' | 'rate-limited' };
type Answer = Drop | Reply;
const DROP_RATE_LIMITED: Drop = Object.freeze({ kind: 'drop', reason: 'rate-limited' });
const DROP_UNREGISTERED: Drop = Object.freeze({ kind: 'drop', reason: 'unregistered' });

/** The newest `size` query-log lines of one account, oldest first when drained. */
class LogRing {
  private readonly at: Float64Array;
  private readonly ip: string[];
  private readonly domain: string[];
  private readonly score: Array<SiqScore | undefined>;
  private next = 0;
  count = 0;

  constructor(size: number) {
    this.at = new Float64Array(size);
    this.ip = new Array<string>(size).fill('');
    this.domain = new Array<string>(size).fill('');
    this.score = new Array<SiqScore | undefined>(size).fill(undefined);
  }

  push(at: number, ip: string, domain: string, s: SiqScore): void {
    const i = this.next;
    this.at[i] = at;
    this.ip[i] = ip;
    this.domain[i] = domain;
    this.score[i] = s;
    this.next = i + 1 === this.at.length ? 0 : i + 1;
    if (this.count < this.at.length) this.count++;
  }

  /** Appends the lines to `out` (oldest first) and empties the ring. */
  drain(accountId: string, out: SiqQueryLogEntry[]): void {
    const size = this.at.length;
    let i = (this.next - this.count + size) % size;
    for (let n = 0; n < this.count; n++) {
      const s = this.score[i]!;
      out.push({ accountId, at: this.at[i]!, ip: this.ip[i]!, domain: this.domain[i]!, score: s.score, text: s.text });
      i = i + 1 === size ? 0 : i + 1;
    }
    this.count = 0;
    this.next = 0;
  }
}

/** Lower case, no trailing dot, the part after the last "@"; null when unusable (non-ASCII, too long). */
export function serverDomain(qd: string): string | null {
  let d = qd;
  const at = d.lastIndexOf('@');
  if (at >= 0) d = d.slice(at + 1);
  d = d.toLowerCase();
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (d.length > 253) return null;
  for (let i = 0; i < d.length; i++) {
    const c = d.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return null;
  }
  return d;
}

/** Builds the LocalLists of an account, skipping entries LocalLists refuses (they are reported in the log). */
function buildLists(
  lists: { allow: string[]; block: string[] },
  log: Logger | undefined,
  accountId: string,
): LocalLists {
  try {
    return new LocalLists(lists);
  } catch {
    const ok = { allow: [] as string[], block: [] as string[] };
    for (const name of ['allow', 'block'] as const) {
      for (const entry of lists[name]) {
        try {
          new LocalLists({ ...ok, [name]: [...ok[name], entry] });
          ok[name].push(entry);
        } catch (err) {
          log?.('warn', 'SIQ server: list entry ignored', {
            account: accountId,
            list: name,
            entry,
            error: (err as Error).message,
          });
        }
      }
    }
    return new LocalLists(ok);
  }
}

export class SiqServer {
  readonly store: SiqServerStore;
  private readonly resolver: Resolver;
  private readonly config: () => SiqServerConfig;
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private settings: SiqServerConfig;
  private buckets: TokenBuckets;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<CacheEntry>>();
  /** client IP → account id, or null (unregistered); cleared on changes */
  private readonly accounts = new Map<string, string | null>();
  private readonly profiles = new Map<string, Promise<SiqProfile>>();
  private readonly lists = new Map<string, Promise<LocalLists>>();
  /** the query log since the last flush: the newest QUERY_LOG_KEEP per account */
  private readonly logBuffer = new Map<string, LogRing>();
  private logPending = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unwatch: () => void;
  private lastChange = -1;
  /** bumped by clearAll; with `generations`, tells a computation whether its account changed meanwhile */
  private epoch = 0;
  private ipEpoch = 0;
  private readonly generations = new Map<string, number>();
  private readonly sockets: dgram.Socket[] = [];
  private closed = false;
  private readonly counters: SiqServerStats = {
    received: 0,
    answered: 0,
    cacheHits: 0,
    unregistered: 0,
    rateLimited: 0,
    malformed: 0,
    errors: 0,
    computed: 0,
    merged: 0,
  };

  constructor(options: SiqServerOptions) {
    this.store = options.store;
    this.resolver = options.resolver;
    this.config = options.config;
    this.clock = options.clock ?? systemClock;
    this.log = options.log;
    this.settings = this.config();
    this.buckets = this.makeBuckets(this.settings);
    this.unwatch = this.store.watch((change) =>
      this.invalidate(change.accountId, change.what === 'ips' || change.what === 'account'),
    );
    const pollMs = options.pollMs ?? 1000;
    if (pollMs > 0) {
      const t = setInterval(() => void this.poll(), pollMs);
      t.unref();
      this.timers.push(t);
      void this.poll();
    }
    const flush = setInterval(() => void this.flushLog(), options.flushMs ?? 1000);
    flush.unref();
    this.timers.push(flush);
  }

  private makeBuckets(c: SiqServerConfig): TokenBuckets {
    return new TokenBuckets({ perSecond: c.rateLimit.perSecond, burst: c.rateLimit.burst });
  }

  /** The current settings; a new config object (a reload) resets the rate limits and the caches. */
  private current(): SiqServerConfig {
    const c = this.config();
    if (c !== this.settings) {
      const before = this.settings;
      this.settings = c;
      if (
        before.rateLimit.perSecond !== c.rateLimit.perSecond ||
        before.rateLimit.burst !== c.rateLimit.burst
      )
        this.buckets = this.makeBuckets(c);
      this.clearAll();
    }
    return c;
  }

  stats(): SiqServerStats {
    return { ...this.counters };
  }

  /** Drops what is remembered about an account (and the IP → account map when IPs changed). */
  invalidate(accountId: string, ips = false): void {
    this.generations.set(accountId, (this.generations.get(accountId) ?? 0) + 1);
    for (const [k, e] of this.cache) if (e.accountId === accountId) this.cache.delete(k);
    const prefix = `${accountId}|`;
    for (const k of this.inflight.keys()) if (k.startsWith(prefix)) this.inflight.delete(k);
    this.profiles.delete(accountId);
    this.lists.delete(accountId);
    if (ips) {
      this.ipEpoch++;
      this.accounts.clear();
    }
  }

  private clearAll(): void {
    this.epoch++;
    this.ipEpoch++;
    this.cache.clear();
    this.inflight.clear();
    this.accounts.clear();
    this.profiles.clear();
    this.lists.clear();
  }

  private async poll(): Promise<void> {
    try {
      const c = await this.store.changeCounter();
      if (this.lastChange !== -1 && c !== this.lastChange) this.clearAll();
      this.lastChange = c;
    } catch (err) {
      this.log?.('warn', 'SIQ server: cannot read the store change counter', {
        error: (err as Error).message,
      });
    }
  }

  // ---- per-account state

  /** The account's profile over the server's default profile (the default when it has none or a broken one). */
  profileFor(accountId: string): Promise<SiqProfile> {
    let p = this.profiles.get(accountId);
    if (!p) {
      const base = this.current().defaultProfile;
      p = this.store.getProfile(accountId).then((json) => {
        const parsed = parseProfile(json, base);
        if (parsed.ok) return parsed.profile;
        this.log?.('warn', 'SIQ server: stored profile is invalid, using the default', {
          account: accountId,
          problems: parsed.problems.length,
        });
        return base;
      });
      this.profiles.set(accountId, p);
      p.catch(() => this.profiles.delete(accountId));
    }
    return p;
  }

  private listsFor(accountId: string): Promise<LocalLists> {
    let p = this.lists.get(accountId);
    if (!p) {
      p = this.store.getLists(accountId).then((l) => buildLists(l, this.log, accountId));
      this.lists.set(accountId, p);
      p.catch(() => this.lists.delete(accountId));
    }
    return p;
  }

  /** The account whose registered source IP this is (remembered until a change), or null. */
  async accountFor(client: string): Promise<string | null> {
    const known = this.accounts.get(client);
    if (known !== undefined) return known;
    const before = this.ipEpoch;
    const id = await this.store.accountIdForIp(client);
    if (before !== this.ipEpoch) return id;
    if (this.accounts.size >= 100_000) this.accounts.clear();
    this.accounts.set(client, id);
    return id;
  }

  private halfLifeMs(): number {
    return this.current().reportHalfLifeDays * 86_400_000;
  }

  /**
   * Runs the account's enabled checks on an IP and domain without caching or logging: the facts,
   * the profile used and the score. For the web UI ("this IP/domain would score N") and tests.
   */
  async explain(
    accountId: string,
    ip: string,
    domain: string,
    profile?: SiqProfile,
  ): Promise<{ facts: SiqFacts; profile: SiqProfile; score: SiqScore }> {
    const addr = normalizeIp(ip.trim());
    if (!addr) throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
    const d = serverDomain(domain.trim());
    if (d === null) throw new Error(`not a usable domain: ${JSON.stringify(domain)}`);
    const p = profile ?? (await this.profileFor(accountId));
    const facts = await this.gather(accountId, addr, d, p);
    return { facts, profile: p, score: scoreQuery(p, facts) };
  }

  private async gather(
    accountId: string,
    ip: string,
    domain: string,
    profile: SiqProfile,
  ): Promise<SiqFacts> {
    const c = this.current();
    const lists = await this.listsFor(accountId);
    const halfLife = this.halfLifeMs();
    const now = this.clock.now();
    return gatherFacts({ ip, domain }, profile, {
      resolver: this.resolver,
      dnsbl: c.dnsbl,
      lists,
      reports: (kind: SiqReportKind, key: string): Promise<SiqReportCounts> =>
        this.store.reportCounts(accountId, kind, key, now, halfLife),
      reportMinMessages: c.reportMinMessages,
      signal: AbortSignal.timeout(c.checkTimeoutMs),
    });
  }

  // ---- answering

  /**
   * Answers one question (the HTTP form uses this): `drop` when it gets no reply (unregistered
   * client, rate limit with action drop), else the reply's fields. Never throws.
   */
  async decide(q: SiqQuestion): Promise<SiqDecision> {
    const out = await this.answerBytes(q, 0);
    if (out.kind === 'drop') return { kind: 'drop', reason: out.reason };
    const e = out.entry;
    const s = e.score;
    return {
      kind: 'reply',
      accountId: e.accountId || null,
      score: s.score,
      ipScore: s.ipScore,
      domainScore: s.domainScore,
      relScore: s.relScore,
      confidence: s.confidence,
      ttl: out.ttl,
      text: s.text,
      cached: out.cached,
    };
  }

  /** A one-off entry that is never cached: ERROR or TEMPFAIL. */
  private special(
    score: number,
    text: string,
    layout: SiqServerConfig['replyLayout'],
    accountId = '',
  ): CacheEntry {
    const s: SiqScore = {
      score,
      ipScore: -1,
      domainScore: -1,
      relScore: -1,
      confidence: -1,
      ttl: 0,
      text,
      contributions: [],
    };
    return {
      accountId,
      bytes: encodeReply({ id: 0, score, ttl: 0, text }, layout),
      layout,
      score: s,
      expiresAt: 0,
    };
  }

  /**
   * The reply for a question (ID 0, TTL patched to what remains), or a drop. Synchronous when the
   * client's account is known and the answer is cached (the warm path: no promise, no closure);
   * a promise when the store or the checks must be asked.
   */
  private answerBytes(q: SiqQuestion, id: number): Answer | Promise<Answer> {
    this.counters.received++;
    const c = this.current();
    const client = q.client;
    if (!this.buckets.take(client)) {
      this.counters.rateLimited++;
      if (c.rateLimit.action === 'drop') return DROP_RATE_LIMITED;
      return this.reply(this.special(SIQ_SCORE.TEMPFAIL, 'rate limit', c.replyLayout), id, false);
    }
    const known = this.accounts.get(client);
    if (known === undefined) return this.answerNewClient(q, id, c);
    return this.answerFor(known, q, id, c);
  }

  /** answerBytes for a client whose account is not remembered: asks the store first. */
  private async answerNewClient(q: SiqQuestion, id: number, c: SiqServerConfig): Promise<Answer> {
    let accountId: string | null;
    try {
      accountId = await this.accountFor(q.client);
    } catch (err) {
      this.counters.errors++;
      this.log?.('error', 'SIQ server: store lookup failed', { error: (err as Error).message });
      return this.reply(this.special(SIQ_SCORE.ERROR, 'server error', c.replyLayout), id, false);
    }
    return this.answerFor(accountId, q, id, c);
  }

  /** answerBytes once the account is known: the cached reply at once, else the computation. */
  private answerFor(
    accountId: string | null,
    q: SiqQuestion,
    id: number,
    c: SiqServerConfig,
  ): Answer | Promise<Answer> {
    if (accountId === null) {
      this.counters.unregistered++;
      return DROP_UNREGISTERED;
    }
    const domain = serverDomain(q.domain);
    if (domain === null) {
      this.counters.errors++;
      return this.reply(this.special(SIQ_SCORE.ERROR, 'bad domain', c.replyLayout, accountId), id, false);
    }
    const key = `${accountId}|${q.type}|${q.ip}|${domain}`;
    const now = this.clock.now();
    const hit = this.cache.get(key);
    if (hit && hit.expiresAt > now && hit.layout === c.replyLayout) {
      this.counters.cacheHits++;
      this.logQuery(accountId, now, q.ip, domain, hit.score);
      return this.reply(hit, id, true, Math.ceil((hit.expiresAt - now) / 1000));
    }
    return this.answerMiss(accountId, q, id, c, domain, key);
  }

  /** answerBytes on a cache miss: joins or starts the computation. */
  private async answerMiss(
    accountId: string,
    q: SiqQuestion,
    id: number,
    c: SiqServerConfig,
    domain: string,
    key: string,
  ): Promise<Answer> {
    let work = this.inflight.get(key);
    if (work) this.counters.merged++;
    else {
      work = this.compute(accountId, q.ip, domain, key, c);
      this.inflight.set(key, work);
      const w = work;
      const done = () => {
        if (this.inflight.get(key) === w) this.inflight.delete(key);
      };
      void w.then(done, done);
    }
    try {
      const entry = await work;
      this.logQuery(accountId, this.clock.now(), q.ip, domain, entry.score);
      return this.reply(entry, id, false);
    } catch (err) {
      this.counters.errors++;
      this.log?.('error', 'SIQ server: cannot score', {
        account: accountId,
        ip: q.ip,
        domain,
        error: (err as Error).message,
      });
      return this.reply(this.special(SIQ_SCORE.ERROR, 'server error', c.replyLayout, accountId), id, false);
    }
  }

  private async compute(
    accountId: string,
    ip: string,
    domain: string,
    key: string,
    c: SiqServerConfig,
  ): Promise<CacheEntry> {
    this.counters.computed++;
    const mark = `${this.epoch}:${this.generations.get(accountId) ?? 0}`;
    const profile = await this.profileFor(accountId);
    const facts = await this.gather(accountId, ip, domain, profile);
    const s = scoreQuery(profile, facts);
    const bytes = encodeReply(
      {
        id: 0,
        score: s.score,
        ipScore: s.ipScore,
        domainScore: s.domainScore,
        relScore: s.relScore,
        confidence: s.confidence,
        ttl: s.ttl,
        text: s.text,
      },
      c.replyLayout,
    );
    const keep = Math.min(s.ttl, c.cacheTtl);
    const entry: CacheEntry = {
      accountId,
      bytes,
      layout: c.replyLayout,
      score: s,
      expiresAt: this.clock.now() + keep * 1000,
    };
    if (keep > 0 && c.cacheMaxEntries > 0 && !this.closed) {
      // the account changed while we computed: the entry may be stale, do not keep it
      if (mark === `${this.epoch}:${this.generations.get(accountId) ?? 0}`) {
        if (this.cache.size >= c.cacheMaxEntries) {
          const oldest = this.cache.keys().next().value;
          if (oldest !== undefined) this.cache.delete(oldest);
        }
        this.cache.delete(key);
        this.cache.set(key, entry);
      }
    }
    return entry;
  }

  private reply(entry: CacheEntry, id: number, cached: boolean, remaining?: number): Reply {
    this.counters.answered++;
    const ttl = remaining === undefined ? entry.score.ttl : Math.min(entry.score.ttl, remaining);
    const bytes = Buffer.from(entry.bytes);
    bytes[2] = id >> 8;
    bytes[3] = id & 0xff;
    if (remaining !== undefined && ttl !== entry.score.ttl) {
      if (entry.layout === '02') bytes.writeUInt16BE(ttl, 8);
      else if (entry.layout === '01') bytes.writeInt32BE(ttl, 8);
    }
    return { kind: 'reply', entry, bytes, ttl, cached };
  }

  // ---- the query log

  /**
   * Buffers a query-log line. A ring of QUERY_LOG_KEEP slots per account, filled in place: no
   * object per query (entries would live until the next flush, surviving garbage collections and
   * costing pauses at high rates); the entries are built at flush time.
   */
  private logQuery(accountId: string, at: number, ip: string, domain: string, s: SiqScore): void {
    if (!this.settings.queryLog) return;
    let ring = this.logBuffer.get(accountId);
    if (!ring) {
      ring = new LogRing(QUERY_LOG_KEEP);
      this.logBuffer.set(accountId, ring);
    }
    ring.push(at, ip, domain, s);
    this.logPending++;
  }

  /** Writes the buffered query log (the newest QUERY_LOG_KEEP per account) to the store. */
  async flushLog(): Promise<void> {
    if (this.logPending === 0) return;
    this.logPending = 0;
    const batch: SiqQueryLogEntry[] = [];
    for (const [accountId, ring] of this.logBuffer) {
      // a ring that stayed empty a whole flush interval is dropped (bounded by active accounts)
      if (ring.count === 0) this.logBuffer.delete(accountId);
      else ring.drain(accountId, batch);
    }
    try {
      await this.store.appendQueryLog(batch);
    } catch (err) {
      this.log?.('warn', 'SIQ server: query log not written', {
        entries: batch.length,
        error: (err as Error).message,
      });
    }
  }

  // ---- gateway reports

  /**
   * Records gateway reports for an account at the server's clock time. Each item counts for its
   * IP and/or domain. Throws SiqStoreError for bad items (checked before anything is written).
   */
  async report(
    accountId: string,
    items: ReadonlyArray<{ ip?: string; domain?: string; result: 'accepted' | 'rejected'; count?: number }>,
  ): Promise<number> {
    const now = this.clock.now();
    const halfLife = this.halfLifeMs();
    const adds: Array<[SiqReportKind, string, SiqReportCounts]> = [];
    for (const item of items) {
      const n = item.count ?? 1;
      if (item.result !== 'accepted' && item.result !== 'rejected')
        throw new SiqStoreError('invalid', 'result is "accepted" or "rejected"');
      if (!Number.isInteger(n) || n < 1 || n > 10_000)
        throw new SiqStoreError('invalid', 'count is a whole number 1..10000');
      if (!item.ip && !item.domain)
        throw new SiqStoreError('invalid', 'a report names an ip, a domain or both');
      if (item.ip) normalizeReportKey('ip', item.ip);
      if (item.domain) normalizeReportKey('domain', item.domain);
      const counts = item.result === 'accepted' ? { accepted: n, rejected: 0 } : { accepted: 0, rejected: n };
      if (item.ip) adds.push(['ip', item.ip, counts]);
      if (item.domain) adds.push(['domain', item.domain, counts]);
    }
    for (const [kind, key, counts] of adds)
      await this.store.addReport(accountId, kind, key, counts, now, halfLife);
    return adds.length;
  }

  // ---- UDP

  /** Answers SIQ datagrams on HOST:PORT (port 0: any free one). */
  async listenUdp(
    host: string,
    port: number,
  ): Promise<{ address: string; port: number; close(): Promise<void> }> {
    const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
    socket.on('message', (msg, rinfo) => this.onDatagram(socket, msg, rinfo));
    socket.on('error', (err) => this.log?.('warn', 'SIQ server: socket error', { error: err.message }));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.sockets.push(socket);
    const a = socket.address() as AddressInfo;
    return {
      address: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`,
      port: a.port,
      close: () =>
        new Promise<void>((resolve) => {
          const i = this.sockets.indexOf(socket);
          if (i >= 0) this.sockets.splice(i, 1);
          socket.close(() => resolve());
        }),
    };
  }

  /**
   * One datagram from `client` (its source address): the reply to send back, or null (malformed,
   * unregistered, rate-limited with action drop). Never rejects. The UDP listener calls this.
   */
  async handleDatagram(client: string, msg: Uint8Array): Promise<Uint8Array | null> {
    const out = await this.datagramAnswer(client, msg);
    return out !== null && out.kind === 'reply' ? out.bytes : null;
  }

  /** handleDatagram's work; synchronous on the warm path (see answerBytes). null: malformed. */
  private datagramAnswer(client: string, msg: Uint8Array): Answer | Promise<Answer> | null {
    let query: DecodedQuery;
    try {
      query = decodeQuery(msg);
    } catch (err) {
      this.counters.received++;
      this.counters.malformed++;
      if (!(err instanceof SiqDecodeError))
        this.log?.('warn', 'SIQ server: query decoder failed', { error: (err as Error).message });
      return null;
    }
    return this.answerBytes({ client, ip: query.ip, domain: query.domain, type: query.type }, query.id);
  }

  private onDatagram(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const client = rinfo.family === 'IPv4' ? rinfo.address : (normalizeIp(rinfo.address) ?? rinfo.address);
    const out = this.datagramAnswer(client, msg);
    if (out === null) return;
    if (out instanceof Promise) {
      void out.then((a) => {
        if (a.kind === 'reply' && !this.closed) socket.send(a.bytes, rinfo.port, rinfo.address);
      });
    } else if (out.kind === 'reply' && !this.closed) socket.send(out.bytes, rinfo.port, rinfo.address);
  }

  /** Stops the timers and watchers, writes the query log; sockets opened by listenUdp are closed. The store is the caller's. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.unwatch();
    await Promise.all(
      this.sockets.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    );
    await this.flushLog();
  }
}
