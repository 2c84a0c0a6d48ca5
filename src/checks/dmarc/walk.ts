/**
 * The DNS Tree Walk (RFC 9989 §4.10): no public suffix list, only DMARC records in the DNS.
 *
 * A walk queries _dmarc.<domain>, then (x = the label count) drops one label while x < 8, or
 * jumps to the last 7 labels when x >= 8, then drops one label at a time: at most 8 queries.
 * It stops at a record with psd=n or psd=y. From the records found, longest name first, the
 * Organizational Domain is (§4.10.2): 1. a psd=n domain; 2. the domain one label below a psd=y
 * domain other than the start; 3. otherwise the record with the fewest labels; and with no
 * record at all, the start domain itself. Policy discovery (§4.10.1) takes the Author Domain's
 * own record, else its Organizational Domain's, else its Public Suffix Domain's.
 */
import type { DnsFailure, Resolver } from '../../dns/types.ts';
import { isDnsFailure } from '../../dns/types.ts';
import { selectDmarcRecord } from './record.ts';
import type { DmarcRecord } from './types.ts';

/** RFC 9989 §4.10: a tree walk makes at most this many queries. */
export const MAX_TREE_WALK_QUERIES = 8;

export type RecordLookup =
  | { kind: 'record'; domain: string; record: DmarcRecord }
  | { kind: 'none'; domain: string; note: string }
  | { kind: 'error'; domain: string; status: DnsFailure | 'limit'; message: string };

/** The names (without "_dmarc.") a full walk from `domain` queries, in order. */
export function treeWalkNames(domain: string): string[] {
  const labels = domain.split('.');
  const names = [domain];
  const next = Math.min(labels.length, MAX_TREE_WALK_QUERIES) - 1;
  for (let k = next; k >= 1; k--) names.push(labels.slice(labels.length - k).join('.'));
  return names;
}

/**
 * DMARC record and domain-existence lookups for one evaluation, each name asked once. An
 * optional budget bounds the queries made through `budgeted` lookups (identifier walks).
 */
export class DmarcLookup {
  private readonly resolver: Resolver;
  private readonly signal: AbortSignal | undefined;
  private readonly records = new Map<string, Promise<RecordLookup>>();
  private readonly existence = new Map<string, Promise<boolean | DnsFailure>>();
  /** DNS queries made */
  queries = 0;
  /** "_dmarc.example.com/TXT", "example.com/A", in query order */
  readonly log: string[] = [];

  constructor(resolver: Resolver, signal?: AbortSignal) {
    this.resolver = resolver;
    this.signal = signal;
  }

  /** Whether a lookup of _dmarc.<domain> is already made or under way (costs no query). */
  cached(domain: string): boolean {
    return this.records.has(domain);
  }

  /** The one valid DMARC record at _dmarc.<domain>, or why there is none. */
  record(domain: string): Promise<RecordLookup> {
    let p = this.records.get(domain);
    if (!p) {
      p = this.fetch(domain);
      this.records.set(domain, p);
    }
    return p;
  }

  private async fetch(domain: string): Promise<RecordLookup> {
    const name = `_dmarc.${domain}`;
    this.queries++;
    this.log.push(`${name}/TXT`);
    const r = await this.resolver.query(name, 'TXT', { signal: this.signal });
    if (r.status === 'ok') {
      const selected = selectDmarcRecord(r.records);
      if (selected.record) return { kind: 'record', domain, record: selected.record };
      const note =
        selected.count > 1
          ? `${selected.count} DMARC records at ${name}, all discarded`
          : `no DMARC record at ${name}`;
      return { kind: 'none', domain, note };
    }
    if (r.status === 'nxdomain' || r.status === 'nodata') {
      return { kind: 'none', domain, note: `no DMARC record at ${name} (${r.status.toUpperCase()})` };
    }
    const detail = 'message' in r && r.message ? ` (${r.message})` : '';
    return {
      kind: 'error',
      domain,
      status: r.status as DnsFailure,
      message: `${name}: ${r.status}${detail}`,
    };
  }

  /**
   * Whether `domain` exists (RFC 9989 §3.2.13, A.4): NXDOMAIN means no, any other answer yes.
   * Asks for A records, so the answer is also useful to a cache.
   */
  exists(domain: string): Promise<boolean | DnsFailure> {
    let p = this.existence.get(domain);
    if (!p) {
      this.queries++;
      this.log.push(`${domain}/A`);
      p = this.resolver
        .query(domain, 'A', { signal: this.signal })
        .then((r) => (isDnsFailure(r.status) ? (r.status as DnsFailure) : r.status !== 'nxdomain'));
      this.existence.set(domain, p);
    }
    return p;
  }
}

export interface WalkResult {
  /** records found, in walk order (longest name first) */
  found: Array<{ domain: string; record: DmarcRecord }>;
  /** set when a query failed: the walk's outcome is unknown */
  error?: { domain: string; status: DnsFailure | 'limit'; message: string };
  /** notes on names that were skipped (several records, ...) */
  notes: string[];
}

/**
 * A tree walk from `start` over `names` (treeWalkNames(start) by default). `budget`, if given,
 * is the number of new queries the walk may make; past it the walk ends with a 'limit' error.
 */
export async function treeWalk(
  start: string,
  lookup: DmarcLookup,
  budget?: { left: number },
): Promise<WalkResult> {
  const result: WalkResult = { found: [], notes: [] };
  for (const name of treeWalkNames(start)) {
    if (budget && !lookup.cached(name)) {
      if (budget.left <= 0) {
        result.error = { domain: name, status: 'limit', message: `query budget spent before _dmarc.${name}` };
        return result;
      }
      budget.left--;
    }
    const r = await lookup.record(name);
    if (r.kind === 'error') {
      result.error = { domain: r.domain, status: r.status, message: r.message };
      return result;
    }
    if (r.kind === 'none') {
      if (r.note.includes('all discarded')) result.notes.push(r.note);
      continue;
    }
    result.found.push({ domain: name, record: r.record });
    if (r.record.psd === 'y' || r.record.psd === 'n') break;
  }
  return result;
}

/** The Organizational Domain from a walk's records (§4.10.2 selection, steps 1-3). */
export function selectOrgDomain(start: string, found: WalkResult['found']): string {
  for (const f of found) {
    if (f.record.psd === 'n') return f.domain;
    if (f.record.psd === 'y' && f.domain !== start) return oneLabelBelow(start, f.domain);
  }
  if (found.length > 0) return found[found.length - 1]!.domain;
  return start;
}

/** The ancestor-or-self of `start` that has one label more than `parent`. */
function oneLabelBelow(start: string, parent: string): string {
  const labels = start.split('.');
  const keep = parent.split('.').length + 1;
  return labels.slice(labels.length - keep).join('.');
}

export type OrgDomainResult =
  | { ok: true; orgDomain: string; walk: WalkResult }
  | { ok: false; error: NonNullable<WalkResult['error']>; walk: WalkResult };

/** The Organizational Domain of `domain` by a tree walk. */
export async function organizationalDomain(
  domain: string,
  lookup: DmarcLookup,
  budget?: { left: number },
): Promise<OrgDomainResult> {
  const walk = await treeWalk(domain, lookup, budget);
  if (walk.error) return { ok: false, error: walk.error, walk };
  return { ok: true, orgDomain: selectOrgDomain(domain, walk.found), walk };
}

export type PolicyDiscovery =
  | {
      status: 'found';
      /** where the record was found */
      policyDomain: string;
      record: DmarcRecord;
      /** the Author Domain's Organizational Domain, when the discovery determined it */
      orgDomain: string | null;
      /** notes on discarded records */
      notes: string[];
    }
  | { status: 'none'; orgDomain: string; notes: string[] }
  | { status: 'temperror'; message: string; notes: string[] };

/** Policy discovery for an Author Domain (§4.10.1). */
export async function discoverPolicy(author: string, lookup: DmarcLookup): Promise<PolicyDiscovery> {
  const own = await lookup.record(author);
  const notes: string[] = [];
  if (own.kind === 'error') return { status: 'temperror', message: own.message, notes };
  if (own.kind === 'record') {
    // psd=n or psd=y ends the walk at its start, which is then the Organizational Domain
    const orgDomain = own.record.psd === 'u' ? null : author;
    return { status: 'found', policyDomain: author, record: own.record, orgDomain, notes };
  }
  if (own.note.includes('all discarded')) notes.push(own.note);
  const walk = await treeWalk(author, lookup);
  notes.push(...walk.notes.filter((n) => !notes.includes(n)));
  if (walk.error) return { status: 'temperror', message: walk.error.message, notes };
  const orgDomain = selectOrgDomain(author, walk.found);
  if (walk.found.length === 0) return { status: 'none', orgDomain, notes };
  const org = walk.found.find((f) => f.domain === orgDomain);
  // without a record at the Organizational Domain, the walk ended at a PSD (psd=y) record
  const chosen = org ?? walk.found[walk.found.length - 1]!;
  return { status: 'found', policyDomain: chosen.domain, record: chosen.record, orgDomain, notes };
}
