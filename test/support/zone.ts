/**
 * Zone fixtures in the RFC 7208 suite's `zonedata` form, answered with the conventions of the
 * suite's reference runner (pyspf test/testspf.py), so the same data drives the in-memory
 * resolver of unit tests and the real UDP/TCP test DNS server.
 *
 *   name: [ {A: 192.0.2.1}, {TXT: "v=spf1 -all"}, {TXT: ["part1", "part2"]}, {MX: [10, mx.host]},
 *           {SPF: "..."}, {PTR: name}, {CNAME: name}, {SRV: [1, 2, 0, target]}, TIMEOUT, SERVFAIL ]
 *
 * - a name absent from the zone is NXDOMAIN, except names starting with "error.", which time out;
 * - a name present without the asked type is NODATA;
 * - a bare TIMEOUT (or SERVFAIL) entry fails the query, unless a record of the asked type is
 *   listed before it; a record whose value is TIMEOUT makes that type time out;
 * - an SPF record is also served as TXT unless the name lists a TXT of its own (TXT: NONE lists
 *   none but still stops that);
 * - a CNAME is followed one level.
 */
import type { DnsResult, QueryOptions, RecordMap, RecordType, Resolver } from '../../src/dns/types.ts';

export type ZoneEntry = string | Record<string, unknown>;
export type ZoneData = Record<string, ZoneEntry[] | null | undefined>;

export const FIXTURE_TTL = 300;

function norm(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

function asStrings(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  return [String(value)];
}

export class Zone {
  private readonly names = new Map<string, ZoneEntry[]>();

  constructor(data: ZoneData) {
    for (const [name, entries] of Object.entries(data ?? {})) this.names.set(norm(name), entries ?? []);
  }

  /** Names (normalised) the zone holds; used by the DNS server to answer ANY-less queries. */
  has(name: string): boolean {
    return this.names.has(norm(name));
  }

  answer<T extends RecordType>(qname: string, type: T, depth = 0): DnsResult<T> {
    const name = norm(qname);
    const entries = this.names.get(name);
    if (!entries) {
      if (name.startsWith('error.')) return { status: 'timeout', message: `fixture: ${name} times out` };
      return { status: 'nxdomain', ttl: FIXTURE_TTL };
    }
    const records: RecordMap[T][] = [];
    let ownTxt = false;
    const spfAsTxt: string[][] = [];
    for (const entry of entries) {
      if (typeof entry === 'string') {
        if (records.length > 0) break;
        if (entry === 'TIMEOUT') return { status: 'timeout', message: `fixture: ${name} times out` };
        if (entry === 'SERVFAIL') return { status: 'servfail', message: `fixture: ${name} SERVFAIL` };
        continue;
      }
      for (const [rawType, value] of Object.entries(entry)) {
        const rtype = rawType.toUpperCase();
        if (rtype === 'TXT') ownTxt = true;
        if (rtype === 'SPF' && type === 'TXT') {
          if (Array.isArray(value) && value.length === 0) continue;
          spfAsTxt.push(asStrings(value));
          continue;
        }
        if (rtype === 'CNAME' && type !== 'CNAME' && depth === 0) {
          return this.answer(String(value), type, depth + 1);
        }
        if (rtype !== type) continue;
        if (value === 'TIMEOUT') return { status: 'timeout', message: `fixture: ${name}/${type} times out` };
        if (rtype === 'TXT' && value === 'NONE') continue;
        records.push(decode(type, value) as RecordMap[T]);
      }
    }
    if (type === 'TXT' && !ownTxt) for (const s of spfAsTxt) records.push(s as RecordMap[T]);
    if (records.length === 0) return { status: 'nodata', ttl: FIXTURE_TTL };
    return { status: 'ok', records, ttl: FIXTURE_TTL, authenticated: false };
  }
}

function decode(type: RecordType, value: unknown): RecordMap[RecordType] {
  switch (type) {
    case 'TXT':
      return asStrings(value);
    case 'MX': {
      const [preference, exchange] = value as [number, string];
      return { preference: Number(preference), exchange: norm(String(exchange)) };
    }
    case 'SRV': {
      const [priority, weight, port, target] = value as [number, number, number, string];
      return { priority, weight, port, target: norm(String(target)) };
    }
    case 'PTR':
    case 'CNAME':
    case 'NS':
      return norm(String(value));
    default:
      return String(value);
  }
}

/** An in-process resolver over a Zone, counting queries; for unit tests only. */
export class MemoryResolver implements Resolver {
  readonly zone: Zone;
  queries = 0;
  readonly log: string[] = [];
  constructor(data: ZoneData | Zone) {
    this.zone = data instanceof Zone ? data : new Zone(data);
  }
  async query<T extends RecordType>(name: string, type: T, _options?: QueryOptions): Promise<DnsResult<T>> {
    this.queries++;
    this.log.push(`${norm(name)}/${type}`);
    return this.zone.answer(name, type);
  }
}
