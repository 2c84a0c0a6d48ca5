/** `SiqServerStore` in process memory: for tests, and for a server started without a database file. */
import {
  checkApiKey,
  checkCounts,
  checkEntry,
  checkHalfLife,
  checkListName,
  decayed,
  type JsonObject,
  type NewSiqAccount,
  newAccountId,
  newApiKey,
  normalizeEmail,
  normalizeReportKey,
  normalizeStoreIp,
  QUERY_LOG_KEEP,
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
  tidy,
} from './store.ts';

interface Counter {
  accepted: number;
  rejected: number;
  updatedAt: number;
}

interface AccountData {
  account: SiqAccount;
  ips: Set<string>;
  profile: string | null;
  allow: string[];
  block: string[];
  log: SiqQueryLogEntry[];
  reports: Map<string, Counter>;
}

export class MemorySiqServerStore implements SiqServerStore {
  private readonly accounts = new Map<string, AccountData>();
  private readonly byEmail = new Map<string, string>();
  private readonly byKey = new Map<string, string>();
  private readonly byIp = new Map<string, string>();
  private readonly watchers = new Set<(change: SiqStoreChange) => void>();
  private changes = 0;

  private changed(accountId: string, what: SiqStoreChange['what']): void {
    this.changes++;
    for (const w of [...this.watchers]) {
      try {
        w({ accountId, what });
      } catch {
        // a failing watcher does not fail the change
      }
    }
  }

  private data(id: string): AccountData {
    const d = this.accounts.get(id);
    if (!d) throw new SiqStoreError('not-found', `no account ${JSON.stringify(id)}`);
    return d;
  }

  async createAccount(input: NewSiqAccount): Promise<SiqAccount> {
    const email = normalizeEmail(input.email);
    const apiKey = checkApiKey(input.apiKey ?? newApiKey());
    if (typeof input.passwordHash !== 'string')
      throw new SiqStoreError('invalid', 'passwordHash must be a string');
    if (!Number.isFinite(input.createdAt)) throw new SiqStoreError('invalid', 'createdAt must be a number');
    if (this.byEmail.has(email)) throw new SiqStoreError('conflict', `an account for ${email} exists`);
    if (this.byKey.has(apiKey)) throw new SiqStoreError('conflict', 'that API key is taken');
    const account: SiqAccount = {
      id: newAccountId(),
      email,
      passwordHash: input.passwordHash,
      createdAt: input.createdAt,
      apiKey,
    };
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
    const id = this.byEmail.get(String(email).trim().toLowerCase());
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
    const email = patch.email === undefined ? d.account.email : normalizeEmail(patch.email);
    const apiKey = patch.apiKey === undefined ? d.account.apiKey : checkApiKey(patch.apiKey);
    if (patch.passwordHash !== undefined && typeof patch.passwordHash !== 'string')
      throw new SiqStoreError('invalid', 'passwordHash must be a string');
    const emailOwner = this.byEmail.get(email);
    if (emailOwner !== undefined && emailOwner !== id)
      throw new SiqStoreError('conflict', `an account for ${email} exists`);
    const keyOwner = this.byKey.get(apiKey);
    if (keyOwner !== undefined && keyOwner !== id)
      throw new SiqStoreError('conflict', 'that API key is taken');
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
    if (owner !== undefined) throw new SiqStoreError('conflict', `${n} is registered to another account`);
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
    if (profile === null || typeof profile !== 'object' || Array.isArray(profile))
      throw new SiqStoreError('invalid', 'a profile is a JSON object');
    const d = this.data(accountId);
    d.profile = JSON.stringify(profile);
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
    const i = mine.indexOf(String(entry).trim());
    if (i < 0) return false;
    mine.splice(i, 1);
    this.changed(accountId, 'lists');
    return true;
  }

  async appendQueryLog(entries: readonly SiqQueryLogEntry[]): Promise<void> {
    for (const e of entries) {
      const d = this.accounts.get(e.accountId);
      if (!d) continue;
      d.log.push({
        accountId: e.accountId,
        at: e.at,
        ip: e.ip,
        domain: e.domain,
        score: e.score,
        text: e.text,
      });
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
    const k = normalizeReportKey(kind, key);
    checkCounts(counts);
    checkHalfLife(halfLifeMs);
    const d = this.data(accountId);
    const id = `${kind}:${k}`;
    const c = d.reports.get(id);
    if (!c) {
      d.reports.set(id, { accepted: counts.accepted, rejected: counts.rejected, updatedAt: at });
      return;
    }
    c.accepted = decayed(c.accepted, c.updatedAt, at, halfLifeMs) + counts.accepted;
    c.rejected = decayed(c.rejected, c.updatedAt, at, halfLifeMs) + counts.rejected;
    c.updatedAt = Math.max(c.updatedAt, at);
  }

  async reportCounts(
    accountId: string,
    kind: SiqReportKind,
    key: string,
    at: number,
    halfLifeMs: number,
  ): Promise<SiqReportCounts> {
    const k = normalizeReportKey(kind, key);
    checkHalfLife(halfLifeMs);
    const c = this.accounts.get(accountId)?.reports.get(`${kind}:${k}`);
    if (!c) return { accepted: 0, rejected: 0 };
    return {
      accepted: tidy(decayed(c.accepted, c.updatedAt, at, halfLifeMs)),
      rejected: tidy(decayed(c.rejected, c.updatedAt, at, halfLifeMs)),
    };
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
      .map(([id, c]) => {
        const colon = id.indexOf(':');
        return {
          kind: id.slice(0, colon) as SiqReportKind,
          key: id.slice(colon + 1),
          accepted: tidy(decayed(c.accepted, c.updatedAt, at, halfLifeMs)),
          rejected: tidy(decayed(c.rejected, c.updatedAt, at, halfLifeMs)),
          updatedAt: c.updatedAt,
        };
      });
  }

  async changeCounter(): Promise<number> {
    return this.changes;
  }

  watch(listener: (change: SiqStoreChange) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  async close(): Promise<void> {
    this.watchers.clear();
  }
}
