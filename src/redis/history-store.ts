/**
 * `HistoryStore` in Redis (src/history/store.ts), shared by every checkid daemon on the same Redis
 * and prefix: a dashboard on daemon A lists, charts and live-follows verdicts decided on daemon B.
 *
 * Keys, under `<prefix><namespace>:` (namespace "history" by default):
 *
 *   idx   zset    one member per record, scored by its time; members are a zero-padded
 *                 sequence number, so records with the same time stay in append order
 *   rec   hash    member → the record as JSON
 *   seq   string  the sequence
 *   feed  channel (pub/sub) each append batch, for the other daemons' live feeds
 *
 * A sorted set rather than a stream: records may arrive out of time order (several daemons,
 * clock skew, a late end-of-message), and a stream's IDs must only grow. Appends are one Lua
 * script (sequence, index, record, the size cap and the publish together). Retention: `prune`,
 * `retentionDays` (pruned at start and hourly) and `maxRecords` (the oldest go first at append).
 *
 * The live feed: this object's own appends reach its listeners at once; other daemons' appends
 * arrive by pub/sub (lost while the subscription is down; the stored history is not).
 *
 * Failures: an append Redis cannot take within the command timeout is dropped and counted
 * (checkid_redis_writes_dropped_total{op="history.append"}, a rate-limited warning) and still
 * goes to this daemon's own live listeners, so a verdict is never held up or failed by Redis.
 * Reads reject with RedisUnavailableError instead of hanging.
 */
import { randomUUID } from 'node:crypto';
import { parseRecord, RecordError, type VerdictRecord } from '../history/record.ts';
import { DEFAULT_RANGE_LIMIT, Feed, type HistoryListener, type HistoryStore } from '../history/store.ts';
import type { RedisClient, RedisConnection } from './connection.ts';
import { releaseSharedRedis } from './connection.ts';
import { lua, runScript } from './script.ts';

export interface RedisHistoryOptions {
  /** key namespace after the connection's prefix (default "history") */
  namespace?: string;
  /** records kept at most; the oldest go first (default 200,000, some 200 MB of Redis memory; 0 = no cap) */
  maxRecords?: number;
  /** records older than this many days are removed (at start, then hourly); 0 keeps them (default) */
  retentionDays?: number;
  /** members read per step of a long read (default 2,000) */
  pageSize?: number;
  now?: () => number;
  /** close (release) the connection with the store (default false: the caller shares it) */
  ownsConnection?: boolean;
  onListenerError?: (err: unknown) => void;
  /** a stored value that is not a record: skipped and reported here */
  onBadRecord?: (member: string, error: string) => void;
}

const APPEND = lua(`
-- KEYS: idx, rec, seq, channel; ARGV: maxRecords, message, then time and JSON for each record
local n = (#ARGV - 2) / 2
local last = redis.call('INCRBY', KEYS[3], n)
for i = 1, n do
  local member = string.format('%016d', last - n + i)
  redis.call('ZADD', KEYS[1], ARGV[1 + 2 * i], member)
  redis.call('HSET', KEYS[2], member, ARGV[2 + 2 * i])
end
local max = tonumber(ARGV[1])
if max > 0 then
  local excess = redis.call('ZCARD', KEYS[1]) - max
  while excess > 0 do
    local step = math.min(excess, 1000)
    local old = redis.call('ZRANGE', KEYS[1], 0, step - 1)
    redis.call('HDEL', KEYS[2], unpack(old))
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, step - 1)
    excess = excess - step
  end
end
redis.call('PUBLISH', KEYS[4], ARGV[2])
return last
`);

const PRUNE_STEP = lua(`
-- KEYS: idx, rec; ARGV: before (exclusive), step: removes up to step records, returns how many
local old = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
if #old == 0 then return 0 end
redis.call('HDEL', KEYS[2], unpack(old))
redis.call('ZREM', KEYS[1], unpack(old))
return #old
`);

const DAY_MS = 86_400_000;

function score(n: number): string {
  if (n === Number.POSITIVE_INFINITY) return '+inf';
  if (n === Number.NEGATIVE_INFINITY) return '-inf';
  if (Number.isNaN(n)) throw new RangeError('a time is a number, not NaN');
  return String(n);
}

function checkLimit(limit: number, what: string): number {
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`${what}: limit must be a whole number >= 0, not ${limit}`);
  return limit;
}

interface FeedMessage {
  /** the store object that appended (its own listeners already have the records) */
  o: string;
  r: VerdictRecord[];
}

export class RedisHistoryStore implements HistoryStore {
  readonly name: string;
  readonly redis: RedisConnection;
  private readonly ns: string;
  private readonly options: RedisHistoryOptions;
  private readonly maxRecords: number;
  private readonly pageSize: number;
  private readonly origin = randomUUID();
  private readonly feed: Feed;
  private unsubscribeRedis: (() => Promise<void>) | null = null;
  private readonly timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(redis: RedisConnection, options: RedisHistoryOptions = {}) {
    this.redis = redis;
    this.options = options;
    this.ns = options.namespace ?? 'history';
    this.name = `${redis.target.display} (${redis.key(this.ns)})`;
    this.maxRecords = options.maxRecords ?? 200_000;
    if (!Number.isInteger(this.maxRecords) || this.maxRecords < 0) throw new RangeError(`maxRecords must be a whole number >= 0, not ${this.maxRecords}`);
    this.pageSize = options.pageSize ?? 2_000;
    this.feed = new Feed(options.onListenerError);
    const days = options.retentionDays ?? 0;
    if (days > 0) {
      const prune = () => {
        void this.prune((options.now ?? Date.now)() - days * DAY_MS).catch((err: unknown) => {
          redis.warn('history retention: the prune failed; it runs again within the hour', { error: (err as Error).message });
        });
      };
      prune();
      this.timer = setInterval(prune, 3_600_000);
      this.timer.unref();
    }
  }

  private k(part: string): string {
    return this.redis.key(this.ns, part);
  }

  private check(): void {
    if (this.closed) throw new Error(`history store ${this.name} is closed`);
  }

  private run<T>(op: string, fn: (c: RedisClient) => Promise<T>): Promise<T> {
    return this.redis.run(`history.${op}`, fn);
  }

  private parse(members: string[], values: Array<string | null>): VerdictRecord[] {
    const out: VerdictRecord[] = [];
    members.forEach((member, i) => {
      const text = values[i];
      if (text === null || text === undefined) return; // pruned between the two reads
      try {
        out.push(parseRecord(String(text)));
      } catch (err) {
        if (!(err instanceof RecordError)) throw err;
        this.options.onBadRecord?.(member, err.message);
      }
    });
    return out;
  }

  private async fetch(members: string[]): Promise<VerdictRecord[]> {
    const out: VerdictRecord[] = [];
    for (let i = 0; i < members.length; i += this.pageSize) {
      const page = members.slice(i, i + this.pageSize);
      const values = await this.run('read', (c) => c.hmGet(this.k('rec'), page));
      out.push(...this.parse(page, values.map((v) => (v === null || v === undefined ? null : String(v)))));
    }
    return out;
  }

  async append(records: readonly VerdictRecord[]): Promise<void> {
    this.check();
    if (records.length === 0) return;
    const texts = records.map((r) => JSON.stringify(r));
    // the FeedMessage, written from the texts at hand
    const message = `{"o":${JSON.stringify(this.origin)},"r":[${texts.join(',')}]}`;
    const args: Array<string | number> = [this.maxRecords, message];
    for (let i = 0; i < records.length; i++) args.push(score(Math.trunc(records[i]!.time)), texts[i]!);
    await this.redis.attempt(
      'history.append',
      (c) => runScript(c, APPEND, [this.k('idx'), this.k('rec'), this.k('seq'), this.k('feed')], args),
      null,
      { write: true },
    );
    for (const t of texts) this.feed.publish(JSON.parse(t) as VerdictRecord);
  }

  async recent(limit: number): Promise<VerdictRecord[]> {
    this.check();
    checkLimit(limit, 'recent');
    if (limit === 0) return [];
    const members = await this.run('recent', (c) => c.zRange(this.k('idx'), 0, limit - 1, { REV: true }));
    return this.fetch(members.map(String).reverse());
  }

  async range(from: number, to: number, limit = DEFAULT_RANGE_LIMIT): Promise<VerdictRecord[]> {
    this.check();
    checkLimit(limit, 'range');
    const out: VerdictRecord[] = [];
    if (limit === 0 || !(to > from)) return out;
    // keyset paging on (score, member): each page starts at the last score read, skipping the
    // members with that score already read (members with one score are in append order)
    let lo = score(from);
    let skip = 0;
    let lastScore: number | null = null;
    while (out.length < limit) {
      const want = Math.min(this.pageSize, limit - out.length);
      const page = await this.run('range', (c) =>
        c.zRangeWithScores(this.k('idx'), lo, `(${score(to)}`, { BY: 'SCORE', LIMIT: { offset: skip, count: want } }),
      );
      if (page.length === 0) break;
      out.push(...(await this.fetch(page.map((p) => String(p.value)))));
      if (page.length < want) break;
      const end = page[page.length - 1]!.score;
      const sameAtEnd = page.filter((p) => p.score === end).length;
      skip = end === lastScore ? skip + sameAtEnd : sameAtEnd;
      lastScore = end;
      lo = score(end);
      this.check();
    }
    return out.slice(0, limit);
  }

  async prune(before: number): Promise<number> {
    this.check();
    let removed = 0;
    for (;;) {
      const n = Number(await this.run('prune', (c) => runScript(c, PRUNE_STEP, [this.k('idx'), this.k('rec')], [score(Math.ceil(before)), 1000])));
      removed += n;
      if (n < 1000) return removed;
    }
  }

  async count(): Promise<number> {
    this.check();
    return Number(await this.run('count', (c) => c.zCard(this.k('idx'))));
  }

  subscribe(listener: HistoryListener): () => void {
    const off = this.feed.subscribe(listener);
    if (!this.unsubscribeRedis && !this.closed) {
      this.unsubscribeRedis = this.redis.subscribe(`${this.ns}:feed`, (text) => this.fromOthers(text));
    }
    return () => {
      off();
      if (this.feed.size === 0 && this.unsubscribeRedis) {
        const stop = this.unsubscribeRedis;
        this.unsubscribeRedis = null;
        void stop();
      }
    };
  }

  private fromOthers(text: string): void {
    let message: FeedMessage;
    try {
      message = JSON.parse(text) as FeedMessage;
    } catch {
      return;
    }
    if (!message || message.o === this.origin || !Array.isArray(message.r)) return;
    for (const r of message.r) {
      let record: VerdictRecord;
      try {
        record = parseRecord(JSON.stringify(r));
      } catch {
        continue;
      }
      this.feed.publish(record);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.feed.clear();
    const stop = this.unsubscribeRedis;
    this.unsubscribeRedis = null;
    if (stop) await stop();
    if (this.options.ownsConnection) await releaseSharedRedis(this.redis);
  }
}
