/**
 * The verdict history: where final verdicts (record.ts) are kept for the dashboard and the
 * threshold what-if. One interface, several stores: memory (a ring buffer, gone at restart),
 * SQLite (a file, node:sqlite, kept for `retention_days`), and Redis (another module, shared by
 * several checkid instances). Every store also feeds live listeners with each record it stored.
 *
 * Lists come oldest first (by time, then by the order they were appended) whatever the call.
 * test/history/store-contract.ts is the behaviour every store must show.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { parseRecord, RecordError, type VerdictRecord } from './record.ts';

export type HistoryListener = (record: VerdictRecord) => void;

export interface HistoryStore {
  /** a short name for logs and the dashboard: memory, sqlite:/path, redis://host */
  readonly name: string;
  /** stores the records (in this order) and then tells the live listeners about each */
  append(records: readonly VerdictRecord[]): Promise<void>;
  /** the newest `limit` records, oldest first */
  recent(limit: number): Promise<VerdictRecord[]>;
  /** records with from <= time < to, oldest first, at most `limit` (the oldest ones) */
  range(from: number, to: number, limit?: number): Promise<VerdictRecord[]>;
  /** removes records older than `before` (time < before); resolves with how many went */
  prune(before: number): Promise<number>;
  count(): Promise<number>;
  /** live feed: called with each record appended from now on (by any process, for shared stores) */
  subscribe(listener: HistoryListener): () => void;
  close(): Promise<void>;
}

/** The default cap for `range` without a limit: a what-if over more is not interactive anyway. */
export const DEFAULT_RANGE_LIMIT = 200_000;

/**
 * The live listeners of a store. A listener that throws is dropped from that one delivery only
 * (reported through `onError`), never stops the others or the append.
 */
export class Feed {
  private readonly listeners = new Set<HistoryListener>();
  private readonly onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void = () => {}) {
    this.onError = onError;
  }

  subscribe(listener: HistoryListener): () => void {
    // each subscription is its own entry, even for the same function twice
    const entry: HistoryListener = (r) => listener(r);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  get size(): number {
    return this.listeners.size;
  }

  publish(record: VerdictRecord): void {
    for (const l of [...this.listeners]) {
      try {
        l(record);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  clear(): void {
    this.listeners.clear();
  }
}

function checkLimit(limit: number, what: string): number {
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`${what}: limit must be a whole number >= 0, not ${limit}`);
  return limit;
}

class ClosedError extends Error {
  override name = 'HistoryClosedError';
  constructor(name: string) {
    super(`history store ${name} is closed`);
  }
}

export interface MemoryHistoryOptions {
  /** records kept; the oldest go first (default 10,000) */
  capacity?: number;
  onListenerError?: (err: unknown) => void;
}

/** A ring buffer of the last `capacity` records: for tests and for checkid without a database. */
export class MemoryHistoryStore implements HistoryStore {
  readonly name = 'memory';
  readonly capacity: number;
  private readonly ring: Array<VerdictRecord | undefined>;
  /** index of the oldest record */
  private head = 0;
  private size = 0;
  private closed = false;
  private readonly feed: Feed;

  constructor(options: MemoryHistoryOptions = {}) {
    this.capacity = options.capacity ?? 10_000;
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new RangeError(`capacity must be a whole number >= 1, not ${this.capacity}`);
    this.ring = new Array(this.capacity);
    this.feed = new Feed(options.onListenerError);
  }

  private check(): void {
    if (this.closed) throw new ClosedError(this.name);
  }

  /** every record, oldest first by time (stable: append order among equal times) */
  private all(): VerdictRecord[] {
    const out: VerdictRecord[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.ring[(this.head + i) % this.capacity]!);
    // appends normally come in time order: sort only when they did not
    for (let i = 1; i < out.length; i++) {
      if (out[i]!.time < out[i - 1]!.time) return out.map((r, n) => ({ r, n })).sort((a, b) => a.r.time - b.r.time || a.n - b.n).map((x) => x.r);
    }
    return out;
  }

  async append(records: readonly VerdictRecord[]): Promise<void> {
    this.check();
    for (const r of records) {
      const copy = structuredClone(r);
      if (this.size < this.capacity) {
        this.ring[(this.head + this.size) % this.capacity] = copy;
        this.size++;
      } else {
        this.ring[this.head] = copy;
        this.head = (this.head + 1) % this.capacity;
      }
    }
    for (const r of records) this.feed.publish(structuredClone(r));
  }

  async recent(limit: number): Promise<VerdictRecord[]> {
    this.check();
    checkLimit(limit, 'recent');
    if (limit === 0) return [];
    return structuredClone(this.all().slice(-limit));
  }

  async range(from: number, to: number, limit = DEFAULT_RANGE_LIMIT): Promise<VerdictRecord[]> {
    this.check();
    checkLimit(limit, 'range');
    const out: VerdictRecord[] = [];
    for (const r of this.all()) {
      if (out.length >= limit) break;
      if (r.time >= from && r.time < to) out.push(r);
    }
    return structuredClone(out);
  }

  async prune(before: number): Promise<number> {
    this.check();
    const keep = this.all().filter((r) => r.time >= before);
    const removed = this.size - keep.length;
    this.ring.fill(undefined);
    keep.forEach((r, i) => {
      this.ring[i] = r;
    });
    this.head = 0;
    this.size = keep.length;
    return removed;
  }

  async count(): Promise<number> {
    this.check();
    return this.size;
  }

  subscribe(listener: HistoryListener): () => void {
    return this.feed.subscribe(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.feed.clear();
    this.ring.fill(undefined);
    this.size = 0;
  }
}

export interface SqliteHistoryOptions {
  /** the database file (made, with its directory, when missing); ':memory:' for a private one */
  path: string;
  /** records older than this many days are removed (at open, then hourly); 0 keeps everything */
  retentionDays?: number;
  /** rows read per step of a long read; the event loop runs between steps (default 2,000) */
  pageSize?: number;
  now?: () => number;
  onListenerError?: (err: unknown) => void;
  /** a stored row that is not a record (a damaged or foreign row): skipped and reported here */
  onBadRow?: (seq: number, error: string) => void;
}

const SCHEMA_VERSION = 1;
const DAY_MS = 86_400_000;

/**
 * Records in a SQLite file (node:sqlite): one row per record, the record as JSON, indexed by
 * time. WAL journal, so the dashboard's reads never wait for the writer. Writes are one
 * transaction per append batch. Long reads go page by page, yielding to the event loop between
 * pages, so a what-if over a big history does not stall the MTA-facing listeners.
 */
export class SqliteHistoryStore implements HistoryStore {
  readonly name: string;
  private readonly db: DatabaseSync;
  private readonly options: SqliteHistoryOptions;
  private readonly feed: Feed;
  private readonly pageSize: number;
  private readonly insert: StatementSync;
  private readonly timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: SqliteHistoryOptions) {
    this.options = options;
    this.name = `sqlite:${options.path}`;
    this.pageSize = options.pageSize ?? 2_000;
    this.feed = new Feed(options.onListenerError);
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    try {
      this.db = new DatabaseSync(options.path, { timeout: 5_000 });
    } catch (err) {
      throw new Error(`${options.path}: ${(err as Error).message}`);
    }
    try {
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS history_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS verdicts (
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          time INTEGER NOT NULL,
          record TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS verdicts_time ON verdicts (time, seq);
      `);
      const row = this.db.prepare('SELECT value FROM history_meta WHERE key = ?').get('schema') as { value: string } | undefined;
      if (!row) this.db.prepare('INSERT INTO history_meta (key, value) VALUES (?, ?)').run('schema', String(SCHEMA_VERSION));
      else if (Number(row.value) !== SCHEMA_VERSION) {
        throw new Error(`${options.path}: history schema version ${row.value}, this checkid knows ${SCHEMA_VERSION}`);
      }
      this.insert = this.db.prepare('INSERT INTO verdicts (time, record) VALUES (?, ?)');
    } catch (err) {
      this.db.close();
      const message = (err as Error).message;
      throw new Error(message.startsWith(options.path) ? message : `${options.path}: ${message}`);
    }
    const days = options.retentionDays ?? 0;
    if (days > 0) {
      this.pruneOld();
      this.timer = setInterval(() => this.pruneOld(), 3_600_000);
      this.timer.unref();
    }
  }

  private pruneOld(): void {
    if (this.closed) return;
    const days = this.options.retentionDays ?? 0;
    this.db.prepare('DELETE FROM verdicts WHERE time < ?').run((this.options.now ?? Date.now)() - days * DAY_MS);
  }

  private check(): void {
    if (this.closed) throw new ClosedError(this.name);
  }

  private rows(rows: unknown[]): VerdictRecord[] {
    const out: VerdictRecord[] = [];
    for (const row of rows as Array<{ seq: number; record: string }>) {
      try {
        out.push(parseRecord(row.record));
      } catch (err) {
        if (!(err instanceof RecordError)) throw err;
        this.options.onBadRow?.(row.seq, err.message);
      }
    }
    return out;
  }

  async append(records: readonly VerdictRecord[]): Promise<void> {
    this.check();
    if (records.length === 0) return;
    const texts = records.map((r) => JSON.stringify(r));
    this.db.exec('BEGIN');
    try {
      records.forEach((r, i) => {
        this.insert.run(Math.trunc(r.time), texts[i]!);
      });
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
    for (const t of texts) this.feed.publish(JSON.parse(t) as VerdictRecord);
  }

  async recent(limit: number): Promise<VerdictRecord[]> {
    this.check();
    checkLimit(limit, 'recent');
    // newest first, page by page (keyset on time, seq), then turned around
    const first = this.db.prepare('SELECT seq, time, record FROM verdicts ORDER BY time DESC, seq DESC LIMIT ?');
    const next = this.db.prepare('SELECT seq, time, record FROM verdicts WHERE (time, seq) < (?, ?) ORDER BY time DESC, seq DESC LIMIT ?');
    const pages: VerdictRecord[][] = [];
    let got = 0;
    let last: { seq: number; time: number } | null = null;
    while (got < limit) {
      const want = Math.min(this.pageSize, limit - got);
      const rows = (last ? next.all(last.time, last.seq, want) : first.all(want)) as Array<{ seq: number; time: number; record: string }>;
      got += rows.length;
      pages.push(this.rows(rows.reverse()));
      if (rows.length < want) break;
      const end = rows[0]!;
      last = { seq: end.seq, time: end.time };
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.check();
    }
    return pages.reverse().flat();
  }

  async range(from: number, to: number, limit = DEFAULT_RANGE_LIMIT): Promise<VerdictRecord[]> {
    this.check();
    checkLimit(limit, 'range');
    const out: VerdictRecord[] = [];
    // keyset pagination on (time, seq): each page starts after the last row of the one before
    const first = this.db.prepare('SELECT seq, time, record FROM verdicts WHERE time >= ? AND time < ? ORDER BY time, seq LIMIT ?');
    const next = this.db.prepare(
      'SELECT seq, time, record FROM verdicts WHERE (time, seq) > (?, ?) AND time < ? ORDER BY time, seq LIMIT ?',
    );
    let last: { seq: number; time: number } | null = null;
    const lo = Math.ceil(from);
    const hi = Math.ceil(to);
    while (out.length < limit) {
      const want = Math.min(this.pageSize, limit - out.length);
      const rows = (last ? next.all(last.time, last.seq, hi, want) : first.all(lo, hi, want)) as Array<{ seq: number; time: number; record: string }>;
      out.push(...this.rows(rows));
      if (rows.length < want) break;
      const end = rows[rows.length - 1]!;
      last = { seq: end.seq, time: end.time };
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.check();
    }
    return out;
  }

  async prune(before: number): Promise<number> {
    this.check();
    const r = this.db.prepare('DELETE FROM verdicts WHERE time < ?').run(Math.ceil(before));
    return Number(r.changes);
  }

  async count(): Promise<number> {
    this.check();
    return Number((this.db.prepare('SELECT count(*) AS n FROM verdicts').get() as { n: number }).n);
  }

  subscribe(listener: HistoryListener): () => void {
    return this.feed.subscribe(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.feed.clear();
    this.db.close();
  }
}
