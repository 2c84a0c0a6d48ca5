/**
 * DNSBL / DNSWL pre-screen in the style of Postfix postscreen (RFC 5782 lookups, weighted score).
 *
 * Every configured zone is queried in parallel; an A answer whose codes match the zone's filter
 * counts the zone's weight once. The sum is returned as `score`: comparing it with a threshold is
 * the policy's job, not this check's. Negative weights make a zone an allow list (DNSWL).
 */
import type { Clock } from '../../common/clock.ts';
import { domainOfAddress, isFqdn, normalizeDomain } from '../../common/domain.ts';
import { formatIp, parseIp, reverseLabels } from '../../common/ip.ts';
import type { DnsResult, Resolver } from '../../dns/types.ts';
import { classifyAnswer } from './answer.ts';
import { type AddressFilter, compileFilter } from './filter.ts';

export interface DnsblZoneConfig {
  /** the list's DNS zone, e.g. "zen.spamhaus.org" */
  zone: string;
  /** postscreen-style reply filter, e.g. "127.0.0.[2..11]"; default: any code in 127/8 */
  filter?: string;
  /** added to the score once when listed; default 1; negative = allow list (DNSWL) */
  weight?: number;
  /** 'ip' (default): reversed address; 'domain': RHSBL/DBL lookup of the identity domains */
  type?: 'ip' | 'domain';
  /** fetch the TXT record of a listing for the reason text; default false */
  txt?: boolean;
  /** extra codes of this list that mean "error", e.g. DNSWL's "127.0.0.255" */
  errorFilter?: string;
  /**
   * RFC 5782 §5 self-test by DnsblMonitor: true (default) tests 127.0.0.2/127.0.0.1 for ip zones
   * and test/invalid for domain zones; 'ipv6' tests ::ffff:7f00:2/::ffff:7f00:1; false: never.
   */
  selfTest?: boolean | 'ipv6';
}

export type DnsblStatus = 'listed' | 'not-listed' | 'error' | 'disabled';

export interface DnsblZoneResult {
  zone: string;
  type: 'ip' | 'domain';
  /** the filter of this entry, when one is configured */
  filter?: string;
  weight: number;
  /** what was looked up: the IP address (canonical text) or the domain */
  subject: string;
  /** domain lists: the identities (input keys) that carried this domain */
  identities?: string[];
  /** the DNS name queried; absent when no query was made */
  query?: string;
  status: DnsblStatus;
  /** the A records of the answer (also for not-listed when the filter did not match) */
  codes: string[];
  /** TXT of a listing, when `txt` is enabled for the zone */
  text?: string;
  /** why the status is 'error' or 'disabled' */
  error?: string;
}

export interface DnsblResult {
  /** sum of the weights of the listed entries (each entry counts once) */
  score: number;
  /** zones with weight >= 0 that list the subject */
  listed: string[];
  /** zones with weight < 0 that list the subject */
  allowListed: string[];
  /** zones whose lookup failed or answered with an error code */
  errors: string[];
  /** zones skipped because their self-test failed */
  disabled: string[];
  results: DnsblZoneResult[];
}

export interface DnsblInput {
  /** the client IP, for 'ip' zones */
  ip?: string;
  /**
   * Identity domains for 'domain' zones, keyed by identity, e.g. { helo, mailfrom, id }. A value
   * containing "@" is taken as an address and its domain is used. Address literals and names that
   * are not valid host names are not looked up.
   */
  domains?: Readonly<Record<string, string | undefined>>;
}

/** What the check needs from a self-test monitor (DnsblMonitor implements it). */
export interface DnsblZoneHealth {
  isEnabled(zone: string): boolean;
  /** why the zone is disabled, for the result */
  disabledReason?(zone: string): string | undefined;
}

export interface DnsblOptions {
  zones: readonly DnsblZoneConfig[];
  /** skip zones the monitor has disabled */
  monitor?: DnsblZoneHealth;
  signal?: AbortSignal;
}

export interface DnsblDeps {
  resolver: Resolver;
  clock?: Clock;
}

/** A zone entry with its filters compiled and defaults applied. */
export interface CompiledZone {
  zone: string;
  type: 'ip' | 'domain';
  weight: number;
  txt: boolean;
  /** false, or the address family of the self-test points */
  selfTest: false | 4 | 6;
  filterSource?: string;
  filter?: AddressFilter;
  errorFilter?: AddressFilter;
}

/** Validates and normalises zone entries; throws an Error naming the bad entry. */
export function compileZones(zones: readonly DnsblZoneConfig[]): CompiledZone[] {
  return zones.map((z, i) => {
    const zone = normalizeDomain(String(z.zone ?? '').trim());
    if (!isFqdn(zone)) throw new Error(`DNSBL zone #${i + 1}: "${z.zone}" is not a valid zone name`);
    const weight = z.weight ?? 1;
    if (!Number.isFinite(weight)) throw new Error(`DNSBL zone ${zone}: weight must be a finite number`);
    const type = z.type ?? 'ip';
    if (type !== 'ip' && type !== 'domain') throw new Error(`DNSBL zone ${zone}: type must be 'ip' or 'domain'`);
    if (z.selfTest === 'ipv6' && type !== 'ip') throw new Error(`DNSBL zone ${zone}: selfTest 'ipv6' needs type 'ip'`);
    const selfTest = z.selfTest === false ? false : z.selfTest === 'ipv6' ? 6 : 4;
    const out: CompiledZone = { zone, type, weight, txt: z.txt === true, selfTest };
    try {
      if (z.filter !== undefined) {
        out.filterSource = z.filter;
        out.filter = compileFilter(z.filter);
      }
      if (z.errorFilter !== undefined) out.errorFilter = compileFilter(z.errorFilter);
    } catch (e) {
      throw new Error(`DNSBL zone ${zone}: ${(e as Error).message}`);
    }
    return out;
  });
}

/**
 * Parses a postscreen_dnsbl_sites entry, "zone[=filter][*weight]", e.g.
 * "list.dnswl.org=127.0.[0..255].[1..3]*-4". Throws on a malformed entry.
 */
export function parseDnsblSite(site: string, type: 'ip' | 'domain' = 'ip'): DnsblZoneConfig {
  const m = /^([^=*\s]+)(?:=([^*\s]+))?(?:\*(-?\d+))?$/.exec(site.trim());
  if (!m) throw new Error(`invalid DNSBL site "${site}" (expected zone[=filter][*weight])`);
  const config: DnsblZoneConfig = { zone: m[1]!, type };
  if (m[2] !== undefined) config.filter = m[2];
  if (m[3] !== undefined) config.weight = Number(m[3]);
  compileZones([config]);
  return config;
}

const MAX_NAME = 253;

interface Subject {
  /** canonical IP text or normalised domain */
  subject: string;
  /** reverse labels (ip) or the domain itself, to prepend to the zone */
  prefix: string;
  identities?: string[];
}

function domainSubjects(domains: DnsblInput['domains']): Subject[] {
  const byDomain = new Map<string, string[]>();
  for (const [identity, raw] of Object.entries(domains ?? {})) {
    if (!raw) continue;
    const domain = raw.includes('@') ? domainOfAddress(raw) : normalizeDomain(raw.trim());
    if (!isFqdn(domain)) continue;
    const ids = byDomain.get(domain);
    if (ids) ids.push(identity);
    else byDomain.set(domain, [identity]);
  }
  return [...byDomain].map(([domain, identities]) => ({ subject: domain, prefix: domain, identities }));
}

function textOf(result: DnsResult<'TXT'> | undefined): string | undefined {
  if (result?.status !== 'ok' || result.records.length === 0) return undefined;
  return result.records.map((r) => r.join('')).join('; ');
}

/** Compiled zones per zone list: a config's list is compiled once, not on every connection (zone lists are treated as immutable). */
const compiledLists = new WeakMap<readonly DnsblZoneConfig[], CompiledZone[]>();

function compiledFor(zones: readonly DnsblZoneConfig[]): CompiledZone[] {
  let compiled = compiledLists.get(zones);
  if (!compiled) {
    compiled = compileZones(zones);
    compiledLists.set(zones, compiled);
  }
  return compiled;
}

/** Runs the pre-screen. Never throws for DNS trouble; throws only for an invalid zone config. */
export async function checkDnsbl(input: DnsblInput, deps: DnsblDeps, options: DnsblOptions): Promise<DnsblResult> {
  const zones = compiledFor(options.zones);
  const { resolver } = deps;
  const queryOptions = options.signal ? { signal: options.signal } : undefined;

  const ip = input.ip !== undefined ? parseIp(input.ip.trim()) : null;
  const ipSubject: Subject | null = ip ? { subject: formatIp(ip), prefix: reverseLabels(ip) } : null;
  const domains = domainSubjects(input.domains);

  // One A query per distinct name, shared by entries that list the same zone twice.
  const aQueries = new Map<string, Promise<DnsResult<'A'>>>();
  const txtQueries = new Map<string, Promise<DnsResult<'TXT'>>>();
  const lookupA = (name: string) => {
    let p = aQueries.get(name);
    if (!p) {
      p = resolver.query(name, 'A', queryOptions);
      aQueries.set(name, p);
    }
    return p;
  };
  const lookupTxt = (name: string) => {
    let p = txtQueries.get(name);
    if (!p) {
      p = resolver.query(name, 'TXT', queryOptions);
      txtQueries.set(name, p);
    }
    return p;
  };

  const evaluate = async (z: CompiledZone, s: Subject): Promise<DnsblZoneResult> => {
    const base: DnsblZoneResult = {
      zone: z.zone,
      type: z.type,
      ...(z.filterSource !== undefined ? { filter: z.filterSource } : {}),
      weight: z.weight,
      subject: s.subject,
      ...(s.identities ? { identities: s.identities } : {}),
      status: 'not-listed',
      codes: [],
    };
    if (options.monitor && !options.monitor.isEnabled(z.zone)) {
      const why = options.monitor.disabledReason?.(z.zone);
      return { ...base, status: 'disabled', ...(why ? { error: why } : {}) };
    }
    const query = `${s.prefix}.${z.zone}`;
    if (query.length > MAX_NAME) {
      return { ...base, status: 'error', error: `query name longer than ${MAX_NAME} octets` };
    }
    const answer = classifyAnswer(await lookupA(query), z.errorFilter);
    if (answer.kind === 'absent') return { ...base, query };
    if (answer.kind === 'error') return { ...base, query, status: 'error', codes: answer.codes, error: answer.error };
    const listed = z.filter ? answer.codes.some((c) => z.filter!.matches(c)) : true;
    if (!listed) return { ...base, query, codes: answer.codes };
    const text = z.txt ? textOf(await lookupTxt(query)) : undefined;
    return { ...base, query, status: 'listed', codes: answer.codes, ...(text !== undefined ? { text } : {}) };
  };

  const jobs: Promise<DnsblZoneResult>[] = [];
  const owners: number[] = [];
  zones.forEach((z, entry) => {
    if (z.type === 'domain') {
      for (const d of domains) {
        jobs.push(evaluate(z, d));
        owners.push(entry);
      }
      return;
    }
    if (ipSubject) jobs.push(evaluate(z, ipSubject));
    else if (input.ip !== undefined) {
      jobs.push(
        Promise.resolve({
          zone: z.zone,
          type: z.type,
          ...(z.filterSource !== undefined ? { filter: z.filterSource } : {}),
          weight: z.weight,
          subject: input.ip,
          status: 'error' as const,
          codes: [],
          error: `"${input.ip}" is not an IP address`,
        }),
      );
    } else return;
    owners.push(entry);
  });
  const results = await Promise.all(jobs);
  return aggregate(zones, owners, results);
}

function aggregate(zones: CompiledZone[], owners: number[], results: DnsblZoneResult[]): DnsblResult {
  // An entry (one config line) scores once even when several of its subjects are listed.
  const entryListed = new Array<boolean>(zones.length).fill(false);
  const errors = new Set<string>();
  const disabled = new Set<string>();
  results.forEach((r, i) => {
    if (r.status === 'listed') entryListed[owners[i]!] = true;
    else if (r.status === 'error') errors.add(r.zone);
    else if (r.status === 'disabled') disabled.add(r.zone);
  });
  let score = 0;
  const listed = new Set<string>();
  const allowListed = new Set<string>();
  zones.forEach((z, entry) => {
    if (!entryListed[entry]) return;
    score += z.weight;
    (z.weight < 0 ? allowListed : listed).add(z.zone);
  });
  return {
    score,
    listed: [...listed],
    allowListed: [...allowListed],
    errors: [...errors],
    disabled: [...disabled],
    results,
  };
}
