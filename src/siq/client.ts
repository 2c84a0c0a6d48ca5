/**
 * The SIQ client: one question (IP, domain, query type) to a list of SIQ servers, failing over
 * from one to the next on the draft's retry schedule squeezed into a total deadline (default
 * 2 s, not the draft's 45–87 s), with a cache in front.
 *
 * Spoofing: a random 16-bit ID from the crypto RNG and a fresh UDP socket on a random port per
 * query and server, connected to that server, so the kernel drops datagrams from anyone else; a
 * datagram is used only when it comes from the address and port we sent to, decodes, and echoes
 * our ID. Anything else is counted and ignored while we keep waiting (libsnert gave up on the
 * first odd datagram, which let any stray packet fail a query).
 *
 * Results are statuses, never exceptions: 'answer' (the server's reply, whatever its SCORE),
 * 'skipped' (nothing asked: null sender, unusable domain), 'timeout' (no usable reply in time, or
 * every server unreachable) and 'error' (a bad IP, the caller aborted, the client closed).
 */
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { type Clock, systemClock } from '../common/clock.ts';
import { formatIp, normalizeIp, parseIp } from '../common/ip.ts';
import { RandomIds } from '../common/random-ids.ts';
import { formatSiqServer, parseSiqServer, type SiqServer } from './address.ts';
import { MemorySiqCache, type SiqCache, siqCacheKey } from './cache.ts';
import { decodeReply, encodeQuery, SiqDecodeError, type SiqQueryType, type SiqReply } from './codec.ts';

export interface SiqClientOptions {
  /** server specs ("host", "host:port", "[v6]:port"; port 6262 by default) or parsed servers */
  servers: readonly (string | SiqServer)[];
  /** the whole query's deadline, ms, all servers and retries included (default 2000) */
  timeoutMs?: number;
  /** rounds over the server list (default 2) */
  attempts?: number;
  /**
   * T of the draft's schedule: the wait per server in the first round; round r waits
   * floor(2^r·T/S). Default: the T that makes the schedule last `timeoutMs`.
   */
  tryTimeoutMs?: number;
  /** a cache, or false for none (default: a MemorySiqCache of `cacheMaxEntries` on `clock`) */
  cache?: SiqCache | false;
  /** entries of the default memory cache (default 10000) */
  cacheMaxEntries?: number;
  /** time for the cache's TTLs (timeouts use real timers) */
  clock?: Clock;
  /** cache seconds for replies that carry no TTL (-00 layout, legacy Outbound Index); default 0 = none */
  defaultTtl?: number;
  /** a positive TTL below this is raised to it, seconds (default 0); a TTL of 0 is never cached */
  minTtl?: number;
  /** TTLs are capped at this, seconds (default 86400) */
  maxTtl?: number;
  /** ask about the null sender (QD-LENGTH 0, IP only) instead of skipping it (default false) */
  queryNullSender?: boolean;
  /** follow one REDIRECT (-3) whose TEXT names a server; never a second, never cached (default false) */
  followRedirects?: boolean;
  /** host name → addresses, for servers given by name (default: the system's getaddrinfo) */
  lookup?: (host: string) => Promise<string[]>;
}

export interface SiqRequest {
  /** the SMTP client's address */
  ip: string;
  /** the MAIL FROM domain (or address: only its domain is sent); '' or absent for the null sender */
  domain?: string;
  /** default 'mail' (QT=0) */
  type?: SiqQueryType;
  /** libsnert's experimental flags, sent only when set */
  hl?: boolean;
  ml?: boolean;
}

export interface SiqAnswer {
  status: 'answer';
  reply: SiqReply;
  /** "host:port" of the server whose reply this is */
  server: string;
  cached: boolean;
  /** seconds this answer stays in the cache, 0 when it was not cached */
  cacheTtl: number;
  /** when a REDIRECT was followed: the server that sent it */
  redirectedFrom?: string;
  /** datagrams sent for this answer (0 from the cache) */
  tries: number;
  elapsedMs: number;
}

export type SiqResult =
  | SiqAnswer
  | { status: 'skipped'; reason: string }
  | { status: 'timeout'; message: string; tries: number; elapsedMs: number }
  | { status: 'error'; message: string };

export interface SiqClientStats {
  queries: number;
  cacheHits: number;
  /** answered by joining an identical query in flight */
  merged: number;
  skipped: number;
  sent: number;
  answers: number;
  timeouts: number;
  errors: number;
  /** datagrams dropped while waiting */
  ignored: { wrongSource: number; wrongId: number; malformed: number };
}

function positive(value: number | undefined, fallback: number, what: string, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) throw new Error(`${what} must be a number >= ${min}`);
  return value;
}

/**
 * The domain as it goes on the wire: the part after the last "@", without brackets or a trailing
 * dot, lower case, IDNs as A-labels. Null when it cannot be sent (non-ASCII, over 255 octets, an
 * address literal).
 */
export function siqDomain(text: string): string | null {
  let d = text.trim();
  if (d.startsWith('<') && d.endsWith('>')) d = d.slice(1, -1).trim();
  const at = d.lastIndexOf('@');
  if (at >= 0) d = d.slice(at + 1);
  if (d === '') return '';
  if (d.startsWith('[')) return null;
  const ascii = /^[\x21-\x7e]+$/.test(d) ? d.toLowerCase() : domainToASCII(d);
  const out = ascii.replace(/\.$/, '');
  if (out === '' || out.length > 255 || !/^[\x21-\x7e]+$/.test(out) || out.includes('@')) return null;
  return out;
}

/** The per-try waits of the draft's schedule (§5.6), scaled to a total. */
export function retrySchedule(servers: number, attempts: number, totalMs: number, tryMs?: number): number[] {
  const t = tryMs ?? Math.max(1, Math.floor(totalMs / (servers + 2 ** attempts - 2)));
  const waits: number[] = [];
  for (let r = 0; r < attempts; r++) {
    for (let s = 0; s < servers; s++) waits.push(r === 0 ? t : Math.max(1, Math.floor((2 ** r * t) / servers)));
  }
  return waits;
}

function abortStatus(signal: AbortSignal, started: number): SiqResult {
  const reason = signal.reason as { name?: unknown; message?: unknown } | undefined;
  const text = typeof reason?.message === 'string' ? reason.message : String(reason);
  if (reason?.name === 'TimeoutError' || reason?.name === 'DeadlineError') {
    return { status: 'timeout', message: `aborted: ${text}`, tries: 0, elapsedMs: Math.round(performance.now() - started) };
  }
  return { status: 'error', message: `aborted: ${text}` };
}

type Exchange =
  | { ok: true; reply: SiqReply; server: string; tries: number }
  | { ok: false; unreachable: boolean; message: string; tries: number };

export class SiqClient {
  readonly servers: readonly SiqServer[];
  readonly timeoutMs: number;
  private readonly schedule: number[];
  private readonly attempts: number;
  private readonly tryTimeoutMs: number | undefined;
  private readonly cache: SiqCache | null;
  private readonly clock: Clock;
  private readonly defaultTtl: number;
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly queryNullSender: boolean;
  private readonly followRedirects: boolean;
  private readonly lookup: (host: string) => Promise<string[]>;
  private readonly ids = new RandomIds(256);
  private readonly inflight = new Map<string, Promise<SiqResult>>();
  private readonly closer = new AbortController();
  private readonly counters = {
    queries: 0,
    cacheHits: 0,
    merged: 0,
    skipped: 0,
    sent: 0,
    answers: 0,
    timeouts: 0,
    errors: 0,
    ignored: { wrongSource: 0, wrongId: 0, malformed: 0 },
  };

  constructor(options: SiqClientOptions) {
    const servers = options.servers.map((s) => (typeof s === 'string' ? parseSiqServer(s) : s));
    if (servers.length === 0) throw new Error('SiqClient needs at least one server');
    this.servers = servers;
    this.timeoutMs = positive(options.timeoutMs, 2000, 'timeoutMs');
    this.attempts = Math.floor(positive(options.attempts, 2, 'attempts'));
    this.tryTimeoutMs = options.tryTimeoutMs === undefined ? undefined : positive(options.tryTimeoutMs, 1, 'tryTimeoutMs');
    this.schedule = retrySchedule(servers.length, this.attempts, this.timeoutMs, this.tryTimeoutMs);
    this.clock = options.clock ?? systemClock;
    this.cache =
      options.cache === false ? null : (options.cache ?? new MemorySiqCache({ clock: this.clock, ...(options.cacheMaxEntries ? { maxEntries: options.cacheMaxEntries } : {}) }));
    this.defaultTtl = positive(options.defaultTtl, 0, 'defaultTtl', 0);
    this.minTtl = positive(options.minTtl, 0, 'minTtl', 0);
    this.maxTtl = positive(options.maxTtl, 86400, 'maxTtl', 0);
    this.queryNullSender = options.queryNullSender ?? false;
    this.followRedirects = options.followRedirects ?? false;
    this.lookup = options.lookup ?? defaultLookup;
  }

  stats(): SiqClientStats {
    return { ...this.counters, ignored: { ...this.counters.ignored } };
  }

  /** Settles queries in flight (status 'error'); later queries get 'error' at once. */
  close(): void {
    this.closer.abort(new Error('SIQ client closed'));
  }

  async query(request: SiqRequest, options: { signal?: AbortSignal } = {}): Promise<SiqResult> {
    const started = performance.now();
    this.counters.queries++;
    if (this.closer.signal.aborted) return this.count({ status: 'error', message: 'SIQ client closed' });
    const addr = parseIp(request.ip.trim());
    if (!addr) return this.count({ status: 'error', message: `not an IP address: ${JSON.stringify(request.ip)}` });
    const ip = formatIp(addr);
    const domain = siqDomain(request.domain ?? '');
    if (domain === null) return this.count({ status: 'skipped', reason: `domain ${JSON.stringify(request.domain)} cannot be sent in a SIQ query` });
    if (domain === '' && !this.queryNullSender) return this.count({ status: 'skipped', reason: 'null sender (no domain to ask about)' });
    const type = request.type ?? 'mail';
    const signal = options.signal;
    if (signal?.aborted) return this.count(abortStatus(signal, started));

    const key = siqCacheKey(this.servers, type, ip, domain) + (request.hl ? '|hl' : '') + (request.ml ? '|ml' : '');
    let work = this.inflight.get(key);
    if (work) {
      this.counters.merged++;
    } else {
      work = this.run(key, { ip, domain, type, hl: request.hl === true, ml: request.ml === true }, started).catch(
        (err: unknown): SiqResult => ({ status: 'error', message: `SIQ: ${(err as Error).message}` }),
      );
      this.inflight.set(key, work);
      const w = work;
      void w.finally(() => {
        if (this.inflight.get(key) === w) this.inflight.delete(key);
      });
    }
    if (!signal) return this.count(await work);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<SiqResult>((resolve) => {
      onAbort = () => resolve(abortStatus(signal, started));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return this.count(await Promise.race([work, aborted]));
    } finally {
      signal.removeEventListener('abort', onAbort!);
    }
  }

  private count(result: SiqResult): SiqResult {
    if (result.status === 'skipped') this.counters.skipped++;
    else if (result.status === 'timeout') this.counters.timeouts++;
    else if (result.status === 'error') this.counters.errors++;
    else if (result.cached) this.counters.cacheHits++;
    else this.counters.answers++;
    return result;
  }

  private async run(
    key: string,
    q: { ip: string; domain: string; type: SiqQueryType; hl: boolean; ml: boolean },
    started: number,
  ): Promise<SiqResult> {
    if (this.cache) {
      let hit: Awaited<ReturnType<SiqCache['get']>>;
      try {
        hit = await this.cache.get(key);
      } catch {
        hit = undefined;
      }
      if (hit && hit.expiresAt > this.clock.now()) {
        return {
          status: 'answer',
          reply: { ...hit.reply, anomalies: [...hit.reply.anomalies] },
          server: hit.server,
          cached: true,
          cacheTtl: Math.max(0, Math.ceil((hit.expiresAt - this.clock.now()) / 1000)),
          tries: 0,
          elapsedMs: Math.round(performance.now() - started),
        };
      }
    }
    const deadlineAt = performance.now() + this.timeoutMs;
    const id = this.ids.next();
    const packet = encodeQuery({ id, type: q.type, ip: q.ip, domain: q.domain, hl: q.hl, ml: q.ml });
    const first = await this.exchange(this.servers, this.schedule, packet, id, deadlineAt);
    let result = first;
    let redirectedFrom: string | undefined;
    if (first.ok && first.reply.kind === 'redirect' && this.followRedirects && first.reply.redirect && performance.now() < deadlineAt) {
      const target = first.reply.redirect;
      let server: SiqServer | null = null;
      try {
        server = parseSiqServer(target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`);
      } catch {
        server = null;
      }
      if (server) {
        const again = this.ids.next();
        const packet2 = encodeQuery({ id: again, type: q.type, ip: q.ip, domain: q.domain, hl: q.hl, ml: q.ml });
        const second = await this.exchange([server], retrySchedule(1, this.attempts, this.timeoutMs), packet2, again, deadlineAt);
        redirectedFrom = first.server;
        result = second.ok
          ? { ...second, tries: first.tries + second.tries }
          : { ...second, message: `after a REDIRECT from ${first.server}: ${second.message}`, tries: first.tries + second.tries };
      }
    }
    const elapsedMs = Math.round(performance.now() - started);
    if (!result.ok) {
      if (this.closer.signal.aborted) return { status: 'error', message: 'SIQ client closed' };
      return { status: 'timeout', message: result.message, tries: result.tries, elapsedMs };
    }
    const reply = result.reply;
    let cacheTtl = redirectedFrom ? 0 : this.cacheSeconds(reply);
    if (cacheTtl > 0 && this.cache) {
      const now = this.clock.now();
      try {
        await this.cache.set(key, { reply, server: result.server, storedAt: now, expiresAt: now + cacheTtl * 1000 });
      } catch {
        cacheTtl = 0;
      }
    } else {
      cacheTtl = 0;
    }
    return {
      status: 'answer',
      reply,
      server: result.server,
      cached: false,
      cacheTtl,
      ...(redirectedFrom ? { redirectedFrom } : {}),
      tries: result.tries,
      elapsedMs,
    };
  }

  /**
   * How long a reply may be cached, in seconds: scores, and UNKNOWN from a -02 layout (in -00/-01
   * -1 also meant "error"), for their TTL (raised to minTtl, capped at maxTtl; `defaultTtl` when
   * the layout has no TTL). ERROR, TEMPFAIL, REDIRECT and TTL 0: never.
   */
  cacheSeconds(reply: SiqReply): number {
    const cacheable = reply.kind === 'score' || (reply.kind === 'unknown' && reply.revision === '02');
    if (!cacheable) return 0;
    const ttl = reply.ttl === null ? this.defaultTtl : reply.ttl;
    if (!(ttl > 0)) return 0;
    return Math.floor(Math.min(this.maxTtl, Math.max(this.minTtl, ttl)));
  }

  /** One query on the wire: the schedule's tries over `servers`, until a valid reply or the deadline. */
  private exchange(
    servers: readonly SiqServer[],
    schedule: readonly number[],
    packet: Uint8Array,
    id: number,
    deadlineAt: number,
  ): Promise<Exchange> {
    return new Promise<Exchange>((resolve) => {
      const n = servers.length;
      const sockets: (dgram.Socket | null)[] = new Array(n).fill(null);
      /** the address each server's socket is connected to */
      const targets: (string | null)[] = new Array(n).fill(null);
      const dead = new Map<number, string>();
      let next = 0;
      let tries = 0;
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      let lastMalformed = '';

      const finish = (result: Exchange): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearTimeout(deadlineTimer);
        this.closer.signal.removeEventListener('abort', onDeadline);
        for (const s of sockets) if (s) s.close();
        resolve(result);
      };
      const names = (): string => servers.map(formatSiqServer).join(', ');
      const noAnswer = (): Exchange => {
        if (dead.size === n) {
          return { ok: false, unreachable: true, message: `SIQ: no server reachable: ${[...dead.values()].join('; ')}`, tries };
        }
        const odd = lastMalformed ? `; last malformed reply: ${lastMalformed}` : '';
        const down = dead.size ? `; unreachable: ${[...dead.values()].join('; ')}` : '';
        return { ok: false, unreachable: false, message: `SIQ: no answer from ${names()} within ${this.timeoutMs} ms (${tries} tries)${down}${odd}`, tries };
      };
      const onDeadline = (): void => finish(noAnswer());
      // the total deadline (a timer per query: AbortSignal.any on a long-lived signal piles up)
      const deadlineTimer = setTimeout(onDeadline, Math.max(0, deadlineAt - performance.now()));
      this.closer.signal.addEventListener('abort', onDeadline, { once: true });
      if (this.closer.signal.aborted) {
        finish(noAnswer());
        return;
      }

      const markDead = (index: number, why: string): void => {
        if (done || dead.has(index)) return;
        dead.set(index, `${formatSiqServer(servers[index]!)}: ${why}`);
        if (dead.size === n) {
          finish(noAnswer());
          return;
        }
        // the try in progress went to a dead server: go on at once
        if (next > 0 && (next - 1) % n === index) {
          clearTimeout(timer);
          step();
        }
      };

      const onMessage = (index: number, msg: Buffer, rinfo: dgram.RemoteInfo): void => {
        if (done) return;
        if (rinfo.port !== servers[index]!.port || normalizeIp(rinfo.address) !== targets[index]) {
          this.counters.ignored.wrongSource++;
          return;
        }
        let reply: SiqReply;
        try {
          reply = decodeReply(msg);
        } catch (err) {
          // decodeReply throws only SiqDecodeError (fuzzed); anything else is still not a reply
          this.counters.ignored.malformed++;
          lastMalformed = err instanceof SiqDecodeError ? err.message : String(err);
          return;
        }
        if (reply.id !== id) {
          this.counters.ignored.wrongId++;
          return;
        }
        finish({ ok: true, reply, server: formatSiqServer(servers[index]!), tries });
      };

      const send = async (index: number): Promise<void> => {
        const server = servers[index]!;
        let socket = sockets[index];
        if (!socket) {
          let address = server.host;
          if (server.family === 0) {
            try {
              const found = await this.lookup(server.host);
              const first = found.find((a) => isIP(a) !== 0);
              if (!first) throw new Error('no address');
              address = normalizeIp(first)!;
            } catch (err) {
              markDead(index, `cannot look up ${server.host}: ${(err as Error).message}`);
              return;
            }
            if (done) return;
          }
          targets[index] = address;
          const s = dgram.createSocket({ type: isIP(address) === 6 ? 'udp6' : 'udp4' });
          sockets[index] = s;
          socket = s;
          s.on('message', (msg, rinfo) => onMessage(index, msg, rinfo));
          // ICMP errors (port unreachable) arrive here on a connected socket
          s.on('error', (err) => markDead(index, (err as NodeJS.ErrnoException).code ?? err.message));
          await new Promise<void>((ok) => {
            s.connect(server.port, address, () => ok());
            s.once('error', () => ok());
          });
          if (done || dead.has(index)) return;
        }
        tries++;
        this.counters.sent++;
        socket.send(packet, (err) => {
          if (err) markDead(index, (err as NodeJS.ErrnoException).code ?? err.message);
        });
      };

      const step = (): void => {
        if (done) return;
        while (next < schedule.length && dead.has(next % n)) next++;
        if (next >= schedule.length) {
          // the last try's wait is over
          finish(noAnswer());
          return;
        }
        const index = next % n;
        const wait = schedule[next]!;
        next++;
        timer = setTimeout(step, wait);
        void send(index);
      };
      step();
    });
  }
}

const lookupMemo = new Map<string, { addresses: Promise<string[]>; until: number }>();

/** getaddrinfo, remembered for 5 minutes per host name. */
async function defaultLookup(host: string): Promise<string[]> {
  const now = Date.now();
  const memo = lookupMemo.get(host);
  if (memo && memo.until > now) return memo.addresses;
  const addresses = dnsLookup(host, { all: true }).then((list) => list.map((a) => a.address));
  lookupMemo.set(host, { addresses, until: now + 300_000 });
  addresses.catch(() => lookupMemo.delete(host));
  return addresses;
}
