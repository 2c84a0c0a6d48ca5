/**
 * One Redis connection per process, shared by every user (SIQ cache, DNS cache, history, SIQ
 * server store): connects at first use, reconnects in the background with a capped exponential
 * backoff, and never lets Redis hold up a verdict.
 *
 * Every operation goes through `run` (throws a RedisUnavailableError) or `attempt` (returns the
 * caller's fallback instead). Both are bounded by `commandTimeoutMs`, waiting for the connection
 * included:
 *  - not connected (down, reconnecting): the operation fails at once, no queueing;
 *  - the very first operations wait for the first connection, within the same bound;
 *  - an operation that times out opens a short breaker (100 ms, doubling to 5 s): operations fail
 *    at once until it closes, so a hung Redis costs one timeout per breaker period, not one per
 *    verdict; after three timeouts in a row the connection is dropped and made again.
 * Failures are counted by operation (stats(), checkid_redis_* metrics) and logged as a warning at
 * most once per `warnIntervalMs`, with the number of failures in between.
 */
import { createClient, type RedisClientType } from '@redis/client';
import type { Logger } from '../engine/engine.ts';
import { parseRedisUrl, type RedisConfig, type RedisTarget } from './config.ts';

export type RedisClient = RedisClientType;

export type RedisState = 'idle' | 'connecting' | 'ready' | 'down' | 'closed';

export type RedisFailure = 'unavailable' | 'timeout' | 'error';

export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
  readonly reason: RedisFailure;
  constructor(reason: RedisFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

export interface RedisConnectionOptions extends RedisConfig {
  log?: Logger;
  /** at most one warning per this many ms (default 30000) */
  warnIntervalMs?: number;
  /** the client name Redis shows in CLIENT LIST (default checkid) */
  clientName?: string;
}

export interface RedisOpStats {
  ok: number;
  timeout: number;
  unavailable: number;
  error: number;
}

export interface RedisStats {
  state: RedisState;
  /** by operation name ("siq.get", "dns.set", "history.add", …) */
  ops: Record<string, RedisOpStats>;
  /** writes given up (the local state still has them) by operation */
  dropped: Record<string, number>;
  /** connections made (the first one included) */
  connects: number;
  /** connection errors seen (each failed try counts) */
  connectionErrors: number;
  /** times the breaker opened after a timeout */
  breakerOpened: number;
}

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;
/** commands waiting in the client at most; more fail at once (bounded memory when Redis hangs) */
const QUEUE_MAX = 10_000;
const RESET_AFTER_TIMEOUTS = 3;

/** The reconnect delay after `retries` failed tries: 100 ms doubling to 5 s, plus up to 10% jitter. */
export function reconnectDelay(retries: number): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(retries, 16));
  return Math.round(base + Math.random() * base * 0.1);
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

export class RedisConnection {
  readonly prefix: string;
  readonly target: RedisTarget;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  private readonly log: Logger;
  private readonly warnIntervalMs: number;
  private readonly clientName: string;
  private client: RedisClient | null = null;
  private subscriber: RedisClient | null = null;
  private readonly channels = new Map<string, Set<(message: string) => void>>();
  private stateNow: RedisState = 'idle';
  private readyWaiters = new Set<() => void>();
  private breakerUntil = 0;
  private timeoutsInRow = 0;
  private lastWarn = 0;
  private suppressed = 0;
  private readonly counters: Omit<RedisStats, 'state' | 'ops' | 'dropped'> = { connects: 0, connectionErrors: 0, breakerOpened: 0 };
  private readonly ops = new Map<string, RedisOpStats>();
  private readonly dropped = new Map<string, number>();

  constructor(options: RedisConnectionOptions) {
    this.target = parseRedisUrl(options.url);
    this.prefix = options.prefix;
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.log = options.log ?? (() => {});
    this.warnIntervalMs = options.warnIntervalMs ?? 30_000;
    this.clientName = options.clientName ?? 'checkid';
  }

  get state(): RedisState {
    return this.stateNow;
  }

  /** A key (or channel) with the prefix: `key('siq', k)` → "checkid:siq:k". */
  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  stats(): RedisStats {
    return {
      state: this.stateNow,
      ops: Object.fromEntries([...this.ops].map(([k, v]) => [k, { ...v }])),
      dropped: Object.fromEntries(this.dropped),
      ...this.counters,
    };
  }

  private options(): Parameters<typeof createClient>[0] {
    const t = this.target;
    return {
      ...(t.url ? { url: t.url } : {}),
      ...(t.database !== undefined ? { database: t.database } : {}),
      ...(t.username ? { username: t.username } : {}),
      ...(t.password ? { password: t.password } : {}),
      name: this.clientName,
      disableOfflineQueue: true,
      commandsQueueMaxLength: QUEUE_MAX,
      socket: {
        ...(t.path ? { path: t.path } : {}),
        connectTimeout: this.connectTimeoutMs,
        reconnectStrategy: (retries: number) => reconnectDelay(retries),
      },
    };
  }

  /** Makes the client and starts connecting (once; again after a reset). */
  private ensure(): RedisClient {
    if (this.client) return this.client;
    const client = createClient(this.options()) as RedisClient;
    this.client = client;
    this.stateNow = this.stateNow === 'idle' ? 'connecting' : 'down';
    client.on('ready', () => {
      if (this.client !== client) return;
      const was = this.stateNow;
      this.stateNow = 'ready';
      this.counters.connects++;
      this.timeoutsInRow = 0;
      this.breakerUntil = 0;
      this.log(was === 'down' ? 'warn' : 'info', was === 'down' ? 'Redis is back' : 'Redis connected', { redis: this.target.display });
      for (const wake of this.readyWaiters) wake();
      this.readyWaiters.clear();
    });
    client.on('error', (err: unknown) => {
      if (this.client !== client) return;
      this.counters.connectionErrors++;
      if (this.stateNow !== 'closed') this.stateNow = client.isReady ? 'ready' : 'down';
      for (const wake of this.readyWaiters) wake();
      this.readyWaiters.clear();
      this.warn('Redis connection error: shared caches and stores fall back to local behaviour until it is back', { error: describe(err) });
    });
    client.on('end', () => {
      if (this.client === client && this.stateNow !== 'closed') this.stateNow = 'down';
    });
    // connect() settles only when connected or given up (close/destroy): never awaited here
    client.connect().catch(() => {});
    return client;
  }

  /** Logs a warning, at most once per warnIntervalMs; the ones held back are counted in the next. */
  warn(message: string, fields: Record<string, unknown> = {}): void {
    const now = Date.now();
    if (now - this.lastWarn < this.warnIntervalMs) {
      this.suppressed++;
      return;
    }
    const held = this.suppressed;
    this.lastWarn = now;
    this.suppressed = 0;
    this.log('warn', message, { redis: this.target.display, ...fields, ...(held > 0 ? { similar_warnings_suppressed: held } : {}) });
  }

  private count(op: string, result: keyof RedisOpStats): void {
    let s = this.ops.get(op);
    if (!s) {
      s = { ok: 0, timeout: 0, unavailable: 0, error: 0 };
      this.ops.set(op, s);
    }
    s[result]++;
  }

  /** Waits for the first connection, at most until `deadline` (performance.now()). */
  private waitReady(deadline: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.readyWaiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, deadline - performance.now()));
      this.readyWaiters.add(wake);
    });
  }

  private onTimeout(): void {
    this.timeoutsInRow++;
    this.counters.breakerOpened++;
    const wait = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (this.timeoutsInRow - 1));
    this.breakerUntil = performance.now() + wait;
    if (this.timeoutsInRow >= RESET_AFTER_TIMEOUTS && this.client) {
      // a connection that stopped answering: drop it (pending commands fail) and make a new one
      const old = this.client;
      this.client = null;
      this.timeoutsInRow = 0;
      this.stateNow = 'down';
      old.destroy();
      this.ensure();
    }
  }

  /**
   * Runs one operation on the shared client within commandTimeoutMs. Throws RedisUnavailableError
   * (reason unavailable, timeout or error); counts the outcome under `op`.
   */
  async run<T>(op: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    if (this.stateNow === 'closed') {
      this.count(op, 'unavailable');
      throw new RedisUnavailableError('unavailable', 'the Redis connection is closed');
    }
    const deadline = performance.now() + this.commandTimeoutMs;
    const client = this.ensure();
    if (!client.isReady && this.stateNow === 'connecting') await this.waitReady(deadline);
    if (!client.isReady || this.client !== client) {
      this.count(op, 'unavailable');
      throw new RedisUnavailableError('unavailable', `Redis at ${this.target.display} is not connected`);
    }
    if (performance.now() < this.breakerUntil) {
      this.count(op, 'unavailable');
      throw new RedisUnavailableError('unavailable', `Redis at ${this.target.display} timed out recently; retrying shortly`);
    }
    let timer: NodeJS.Timeout | undefined;
    const work = fn(client);
    const expired = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(1, deadline - performance.now()));
    });
    try {
      const result = await Promise.race([work, expired]);
      if (result === 'timeout') {
        work.catch(() => {});
        this.count(op, 'timeout');
        this.onTimeout();
        throw new RedisUnavailableError('timeout', `Redis ${op} took longer than ${this.commandTimeoutMs} ms`);
      }
      this.count(op, 'ok');
      this.timeoutsInRow = 0;
      return result as T;
    } catch (err) {
      if (err instanceof RedisUnavailableError) throw err;
      this.count(op, 'error');
      throw new RedisUnavailableError('error', `Redis ${op}: ${describe(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * `run`, but a failure returns `fallback`: the failure is counted (and, for `write: true`, the
   * write is counted as dropped) and logged as a rate-limited warning.
   */
  async attempt<T>(op: string, fn: (client: RedisClient) => Promise<T>, fallback: T, options: { write?: boolean } = {}): Promise<T> {
    try {
      return await this.run(op, fn);
    } catch (err) {
      if (options.write) this.dropped.set(op, (this.dropped.get(op) ?? 0) + 1);
      const reason = err instanceof RedisUnavailableError ? err.reason : 'error';
      this.warn(`Redis ${op} failed (${reason}): ${options.write ? 'the write is dropped, local state keeps it' : 'treated as a miss'}`, {
        error: describe(err),
      });
      return fallback;
    }
  }

  /** Publishes on a prefixed channel; false when Redis could not take it (counted as dropped). */
  async publish(channel: string, message: string, op = 'publish'): Promise<boolean> {
    return this.attempt(op, async (c) => {
      await c.publish(this.key(channel), message);
      return true;
    }, false, { write: true });
  }

  /**
   * Listens on a prefixed channel. The subscription is made on a second connection (Redis wants
   * one for pub/sub), kept across reconnects; messages sent while disconnected are lost. Returns
   * the function that stops listening.
   */
  subscribe(channel: string, listener: (message: string) => void): () => Promise<void> {
    const name = this.key(channel);
    let set = this.channels.get(name);
    const first = !set;
    if (!set) {
      set = new Set();
      this.channels.set(name, set);
    }
    set.add(listener);
    if (first && this.stateNow !== 'closed') {
      const sub = this.ensureSubscriber();
      // queued until connected; node-redis subscribes again after each reconnect
      sub.subscribe(name, (message: string) => this.deliver(name, message)).catch((err: unknown) => {
        this.warn(`Redis subscribe to ${name} failed`, { error: describe(err) });
      });
    }
    return async () => {
      const s = this.channels.get(name);
      if (!s?.delete(listener) || s.size > 0) return;
      this.channels.delete(name);
      const sub = this.subscriber;
      if (sub?.isReady) await sub.unsubscribe(name).catch(() => {});
    };
  }

  private deliver(name: string, message: string): void {
    for (const listener of this.channels.get(name) ?? []) {
      try {
        listener(message);
      } catch (err) {
        this.log('error', 'a Redis channel listener threw', { channel: name, error: describe(err) });
      }
    }
  }

  private ensureSubscriber(): RedisClient {
    if (this.subscriber) return this.subscriber;
    const sub = createClient({ ...this.options(), name: `${this.clientName}-sub`, disableOfflineQueue: false }) as RedisClient;
    sub.on('error', () => {
      // the main connection's handler reports outages; a subscriber error alone is not news
    });
    sub.connect().catch(() => {});
    this.subscriber = sub;
    return sub;
  }

  /** Closes both connections; later operations fail as unavailable. */
  async close(): Promise<void> {
    if (this.stateNow === 'closed') return;
    this.stateNow = 'closed';
    for (const wake of this.readyWaiters) wake();
    this.readyWaiters.clear();
    const clients = [this.client, this.subscriber].filter((c): c is RedisClient => c !== null);
    this.client = null;
    this.subscriber = null;
    this.channels.clear();
    await Promise.all(
      clients.map(async (c) => {
        if (!c.isReady) {
          c.destroy();
          return;
        }
        const timer = setTimeout(() => c.destroy(), this.commandTimeoutMs);
        try {
          await c.close();
        } catch {
          c.destroy();
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }
}

const shared = new Map<string, { connection: RedisConnection; users: number }>();

/**
 * The process's connection for these settings: the same object for every caller with the same
 * url, prefix and timeouts. Give it back with `releaseSharedRedis`; the last one closes it.
 */
export function sharedRedis(config: RedisConfig, log?: Logger): RedisConnection {
  const id = JSON.stringify([config.url, config.prefix, config.connectTimeoutMs, config.commandTimeoutMs]);
  let entry = shared.get(id);
  if (!entry || entry.connection.state === 'closed') {
    entry = { connection: new RedisConnection({ ...config, ...(log ? { log } : {}) }), users: 0 };
    shared.set(id, entry);
  }
  entry.users++;
  return entry.connection;
}

export async function releaseSharedRedis(connection: RedisConnection): Promise<void> {
  for (const [id, entry] of shared) {
    if (entry.connection !== connection) continue;
    entry.users--;
    if (entry.users > 0) return;
    shared.delete(id);
    await connection.close();
    return;
  }
  await connection.close();
}
