/**
 * The `redis:` config section (docs/redis.md): where the shared Redis is, the prefix of every key
 * and channel checkid writes, and the two time bounds that keep a Redis outage out of verdicts.
 * The policy loader (src/policy/config.ts) calls the reader and the checks here.
 */
import type { Schema } from '../policy/schema.ts';

export interface RedisConfig {
  /** '' = no Redis; redis://, rediss:// or unix:///path (docs/redis.md) */
  url: string;
  /** put before every key and channel name */
  prefix: string;
  /** ms to open a connection (each try; reconnects go on in the background) */
  connectTimeoutMs: number;
  /** ms one operation may take, waiting for the connection included; then it counts as failed */
  commandTimeoutMs: number;
}

export function defaultRedisConfig(): RedisConfig {
  return { url: '', prefix: 'checkid:', connectTimeoutMs: 2_000, commandTimeoutMs: 250 };
}

/** What node-redis needs to connect, read from a `redis.url`. */
export interface RedisTarget {
  /** redis:// or rediss:// as written (node-redis parses it) */
  url?: string;
  /** a Unix socket path */
  path?: string;
  database?: number;
  username?: string;
  password?: string;
  /** the URL without its password, for logs */
  display: string;
}

export class RedisUrlError extends Error {
  override name = 'RedisUrlError';
}

const DB_MAX = 1_000_000;

function database(text: string | null, url: string): number | undefined {
  if (text === null || text === '') return undefined;
  if (!/^\d{1,7}$/.test(text) || Number(text) > DB_MAX) throw new RedisUrlError(`${url}: the database must be a number, not "${text}"`);
  return Number(text);
}

/**
 * Reads `redis://[user[:password]@]host[:port][/db]`, `rediss://…` (TLS) and
 * `unix:///path/to/redis.sock[?db=N&username=U&password=P]` (also `unix:/path`).
 * Throws RedisUrlError with a message that names what is wrong.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const text = url.trim();
  if (text === '') throw new RedisUrlError('the Redis URL is empty');
  if (text.length > 2048) throw new RedisUrlError('the Redis URL is longer than 2048 characters');
  if (/^unix:/i.test(text)) {
    const rest = text.slice(5).replace(/^\/\/(?=\/)/, '');
    const q = rest.indexOf('?');
    const path = decodeURIComponent(q < 0 ? rest : rest.slice(0, q));
    if (!path.startsWith('/')) throw new RedisUrlError(`${text}: a Unix socket URL needs an absolute path (unix:///run/redis/redis.sock)`);
    const params = new URLSearchParams(q < 0 ? '' : rest.slice(q + 1));
    for (const key of params.keys()) {
      if (!['db', 'username', 'password'].includes(key)) throw new RedisUrlError(`${text}: unknown parameter "${key}" (db, username, password)`);
    }
    const db = database(params.get('db'), text);
    const display = params.has('password') ? `unix://${path}?${redactedQuery(params)}` : `unix://${path}${q < 0 ? '' : `?${params}`}`;
    return {
      path,
      ...(db !== undefined ? { database: db } : {}),
      ...(params.get('username') ? { username: params.get('username')! } : {}),
      ...(params.get('password') ? { password: params.get('password')! } : {}),
      display,
    };
  }
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new RedisUrlError(`${JSON.stringify(text)} is not a URL (redis://HOST:PORT, rediss://HOST:PORT or unix:///path/redis.sock)`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new RedisUrlError(`${parsed.protocol} is not a Redis URL scheme (redis://, rediss:// or unix://)`);
  }
  if (parsed.hostname === '') throw new RedisUrlError(`${text}: no host name`);
  const path = parsed.pathname.replace(/^\//, '');
  database(path, text);
  if (parsed.search !== '' || parsed.hash !== '') throw new RedisUrlError(`${text}: query strings and fragments are not read; put the database number in the path (redis://HOST:PORT/2)`);
  const shown = new URL(text);
  if (shown.password) shown.password = '***';
  return { url: text, display: shown.toString() };
}

function redactedQuery(params: URLSearchParams): string {
  const copy = new URLSearchParams(params);
  if (copy.has('password')) copy.set('password', '***');
  return copy.toString();
}

function isRedisUrl(value: string): boolean {
  if (value === '') return true;
  try {
    parseRedisUrl(value);
    return true;
  } catch {
    return false;
  }
}

export const REDIS_SCHEMA: Schema = {
  type: 'object',
  props: {
    url: {
      type: 'string',
      valid: isRedisUrl,
      description: "'' (off), redis://[user:password@]HOST[:PORT][/DB], rediss://… (TLS) or unix:///path/redis.sock[?db=N]",
    },
    prefix: { type: 'string', pattern: /^[^\s*?[\]]{0,64}$/, description: 'up to 64 characters, no spaces and no glob characters * ? [ ]' },
    connect_timeout_ms: { type: 'number', min: 10, max: 60_000, integer: true },
    command_timeout_ms: { type: 'number', min: 1, max: 60_000, integer: true },
  },
};

/** The section as read from a validated raw object, on top of the defaults. */
export function readRedisConfig(raw: unknown): RedisConfig {
  const c = defaultRedisConfig();
  if (!raw || typeof raw !== 'object') return c;
  const r = raw as Record<string, unknown>;
  if (typeof r.url === 'string') c.url = r.url.trim();
  if (typeof r.prefix === 'string') c.prefix = r.prefix;
  if (typeof r.connect_timeout_ms === 'number') c.connectTimeoutMs = r.connect_timeout_ms;
  if (typeof r.command_timeout_ms === 'number') c.commandTimeoutMs = r.command_timeout_ms;
  return c;
}

/** The cache back-ends a config may name. */
export const CACHE_BACKENDS = ['memory', 'redis'] as const;
export type CacheBackend = (typeof CACHE_BACKENDS)[number];

/**
 * Problems the schema cannot see: a `backend: redis` with no `redis.url`. Each is the key path
 * and the message; the loader adds the file and line.
 */
export function redisConfigProblems(config: {
  redis: RedisConfig;
  siq: { cache: { backend: CacheBackend } };
  resolver: { cache: false | { backend: CacheBackend } };
}): Array<{ path: string[]; message: string }> {
  const problems: Array<{ path: string[]; message: string }> = [];
  if (config.redis.url !== '') return problems;
  if (config.siq.cache.backend === 'redis') {
    problems.push({ path: ['siq', 'cache', 'backend'], message: 'is redis but redis.url is empty: set redis.url (docs/redis.md) or use backend: memory' });
  }
  if (config.resolver.cache && config.resolver.cache.backend === 'redis') {
    problems.push({ path: ['resolver', 'cache', 'backend'], message: 'is redis but redis.url is empty: set redis.url (docs/redis.md) or use backend: memory' });
  }
  return problems;
}
