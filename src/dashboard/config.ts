/**
 * The `dashboard:` section of the config file (docs/dashboard.md): schema, defaults, reader and
 * the checks src/policy/config.ts runs so errors name file, line and key.
 *
 *   dashboard:
 *     listen: 127.0.0.1:8025          # '' = off
 *     history:
 *       db: ''                        # '' = history.db in the state directory; memory = not kept; redis = shared
 *       retention_days: 30
 *       memory_records: 10000
 *     users:                          # required when listen is not a loopback address
 *       - name: admin
 *         password_hash: $argon2id$v=19$m=19456,t=2,p=1$...
 *     secure: false                   # served over HTTPS (a TLS proxy in front)
 *     trusted_proxies: []
 *     public_origin: ''
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { Schema } from '../policy/schema.ts';

export interface DashboardUser {
  name: string;
  passwordHash: string;
}

export interface DashboardConfig {
  /** HOST:PORT, '' = off */
  listen: string;
  /** `listen` was written in the config (a default address that is taken only warns) */
  listenConfigured: boolean;
  history: {
    /**
     * absolute path of the SQLite file; '' = history.db in the state directory; 'memory' = a ring
     * buffer; 'redis' = the shared Redis of `redis.url` (every daemon's verdicts, docs/redis.md)
     */
    db: string;
    /** SQLite: records older than this are removed; 0 = kept */
    retentionDays: number;
    /** memory: how many records are kept */
    memoryRecords: number;
  };
  users: DashboardUser[];
  secure: boolean;
  trustedProxies: string[];
  publicOrigin: string;
}

export const DEFAULT_DASHBOARD_LISTEN = '127.0.0.1:8025';

export function defaultDashboardConfig(): DashboardConfig {
  return {
    listen: DEFAULT_DASHBOARD_LISTEN,
    listenConfigured: false,
    history: { db: '', retentionDays: 30, memoryRecords: 10_000 },
    users: [],
    secure: false,
    trustedProxies: [],
    publicOrigin: '',
  };
}

const PHC = /^\$(argon2id|scrypt)\$[A-Za-z0-9$=,.+/-]+$/;

export const DASHBOARD_SCHEMA: Schema = {
  type: 'object',
  props: {
    listen: { type: 'string', pattern: /^$|^\S+:\d{1,5}$/, description: "'' (off) or HOST:PORT" },
    history: {
      type: 'object',
      props: {
        db: { type: 'string' },
        retention_days: { type: 'number', min: 0, max: 36_500, integer: true },
        memory_records: { type: 'number', min: 1, max: 10_000_000, integer: true },
      },
    },
    users: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        props: {
          name: { type: 'string', pattern: /^[^\s:]{1,64}$/, description: 'a user name without spaces or ":", at most 64 characters' },
          password_hash: { type: 'string', pattern: PHC, description: 'a password hash from `checkid dashboard hash-password` ($argon2id$… or $scrypt$…)' },
        },
        required: ['name', 'password_hash'],
      },
    },
    secure: { type: 'boolean' },
    trusted_proxies: { type: 'array', items: { type: 'string', valid: (s) => isIP(s) !== 0, description: 'an IP address' } },
    public_origin: { type: 'string', pattern: /^$|^https?:\/\/[^/\s]+$/, description: 'like https://dashboard.example.net (no path)' },
  },
};

type Raw = Record<string, unknown>;

/** The section as a typed config (validated by DASHBOARD_SCHEMA first). */
export function dashboardConfigFrom(raw: unknown, baseDir: string): DashboardConfig {
  const c = defaultDashboardConfig();
  if (!raw || typeof raw !== 'object') return c;
  const r = raw as Raw;
  if (typeof r.listen === 'string') {
    c.listen = r.listen;
    c.listenConfigured = true;
  }
  const h = (r.history ?? {}) as Raw;
  if (typeof h.db === 'string' && h.db !== '') c.history.db = h.db === 'memory' || h.db === 'redis' ? h.db : resolve(baseDir, h.db);
  if (typeof h.retention_days === 'number') c.history.retentionDays = h.retention_days;
  if (typeof h.memory_records === 'number') c.history.memoryRecords = h.memory_records;
  if (Array.isArray(r.users)) c.users = (r.users as Raw[]).map((u) => ({ name: String(u.name), passwordHash: String(u.password_hash) }));
  if (typeof r.secure === 'boolean') c.secure = r.secure;
  if (Array.isArray(r.trusted_proxies)) c.trustedProxies = r.trusted_proxies as string[];
  if (typeof r.public_origin === 'string') c.publicOrigin = r.public_origin;
  return c;
}

/** The host part of HOST:PORT or [IPv6]:PORT. */
export function listenHost(listen: string): string {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):\d{1,5}$/.exec(listen.trim());
  return m ? (m[1] ?? m[2]!) : listen;
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1' || h === '::ffff:127.0.0.1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * Problems the schema cannot see: a dashboard open to the network without sign-in, twice the
 * same user, a Redis history without Redis.
 */
export function dashboardConfigProblems(c: DashboardConfig, redisUrl = ''): Array<{ path: Array<string | number>; message: string }> {
  const out: Array<{ path: Array<string | number>; message: string }> = [];
  if (c.history.db === 'redis' && redisUrl === '') {
    out.push({ path: ['dashboard', 'history', 'db'], message: 'is redis, but redis.url is not set: say where Redis is (docs/redis.md)' });
  }
  if (c.listen !== '' && !isLoopback(listenHost(c.listen)) && c.users.length === 0) {
    out.push({
      path: ['dashboard', 'listen'],
      message: `is ${c.listen}, not a loopback address, and dashboard.users is empty: anyone who can reach it could change the policy. Add a user (checkid dashboard hash-password makes the hash) or listen on 127.0.0.1`,
    });
  }
  const seen = new Set<string>();
  c.users.forEach((u, i) => {
    const key = u.name.toLowerCase();
    if (seen.has(key)) out.push({ path: ['dashboard', 'users', i, 'name'], message: `"${u.name}" is listed twice` });
    seen.add(key);
  });
  return out;
}
