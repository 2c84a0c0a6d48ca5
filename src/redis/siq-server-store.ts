/**
 * `SiqServerStore` in Redis (src/siq/server/store.ts), so several SIQ server processes share
 * accounts, source IPs, profiles, lists, the query log and the report counters.
 *
 * Keys, under `<prefix><namespace>:` (namespace "siqs" by default):
 *
 *   account:<id>        hash   id, email, passwordHash, createdAt, apiKey, seq
 *   accounts            zset   "<seq>:<id>" scored by createdAt (oldest first; ties in creation order)
 *   email / apikey / ip hash   e-mail, API key, source IP → account id (the uniqueness indexes)
 *   ips:<id>            set    the account's source IPs
 *   profile:<id>        string the profile JSON
 *   list:<id>:allow     list   entries in the order added (and list:<id>:block)
 *   log:<id>            list   query-log entries as JSON, newest first, trimmed to QUERY_LOG_KEEP
 *   reports:<id>        hash   "<kind>:<key>" → {"a":accepted,"r":rejected,"u":updatedAt}
 *   reportsby:<id>      zset   "<kind>:<key>" scored by updatedAt (most recent first)
 *   changes             string the change counter (INCR on each configuration change)
 *   seq                 string the account creation sequence
 *
 * Everything that checks and then writes (unique e-mail, key and IP; moving a list entry;
 * deleting an account with all it owns; decaying and adding report counts) is one Lua script, so
 * two processes never interleave inside it. Reads of decayed counts are computed here from the
 * stored value and its time, like the other stores.
 *
 * Unlike the caches, this is data of record: an operation Redis cannot do within the command
 * timeout rejects with RedisUnavailableError (it does not hang). The one exception is the query
 * log, which is best effort: a batch Redis cannot take is dropped and counted
 * (checkid_redis_writes_dropped_total{op="siqs.log"}).
 */
import {
  accountNotFound,
  apiKeyTaken,
  checkAccountPatch,
  checkEntry,
  checkHalfLife,
  checkListName,
  checkReport,
  countsAt,
  emailLookupKey,
  emailTaken,
  entryLookupKey,
  ipTaken,
  type JsonObject,
  type NewSiqAccount,
  newAccount,
  normalizeStoreIp,
  parseReportField,
  profileJson,
  QUERY_LOG_KEEP,
  queryLogEntry,
  reportField,
  reportRowAt,
  type SiqAccount,
  type SiqListName,
  type SiqLists,
  type SiqQueryLogEntry,
  type SiqReportCounts,
  type SiqReportKind,
  type SiqReportRow,
  type SiqServerStore,
  type SiqStoreChange,
  SiqStoreError,
  type StoredReportCounts,
  StoreWatchers,
} from '../siq/server/store.ts';
import { type RedisClient, type RedisConnection, releaseSharedRedis } from './connection.ts';
import { lua, runScript } from './script.ts';

export interface RedisSiqServerStoreOptions {
  /** key namespace after the connection's prefix (default "siqs") */
  namespace?: string;
  /** close (release) the connection with the store (default false: the caller shares it) */
  ownsConnection?: boolean;
}

const CREATE = lua(`
-- KEYS: account, email, apikey, accounts, seq, changes; ARGV: id, email, hash, createdAt, apiKey
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'email' end
if redis.call('HEXISTS', KEYS[3], ARGV[5]) == 1 then return 'apikey' end
local seq = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'email', ARGV[2], 'passwordHash', ARGV[3], 'createdAt', ARGV[4], 'apiKey', ARGV[5], 'seq', seq)
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], string.format('%015d', seq) .. ':' .. ARGV[1])
redis.call('INCR', KEYS[6])
return 'ok'
`);

const UPDATE = lua(`
-- KEYS: account, email, apikey, changes; ARGV: id, email or '', apiKey or '', '1' to set the hash, hash
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local cur = redis.call('HMGET', KEYS[1], 'email', 'apiKey')
local email = cur[1]
local key = cur[2]
if ARGV[2] ~= '' then email = ARGV[2] end
if ARGV[3] ~= '' then key = ARGV[3] end
local eo = redis.call('HGET', KEYS[2], email)
if eo and eo ~= ARGV[1] then return 'email' end
local ko = redis.call('HGET', KEYS[3], key)
if ko and ko ~= ARGV[1] then return 'apikey' end
redis.call('HDEL', KEYS[2], cur[1])
redis.call('HDEL', KEYS[3], cur[2])
redis.call('HSET', KEYS[2], email, ARGV[1])
redis.call('HSET', KEYS[3], key, ARGV[1])
redis.call('HSET', KEYS[1], 'email', email, 'apiKey', key)
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'passwordHash', ARGV[5]) end
redis.call('INCR', KEYS[4])
return 'ok'
`);

const DELETE = lua(`
-- KEYS: account, email, apikey, ip, ips, accounts, profile, allow, block, log, reports, reportsby, changes; ARGV: id
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'email', 'apiKey', 'seq')
redis.call('HDEL', KEYS[2], cur[1])
redis.call('HDEL', KEYS[3], cur[2])
for _, ip in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  if redis.call('HGET', KEYS[4], ip) == ARGV[1] then redis.call('HDEL', KEYS[4], ip) end
end
redis.call('ZREM', KEYS[6], string.format('%015d', tonumber(cur[3])) .. ':' .. ARGV[1])
redis.call('DEL', KEYS[1], KEYS[5], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12])
redis.call('INCR', KEYS[13])
return 1
`);

const ADD_IP = lua(`
-- KEYS: account, ip index, ips, changes; ARGV: id, ip
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local owner = redis.call('HGET', KEYS[2], ARGV[2])
if owner == ARGV[1] then return 'same' end
if owner then return 'conflict' end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('INCR', KEYS[4])
return 'ok'
`);

const REMOVE_IP = lua(`
-- KEYS: ip index, ips, changes; ARGV: id, ip
if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[1], ARGV[2]) end
redis.call('INCR', KEYS[3])
return 1
`);

const SET_PROFILE = lua(`
-- KEYS: account, profile, changes; ARGV: json
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
return 'ok'
`);

const ADD_ENTRY = lua(`
-- KEYS: account, this list, the other list, changes; ARGV: entry
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
redis.call('LREM', KEYS[3], 0, ARGV[1])
if not redis.call('LPOS', KEYS[2], ARGV[1]) then redis.call('RPUSH', KEYS[2], ARGV[1]) end
redis.call('INCR', KEYS[4])
return 'ok'
`);

const REMOVE_ENTRY = lua(`
-- KEYS: list, changes; ARGV: entry
if redis.call('LREM', KEYS[1], 0, ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1
`);

const APPEND_LOG = lua(`
-- KEYS: account, log; ARGV: keep, entries (JSON, oldest first)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV do redis.call('LPUSH', KEYS[2], ARGV[i]) end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[1]) - 1)
return #ARGV - 1
`);

const ADD_REPORT = lua(`
-- KEYS: account, reports, reportsby; ARGV: field, accepted, rejected, at, halfLifeMs
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local a = tonumber(ARGV[2])
local r = tonumber(ARGV[3])
local at = tonumber(ARGV[4])
local half = tonumber(ARGV[5])
local u = at
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then
  local old = cjson.decode(cur)
  local f = 1
  if at > old.u then f = 2 ^ (-(at - old.u) / half) end
  a = old.a * f + a
  r = old.r * f + r
  if old.u > at then u = old.u end
end
redis.call('HSET', KEYS[2], ARGV[1], string.format('{"a":%.17g,"r":%.17g,"u":%.17g}', a, r, u))
redis.call('ZADD', KEYS[3], u, ARGV[1])
return 'ok'
`);

/** entries per script call when appending to the query log */
const LOG_CHUNK = 500;

/** A stored counter: {"a":accepted,"r":rejected,"u":updatedAt}; null when missing or damaged. */
function readCounter(text: unknown): StoredReportCounts | null {
  if (text === null || text === undefined || text === '') return null;
  try {
    const v = JSON.parse(String(text)) as { a: unknown; r: unknown; u: unknown };
    if (typeof v.a !== 'number' || typeof v.r !== 'number' || typeof v.u !== 'number') return null;
    return { accepted: v.a, rejected: v.r, updatedAt: v.u };
  } catch {
    return null;
  }
}

export class RedisSiqServerStore implements SiqServerStore {
  readonly redis: RedisConnection;
  private readonly ns: string;
  private readonly owns: boolean;
  private readonly watchers = new StoreWatchers();
  private closed = false;

  constructor(redis: RedisConnection, options: RedisSiqServerStoreOptions = {}) {
    this.redis = redis;
    this.ns = options.namespace ?? 'siqs';
    this.owns = options.ownsConnection ?? false;
  }

  private k(...parts: string[]): string {
    return this.redis.key(this.ns, ...parts);
  }

  private run<T>(op: string, fn: (c: RedisClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('the Redis SIQ server store is closed');
    return this.redis.run(`siqs.${op}`, fn);
  }

  private changed(accountId: string, what: SiqStoreChange['what']): void {
    this.watchers.notify(accountId, what);
  }

  private static account(h: Record<string, string>): SiqAccount | null {
    if (!h.id) return null;
    return { id: h.id, email: h.email ?? '', passwordHash: h.passwordHash ?? '', createdAt: Number(h.createdAt), apiKey: h.apiKey ?? '' };
  }

  async createAccount(input: NewSiqAccount): Promise<SiqAccount> {
    const account = newAccount(input);
    const { id, email, apiKey } = account;
    const r = await this.run('create', (c) =>
      runScript(c, CREATE, [this.k('account', id), this.k('email'), this.k('apikey'), this.k('accounts'), this.k('seq'), this.k('changes')], [
        id,
        email,
        account.passwordHash,
        account.createdAt,
        apiKey,
      ]),
    );
    if (r === 'email') throw emailTaken(email);
    if (r === 'apikey') throw apiKeyTaken();
    this.changed(id, 'account');
    return account;
  }

  async getAccount(id: string): Promise<SiqAccount | null> {
    if (typeof id !== 'string' || id === '') return null;
    const h = await this.run('get', (c) => c.hGetAll(this.k('account', id)));
    return RedisSiqServerStore.account(h as Record<string, string>);
  }

  async getAccountByEmail(email: string): Promise<SiqAccount | null> {
    const id = await this.run('byEmail', (c) => c.hGet(this.k('email'), emailLookupKey(email)));
    return id ? this.getAccount(String(id)) : null;
  }

  async listAccounts(): Promise<SiqAccount[]> {
    return this.run('list', async (c) => {
      const members = await c.zRange(this.k('accounts'), 0, -1);
      if (members.length === 0) return [];
      const multi = c.multi();
      for (const m of members) multi.hGetAll(this.k('account', String(m).slice(String(m).indexOf(':') + 1)));
      const rows = (await multi.exec()) as unknown as Array<Record<string, string>>;
      return rows.map((h) => RedisSiqServerStore.account(h)).filter((a): a is SiqAccount => a !== null);
    });
  }

  async updateAccount(id: string, patch: Partial<Pick<SiqAccount, 'email' | 'passwordHash' | 'apiKey'>>): Promise<SiqAccount | null> {
    const checked = checkAccountPatch(patch);
    const email = checked.email ?? '';
    const apiKey = checked.apiKey ?? '';
    if (typeof id !== 'string' || id === '') return null;
    const r = await this.run('update', (c) =>
      runScript(c, UPDATE, [this.k('account', id), this.k('email'), this.k('apikey'), this.k('changes')], [
        id,
        email,
        apiKey,
        patch.passwordHash === undefined ? '0' : '1',
        patch.passwordHash ?? '',
      ]),
    );
    if (r === 'missing') return null;
    if (r === 'email') throw emailTaken(email);
    if (r === 'apikey') throw apiKeyTaken();
    this.changed(id, 'account');
    return this.getAccount(id);
  }

  async deleteAccount(id: string): Promise<boolean> {
    if (typeof id !== 'string' || id === '') return false;
    const keys = [
      this.k('account', id),
      this.k('email'),
      this.k('apikey'),
      this.k('ip'),
      this.k('ips', id),
      this.k('accounts'),
      this.k('profile', id),
      this.k('list', id, 'allow'),
      this.k('list', id, 'block'),
      this.k('log', id),
      this.k('reports', id),
      this.k('reportsby', id),
      this.k('changes'),
    ];
    const r = await this.run('delete', (c) => runScript(c, DELETE, keys, [id]));
    if (Number(r) !== 1) return false;
    this.changed(id, 'account');
    return true;
  }

  async addSourceIp(accountId: string, ip: string): Promise<void> {
    const n = normalizeStoreIp(ip);
    const r = await this.run('addIp', (c) => runScript(c, ADD_IP, [this.k('account', accountId), this.k('ip'), this.k('ips', accountId), this.k('changes')], [accountId, n]));
    if (r === 'missing') throw accountNotFound(accountId);
    if (r === 'conflict') throw ipTaken(n);
    if (r === 'ok') this.changed(accountId, 'ips');
  }

  async removeSourceIp(accountId: string, ip: string): Promise<boolean> {
    const n = normalizeStoreIp(ip);
    const r = await this.run('removeIp', (c) => runScript(c, REMOVE_IP, [this.k('ip'), this.k('ips', accountId), this.k('changes')], [accountId, n]));
    if (Number(r) !== 1) return false;
    this.changed(accountId, 'ips');
    return true;
  }

  async listSourceIps(accountId: string): Promise<string[]> {
    const ips = await this.run('listIps', (c) => c.sMembers(this.k('ips', accountId)));
    return ips.map(String).sort();
  }

  async accountIdForIp(ip: string): Promise<string | null> {
    const n = normalizeStoreIp(ip);
    const id = await this.run('ipOwner', (c) => c.hGet(this.k('ip'), n));
    return id ? String(id) : null;
  }

  async getProfile(accountId: string): Promise<JsonObject | null> {
    const text = await this.run('getProfile', (c) => c.get(this.k('profile', accountId)));
    return text ? (JSON.parse(String(text)) as JsonObject) : null;
  }

  async setProfile(accountId: string, profile: JsonObject): Promise<void> {
    const text = profileJson(profile);
    const r = await this.run('setProfile', (c) => runScript(c, SET_PROFILE, [this.k('account', accountId), this.k('profile', accountId), this.k('changes')], [text]));
    if (r === 'missing') throw accountNotFound(accountId);
    this.changed(accountId, 'profile');
  }

  async getLists(accountId: string): Promise<SiqLists> {
    return this.run('getLists', async (c) => {
      // one transaction: a move between the lists is never seen half done
      const [allow, block] = (await c.multi().lRange(this.k('list', accountId, 'allow'), 0, -1).lRange(this.k('list', accountId, 'block'), 0, -1).exec()) as unknown as [
        string[],
        string[],
      ];
      return { allow: allow.map(String), block: block.map(String) };
    });
  }

  async addListEntry(accountId: string, list: SiqListName, entry: string): Promise<void> {
    checkListName(list);
    const e = checkEntry(entry);
    const other: SiqListName = list === 'allow' ? 'block' : 'allow';
    const r = await this.run('addEntry', (c) =>
      runScript(c, ADD_ENTRY, [this.k('account', accountId), this.k('list', accountId, list), this.k('list', accountId, other), this.k('changes')], [e]),
    );
    if (r === 'missing') throw accountNotFound(accountId);
    this.changed(accountId, 'lists');
  }

  async removeListEntry(accountId: string, list: SiqListName, entry: string): Promise<boolean> {
    checkListName(list);
    const r = await this.run('removeEntry', (c) => runScript(c, REMOVE_ENTRY, [this.k('list', accountId, list), this.k('changes')], [entryLookupKey(entry)]));
    if (Number(r) !== 1) return false;
    this.changed(accountId, 'lists');
    return true;
  }

  async appendQueryLog(entries: readonly SiqQueryLogEntry[]): Promise<void> {
    if (this.closed) throw new Error('the Redis SIQ server store is closed');
    const byAccount = new Map<string, string[]>();
    for (const e of entries) {
      if (typeof e.accountId !== 'string' || e.accountId === '') continue;
      const text = JSON.stringify(queryLogEntry(e));
      let list = byAccount.get(e.accountId);
      if (!list) {
        list = [];
        byAccount.set(e.accountId, list);
      }
      list.push(text);
    }
    const writes: Promise<unknown>[] = [];
    for (const [id, texts] of byAccount) {
      for (let i = 0; i < texts.length; i += LOG_CHUNK) {
        const chunk = texts.slice(i, i + LOG_CHUNK);
        writes.push(
          this.redis.attempt('siqs.log', (c) => runScript(c, APPEND_LOG, [this.k('account', id), this.k('log', id)], [QUERY_LOG_KEEP, ...chunk]), null, { write: true }),
        );
      }
    }
    await Promise.all(writes);
  }

  async recentQueries(accountId: string, limit: number): Promise<SiqQueryLogEntry[]> {
    if (!(limit > 0)) return [];
    const n = Math.min(Math.floor(limit), QUERY_LOG_KEEP * 4);
    const rows = await this.run('recentQueries', (c) => c.lRange(this.k('log', accountId), 0, n - 1));
    const out: SiqQueryLogEntry[] = [];
    for (const row of rows) {
      try {
        out.push(JSON.parse(String(row)) as SiqQueryLogEntry);
      } catch {
        // a damaged entry is skipped
      }
    }
    return out;
  }

  async addReport(accountId: string, kind: SiqReportKind, key: string, counts: SiqReportCounts, at: number, halfLifeMs: number): Promise<void> {
    const field = reportField(kind, checkReport(kind, key, counts, halfLifeMs));
    if (!Number.isFinite(at)) throw new SiqStoreError('invalid', 'the report time must be a number');
    const r = await this.run('addReport', (c) =>
      runScript(c, ADD_REPORT, [this.k('account', accountId), this.k('reports', accountId), this.k('reportsby', accountId)], [
        field,
        counts.accepted,
        counts.rejected,
        at,
        halfLifeMs,
      ]),
    );
    if (r === 'missing') throw accountNotFound(accountId);
  }

  async reportCounts(accountId: string, kind: SiqReportKind, key: string, at: number, halfLifeMs: number): Promise<SiqReportCounts> {
    const field = reportField(kind, checkReport(kind, key, null, halfLifeMs));
    const text = await this.run('reportCounts', (c) => c.hGet(this.k('reports', accountId), field));
    return countsAt(readCounter(text), at, halfLifeMs);
  }

  async listReports(accountId: string, at: number, halfLifeMs: number, limit: number): Promise<SiqReportRow[]> {
    checkHalfLife(halfLifeMs);
    if (!(limit > 0)) return [];
    return this.run('listReports', async (c) => {
      const fields = (await c.zRange(this.k('reportsby', accountId), 0, Math.floor(limit) - 1, { REV: true })).map(String);
      if (fields.length === 0) return [];
      const values = await c.hmGet(this.k('reports', accountId), fields);
      const rows: SiqReportRow[] = [];
      fields.forEach((field, i) => {
        const v = readCounter(values[i]);
        if (!v) return;
        const { kind, key } = parseReportField(field);
        rows.push(reportRowAt(kind, key, v, at, halfLifeMs));
      });
      return rows;
    });
  }

  async changeCounter(): Promise<number> {
    const v = await this.run('changes', (c) => c.get(this.k('changes')));
    return v === null ? 0 : Number(v);
  }

  watch(listener: (change: SiqStoreChange) => void): () => void {
    return this.watchers.add(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watchers.clear();
    if (this.owns) await releaseSharedRedis(this.redis);
  }
}
