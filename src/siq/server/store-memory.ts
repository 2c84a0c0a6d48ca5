/** `SiqServerStore` in process memory: for tests, and for a server started without a database file. */
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
  type StoredReportCounts,
  StoreWatchers,
} from './store.ts';

interface AccountData {
  account: SiqAccount;
  ips: Set<string>;
  profile: string | null;
  allow: string[];
  block: string[];
  log: SiqQueryLogEntry[];
  reports: Map<string, StoredReportCounts>;
}

export class MemorySiqServerStore implements SiqServerStore {
  private readonly accounts = new Map<string, AccountData>();
  private readonly byEmail = new Map<string, string>();
  private readonly byKey = new Map<string, string>();
  private readonly byIp = new Map<string, string>();
  private readonly watchers = new StoreWatchers();
  private changes = 0;

  private changed(accountId: string, what: SiqStoreChange['what']): void {
    this.changes++;
    this.watchers.notify(accountId, what);
  }

  private data(id: string): AccountData {
    const d = this.accounts.get(id);
    if (!d) throw accountNotFound(id);
    return d;
  }

  async createAccount(input: NewSiqAccount): Promise<SiqAccount> {
    const account = newAccount(input);
    const { email, apiKey } = account;
    if (this.byEmail.has(email)) throw emailTaken(email);
    if (this.byKey.has(apiKey)) throw apiKeyTaken();
    this.accounts.set(account.id, {
      account,
      ips: new Set(),
      profile: null,
      allow: [],
      block: [],
      log: [],
      reports: new Map(),
    });
    this.byEmail.set(email, account.id);
    this.byKey.set(apiKey, account.id);
    this.changed(account.id, 'account');
    return { ...account };
  }

  async getAccount(id: string): Promise<SiqAccount | null> {
    const d = this.accounts.get(id);
    return d ? { ...d.account } : null;
  }

  async getAccountByEmail(email: string): Promise<SiqAccount | null> {
    const id = this.byEmail.get(emailLookupKey(email));
    return id ? this.getAccount(id) : null;
  }

  async listAccounts(): Promise<SiqAccount[]> {
    return [...this.accounts.values()]
      .map((d) => ({ ...d.account }))
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  async updateAccount(
    id: string,
    patch: Partial<Pick<SiqAccount, 'email' | 'passwordHash' | 'apiKey'>>,
  ): Promise<SiqAccount | null> {
    const d = this.accounts.get(id);
    if (!d) return null;
    const checked = checkAccountPatch(patch);
    const email = checked.email ?? d.account.email;
    const apiKey = checked.apiKey ?? d.account.apiKey;
    const emailOwner = this.byEmail.get(email);
    if (emailOwner !== undefined && emailOwner !== id) throw emailTaken(email);
    const keyOwner = this.byKey.get(apiKey);
    if (keyOwner !== undefined && keyOwner !== id) throw apiKeyTaken();
    this.byEmail.delete(d.account.email);
    this.byKey.delete(d.account.apiKey);
    d.account = {
      ...d.account,
      email,
      apiKey,
      ...(patch.passwordHash !== undefined ? { passwordHash: patch.passwordHash } : {}),
    };
    this.byEmail.set(email, id);
    this.byKey.set(apiKey, id);
    this.changed(id, 'account');
    return { ...d.account };
  }

  async deleteAccount(id: string): Promise<boolean> {
    const d = this.accounts.get(id);
    if (!d) return false;
    for (const ip of d.ips) this.byIp.delete(ip);
    this.byEmail.delete(d.account.email);
    this.byKey.delete(d.account.apiKey);
    this.accounts.delete(id);
    this.changed(id, 'account');
    return true;
  }

  async addSourceIp(accountId: string, ip: string): Promise<void> {
    const n = normalizeStoreIp(ip);
    const d = this.data(accountId);
    const owner = this.byIp.get(n);
    if (owner === accountId) return;
    if (owner !== undefined) throw ipTaken(n);
    d.ips.add(n);
    this.byIp.set(n, accountId);
    this.changed(accountId, 'ips');
  }

  async removeSourceIp(accountId: string, ip: string): Promise<boolean> {
    const n = normalizeStoreIp(ip);
    const d = this.accounts.get(accountId);
    if (!d?.ips.delete(n)) return false;
    this.byIp.delete(n);
    this.changed(accountId, 'ips');
    return true;
  }

  async listSourceIps(accountId: string): Promise<string[]> {
    const d = this.accounts.get(accountId);
    return d ? [...d.ips].sort() : [];
  }

  async accountIdForIp(ip: string): Promise<string | null> {
    const n = normalizeStoreIp(ip);
    return this.byIp.get(n) ?? null;
  }

  async getProfile(accountId: string): Promise<JsonObject | null> {
    const p = this.accounts.get(accountId)?.profile;
    return p ? (JSON.parse(p) as JsonObject) : null;
  }

  async setProfile(accountId: string, profile: JsonObject): Promise<void> {
    const json = profileJson(profile);
    const d = this.data(accountId);
    d.profile = json;
    this.changed(accountId, 'profile');
  }

  async getLists(accountId: string): Promise<SiqLists> {
    const d = this.accounts.get(accountId);
    return d ? { allow: [...d.allow], block: [...d.block] } : { allow: [], block: [] };
  }

  async addListEntry(accountId: string, list: SiqListName, entry: string): Promise<void> {
    checkListName(list);
    const e = checkEntry(entry);
    const d = this.data(accountId);
    const other = list === 'allow' ? d.block : d.allow;
    const mine = list === 'allow' ? d.allow : d.block;
    const i = other.indexOf(e);
    if (i >= 0) other.splice(i, 1);
    if (!mine.includes(e)) mine.push(e);
    this.changed(accountId, 'lists');
  }

  async removeListEntry(accountId: string, list: SiqListName, entry: string): Promise<boolean> {
    checkListName(list);
    const d = this.accounts.get(accountId);
    if (!d) return false;
    const mine = list === 'allow' ? d.allow : d.block;
    const i = mine.indexOf(entryLookupKey(entry));
    if (i < 0) return false;
    mine.splice(i, 1);
    this.changed(accountId, 'lists');
    return true;
  }

  async appendQueryLog(entries: readonly SiqQueryLogEntry[]): Promise<void> {
    for (const e of entries) {
      const d = this.accounts.get(e.accountId);
      if (!d) continue;
      d.log.push(queryLogEntry(e));
      if (d.log.length > QUERY_LOG_KEEP * 2) d.log.splice(0, d.log.length - QUERY_LOG_KEEP);
    }
  }

  async recentQueries(accountId: string, limit: number): Promise<SiqQueryLogEntry[]> {
    const d = this.accounts.get(accountId);
    if (!d || !(limit > 0)) return [];
    const out: SiqQueryLogEntry[] = [];
    for (let i = d.log.length - 1; i >= 0 && out.length < limit; i--) out.push({ ...d.log[i]! });
    return out;
  }

  async addReport(
    accountId: string,
    kind: SiqReportKind,
    key: string,
    counts: SiqReportCounts,
    at: number,
    halfLifeMs: number,
  ): Promise<void> {
    const field = reportField(kind, checkReport(kind, key, counts, halfLifeMs));
    const d = this.data(accountId);
    d.reports.set(field, addReportCounts(d.reports.get(field) ?? null, counts, at, halfLifeMs));
  }

  async reportCounts(
    accountId: string,
    kind: SiqReportKind,
    key: string,
    at: number,
    halfLifeMs: number,
  ): Promise<SiqReportCounts> {
    const field = reportField(kind, checkReport(kind, key, null, halfLifeMs));
    return countsAt(this.accounts.get(accountId)?.reports.get(field) ?? null, at, halfLifeMs);
  }

  async listReports(
    accountId: string,
    at: number,
    halfLifeMs: number,
    limit: number,
  ): Promise<SiqReportRow[]> {
    checkHalfLife(halfLifeMs);
    const d = this.accounts.get(accountId);
    if (!d || !(limit > 0)) return [];
    return [...d.reports.entries()]
      .sort((a, b) => b[1].updatedAt - a[1].updatedAt)
      .slice(0, limit)
      .map(([field, c]) => {
        const { kind, key } = parseReportField(field);
        return reportRowAt(kind, key, c, at, halfLifeMs);
      });
  }

  async changeCounter(): Promise<number> {
    return this.changes;
  }

  watch(listener: (change: SiqStoreChange) => void): () => void {
    return this.watchers.add(listener);
  }

  async close(): Promise<void> {
    this.watchers.clear();
  }
}
