/**
 * iprev (RFC 8601 §3): the client IP's PTR names, each confirmed by a forward lookup of the
 * client's address family. Result codes as RFC 8601 §2.7.3 defines them:
 *
 *   pass       a PTR name's A/AAAA records include the client IP
 *   fail       PTR names were found, but no forward lookup returned the IP (including forward
 *              NXDOMAIN or NODATA)
 *   temperror  a lookup failed transiently (SERVFAIL, timeout, ...) and no name confirmed
 *   permerror  no PTR data is published for the IP (PTR NXDOMAIN or NODATA)
 *
 * Also reports whether the reverse name looks generic (an ISP pool name); that is a separate
 * signal and does not change the result.
 */
import type { Clock } from '../../common/clock.ts';
import { isFqdn, normalizeDomain } from '../../common/domain.ts';
import { formatIp, type IpAddress, parseIp, reverseName, sameIp } from '../../common/ip.ts';
import type { DnsResult, Resolver } from '../../dns/types.ts';
import { genericReverseName } from './generic.ts';

export { genericReverseName } from './generic.ts';

export type IprevResultCode = 'pass' | 'fail' | 'temperror' | 'permerror';

export type IprevForwardStatus = 'match' | 'mismatch' | 'nxdomain' | 'nodata' | 'temperror';

export interface IprevForward {
  name: string;
  status: IprevForwardStatus;
  /** the addresses the forward lookup returned (client's family only) */
  addresses: string[];
  /** the DNS failure, for temperror */
  error?: string;
}

export interface IprevResult {
  result: IprevResultCode;
  /** the client IP, canonical text */
  ip: string;
  /** the names the PTR lookup returned (normalised, deduplicated, answer order) */
  ptrNames: string[];
  /** the forward lookups made, in PTR order (at most `maxNames`) */
  forward: IprevForward[];
  /** the first PTR name whose forward lookup returned the IP (pass only) */
  validatedName?: string;
  /** a human-readable explanation, e.g. for a header comment or a log */
  reason: string;
  /** the reverse name (validated name, else the first PTR name) looks like an ISP pool name */
  generic: boolean;
  /** why it looks generic */
  genericReason?: string;
}

export interface IprevInput {
  ip: string;
}

export interface IprevOptions {
  /** forward-check at most this many PTR names; default 10 (like RFC 7208 §4.6.4's limit) */
  maxNames?: number;
  signal?: AbortSignal;
}

export interface IprevDeps {
  resolver: Resolver;
  clock?: Clock;
}

export const DEFAULT_MAX_PTR_NAMES = 10;

function failureText(r: DnsResult<'A' | 'AAAA' | 'PTR'>): string {
  return 'message' in r && r.message ? `${r.status}: ${r.message}` : r.status;
}

async function forwardCheck(
  resolver: Resolver,
  name: string,
  ip: IpAddress,
  signal: AbortSignal | undefined,
): Promise<IprevForward> {
  const type = ip.family === 4 ? 'A' : 'AAAA';
  const r = await resolver.query(name, type, signal ? { signal } : undefined);
  if (r.status === 'ok') {
    const parsed = r.records.map((a) => parseIp(a)).filter((a): a is IpAddress => a !== null);
    const addresses = parsed.map(formatIp);
    const status = parsed.some((a) => sameIp(a, ip)) ? 'match' : 'mismatch';
    return { name, status, addresses };
  }
  if (r.status === 'nxdomain' || r.status === 'nodata') return { name, status: r.status, addresses: [] };
  return { name, status: 'temperror', addresses: [], error: failureText(r) };
}

function withGeneric(result: Omit<IprevResult, 'generic'>, ip: IpAddress | null): IprevResult {
  const name = result.validatedName ?? result.ptrNames[0];
  const why = name && ip ? genericReverseName(name, ip) : null;
  return { ...result, generic: why !== null, ...(why ? { genericReason: why } : {}) };
}

/** Runs iprev for the client IP. Never throws for DNS trouble. */
export async function checkIprev(input: IprevInput, deps: IprevDeps, options: IprevOptions = {}): Promise<IprevResult> {
  const ip = parseIp(input.ip.trim());
  if (!ip) {
    return withGeneric(
      { result: 'permerror', ip: input.ip, ptrNames: [], forward: [], reason: `"${input.ip}" is not an IP address` },
      null,
    );
  }
  const ipText = formatIp(ip);
  const maxNames = Math.max(1, options.maxNames ?? DEFAULT_MAX_PTR_NAMES);
  const ptr = await deps.resolver.query(reverseName(ip), 'PTR', options.signal ? { signal: options.signal } : undefined);

  if (ptr.status === 'nxdomain' || ptr.status === 'nodata') {
    const reason = `no PTR record for ${ipText} (${ptr.status === 'nxdomain' ? 'NXDOMAIN' : 'NODATA'})`;
    return withGeneric({ result: 'permerror', ip: ipText, ptrNames: [], forward: [], reason }, ip);
  }
  if (ptr.status !== 'ok') {
    const reason = `PTR lookup for ${ipText} failed (${failureText(ptr)})`;
    return withGeneric({ result: 'temperror', ip: ipText, ptrNames: [], forward: [], reason }, ip);
  }

  const ptrNames = [...new Set(ptr.records.map(normalizeDomain))].filter((n) => n !== '');
  const usable = ptrNames.filter((n) => isFqdn(n));
  if (usable.length === 0) {
    const reason = `the PTR records of ${ipText} hold no usable host name`;
    return withGeneric({ result: 'permerror', ip: ipText, ptrNames, forward: [], reason }, ip);
  }

  const checked = usable.slice(0, maxNames);
  const forward = await Promise.all(checked.map((n) => forwardCheck(deps.resolver, n, ip, options.signal)));
  const confirmed = forward.find((f) => f.status === 'match');
  const base = { ip: ipText, ptrNames, forward };
  if (confirmed) {
    return withGeneric(
      { ...base, result: 'pass', validatedName: confirmed.name, reason: `${confirmed.name} resolves to ${ipText}` },
      ip,
    );
  }
  const skipped = usable.length - checked.length;
  const note = skipped > 0 ? ` (${skipped} more PTR names not checked)` : '';
  const transient = forward.find((f) => f.status === 'temperror');
  if (transient) {
    const reason = `forward lookup of ${transient.name} failed (${transient.error}); no PTR name confirmed ${ipText}${note}`;
    return withGeneric({ ...base, result: 'temperror', reason }, ip);
  }
  const names = checked.join(', ');
  return withGeneric({ ...base, result: 'fail', reason: `no PTR name of ${ipText} resolves back to it (${names})${note}` }, ip);
}
