/**
 * The checkID registry (2005–2007): a DNS zone with one TXT record per sender identity at
 * `<ID>.<zone>`, e.g. `svc=S1:A,M2:A,H1:B mth=SPF+5,DKIM+3 ip4=192.168.92.216-8 opt=df:3`.
 * See docs/checks/ratings.md for the grammar we accept.
 */
import { type Cidr, inCidr, parseCidr, parseIp } from '../../common/ip.ts';
import { isFqdn, normalizeDomain } from '../../common/domain.ts';
import type { Resolver } from '../../dns/types.ts';
import { isDnsFailure } from '../../dns/types.ts';
import type { ProviderOutcome, Rating, RatingProvider, RatingSubject } from './types.ts';

export interface RegistryRecord {
  ratings: Rating[];
  /** methods the identity's owner offers, with the DNS queries each needs: `mth=SPF+5` */
  methods: Array<{ method: string; queries: number | null }>;
  /** authorized address blocks (`ip4=`, `ip6=`), as CIDRs or first-last ranges */
  addresses: Array<Cidr | { first: string; last: string }>;
  /** `opt=` flags, e.g. { df: '3', stop: 'all' } */
  options: Record<string, string>;
  /** unknown keywords, kept for display */
  extra: Record<string, string>;
}

export class RegistryParseError extends Error {
  override name = 'RegistryParseError';
}

const GRADE = /^(?:[A-Za-z]|\d{1,3})$/;
const SERVICE = /^[A-Za-z][A-Za-z0-9]{0,15}$/;

/** Parses the text of a registry record (its character-strings already joined). */
export function parseRegistryRecord(text: string): RegistryRecord {
  const record: RegistryRecord = { ratings: [], methods: [], addresses: [], options: {}, extra: {} };
  const body = text.trim().replace(/&\s*$/, '');
  if (body.length === 0) throw new RegistryParseError('empty registry record');
  for (const word of body.split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new RegistryParseError(`registry record: "${word}" is not key=value`);
    const key = word.slice(0, eq).toLowerCase();
    const value = word.slice(eq + 1);
    const items = value.split(',').filter((x) => x.length > 0);
    switch (key) {
      case 'svc':
        for (const item of items) {
          // VX:<voucher domain> is a vouching claim; keep it as a rating whose grade is the voucher
          const colon = item.indexOf(':');
          if (colon <= 0) throw new RegistryParseError(`registry record: svc item "${item}" is not SERVICE:GRADE`);
          const service = item.slice(0, colon);
          const grade = item.slice(colon + 1);
          if (!SERVICE.test(service)) throw new RegistryParseError(`registry record: bad service code "${service}"`);
          if (service.toUpperCase() !== 'VX' && !GRADE.test(grade)) {
            throw new RegistryParseError(`registry record: bad grade "${grade}" for service ${service}`);
          }
          record.ratings.push({ service, grade });
        }
        break;
      case 'mth':
        for (const item of items) {
          const m = /^([A-Za-z0-9]+)(?:\+(\d{1,2}))?$/.exec(item);
          if (!m) throw new RegistryParseError(`registry record: bad method "${item}"`);
          record.methods.push({ method: m[1]!.toUpperCase(), queries: m[2] ? Number(m[2]) : null });
        }
        break;
      case 'ip4':
      case 'ip6':
        for (const item of items) record.addresses.push(parseAddressBlock(item, key === 'ip4' ? 4 : 6));
        break;
      case 'opt':
        for (const item of items) {
          const colon = item.indexOf(':');
          if (colon < 0) record.options[item.toLowerCase()] = '';
          else record.options[item.slice(0, colon).toLowerCase()] = item.slice(colon + 1);
        }
        break;
      default:
        record.extra[key] = value;
    }
  }
  return record;
}

/** `192.0.2.0/24`, a bare address, or a range `192.168.92.216-8` (= .216 to .218). */
function parseAddressBlock(item: string, family: 4 | 6): Cidr | { first: string; last: string } {
  const dash = item.indexOf('-');
  if (family === 4 && dash > 0) {
    const first = item.slice(0, dash);
    const tail = item.slice(dash + 1);
    const lastDot = first.lastIndexOf('.');
    const octet = first.slice(lastDot + 1);
    if (!/^\d{1,3}$/.test(tail) || !parseIp(first)) throw new RegistryParseError(`registry record: bad range "${item}"`);
    const lastOctet = tail.length < octet.length ? octet.slice(0, octet.length - tail.length) + tail : tail;
    const last = `${first.slice(0, lastDot)}.${lastOctet}`;
    if (!parseIp(last) || Number(lastOctet) < Number(octet)) throw new RegistryParseError(`registry record: bad range "${item}"`);
    return { first, last };
  }
  const cidr = parseCidr(item);
  if (!cidr || cidr.network.family !== family) throw new RegistryParseError(`registry record: bad ip${family} "${item}"`);
  return cidr;
}

/** True when the record's ip4=/ip6= blocks authorize `ip` (the "QR1" quick check). */
export function registryAuthorizesIp(record: RegistryRecord, ip: string): boolean {
  const addr = parseIp(ip);
  if (!addr) return false;
  for (const block of record.addresses) {
    if ('network' in block) {
      if (inCidr(addr, block)) return true;
    } else if (addr.family === 4) {
      const n = ipv4Number(addr.bytes);
      const lo = ipv4Number(parseIp(block.first)!.bytes);
      const hi = ipv4Number(parseIp(block.last)!.bytes);
      if (n >= lo && n <= hi) return true;
    }
  }
  return false;
}

function ipv4Number(b: Uint8Array): number {
  return ((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!;
}

export interface RegistryOutcome extends ProviderOutcome {
  record?: RegistryRecord;
}

/** A rating provider over one registry zone. */
export class DnsRegistry implements RatingProvider {
  readonly name: string;
  private readonly zone: string;
  private readonly resolver: Resolver;

  constructor(zone: string, resolver: Resolver) {
    this.zone = normalizeDomain(zone);
    this.name = `registry:${this.zone}`;
    this.resolver = resolver;
  }

  async rate(subject: RatingSubject, options?: { signal?: AbortSignal }): Promise<RegistryOutcome> {
    const domain = normalizeDomain(subject.domain);
    const base = { provider: this.name, ratings: [] };
    if (!domain || !isFqdn(domain)) return { ...base, status: 'none', message: 'no identity to look up' };
    const name = `${domain}.${this.zone}`;
    const answer = await this.resolver.query(name, 'TXT', options);
    if (answer.status === 'nxdomain' || answer.status === 'nodata') {
      return { ...base, status: 'none', message: `no registry record at ${name}` };
    }
    if (isDnsFailure(answer.status) || answer.status !== 'ok') {
      const message = 'message' in answer ? answer.message : answer.status;
      return { ...base, status: 'temperror', message: `registry lookup ${name}: ${answer.status} (${message})` };
    }
    const texts = answer.records.map((strings) => strings.join(''));
    const relevant = texts.filter((t) => /^\s*(svc|mth|ip4|ip6|opt)=/i.test(t));
    if (relevant.length === 0) return { ...base, status: 'none', message: `no registry record at ${name}` };
    try {
      const record = parseRegistryRecord(relevant.join(' '));
      return { provider: this.name, status: 'found', ratings: record.ratings, record, message: `${name}: ${relevant.join(' ')}` };
    } catch (err) {
      return { ...base, status: 'permerror', message: (err as Error).message };
    }
  }
}
