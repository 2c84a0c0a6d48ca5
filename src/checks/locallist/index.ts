/**
 * Local allow and block lists: IP addresses, CIDR blocks (IPv4 and IPv6) and domains.
 *
 * Entries are strings, as the configuration gives them (loading files is the caller's job; blank
 * lines and "#" comments are ignored):
 *
 *   192.0.2.1            one address          2001:db8::/32     an IPv6 block
 *   198.51.100.0/24      an IPv4 block        example.com       that domain only
 *   .example.com         every subdomain of example.com (not example.com itself, as in Postfix)
 *   *.example.com        the same as .example.com
 *
 * The most specific entry wins: the longest matching prefix for an address, and for a domain the
 * exact entry before the nearest parent's ".domain" entry. So an allowed /32 inside a blocked /16
 * is allowed, and a blocked host under an allowed ".example.com" is blocked. The same entry in
 * both lists, a CIDR with host bits set, or anything unparsable throws a LocalListError at
 * construction (this is configuration validation). Lookups do no DNS and cost at most one map
 * probe per distinct prefix length (addresses) or per label (domains).
 */
import { domainOfAddress, normalizeDomain } from '../../common/domain.ts';
import { type Cidr, type IpAddress, parseCidr, parseIp } from '../../common/ip.ts';

export type ListName = 'allow' | 'block';

export interface LocalListConfig {
  allow?: readonly string[];
  block?: readonly string[];
}

export interface LocalListMatch {
  list: ListName;
  /** the entry as written in the configuration */
  entry: string;
}

export interface LocalListDomainMatch extends LocalListMatch {
  /** the input key the domain came from, e.g. "helo", "mailfrom", "id" */
  identity: string;
  /** the normalised domain that matched */
  domain: string;
}

export interface LocalListResult {
  ip: ListName | 'none';
  /** the entry that matched the IP */
  ipEntry?: string;
  /** one element per identity whose domain matched an entry */
  domains: LocalListDomainMatch[];
}

export interface LocalListInput {
  ip?: string;
  /** identity domains keyed by identity; a value with "@" is an address and its domain is used */
  domains?: Readonly<Record<string, string | undefined>>;
}

export class LocalListError extends Error {
  readonly list: ListName;
  readonly entry: string;
  constructor(list: ListName, entry: string, detail: string) {
    super(`local ${list} list entry "${entry}": ${detail}`);
    this.name = 'LocalListError';
    this.list = list;
    this.entry = entry;
  }
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The first `prefix` bits of the address as a binary string, usable as a map key. */
function prefixKey(bytes: Uint8Array, prefix: number): string {
  let key = '';
  const full = prefix >> 3;
  for (let i = 0; i < full; i++) key += String.fromCharCode(bytes[i]!);
  const rest = prefix & 7;
  if (rest) key += String.fromCharCode(bytes[full]! & ((0xff << (8 - rest)) & 0xff));
  return key;
}

function hasHostBits(cidr: Cidr): boolean {
  const { bytes } = cidr.network;
  for (let bit = cidr.prefix; bit < bytes.length * 8; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) return true;
  }
  return false;
}

/** Longest-prefix match table for one address family. */
class PrefixTable {
  private readonly byLength = new Map<number, Map<string, LocalListMatch>>();
  private lengths: number[] = [];

  /** Returns the existing match when the same network is already present. */
  add(cidr: Cidr, match: LocalListMatch): LocalListMatch | undefined {
    let table = this.byLength.get(cidr.prefix);
    if (!table) {
      table = new Map();
      this.byLength.set(cidr.prefix, table);
      this.lengths = [...this.byLength.keys()].sort((a, b) => b - a);
    }
    const key = prefixKey(cidr.network.bytes, cidr.prefix);
    const existing = table.get(key);
    if (existing) return existing;
    table.set(key, match);
    return undefined;
  }

  lookup(ip: IpAddress): LocalListMatch | undefined {
    for (const length of this.lengths) {
      const hit = this.byLength.get(length)!.get(prefixKey(ip.bytes, length));
      if (hit) return hit;
    }
    return undefined;
  }

  get size(): number {
    let n = 0;
    for (const t of this.byLength.values()) n += t.size;
    return n;
  }
}

export class LocalLists {
  private readonly v4 = new PrefixTable();
  private readonly v6 = new PrefixTable();
  /** "example.com" entries */
  private readonly exact = new Map<string, LocalListMatch>();
  /** ".example.com" entries, keyed without the dot */
  private readonly subdomains = new Map<string, LocalListMatch>();

  constructor(config: LocalListConfig) {
    for (const list of ['allow', 'block'] as const) {
      for (const raw of config[list] ?? []) this.add(list, raw);
    }
  }

  private add(list: ListName, raw: string): void {
    if (typeof raw !== 'string') throw new LocalListError(list, String(raw), 'not a string');
    const hash = raw.indexOf('#');
    const entry = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (entry === '') return;
    const match: LocalListMatch = { list, entry };
    const conflict = (existing: LocalListMatch | undefined) => {
      if (existing && existing.list !== list) {
        throw new LocalListError(list, entry, `also on the ${existing.list} list (as "${existing.entry}")`);
      }
    };

    if (entry.includes('/') || parseIp(entry)) {
      const cidr = parseCidr(entry);
      if (!cidr) throw new LocalListError(list, entry, 'not a valid IP address or CIDR block');
      if (hasHostBits(cidr)) throw new LocalListError(list, entry, 'the address has bits set beyond the prefix length');
      conflict((cidr.network.family === 4 ? this.v4 : this.v6).add(cidr, match));
      return;
    }

    let name = entry.toLowerCase();
    let sub = false;
    if (name.startsWith('*.')) name = name.slice(1);
    if (name.startsWith('.')) {
      sub = true;
      name = name.slice(1);
    }
    name = normalizeDomain(name);
    const labels = name.split('.');
    const valid =
      name.length > 0 &&
      name.length <= 253 &&
      labels.every((l) => LABEL.test(l)) &&
      !/^\d+$/.test(labels[labels.length - 1]!) &&
      (sub || labels.length >= 2);
    if (!valid) {
      throw new LocalListError(list, entry, 'not an IP address, CIDR block, domain or .domain');
    }
    const map = sub ? this.subdomains : this.exact;
    const existing = map.get(name);
    conflict(existing);
    if (!existing) map.set(name, match);
  }

  /** Number of distinct entries, by kind. */
  get size(): { ips: number; domains: number } {
    return { ips: this.v4.size + this.v6.size, domains: this.exact.size + this.subdomains.size };
  }

  /** The most specific entry covering the address, or null (also for unparsable input). */
  matchIp(address: string): LocalListMatch | null {
    const ip = parseIp(address.trim());
    if (!ip) return null;
    return (ip.family === 4 ? this.v4 : this.v6).lookup(ip) ?? null;
  }

  /** The most specific entry covering the domain, or null. Address literals never match. */
  matchDomain(domain: string): LocalListMatch | null {
    const name = normalizeDomain(domain.trim());
    if (name === '' || name.startsWith('[')) return null;
    const exact = this.exact.get(name);
    if (exact) return exact;
    for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
      const hit = this.subdomains.get(name.slice(dot + 1));
      if (hit) return hit;
    }
    return null;
  }

  check(input: LocalListInput): LocalListResult {
    const result: LocalListResult = { ip: 'none', domains: [] };
    if (input.ip !== undefined) {
      const hit = this.matchIp(input.ip);
      if (hit) {
        result.ip = hit.list;
        result.ipEntry = hit.entry;
      }
    }
    for (const [identity, raw] of Object.entries(input.domains ?? {})) {
      if (!raw) continue;
      const domain = raw.includes('@') ? domainOfAddress(raw) : normalizeDomain(raw.trim());
      const hit = domain ? this.matchDomain(domain) : null;
      if (hit) result.domains.push({ identity, domain, list: hit.list, entry: hit.entry });
    }
    return result;
  }
}

/** Checks the IP and identity domains against the lists. Synchronous; no DNS. */
export function checkLocalLists(input: LocalListInput, lists: LocalLists): LocalListResult {
  return lists.check(input);
}
