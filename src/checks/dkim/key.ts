/**
 * DKIM key records (RFC 6376 §3.6.1, RFC 8463 §4) and their retrieval (§3.6.2): the TXT record at
 * <selector>._domainkey.<domain>, parsed once into a KeyObject and cached with the DNS TTL.
 * Shared with ARC, which fetches its keys the same way (RFC 8617 §4.1.3, §5.2).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { type Clock, systemClock } from '../../common/clock.ts';
import type { Resolver } from '../../dns/types.ts';
import type { HashAlgorithm, KeyType } from './signature.ts';
import { decodeBase64, parseTagList, splitColonList } from './tags.ts';

export interface DkimKey {
  keyType: KeyType;
  publicKey: KeyObject;
  /** RSA modulus length; 256 for Ed25519 */
  bits: number;
  /** h=: acceptable hash algorithms, lower case; null when absent (any) */
  hashes: string[] | null;
  /** t=y: the domain is testing DKIM (§3.6.1) */
  testing: boolean;
  /** t=s: the i= domain must equal d= exactly */
  strict: boolean;
  /** the record text as found in DNS (character-strings joined) */
  record: string;
}

export type KeyParse = { ok: true; key: DkimKey } | { ok: false; reason: string; revoked?: boolean };

/** RSA keys are SubjectPublicKeyInfo in practice; RFC 6376 §3.6.1 names RSAPublicKey. Both are read. */
function rsaKey(der: Buffer): KeyObject | null {
  for (const type of ['spki', 'pkcs1'] as const) {
    try {
      const k = createPublicKey({ key: der, format: 'der', type });
      if (k.asymmetricKeyType === 'rsa') return k;
      return null;
    } catch {
      // try the next form
    }
  }
  return null;
}

/** RFC 8463 §4: p= is the raw 32-octet Ed25519 public key, not a SubjectPublicKeyInfo. */
function ed25519Key(raw: Buffer): KeyObject | null {
  if (raw.length !== 32) return null;
  try {
    return createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
      format: 'jwk',
    });
  } catch {
    return null;
  }
}

/**
 * A key record parsed. Rejected (each with its reason): a tag-list syntax error, v= other than
 * DKIM1, a missing p=, an empty p= (revoked), an unknown k=, s= that allows neither email nor *,
 * and key data that is not a key of the declared type. h= and t=s are returned for the verifier.
 */
export function parseKeyRecord(record: string): KeyParse {
  const list = parseTagList(record);
  if (!list.ok) return { ok: false, reason: `key record syntax error: ${list.error}` };
  const get = (name: string) => list.tags.get(name)?.value;
  const v = get('v');
  if (v !== undefined && v !== 'DKIM1')
    return { ok: false, reason: `key record has unsupported version v=${v}` };
  const p = get('p');
  if (p === undefined) return { ok: false, reason: 'key record has no p= tag' };
  const k = (get('k') ?? 'rsa').toLowerCase();
  if (k !== 'rsa' && k !== 'ed25519')
    return { ok: false, reason: `key record has unknown key type k=${get('k')}` };
  const s = get('s');
  if (s !== undefined) {
    const services = splitColonList(s).map((x) => x.toLowerCase());
    if (!services.includes('*') && !services.includes('email')) {
      return { ok: false, reason: `key record is not for email (s=${s})` };
    }
  }
  const data = decodeBase64(p);
  if (data === null) return { ok: false, reason: 'key data p= is not base64' };
  if (data.length === 0) return { ok: false, reason: 'key revoked (empty p=)', revoked: true };
  const publicKey = k === 'rsa' ? rsaKey(data) : ed25519Key(data);
  if (!publicKey) {
    return {
      ok: false,
      reason:
        k === 'rsa'
          ? 'key data p= is not an RSA public key'
          : `key data p= is not a raw Ed25519 key (${data.length} octets, not 32)`,
    };
  }
  const h = get('h');
  const flags = splitColonList(get('t') ?? '').map((x) => x.toLowerCase());
  return {
    ok: true,
    key: {
      keyType: k,
      publicKey,
      bits: k === 'rsa' ? (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) : 256,
      hashes: h === undefined ? null : splitColonList(h).map((x) => x.toLowerCase()),
      testing: flags.includes('y'),
      strict: flags.includes('s'),
      record,
    },
  };
}

/** Whether a key accepts a hash algorithm (key h=, §3.6.1). */
export function keyAllowsHash(key: DkimKey, hash: HashAlgorithm): boolean {
  return key.hashes === null || key.hashes.includes(hash);
}

export type KeyLookup =
  | { status: 'ok'; key: DkimKey }
  | { status: 'permerror' | 'temperror'; reason: string; revoked?: boolean };

/** The DNS name of a key (§3.6.2.1). */
export function keyName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`.toLowerCase();
}

/**
 * Picks the key record among the TXT records of the key name. RFC 6376 §3.6.2.2 leaves several
 * records undefined; we take the first that parses as a key, else report the first one's problem.
 */
export function selectKeyRecord(records: string[][]): KeyParse {
  if (records.length === 0) return { ok: false, reason: 'no key record' };
  let first: KeyParse | null = null;
  for (const strings of records) {
    const parsed = parseKeyRecord(strings.join(''));
    if (parsed.ok) return parsed;
    first ??= parsed;
  }
  return first!;
}

export interface KeyCacheOptions {
  clock?: Clock;
  /** entries kept at most (least recently used go first); default 1000 */
  maxEntries?: number;
  /** a TTL above this many seconds is cut to it; default 3600 */
  maxTtl?: number;
}

interface CacheEntry {
  expires: number;
  value: KeyLookup;
}

/**
 * Parsed keys by DNS name, for as long as the DNS answer's TTL allows (positive and negative
 * answers; DNS failures are not cached). Concurrent look-ups of one name share one query.
 */
export class DkimKeyCache {
  private readonly clock: Clock;
  private readonly maxEntries: number;
  private readonly maxTtl: number;
  private readonly entries = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<KeyLookup>>();
  /** counters, for tests and metrics */
  hits = 0;
  misses = 0;

  constructor(options: KeyCacheOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.maxEntries = Math.max(1, options.maxEntries ?? 1000);
    this.maxTtl = options.maxTtl ?? 3600;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }

  /** The key for selector/domain: from the cache while fresh, else from DNS. Never rejects. */
  lookup(resolver: Resolver, selector: string, domain: string, signal?: AbortSignal): Promise<KeyLookup> {
    const name = keyName(selector, domain);
    const now = this.clock.now();
    const hit = this.entries.get(name);
    if (hit) {
      if (hit.expires > now) {
        this.hits++;
        // refresh its place in the LRU order
        this.entries.delete(name);
        this.entries.set(name, hit);
        return Promise.resolve(hit.value);
      }
      this.entries.delete(name);
    }
    const pending = this.inflight.get(name);
    if (pending) {
      this.hits++;
      return pending;
    }
    this.misses++;
    const p = this.fetch(resolver, name, signal).finally(() => this.inflight.delete(name));
    this.inflight.set(name, p);
    return p;
  }

  private async fetch(resolver: Resolver, name: string, signal?: AbortSignal): Promise<KeyLookup> {
    if (name.length > 253 || name.split('.').some((l) => l.length === 0 || l.length > 63)) {
      return { status: 'permerror', reason: `key name ${name} is not a valid DNS name` };
    }
    let answer: Awaited<ReturnType<Resolver['query']>>;
    try {
      answer = await resolver.query(name, 'TXT', signal ? { signal } : undefined);
    } catch (e) {
      return {
        status: 'temperror',
        reason: `key unavailable: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
    let value: KeyLookup;
    let ttl: number;
    if (answer.status === 'ok') {
      const parsed = selectKeyRecord(answer.records as string[][]);
      value = parsed.ok
        ? { status: 'ok', key: parsed.key }
        : { status: 'permerror', reason: parsed.reason, ...(parsed.revoked ? { revoked: true } : {}) };
      ttl = answer.ttl;
    } else if (answer.status === 'nxdomain' || answer.status === 'nodata') {
      value = {
        status: 'permerror',
        reason: `no key for signature (${name}: ${answer.status.toUpperCase()})`,
      };
      ttl = answer.ttl;
    } else {
      return { status: 'temperror', reason: `key unavailable (${name}: ${answer.status})` };
    }
    const seconds = Math.min(Math.max(0, ttl), this.maxTtl);
    if (seconds > 0) {
      this.entries.set(name, { expires: this.clock.now() + seconds * 1000, value });
      while (this.entries.size > this.maxEntries) {
        const oldest = this.entries.keys().next().value as string;
        this.entries.delete(oldest);
      }
    }
    return value;
  }
}

const defaultCaches = new WeakMap<Resolver, WeakMap<Clock, DkimKeyCache>>();

/** One cache per resolver and clock, for callers that bring none. */
export function defaultKeyCache(resolver: Resolver, clock: Clock = systemClock): DkimKeyCache {
  let byClock = defaultCaches.get(resolver);
  if (!byClock) {
    byClock = new WeakMap();
    defaultCaches.set(resolver, byClock);
  }
  let cache = byClock.get(clock);
  if (!cache) {
    cache = new DkimKeyCache({ clock });
    byClock.set(clock, cache);
  }
  return cache;
}
