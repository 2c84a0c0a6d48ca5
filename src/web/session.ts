/**
 * Server-side sessions. The browser holds only a random 256-bit id in an HttpOnly, SameSite=Strict
 * cookie (`__Host-` prefixed and Secure when served over TLS); the store holds the record under
 * SHA-256 of the id, so a copy of the store does not hand out live cookies. A session ends after
 * `idleMs` without a request, after `absoluteMs` in any case, and at sign-out. Signing in always
 * makes a new id (no fixation).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Clock, systemClock } from '../common/clock.ts';
import { appendSetCookie, parseCookies, serializeCookie } from './cookies.ts';

export interface SessionRecord {
  userId: string;
  /** the per-session CSRF token (random, 256 bits, base64url) */
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
}

type MaybePromise<T> = T | Promise<T>;

/** Where records live: keys are SHA-256 of the session id (hex). */
export interface SessionStore {
  get(key: string): MaybePromise<SessionRecord | undefined>;
  set(key: string, record: SessionRecord): MaybePromise<void>;
  delete(key: string): MaybePromise<void>;
  /** drops every session of a user (password change, account removal) */
  deleteUser(userId: string): MaybePromise<void>;
}

/** In-process store, bounded: beyond `maxEntries` the least recently used session goes. */
export class MemorySessionStore implements SessionStore {
  private readonly map = new Map<string, SessionRecord>();
  private readonly maxEntries: number;
  constructor(maxEntries = 100_000) {
    this.maxEntries = maxEntries;
  }
  get(key: string): SessionRecord | undefined {
    const r = this.map.get(key);
    if (r) {
      this.map.delete(key);
      this.map.set(key, r);
    }
    return r;
  }
  set(key: string, record: SessionRecord): void {
    this.map.delete(key);
    this.map.set(key, record);
    while (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value!);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  deleteUser(userId: string): void {
    for (const [k, r] of this.map) if (r.userId === userId) this.map.delete(k);
  }
  /** drops expired records (the manager also ignores them on read) */
  sweep(isLive: (r: SessionRecord) => boolean): void {
    for (const [k, r] of this.map) if (!isLive(r)) this.map.delete(k);
  }
  get size(): number {
    return this.map.size;
  }
}

export interface SessionOptions {
  store?: SessionStore;
  clock?: Clock;
  /** ends a session this long after its last request (default 30 min) */
  idleMs?: number;
  /** ends a session this long after sign-in whatever happens (default 12 h) */
  absoluteMs?: number;
  /** Secure cookie with the `__Host-` prefix: set when the site is served over HTTPS */
  secure?: boolean;
  /** cookie name without the prefix (default `checkid_session`) */
  cookieName?: string;
}

export interface Session extends SessionRecord {
  /** the id as in the cookie (keep it out of logs) */
  id: string;
}

const ID_RE = /^[A-Za-z0-9_-]{43}$/;

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

function storeKey(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

export class SessionManager {
  readonly store: SessionStore;
  readonly clock: Clock;
  readonly idleMs: number;
  readonly absoluteMs: number;
  readonly secure: boolean;
  readonly cookieName: string;

  constructor(opts: SessionOptions = {}) {
    this.store = opts.store ?? new MemorySessionStore();
    this.clock = opts.clock ?? systemClock;
    this.idleMs = opts.idleMs ?? 30 * 60_000;
    this.absoluteMs = opts.absoluteMs ?? 12 * 3_600_000;
    this.secure = opts.secure ?? false;
    this.cookieName = (this.secure ? '__Host-' : '') + (opts.cookieName ?? 'checkid_session');
  }

  /** false when idle or past the absolute limit */
  isLive(r: SessionRecord, now = this.clock.now()): boolean {
    return now - r.lastSeenAt < this.idleMs && now - r.createdAt < this.absoluteMs;
  }

  /** Starts a session for `userId` and sets its cookie on `res`. */
  async create(res: ServerResponse, userId: string): Promise<Session> {
    const id = randomToken(32);
    const now = this.clock.now();
    const record: SessionRecord = { userId, csrf: randomToken(32), createdAt: now, lastSeenAt: now };
    await this.store.set(storeKey(id), record);
    appendSetCookie(
      res,
      serializeCookie(this.cookieName, id, {
        secure: this.secure,
        maxAge: Math.ceil(this.absoluteMs / 1000),
      }),
    );
    return { id, ...record };
  }

  /** The request's live session, touched (idle timer restarted), or null. */
  async load(req: IncomingMessage): Promise<Session | null> {
    const id = parseCookies(req).get(this.cookieName);
    if (!id || !ID_RE.test(id)) return null;
    const key = storeKey(id);
    const record = await this.store.get(key);
    if (!record) return null;
    const now = this.clock.now();
    if (!this.isLive(record, now)) {
      await this.store.delete(key);
      return null;
    }
    const touched = { ...record, lastSeenAt: now };
    await this.store.set(key, touched);
    return { id, ...touched };
  }

  /** Ends `session` (if any) and clears the cookie. */
  async destroy(res: ServerResponse, session: Session | null): Promise<void> {
    if (session) await this.store.delete(storeKey(session.id));
    this.clearCookie(res);
  }

  /** Ends `old` (if any) and starts a new session: use at every sign-in. */
  async rotate(res: ServerResponse, old: Session | null, userId: string): Promise<Session> {
    if (old) await this.store.delete(storeKey(old.id));
    return this.create(res, userId);
  }

  /** Ends every session of `userId` (after a password change, say). */
  async destroyUser(userId: string): Promise<void> {
    await this.store.deleteUser(userId);
  }

  clearCookie(res: ServerResponse): void {
    appendSetCookie(res, serializeCookie(this.cookieName, '', { secure: this.secure, maxAge: 0 }));
  }
}
