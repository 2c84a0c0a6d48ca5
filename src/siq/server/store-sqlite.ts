/**
 * `SiqServerStore` in SQLite (node:sqlite's DatabaseSync): one file, WAL journal, so the SIQ
 * server and the web UI can share it, also from two processes (busy timeout 5 s). Without a path
 * the database is in memory.
 *
 * The schema version is PRAGMA user_version: 0 = empty (the schema is created), 1 = this layout.
 * A file from a newer checkid is refused rather than misread. Statements are prepared once; a
 * method is one transaction (BEGIN IMMEDIATE where it reads then writes), so two processes never
 * interleave a decay-and-add.
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import {
  accountNotFound,
  apiKeyTaken,
  addReportCounts,
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
  profileJson,
  QUERY_LOG_KEEP,
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
  type StoredReportCounts,
  StoreWatchers,
} from './store.ts';

export const SQLITE_SCHEMA_VERSION = 1;

const SCHEMA_V1 = `
CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  api_key TEXT NOT NULL UNIQUE
);
CREATE TABLE source_ips (
  ip TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE
);
CREATE INDEX source_ips_account ON source_ips(account_id);
CREATE TABLE profiles (
  account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
  json TEXT NOT NULL
);
CREATE TABLE list_entries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  list TEXT NOT NULL CHECK (list IN ('allow', 'block')),
  entry TEXT NOT NULL,
  UNIQUE (account_id, entry)
);
CREATE TABLE query_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  at INTEGER NOT NULL,
  ip TEXT NOT NULL,
  domain TEXT NOT NULL,
  score INTEGER NOT NULL,
  text TEXT NOT NULL
);
CREATE INDEX query_log_account ON query_log(account_id, id);
CREATE TABLE reports (
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('ip', 'domain')),
  key TEXT NOT NULL,
  accepted REAL NOT NULL,
  rejected REAL NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (account_id, kind, key)
);
CREATE INDEX reports_recent ON reports(account_id, updated_at);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters VALUES ('changes', 0);
`;

interface AccountRow {
  id: string;
  email: string;
  password_hash: string;
  created_at: number;
  api_key: string;
}

interface ReportRow {
  accepted: number;
  rejected: number;
  updated_at: number;
}

interface ReportListRow extends ReportRow {
  kind: SiqReportKind;
  key: string;
}

const toCounts = (r: ReportRow): StoredReportCounts => ({
  accepted: r.accepted,
  rejected: r.rejected,
  updatedAt: Number(r.updated_at),
});

const toAccount = (r: AccountRow): SiqAccount => ({
  id: r.id,
  email: r.email,
  passwordHash: r.password_hash,
  createdAt: Number(r.created_at),
  apiKey: r.api_key,
});

export interface SqliteSiqServerStoreOptions {
  /** the database file; '' or absent = in memory */
  path?: string;
}

export class SqliteSiqServerStore implements SiqServerStore {
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly watchers = new StoreWatchers();
  private readonly s: Record<string, StatementSync>;
  private closed = false;

  constructor(options: SqliteSiqServerStoreOptions = {}) {
    this.path = options.path ?? '';
    try {
      this.db = new DatabaseSync(this.path === '' ? ':memory:' : this.path);
    } catch (err) {
      throw new Error(`SIQ server database ${this.path}: cannot open: ${(err as Error).message}`);
    }
    this.db.exec('PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;');
    if (this.path !== '') this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
    this.migrate();
    const p = (sql: string) => this.db.prepare(sql);
    this.s = {
      insertAccount: p(
        'INSERT INTO accounts (id, email, password_hash, created_at, api_key) VALUES (?, ?, ?, ?, ?)',
      ),
      accountById: p('SELECT * FROM accounts WHERE id = ?'),
      accountByEmail: p('SELECT * FROM accounts WHERE email = ?'),
      accountByKey: p('SELECT id FROM accounts WHERE api_key = ?'),
      accounts: p('SELECT * FROM accounts ORDER BY created_at, rowid'),
      updateAccount: p('UPDATE accounts SET email = ?, password_hash = ?, api_key = ? WHERE id = ?'),
      deleteAccount: p('DELETE FROM accounts WHERE id = ?'),
      ipOwner: p('SELECT account_id FROM source_ips WHERE ip = ?'),
      insertIp: p('INSERT INTO source_ips (ip, account_id) VALUES (?, ?)'),
      deleteIp: p('DELETE FROM source_ips WHERE ip = ? AND account_id = ?'),
      ips: p('SELECT ip FROM source_ips WHERE account_id = ?'),
      profile: p('SELECT json FROM profiles WHERE account_id = ?'),
      setProfile: p(
        'INSERT INTO profiles (account_id, json) VALUES (?, ?) ON CONFLICT (account_id) DO UPDATE SET json = excluded.json',
      ),
      lists: p('SELECT list, entry FROM list_entries WHERE account_id = ? ORDER BY seq'),
      entryList: p('SELECT list FROM list_entries WHERE account_id = ? AND entry = ?'),
      deleteEntry: p('DELETE FROM list_entries WHERE account_id = ? AND entry = ?'),
      deleteEntryIn: p('DELETE FROM list_entries WHERE account_id = ? AND list = ? AND entry = ?'),
      insertEntry: p('INSERT INTO list_entries (account_id, list, entry) VALUES (?, ?, ?)'),
      insertLog: p(
        'INSERT INTO query_log (account_id, at, ip, domain, score, text) SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?)',
      ),
      trimLog: p(
        'DELETE FROM query_log WHERE account_id = ?1 AND id < (SELECT id FROM query_log WHERE account_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)',
      ),
      recent: p(
        'SELECT account_id, at, ip, domain, score, text FROM query_log WHERE account_id = ? ORDER BY id DESC LIMIT ?',
      ),
      report: p(
        'SELECT accepted, rejected, updated_at FROM reports WHERE account_id = ? AND kind = ? AND key = ?',
      ),
      upsertReport: p(
        'INSERT INTO reports (account_id, kind, key, accepted, rejected, updated_at) VALUES (?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT (account_id, kind, key) DO UPDATE SET accepted = excluded.accepted, rejected = excluded.rejected, updated_at = excluded.updated_at',
      ),
      reports: p(
        'SELECT kind, key, accepted, rejected, updated_at FROM reports WHERE account_id = ? ORDER BY updated_at DESC, rowid DESC LIMIT ?',
      ),
      exists: p('SELECT 1 AS x FROM accounts WHERE id = ?'),
      bump: p("UPDATE counters SET value = value + 1 WHERE name = 'changes'"),
      changes: p("SELECT value FROM counters WHERE name = 'changes'"),
    };
  }

  private migrate(): void {
    const row = this.db.prepare('PRAGMA user_version').get() as { user_version: number };
    const version = Number(row.user_version);
    if (version === SQLITE_SCHEMA_VERSION) return;
    if (version > SQLITE_SCHEMA_VERSION) {
      throw new Error(
        `SIQ server database ${this.path}: schema version ${version} is newer than this checkid knows (${SQLITE_SCHEMA_VERSION}); upgrade checkid`,
      );
    }
    this.tx(() => {
      // another process may have created it between our read and our lock
      const again = Number(
        (this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version,
      );
      if (again >= SQLITE_SCHEMA_VERSION) return;
      this.db.exec(SCHEMA_V1);
      this.db.exec(`PRAGMA user_version = ${SQLITE_SCHEMA_VERSION}`);
    });
  }

  /** Runs `fn` in a BEGIN IMMEDIATE transaction (rolled back when it throws). */
  private tx<T>(fn: () => T): T {
    if (this.closed) throw new Error('SIQ server store is closed');
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.db.exec('COMMIT');
      return out;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  private live(): void {
    if (this.closed) throw new Error('SIQ server store is closed');
  }

  private changed(accountId: string, what: SiqStoreChange['what']): void {
    this.watchers.notify(accountId, what);
  }

  private mustExist(accountId: string): void {
    if (!this.s.exists!.get(accountId)) throw accountNotFound(accountId);
  }

  async createAccount(input: NewSiqAccount): Promise<SiqAccount> {
    const account = newAccount(input);
    const { email, apiKey } = account;
    this.tx(() => {
      if (this.s.accountByEmail!.get(email)) throw emailTaken(email);
      if (this.s.accountByKey!.get(apiKey)) throw apiKeyTaken();
      this.s.insertAccount!.run(account.id, email, account.passwordHash, account.createdAt, apiKey);
      this.s.bump!.run();
    });
    this.changed(account.id, 'account');
    return account;
  }

  async getAccount(id: string): Promise<SiqAccount | null> {
    this.live();
    const r = this.s.accountById!.get(String(id)) as AccountRow | undefined;
    return r ? toAccount(r) : null;
  }

  async getAccountByEmail(email: string): Promise<SiqAccount | null> {
    this.live();
    const r = this.s.accountByEmail!.get(emailLookupKey(email)) as AccountRow | undefined;
    return r ? toAccount(r) : null;
  }

  async listAccounts(): Promise<SiqAccount[]> {
    this.live();
    return (this.s.accounts!.all() as unknown as AccountRow[]).map(toAccount);
  }

  async updateAccount(
    id: string,
    patch: Partial<Pick<SiqAccount, 'email' | 'passwordHash' | 'apiKey'>>,
  ): Promise<SiqAccount | null> {
    const { email, apiKey } = checkAccountPatch(patch);
    const out = this.tx(() => {
      const r = this.s.accountById!.get(String(id)) as AccountRow | undefined;
      if (!r) return null;
      const next = {
        ...toAccount(r),
        ...(email !== undefined ? { email } : {}),
        ...(apiKey !== undefined ? { apiKey } : {}),
        ...(patch.passwordHash !== undefined ? { passwordHash: patch.passwordHash } : {}),
      };
      const emailOwner = this.s.accountByEmail!.get(next.email) as AccountRow | undefined;
      if (emailOwner && emailOwner.id !== id) throw emailTaken(next.email);
      const keyOwner = this.s.accountByKey!.get(next.apiKey) as { id: string } | undefined;
      if (keyOwner && keyOwner.id !== id) throw apiKeyTaken();
      this.s.updateAccount!.run(next.email, next.passwordHash, next.apiKey, id);
      this.s.bump!.run();
      return next;
    });
    if (out) this.changed(id, 'account');
    return out;
  }

  async deleteAccount(id: string): Promise<boolean> {
    const gone = this.tx(() => {
      const n = Number(this.s.deleteAccount!.run(String(id)).changes);
      if (n > 0) this.s.bump!.run();
      return n > 0;
    });
    if (gone) this.changed(id, 'account');
    return gone;
  }

  async addSourceIp(accountId: string, ip: string): Promise<void> {
    const n = normalizeStoreIp(ip);
    const added = this.tx(() => {
      this.mustExist(accountId);
      const owner = this.s.ipOwner!.get(n) as { account_id: string } | undefined;
      if (owner?.account_id === accountId) return false;
      if (owner) throw ipTaken(n);
      this.s.insertIp!.run(n, accountId);
      this.s.bump!.run();
      return true;
    });
    if (added) this.changed(accountId, 'ips');
  }

  async removeSourceIp(accountId: string, ip: string): Promise<boolean> {
    const n = normalizeStoreIp(ip);
    const gone = this.tx(() => {
      const c = Number(this.s.deleteIp!.run(n, accountId).changes);
      if (c > 0) this.s.bump!.run();
      return c > 0;
    });
    if (gone) this.changed(accountId, 'ips');
    return gone;
  }

  async listSourceIps(accountId: string): Promise<string[]> {
    this.live();
    return (this.s.ips!.all(accountId) as Array<{ ip: string }>).map((r) => r.ip).sort();
  }

  async accountIdForIp(ip: string): Promise<string | null> {
    const n = normalizeStoreIp(ip);
    this.live();
    const r = this.s.ipOwner!.get(n) as { account_id: string } | undefined;
    return r ? r.account_id : null;
  }

  async getProfile(accountId: string): Promise<JsonObject | null> {
    this.live();
    const r = this.s.profile!.get(accountId) as { json: string } | undefined;
    return r ? (JSON.parse(r.json) as JsonObject) : null;
  }

  async setProfile(accountId: string, profile: JsonObject): Promise<void> {
    const json = profileJson(profile);
    this.tx(() => {
      this.mustExist(accountId);
      this.s.setProfile!.run(accountId, json);
      this.s.bump!.run();
    });
    this.changed(accountId, 'profile');
  }

  async getLists(accountId: string): Promise<SiqLists> {
    this.live();
    const out: SiqLists = { allow: [], block: [] };
    for (const r of this.s.lists!.all(accountId) as Array<{ list: SiqListName; entry: string }>)
      out[r.list].push(r.entry);
    return out;
  }

  async addListEntry(accountId: string, list: SiqListName, entry: string): Promise<void> {
    checkListName(list);
    const e = checkEntry(entry);
    const changed = this.tx(() => {
      this.mustExist(accountId);
      const r = this.s.entryList!.get(accountId, e) as { list: string } | undefined;
      if (r?.list === list) return false;
      if (r) this.s.deleteEntry!.run(accountId, e);
      this.s.insertEntry!.run(accountId, list, e);
      this.s.bump!.run();
      return true;
    });
    if (changed) this.changed(accountId, 'lists');
  }

  async removeListEntry(accountId: string, list: SiqListName, entry: string): Promise<boolean> {
    checkListName(list);
    const gone = this.tx(() => {
      const c = Number(this.s.deleteEntryIn!.run(accountId, list, entryLookupKey(entry)).changes);
      if (c > 0) this.s.bump!.run();
      return c > 0;
    });
    if (gone) this.changed(accountId, 'lists');
    return gone;
  }

  async appendQueryLog(entries: readonly SiqQueryLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    this.tx(() => {
      const touched = new Set<string>();
      for (const e of entries) {
        const values: SQLInputValue[] = [e.accountId, e.at, e.ip, e.domain, e.score, e.text, e.accountId];
        if (Number(this.s.insertLog!.run(...values).changes) > 0) touched.add(e.accountId);
      }
      for (const id of touched) this.s.trimLog!.run(id, QUERY_LOG_KEEP - 1);
    });
  }

  async recentQueries(accountId: string, limit: number): Promise<SiqQueryLogEntry[]> {
    this.live();
    if (!(limit > 0)) return [];
    const rows = this.s.recent!.all(accountId, Math.floor(limit)) as Array<{
      account_id: string;
      at: number;
      ip: string;
      domain: string;
      score: number;
      text: string;
    }>;
    return rows.map((r) => ({
      accountId: r.account_id,
      at: Number(r.at),
      ip: r.ip,
      domain: r.domain,
      score: Number(r.score),
      text: r.text,
    }));
  }

  async addReport(
    accountId: string,
    kind: SiqReportKind,
    key: string,
    counts: SiqReportCounts,
    at: number,
    halfLifeMs: number,
  ): Promise<void> {
    const k = checkReport(kind, key, counts, halfLifeMs);
    this.tx(() => {
      this.mustExist(accountId);
      const r = this.s.report!.get(accountId, kind, k) as ReportRow | undefined;
      const next = addReportCounts(r ? toCounts(r) : null, counts, at, halfLifeMs);
      this.s.upsertReport!.run(accountId, kind, k, next.accepted, next.rejected, next.updatedAt);
    });
  }

  async reportCounts(
    accountId: string,
    kind: SiqReportKind,
    key: string,
    at: number,
    halfLifeMs: number,
  ): Promise<SiqReportCounts> {
    const k = checkReport(kind, key, null, halfLifeMs);
    this.live();
    const r = this.s.report!.get(accountId, kind, k) as ReportRow | undefined;
    return countsAt(r ? toCounts(r) : null, at, halfLifeMs);
  }

  async listReports(
    accountId: string,
    at: number,
    halfLifeMs: number,
    limit: number,
  ): Promise<SiqReportRow[]> {
    checkHalfLife(halfLifeMs);
    this.live();
    if (!(limit > 0)) return [];
    const rows = this.s.reports!.all(accountId, Math.floor(limit)) as unknown as ReportListRow[];
    return rows.map((r) => reportRowAt(r.kind, r.key, toCounts(r), at, halfLifeMs));
  }

  async changeCounter(): Promise<number> {
    this.live();
    return Number((this.s.changes!.get() as { value: number }).value);
  }

  watch(listener: (change: SiqStoreChange) => void): () => void {
    return this.watchers.add(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watchers.clear();
    this.db.close();
  }
}
