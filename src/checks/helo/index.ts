/**
 * HELO/EHLO checks: syntax (RFC 5321 §4.1.1.1 / §4.1.3), address-literal consistency, "claims to
 * be us", forward resolution, and the open-mail.org "3-strikes" test (checkid spec §3.8):
 *
 *   (a) FCrDNS + match: a PTR name of the IP resolves back to the IP and equals the HELO name;
 *   (b) the HELO name's A/AAAA or MX hosts contain the IP;
 *   (c) an authorization record of the HELO name (SPF-HELO pass, or CSA ok) covers the IP.
 *
 * The client passes when any leg holds. SPF and CSA are other checks: their results come in as
 * inputs. The iprev result may come in too; otherwise it is looked up when leg (a) is needed.
 * Lookups are lazy: once a leg passes, the remaining ones are not queried.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Clock } from '../../common/clock.ts';
import { isFqdn, normalizeDomain } from '../../common/domain.ts';
import { formatIp, type IpAddress, parseIp, sameIp } from '../../common/ip.ts';
import { type DnsResult, isDnsFailure, type Resolver } from '../../dns/types.ts';
import { checkIprev, type IprevResult } from '../iprev/index.ts';

export type HeloSyntax = 'fqdn' | 'address-literal' | 'invalid';

/** Outcome of looking a name up for the client IP; 'skipped' when no lookup applied or was needed. */
export type HeloLookup = 'match' | 'mismatch' | 'nxdomain' | 'nodata' | 'temperror' | 'skipped';

export interface ThreeStrikes {
  /** any leg holds */
  pass: boolean;
  /** (a) the HELO name is a forward-confirmed PTR name of the IP */
  fcrdns: boolean;
  /** (b) the HELO name's A/AAAA records contain the IP */
  address: boolean;
  /** (b) one of the HELO name's MX hosts has the IP */
  mx: boolean;
  /** (c) SPF-HELO pass or CSA ok, as passed in */
  auth: boolean;
  /** pass is false and some leg could not be decided because of DNS trouble */
  temperror: boolean;
}

export interface HeloResult {
  /** the HELO argument as given (trimmed) */
  helo: string;
  /** the lower-cased name, for syntax 'fqdn' */
  name?: string;
  syntax: HeloSyntax;
  /** why the syntax is invalid */
  invalidReason?: string;
  /** the HELO is a bare IP address without brackets (syntax 'invalid') */
  bareIp: boolean;
  /** the address in an address literal or bare IP, canonical text */
  literal?: string;
  /** whether that address is the client IP (literal or bare IP only) */
  literalMatches?: boolean;
  /** the HELO claims to be us: one of options.localNames (names or IPs) */
  local: boolean;
  /** A/AAAA of the name against the client IP ('skipped' unless syntax is 'fqdn') */
  resolves: HeloLookup;
  /** the A and AAAA records of the name */
  addresses: string[];
  /** MX hosts of the name against the client IP (only looked up for the 3-strikes test) */
  mx: HeloLookup;
  /** the MX host names examined */
  mxHosts: string[];
  threeStrikes: ThreeStrikes;
}

export interface HeloInput {
  /** the client IP */
  ip: string;
  /** the HELO/EHLO argument */
  helo: string;
  /** iprev for the same IP, when already done; saves the lookups of leg (a) */
  iprev?: IprevResult;
  /** the SPF result for the HELO identity (RFC 7208 §2.3), when SPF has run */
  spfHelo?: string;
  /** the CSA status, when CSA has run */
  csa?: string;
}

export interface HeloOptions {
  /** our own host names and IP addresses; a HELO claiming one of them sets `local` */
  localNames?: readonly string[];
  /** MX hosts examined for leg (b); default 10 */
  maxMxHosts?: number;
  signal?: AbortSignal;
}

export interface HeloDeps {
  resolver: Resolver;
  clock?: Clock;
}

export const DEFAULT_MAX_MX_HOSTS = 10;

interface Parsed {
  syntax: HeloSyntax;
  name?: string;
  literal?: IpAddress;
  bareIp: boolean;
  invalidReason?: string;
}

/** Classifies a HELO argument by RFC 5321 syntax. */
export function parseHelo(helo: string): Parsed {
  if (helo === '') return { syntax: 'invalid', bareIp: false, invalidReason: 'empty HELO' };
  if (helo.startsWith('[')) {
    if (!helo.endsWith(']')) return { syntax: 'invalid', bareIp: false, invalidReason: 'unterminated address literal' };
    const inner = helo.slice(1, -1);
    const tagged = /^ipv6:/i.test(inner);
    const text = tagged ? inner.slice(5) : inner;
    const ok = tagged ? isIPv6(text) : isIPv4(text);
    const literal = ok ? parseIp(text) : null;
    if (!literal) {
      let invalidReason = 'bad IPv4 address literal';
      if (tagged) invalidReason = 'bad IPv6 address literal';
      else if (isIPv6(inner)) invalidReason = 'IPv6 address literal without the "IPv6:" tag';
      else if (/^[a-z0-9-]*[a-z0-9]:/i.test(inner)) invalidReason = 'unsupported general address literal';
      return { syntax: 'invalid', bareIp: false, invalidReason };
    }
    return { syntax: 'address-literal', literal, bareIp: false };
  }
  const bare = parseIp(helo);
  if (bare) return { syntax: 'invalid', literal: bare, bareIp: true, invalidReason: 'bare IP address without brackets' };
  if (helo.endsWith('.')) return { syntax: 'invalid', bareIp: false, invalidReason: 'trailing dot' };
  if (!isFqdn(helo)) {
    const invalidReason = helo.includes('.') ? 'not a valid host name' : 'not fully qualified';
    return { syntax: 'invalid', bareIp: false, invalidReason };
  }
  return { syntax: 'fqdn', name: normalizeDomain(helo), bareIp: false };
}

type Lookup = Exclude<HeloLookup, 'skipped'>;

/** Classifies an address lookup of the client's family, with the other family as a tiebreak. */
function classify(own: DnsResult<'A' | 'AAAA'>, other: DnsResult<'A' | 'AAAA'> | null, ip: IpAddress): Lookup {
  if (own.status === 'ok') {
    return own.records.some((a) => {
      const p = parseIp(a);
      return p !== null && sameIp(p, ip);
    })
      ? 'match'
      : 'mismatch';
  }
  if (isDnsFailure(own.status)) return 'temperror';
  if (own.status === 'nxdomain') return 'nxdomain';
  if (!other) return 'nodata';
  if (other.status === 'ok') return 'mismatch';
  return isDnsFailure(other.status) ? 'temperror' : 'nodata';
}

function records(r: DnsResult<'A' | 'AAAA'>): string[] {
  if (r.status !== 'ok') return [];
  return r.records.map((a) => normalizeOrKeep(a));
}

function normalizeOrKeep(a: string): string {
  const p = parseIp(a);
  return p ? formatIp(p) : a;
}

async function lookupMx(
  resolver: Resolver,
  name: string,
  ip: IpAddress,
  maxHosts: number,
  signal: AbortSignal | undefined,
): Promise<{ status: Lookup; hosts: string[] }> {
  const qo = signal ? { signal } : undefined;
  const mx = await resolver.query(name, 'MX', qo);
  if (mx.status !== 'ok') {
    return { status: isDnsFailure(mx.status) ? 'temperror' : mx.status, hosts: [] };
  }
  const hosts = [...new Set(mx.records.filter((r) => r.exchange !== '').map((r) => normalizeDomain(r.exchange)))];
  const examined = hosts.slice(0, maxHosts);
  if (examined.length === 0) return { status: 'nodata', hosts: [] };
  const type = ip.family === 4 ? 'A' : 'AAAA';
  const answers = await Promise.all(examined.map((h) => resolver.query(h, type, qo)));
  const each = answers.map((a) => classify(a, null, ip));
  if (each.includes('match')) return { status: 'match', hosts: examined };
  if (each.includes('temperror')) return { status: 'temperror', hosts: examined };
  return { status: 'mismatch', hosts: examined };
}

function isLocal(parsed: Parsed, localNames: readonly string[]): boolean {
  for (const entry of localNames) {
    const asIp = parseIp(entry.trim().replace(/^\[(?:ipv6:)?|\]$/gi, ''));
    if (asIp) {
      if (parsed.literal && sameIp(asIp, parsed.literal)) return true;
    } else if (parsed.name && normalizeDomain(entry.trim()) === parsed.name) {
      return true;
    }
  }
  return false;
}

/** Runs the HELO checks. Never throws for DNS trouble. */
export async function checkHelo(input: HeloInput, deps: HeloDeps, options: HeloOptions = {}): Promise<HeloResult> {
  const helo = input.helo.trim();
  const parsed = parseHelo(helo);
  const ip = parseIp(input.ip.trim());
  const auth = input.spfHelo === 'pass' || input.csa === 'ok';
  const authTemp = input.spfHelo === 'temperror' || input.csa === 'defer';

  const result: HeloResult = {
    helo,
    ...(parsed.name ? { name: parsed.name } : {}),
    syntax: parsed.syntax,
    ...(parsed.invalidReason ? { invalidReason: parsed.invalidReason } : {}),
    bareIp: parsed.bareIp,
    ...(parsed.literal ? { literal: formatIp(parsed.literal) } : {}),
    ...(parsed.literal && ip ? { literalMatches: sameIp(parsed.literal, ip) } : {}),
    local: isLocal(parsed, options.localNames ?? []),
    resolves: 'skipped',
    addresses: [],
    mx: 'skipped',
    mxHosts: [],
    threeStrikes: { pass: auth, fcrdns: false, address: false, mx: false, auth, temperror: false },
  };
  if (!parsed.name || !ip) {
    result.threeStrikes.temperror = !auth && authTemp;
    return result;
  }

  const { resolver } = deps;
  const name = parsed.name;
  const qo = options.signal ? { signal: options.signal } : undefined;
  const [a, aaaa] = await Promise.all([resolver.query(name, 'A', qo), resolver.query(name, 'AAAA', qo)]);
  result.addresses = [...records(a), ...records(aaaa)];
  result.resolves = ip.family === 4 ? classify(a, aaaa, ip) : classify(aaaa, a, ip);
  const strikes = result.threeStrikes;
  strikes.address = result.resolves === 'match';
  // leg (a) costs nothing when iprev has already run
  let iprevTemp = false;
  const legA = (iprev: IprevResult) => {
    strikes.fcrdns = iprev.forward.some((f) => f.status === 'match' && f.name === name);
    iprevTemp = iprev.result === 'temperror' || iprev.forward.some((f) => f.name === name && f.status === 'temperror');
  };
  if (input.iprev) legA(input.iprev);
  strikes.pass = strikes.address || strikes.fcrdns || auth;

  if (!strikes.pass) {
    const maxMx = Math.max(1, options.maxMxHosts ?? DEFAULT_MAX_MX_HOSTS);
    const [iprev, mx] = await Promise.all([
      input.iprev ?? checkIprev({ ip: input.ip }, { resolver }, options.signal ? { signal: options.signal } : {}),
      lookupMx(resolver, name, ip, maxMx, options.signal),
    ]);
    legA(iprev);
    result.mx = mx.status;
    result.mxHosts = mx.hosts;
    strikes.mx = mx.status === 'match';
    strikes.pass = strikes.fcrdns || strikes.mx;
  }
  strikes.temperror =
    !strikes.pass && (result.resolves === 'temperror' || result.mx === 'temperror' || iprevTemp || authTemp);
  return result;
}
