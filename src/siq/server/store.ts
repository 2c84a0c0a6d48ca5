/**
 * The SIQ server's storage: postmaster accounts, the source IPs each account queries from, each
 * account's scoring profile and local allow/block lists, a bounded query log, and decaying
 * accepted/rejected counters fed by gateway reports.
 *
 * `SiqServerStore` is the contract every backend keeps (memory and SQLite here, Redis
 * elsewhere); test/siq/server/store-contract.ts checks it against any implementation. Rules for
 * implementers:
 *
 *  - every method is async and every value is plain JSON (strings, finite numbers, booleans,
 *    arrays, objects): no Dates, Buffers, bigints or backend row objects leak out;
 *  - times are milliseconds since the epoch, given by the caller (the store has no clock);
 *  - e-mail addresses are kept and compared in lower case; IP addresses are stored in the form
 *    `normalizeStoreIp` gives (IPv4 dotted quad, IPv6 compressed lower case);
 *  - a bad argument throws `SiqStoreError` with code 'invalid', an e-mail or IP that belongs to
 *    another account 'conflict', an unknown account id 'not-found' (reads of an unknown account
 *    return null or empty instead);
 *  - deleting an account deletes everything it owns;
 *  - every change to an account's configuration (the account row, its IPs, profile, lists) bumps
 *    the store's change counter and tells in-process watchers; query logs and reports do not.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { normalizeIp } from '../../common/ip.ts';

/** A JSON object, as stored for profiles. */
export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

export interface SiqAccount {
  /** opaque, made by the store (a UUID here) */
  id: string;
  /** lower case, unique across accounts */
  email: string;
  /** whatever the web UI stores (a scrypt string, say); the store never looks inside */
  passwordHash: string;
  /** ms since the epoch */
  createdAt: number;
  /** the gateway report channel's key: 32 lower-case hex digits or longer, unique */
  apiKey: string;
}

export interface NewSiqAccount {
  email: string;
  passwordHash: string;
  createdAt: number;
  /** default: a fresh random key (`newApiKey()`) */
  apiKey?: string;
}

export type SiqListName = 'allow' | 'block';

export interface SiqLists {
  /** entries as given (IP, CIDR, domain, .domain), in the order added */
  allow: string[];
  block: string[];
}

export interface SiqQueryLogEntry {
  accountId: string;
  /** ms since the epoch */
  at: number;
  /** the IP the query asked about */
  ip: string;
  /** the domain it asked about ('' = IP only) */
  domain: string;
  /** the SCORE sent back (0..100, or -1 unknown, -2 tempfail, -4 error) */
  score: number;
  /** the reply's TEXT (the k=v summary) */
  text: string;
}

export type SiqReportKind = 'ip' | 'domain';

export interface SiqReportCounts {
  /** decayed to the time asked for: not whole numbers */
  accepted: number;
  rejected: number;
}

export interface SiqReportRow extends SiqReportCounts {
  kind: SiqReportKind;
  /** the IP (normalised) or domain (lower case) */
  key: string;
  /** when a report last touched it */
  updatedAt: number;
}

export type SiqStoreChangeWhat = 'account' | 'ips' | 'profile' | 'lists';

export interface SiqStoreChange {
  accountId: string;
  what: SiqStoreChangeWhat;
}

/** How many query-log entries a store keeps per account at least (older ones may be dropped). */
export const QUERY_LOG_KEEP = 1000;

export interface SiqServerStore {
  // ---- accounts
  /** Throws 'conflict' when the e-mail or API key is taken, 'invalid' on an empty e-mail. */
  createAccount(input: NewSiqAccount): Promise<SiqAccount>;
  getAccount(id: string): Promise<SiqAccount | null>;
  getAccountByEmail(email: string): Promise<SiqAccount | null>;
  /** every account, oldest first */
  listAccounts(): Promise<SiqAccount[]>;
  /** Changes the given fields; null when there is no such account. 'conflict' as for createAccount. */
  updateAccount(
    id: string,
    patch: Partial<Pick<SiqAccount, 'email' | 'passwordHash' | 'apiKey'>>,
  ): Promise<SiqAccount | null>;
  /** Deletes the account with its IPs, profile, lists, query log and reports; false when unknown. */
  deleteAccount(id: string): Promise<boolean>;

  // ---- registered source IPs (single addresses)
  /** Idempotent for the same account; 'conflict' when another account has it; 'not-found' for an unknown account. */
  addSourceIp(accountId: string, ip: string): Promise<void>;
  /** false when the account did not have it */
  removeSourceIp(accountId: string, ip: string): Promise<boolean>;
  /** normalised, sorted */
  listSourceIps(accountId: string): Promise<string[]>;
  /** the id of the account that registered this IP, or null */
  accountIdForIp(ip: string): Promise<string | null>;

  // ---- scoring profile (validated by profile.ts; the store keeps any JSON object)
  getProfile(accountId: string): Promise<JsonObject | null>;
  /** 'not-found' for an unknown account */
  setProfile(accountId: string, profile: JsonObject): Promise<void>;

  // ---- local allow/block lists (entries validated by the caller; the store keeps strings)
  getLists(accountId: string): Promise<SiqLists>;
  /** Adds the entry to `list` (taking it out of the other list); idempotent. 'not-found' for an unknown account. */
  addListEntry(accountId: string, list: SiqListName, entry: string): Promise<void>;
  /** false when it was not there */
  removeListEntry(accountId: string, list: SiqListName, entry: string): Promise<boolean>;

  // ---- query log (bounded: at least the newest QUERY_LOG_KEEP per account are kept)
  /** Appends a batch (the server batches to keep writes cheap). Entries of unknown accounts are dropped. */
  appendQueryLog(entries: readonly SiqQueryLogEntry[]): Promise<void>;
  /** newest first, at most `limit` */
  recentQueries(accountId: string, limit: number): Promise<SiqQueryLogEntry[]>;

  // ---- gateway reports: counters that halve every `halfLifeMs`
  /**
   * Adds accepted/rejected messages for an IP or domain of an account at time `at`: the stored
   * counts are first decayed from their last update to `at` (never grown when `at` is earlier),
   * then the new counts added. 'not-found' for an unknown account.
   */
  addReport(
    accountId: string,
    kind: SiqReportKind,
    key: string,
    counts: SiqReportCounts,
    at: number,
    halfLifeMs: number,
  ): Promise<void>;
  /** The counts decayed to `at`; zeros when nothing was reported. */
  reportCounts(
    accountId: string,
    kind: SiqReportKind,
    key: string,
    at: number,
    halfLifeMs: number,
  ): Promise<SiqReportCounts>;
  /** The account's counters decayed to `at`, most recently updated first, at most `limit`. */
  listReports(accountId: string, at: number, halfLifeMs: number, limit: number): Promise<SiqReportRow[]>;

  // ---- change notification (for the answer cache)
  /** A counter that grows on every configuration change, also changes made by another process sharing the backend. */
  changeCounter(): Promise<number>;
  /** Calls `listener` after each change made through this store object; returns the unsubscribe function. */
  watch(listener: (change: SiqStoreChange) => void): () => void;

  close(): Promise<void>;
}

export type SiqStoreErrorCode = 'invalid' | 'conflict' | 'not-found';

export class SiqStoreError extends Error {
  override name = 'SiqStoreError';
  readonly code: SiqStoreErrorCode;
  constructor(code: SiqStoreErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A new report-channel API key: 32 random octets as 64 hex digits. */
export function newApiKey(): string {
  return randomBytes(32).toString('hex');
}

export function newAccountId(): string {
  return randomUUID();
}

/** The stored form of an IP address; throws 'invalid' for anything else. */
export function normalizeStoreIp(ip: string): string {
  const n = typeof ip === 'string' ? normalizeIp(ip.trim()) : null;
  if (!n) throw new SiqStoreError('invalid', `not an IP address: ${JSON.stringify(ip)}`);
  return n;
}

/** Lower case, trimmed; throws 'invalid' when empty, too long or without "@". */
export function normalizeEmail(email: string): string {
  const e = typeof email === 'string' ? email.trim().toLowerCase() : '';
  if (e === '' || e.length > 254 || !/^[^\s@]+@[^\s@]+$/.test(e))
    throw new SiqStoreError('invalid', `not an e-mail address: ${JSON.stringify(email)}`);
  return e;
}

export function checkApiKey(key: string): string {
  if (typeof key !== 'string' || !/^[0-9a-f]{32,128}$/.test(key))
    throw new SiqStoreError('invalid', 'an API key is 32 to 128 lower-case hex digits');
  return key;
}

export function checkListName(list: string): SiqListName {
  if (list !== 'allow' && list !== 'block')
    throw new SiqStoreError('invalid', `a list is "allow" or "block", not ${JSON.stringify(list)}`);
  return list;
}

/** The report key: a normalised IP, or a lower-case domain without the trailing dot. */
export function normalizeReportKey(kind: SiqReportKind, key: string): string {
  if (kind === 'ip') return normalizeStoreIp(key);
  if (kind !== 'domain')
    throw new SiqStoreError('invalid', `a report kind is "ip" or "domain", not ${JSON.stringify(kind)}`);
  const d = typeof key === 'string' ? key.trim().toLowerCase().replace(/\.$/, '') : '';
  if (d === '' || d.length > 255 || !/^[\x21-\x7e]+$/.test(d))
    throw new SiqStoreError('invalid', `not a domain: ${JSON.stringify(key)}`);
  return d;
}

export function checkCounts(counts: SiqReportCounts): void {
  for (const v of [counts.accepted, counts.rejected]) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1e9)
      throw new SiqStoreError('invalid', 'report counts are numbers 0..1e9');
  }
}

export function checkHalfLife(halfLifeMs: number): void {
  if (typeof halfLifeMs !== 'number' || !(halfLifeMs > 0) || !Number.isFinite(halfLifeMs))
    throw new SiqStoreError('invalid', 'the half-life must be a positive number of ms');
}

/** `value` stored at `from`, decayed to `to` (no growth when `to` is earlier). */
export function decayed(value: number, from: number, to: number, halfLifeMs: number): number {
  if (to <= from || value === 0) return value;
  return value * 2 ** (-(to - from) / halfLifeMs);
}

/** Counts below this after decay read as zero (and may be dropped). */
export const REPORT_EPSILON = 1e-6;

export function tidy(v: number): number {
  return v < REPORT_EPSILON ? 0 : v;
}

/** A list entry as stored: trimmed, non-empty, at most 300 characters of printable ASCII. */
export function checkEntry(entry: string): string {
  const e = typeof entry === 'string' ? entry.trim() : '';
  if (e === '' || e.length > 300 || !/^[\x21-\x7e]+$/.test(e))
    throw new SiqStoreError('invalid', `not a list entry: ${JSON.stringify(entry)}`);
  return e;
}

// ---- shared by the backends: the checks every store makes before it touches its storage

/** An error for an account id the store does not know. */
export function accountNotFound(accountId: string): SiqStoreError {
  return new SiqStoreError('not-found', `no account ${JSON.stringify(accountId)}`);
}

/** The errors for an e-mail address, API key or source IP another account has. */
export function emailTaken(email: string): SiqStoreError {
  return new SiqStoreError('conflict', `an account for ${email} exists`);
}
export function apiKeyTaken(): SiqStoreError {
  return new SiqStoreError('conflict', 'that API key is taken');
}
export function ipTaken(ip: string): SiqStoreError {
  return new SiqStoreError('conflict', `${ip} is registered to another account`);
}

/** The lookup form of an e-mail address for reads (no error: an odd one just finds nothing). */
export function emailLookupKey(email: string): string {
  return String(email).trim().toLowerCase();
}

/** The lookup form of a list entry for removal (no error: an odd one just finds nothing). */
export function entryLookupKey(entry: string): string {
  return String(entry).trim();
}

/** A new account from its checked fields: normalised e-mail, the API key (a fresh one when none is given), a new id. */
export function newAccount(input: NewSiqAccount): SiqAccount {
  const email = normalizeEmail(input.email);
  const apiKey = checkApiKey(input.apiKey ?? newApiKey());
  if (typeof input.passwordHash !== 'string')
    throw new SiqStoreError('invalid', 'passwordHash must be a string');
  if (!Number.isFinite(input.createdAt)) throw new SiqStoreError('invalid', 'createdAt must be a number');
  return { id: newAccountId(), email, passwordHash: input.passwordHash, createdAt: input.createdAt, apiKey };
}

/** Checks an account patch; the normalised e-mail and the API key, each undefined when the patch leaves it. */
export function checkAccountPatch(patch: Partial<Pick<SiqAccount, 'email' | 'passwordHash' | 'apiKey'>>): {
  email: string | undefined;
  apiKey: string | undefined;
} {
  const email = patch.email === undefined ? undefined : normalizeEmail(patch.email);
  const apiKey = patch.apiKey === undefined ? undefined : checkApiKey(patch.apiKey);
  if (patch.passwordHash !== undefined && typeof patch.passwordHash !== 'string')
    throw new SiqStoreError('invalid', 'passwordHash must be a string');
  return { email, apiKey };
}

/** The profile as stored (JSON text); throws 'invalid' for anything but a JSON object. */
export function profileJson(profile: JsonObject): string {
  if (profile === null || typeof profile !== 'object' || Array.isArray(profile))
    throw new SiqStoreError('invalid', 'a profile is a JSON object');
  return JSON.stringify(profile);
}

/** Checks a report's arguments; the normalised key. */
export function checkReport(
  kind: SiqReportKind,
  key: string,
  counts: SiqReportCounts | null,
  halfLifeMs: number,
): string {
  const k = normalizeReportKey(kind, key);
  if (counts !== null) checkCounts(counts);
  checkHalfLife(halfLifeMs);
  return k;
}

/** One name for a kind and key ("ip:192.0.2.1", "domain:example.com"), as the memory and Redis stores key their counters. */
export function reportField(kind: SiqReportKind, normalizedKey: string): string {
  return `${kind}:${normalizedKey}`;
}

/** The kind and key back from `reportField`. */
export function parseReportField(field: string): { kind: SiqReportKind; key: string } {
  const colon = field.indexOf(':');
  return { kind: field.slice(0, colon) as SiqReportKind, key: field.slice(colon + 1) };
}

/** Stored counts and their last update, as every backend keeps them. */
export interface StoredReportCounts extends SiqReportCounts {
  updatedAt: number;
}

/** Stored counts (null: none yet) decayed to `at`, plus the new counts: what addReport stores. */
export function addReportCounts(
  stored: StoredReportCounts | null,
  counts: SiqReportCounts,
  at: number,
  halfLifeMs: number,
): StoredReportCounts {
  if (!stored) return { accepted: counts.accepted, rejected: counts.rejected, updatedAt: at };
  return {
    accepted: decayed(stored.accepted, stored.updatedAt, at, halfLifeMs) + counts.accepted,
    rejected: decayed(stored.rejected, stored.updatedAt, at, halfLifeMs) + counts.rejected,
    updatedAt: Math.max(stored.updatedAt, at),
  };
}

/** Stored counts (null: none) as read at `at`: decayed, with what is below REPORT_EPSILON as zero. */
export function countsAt(stored: StoredReportCounts | null, at: number, halfLifeMs: number): SiqReportCounts {
  if (!stored) return { accepted: 0, rejected: 0 };
  return {
    accepted: tidy(decayed(stored.accepted, stored.updatedAt, at, halfLifeMs)),
    rejected: tidy(decayed(stored.rejected, stored.updatedAt, at, halfLifeMs)),
  };
}

/** A report row from a stored counter's field (`reportField`) and counts, read at `at`. */
export function reportRowAt(
  kind: SiqReportKind,
  key: string,
  stored: StoredReportCounts,
  at: number,
  halfLifeMs: number,
): SiqReportRow {
  return { kind, key, ...countsAt(stored, at, halfLifeMs), updatedAt: stored.updatedAt };
}

/** A query-log entry with only its own fields (what the backends store). */
export function queryLogEntry(e: SiqQueryLogEntry): SiqQueryLogEntry {
  return { accountId: e.accountId, at: e.at, ip: e.ip, domain: e.domain, score: e.score, text: e.text };
}

/** The in-process change listeners of one store object (`SiqServerStore.watch`). */
export class StoreWatchers {
  private readonly listeners = new Set<(change: SiqStoreChange) => void>();

  add(listener: (change: SiqStoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Tells every listener; one that throws does not fail the change nor stop the others. */
  notify(accountId: string, what: SiqStoreChangeWhat): void {
    for (const w of [...this.listeners]) {
      try {
        w({ accountId, what });
      } catch {
        // a failing watcher does not fail the change
      }
    }
  }

  clear(): void {
    this.listeners.clear();
  }
}
