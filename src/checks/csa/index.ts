/**
 * CSA, Client SMTP Authorization (draft-ietf-marid-csv-csa-02), evaluated the way Exim's
 * `verify = csa` does (acl_verify_csa / dns_special_lookup T_CSA; checkid spec §5):
 *
 *   _client._smtp.<HELO>  SRV  <Priority=1> <Weight> <Port> <Target>
 *
 * 1. The lookup name is the HELO name, or the client IP when there is none. An address literal
 *    or bare IP is looked up in the reverse tree (x.x.x.x.in-addr.arpa / nibbles.ip6.arpa) unless
 *    `useReverse` is false (then: unknown).
 * 2. SRV _client._smtp.<name>. On NXDOMAIN/NODATA, parent domains are searched from the top
 *    down, starting at the second level (skipping the TLD; in the reverse tree starting under
 *    in-addr.arpa / ip6.arpa, in 16-bit steps for IPv6, at most 3 levels), up to `searchLimit`
 *    levels, never the name itself. A parent is used only if it has a priority-1 record with Port
 *    bit 1 set ("every legitimate client below has its own record").
 * 3. Results:
 *      SRV lookup failed                               defer   (defer-srv)
 *      nothing found                                   unknown
 *      parent record, Port bit 1 set                   fail    (explicit authorization required)
 *      parent record, Port bit 1 clear                 unknown
 *      own record, first priority-1 record:
 *        Weight < 2                                    fail    (host name not authorized)
 *        Weight > 2                                    skipped (next record)
 *        Weight == 2, Target "."                       fail    (no authorized addresses)
 *        Weight == 2, Target's A/AAAA (client family)
 *          include the client IP                       ok
 *          exist but do not                            fail    (client address mismatch)
 *          NXDOMAIN/NODATA                             fail    (no authorized addresses)
 *          lookup failed                               defer   (defer-addr)
 *      own record with no usable priority-1 record     unknown
 *
 * The check reports; it does not act. (Exim lets ok, unknown and defer through and denies only
 * the four fail cases, because CSA is optional for senders.)
 */
import type { Clock } from '../../common/clock.ts';
import { normalizeDomain } from '../../common/domain.ts';
import { formatIp, type IpAddress, parseIp, reverseName, sameIp } from '../../common/ip.ts';
import { type DnsResult, isDnsFailure, type Resolver, type SrvRecord } from '../../dns/types.ts';

export type CsaStatus = 'ok' | 'fail' | 'defer' | 'unknown';

/** Exim's eight outcomes ($csa_status is the part before the dash). */
export type CsaDetail =
  | 'unknown'
  | 'ok'
  | 'defer-srv'
  | 'defer-addr'
  | 'fail-explicit'
  | 'fail-domain'
  | 'fail-noaddr'
  | 'fail-mismatch';

/** The four fail reasons. */
export type CsaFailReason =
  /** a parent domain asserts every client needs its own record, and this name has none */
  | 'explicit-required'
  /** the record says the host is not authorized (Weight < 2) */
  | 'not-authorized'
  /** authorized, but the target has no addresses (Target "." or no A/AAAA) */
  | 'no-address'
  /** the target's addresses do not include the client IP */
  | 'mismatch';

export interface CsaResult {
  result: CsaStatus;
  detail: CsaDetail;
  failReason?: CsaFailReason;
  /** human-readable, e.g. for a log line or a reply text */
  reason: string;
  /** the name looked up (HELO name or reverse name); '' when none applied */
  domain: string;
  /** the name whose SRV record decided: the domain itself or a parent */
  foundAt?: string;
  /** the SRV target of an authorizing record ('' for ".") */
  target?: string;
  /** the target's addresses of the client's family */
  addresses?: string[];
}

export interface CsaInput {
  /** the client IP */
  ip: string;
  /** the HELO/EHLO argument */
  helo?: string;
  /** check this domain instead of the HELO name (Exim's verify = csa/<domain>) */
  domain?: string;
}

export interface CsaOptions {
  /** parent levels searched for a Port assertion; default 5 (Exim dns_csa_search_limit) */
  searchLimit?: number;
  /** look address literals and bare IPs up in the reverse tree; default true (dns_csa_use_reverse) */
  useReverse?: boolean;
  /** per-connection cache of results by lookup name, as Exim keeps one per process */
  cache?: Map<string, CsaResult>;
  signal?: AbortSignal;
}

export interface CsaDeps {
  resolver: Resolver;
  clock?: Clock;
}

export const DEFAULT_CSA_SEARCH_LIMIT = 5;
/** Exim's fixed search depth inside in-addr.arpa and ip6.arpa */
const REVERSE_SEARCH_LIMIT = 3;

const REASONS: Record<CsaDetail, string> = {
  unknown: 'unknown',
  ok: 'ok',
  'defer-srv': 'deferred (SRV lookup failed)',
  'defer-addr': 'deferred (target address lookup failed)',
  'fail-explicit': 'failed (explicit authorization required)',
  'fail-domain': 'failed (host name not authorized)',
  'fail-noaddr': 'failed (no authorized addresses)',
  'fail-mismatch': 'failed (client address mismatch)',
};

const FAIL_REASONS: Partial<Record<CsaDetail, CsaFailReason>> = {
  'fail-explicit': 'explicit-required',
  'fail-domain': 'not-authorized',
  'fail-noaddr': 'no-address',
  'fail-mismatch': 'mismatch',
};

function outcome(detail: CsaDetail, domain: string, extra: Partial<CsaResult> = {}, note?: string): CsaResult {
  const failReason = FAIL_REASONS[detail];
  return {
    result: detail.split('-')[0] as CsaStatus,
    detail,
    ...(failReason ? { failReason } : {}),
    reason: note ? `${REASONS[detail]}: ${note}` : REASONS[detail],
    domain,
    ...extra,
  };
}

function failureText(r: DnsResult<'SRV' | 'A' | 'AAAA'>): string {
  return 'message' in r && r.message ? `${r.status}: ${r.message}` : r.status;
}

/**
 * The lookup name Exim derives: the domain given, else the HELO name, else the client IP;
 * address literals lose their framing, and IPs become reverse names. null: not applicable.
 */
export function csaLookupName(input: CsaInput, useReverse = true): string | null {
  let name = input.domain?.trim() || input.helo?.trim() || input.ip.trim();
  if (name.startsWith('[')) {
    const colon = name.indexOf(':');
    name = name.slice(Math.max(colon, 0) + 1, -1);
  }
  const ip = parseIp(name);
  if (ip) return useReverse ? reverseName(ip) : null;
  return normalizeDomain(name);
}

/** The parent names searched, top down: [second-level, third-level, ...], never the name itself. */
export function csaParentNames(name: string, searchLimit = DEFAULT_CSA_SEARCH_LIMIT): string[] {
  const labels = name.split('.');
  let base = 1;
  let step = 1;
  let limit = searchLimit;
  if (name.endsWith('.in-addr.arpa')) {
    base = 2;
    limit = REVERSE_SEARCH_LIMIT;
  } else if (name.endsWith('.ip6.arpa')) {
    base = 2;
    step = 4;
    limit = REVERSE_SEARCH_LIMIT;
  }
  const out: string[] = [];
  for (let i = 1; i <= limit; i++) {
    const count = base + i * step;
    if (count >= labels.length) break;
    out.push(labels.slice(labels.length - count).join('.'));
  }
  return out;
}

type Found = { kind: 'found'; at: string; records: SrvRecord[] } | { kind: 'none' } | { kind: 'defer'; note: string };

async function findRecord(resolver: Resolver, name: string, limit: number, signal?: AbortSignal): Promise<Found> {
  const qo = signal ? { signal } : undefined;
  const own = await resolver.query(`_client._smtp.${name}`, 'SRV', qo);
  if (own.status === 'ok') return { kind: 'found', at: name, records: own.records };
  if (isDnsFailure(own.status)) return { kind: 'defer', note: `_client._smtp.${name}: ${failureText(own)}` };
  // sequential on purpose: top down, stopping at the first parent that asserts something
  for (const parent of csaParentNames(name, limit)) {
    const r = await resolver.query(`_client._smtp.${parent}`, 'SRV', qo);
    if (isDnsFailure(r.status)) return { kind: 'defer', note: `_client._smtp.${parent}: ${failureText(r)}` };
    if (r.status !== 'ok') continue;
    if (r.records.some((rr) => rr.priority === 1 && (rr.port & 1) === 1)) {
      return { kind: 'found', at: parent, records: r.records };
    }
  }
  return { kind: 'none' };
}

async function evaluate(resolver: Resolver, name: string, ip: IpAddress, options: CsaOptions): Promise<CsaResult> {
  const limit = Math.max(0, options.searchLimit ?? DEFAULT_CSA_SEARCH_LIMIT);
  const found = await findRecord(resolver, name, limit, options.signal);
  if (found.kind === 'defer') return outcome('defer-srv', name, {}, found.note);
  if (found.kind === 'none') return outcome('unknown', name, {}, 'no CSA record');
  const at = { foundAt: found.at };

  let target: string | null = null;
  for (const rr of found.records) {
    if (rr.priority !== 1) continue;
    if (found.at !== name) {
      return rr.port & 1
        ? outcome('fail-explicit', name, at, `${found.at} requires every client to have its own record`)
        : outcome('unknown', name, at, `${found.at} makes no assertion about subdomains`);
    }
    if (rr.weight < 2) return outcome('fail-domain', name, at, `weight ${rr.weight}`);
    if (rr.weight > 2) continue;
    target = normalizeDomain(rr.target);
    break;
  }
  if (target === null) return outcome('unknown', name, at, 'no usable CSA record');
  if (target === '') return outcome('fail-noaddr', name, { ...at, target }, 'target is "."');

  const type = ip.family === 4 ? 'A' : 'AAAA';
  const r = await resolver.query(target, type, options.signal ? { signal: options.signal } : undefined);
  if (isDnsFailure(r.status)) return outcome('defer-addr', name, { ...at, target }, `${target}/${type}: ${failureText(r)}`);
  if (r.status !== 'ok' || r.records.length === 0) {
    return outcome('fail-noaddr', name, { ...at, target, addresses: [] }, `${target} has no ${type} record`);
  }
  const parsed = r.records.map((a) => parseIp(a)).filter((a): a is IpAddress => a !== null);
  const addresses = parsed.map(formatIp);
  const extra = { ...at, target, addresses };
  if (parsed.some((a) => sameIp(a, ip))) return outcome('ok', name, extra, `${formatIp(ip)} is an address of ${target}`);
  return outcome('fail-mismatch', name, extra, `${formatIp(ip)} is not an address of ${target}`);
}

/** Runs CSA for the client. Never throws for DNS trouble. */
export async function checkCsa(input: CsaInput, deps: CsaDeps, options: CsaOptions = {}): Promise<CsaResult> {
  const ip = parseIp(input.ip.trim());
  if (!ip) return outcome('unknown', '', {}, `"${input.ip}" is not an IP address`);
  const name = csaLookupName(input, options.useReverse ?? true);
  if (name === null) return outcome('unknown', '', {}, 'IP address HELO and reverse lookups are off');
  if (name === '') return outcome('unknown', '', {}, 'nothing to look up');
  const cached = options.cache?.get(name);
  if (cached) return cached;
  const result = await evaluate(deps.resolver, name, ip, options);
  options.cache?.set(name, result);
  return result;
}
