/**
 * DMARC (RFC 9989): is the RFC5322.From domain (the Author Domain) aligned with a domain that
 * SPF or DKIM authenticated, and what does its owner ask for mail that is not?
 *
 *   1. the Author Domain comes from the From field (§5.3.1, see from.ts);
 *   2. its policy record is found by the DNS Tree Walk (§4.10.1, no public suffix list);
 *   3. the SPF-Authenticated Identifier (the MAIL FROM identity only, never HELO) and every
 *      passing DKIM d= are compared with it, strictly (same name) or relaxed (same
 *      Organizational Domain, by tree walks, §4.10.2);
 *   4. pass if one aligns, else fail, and the owner's policy (p, sp or np) with t=y or pct=
 *      testing gives the disposition it asks for.
 *
 * The result is a fact: rejecting, quarantining or overriding (local policy, trusted ARC) is the
 * policy's decision. A DNS failure is temperror (§5.3.6); no record anywhere is none.
 */
import type { MethodResult } from '../../headers/authentication-results.ts';
import { extractAuthorDomains, normalizeAuthorDomain } from './from.ts';
import { effectiveRecord } from './record.ts';
import {
  type AlignmentCheck,
  type AlignmentMode,
  type AuthorExtraction,
  DEFAULT_MAX_ALIGNMENT_QUERIES,
  DEFAULT_MAX_AUTHOR_DOMAINS,
  type DmarcAlignment,
  type DmarcDeps,
  type DmarcInput,
  type DmarcOptions,
  type DmarcPolicy,
  type DmarcRecord,
  type DmarcResult,
  type DmarcResultCode,
  type DmarcTesting,
} from './types.ts';
import { DmarcLookup, discoverPolicy, organizationalDomain } from './walk.ts';

export {
  extractAuthorDomains,
  fromFieldValues,
  normalizeAuthorDomain,
  parseAddressList,
  salvageDomains,
} from './from.ts';
export {
  effectiveRecord,
  isDmarcRecord,
  isValidReportingUri,
  parseDmarcRecord,
  selectDmarcRecord,
} from './record.ts';
export * from './types.ts';
export {
  DmarcLookup,
  discoverPolicy,
  MAX_TREE_WALK_QUERIES,
  organizationalDomain,
  selectOrgDomain,
  treeWalk,
  treeWalkNames,
} from './walk.ts';

const NO_TESTING: DmarcTesting = Object.freeze({ t: false, pct: 100, sampledOut: false, reduced: false });

function emptyAlignment(checks: AlignmentCheck[] = []): DmarcAlignment {
  return {
    spf: 'fail',
    dkim: 'fail',
    spfMode: 'r',
    dkimMode: 'r',
    spfDomain: null,
    dkimDomain: null,
    checks,
  };
}

function lowerPolicy(p: DmarcPolicy): DmarcPolicy {
  return p === 'reject' ? 'quarantine' : 'none';
}

const STRICTNESS: Record<DmarcPolicy, number> = { none: 0, quarantine: 1, reject: 2 };

interface Identifier {
  method: 'spf' | 'dkim';
  domain: string;
  result: string;
  usable: boolean;
  note?: string;
}

/**
 * The SPF identifier DMARC may use: the MAIL FROM identity's result only. A HELO-identity result
 * (CVE-2019-20790: OpenDMARC took a HELO check's pass as the MAIL FROM pass) or a result for a
 * domain other than the envelope's is ignored.
 */
function spfIdentifier(input: DmarcInput): Identifier | null {
  const spf = input.spf;
  if (!spf) return null;
  const domain = normalizeAuthorDomain(spf.domain) ?? spf.domain.toLowerCase();
  const id: Identifier = { method: 'spf', domain, result: spf.result, usable: true };
  if (spf.identity !== 'mailfrom') {
    return {
      ...id,
      usable: false,
      note: `an SPF result for the ${spf.identity} identity is not the MAIL FROM result (CVE-2019-20790)`,
    };
  }
  if (input.envelope) {
    const mailFrom = input.envelope.mailFrom.trim().replace(/^<|>$/g, '').trim();
    const at = mailFrom.lastIndexOf('@');
    const expected =
      mailFrom === ''
        ? input.envelope.helo !== undefined
          ? normalizeAuthorDomain(input.envelope.helo.trim())
          : null
        : normalizeAuthorDomain(at < 0 ? mailFrom : mailFrom.slice(at + 1));
    if ((mailFrom !== '' || input.envelope.helo !== undefined) && expected !== domain) {
      return {
        ...id,
        usable: false,
        note: `the SPF result is for ${domain}, not the MAIL FROM identity ${expected ?? '(invalid)'}`,
      };
    }
  }
  return id;
}

function dkimIdentifiers(input: DmarcInput): Identifier[] {
  return (input.dkim ?? []).map((d) => ({
    method: 'dkim' as const,
    domain: normalizeAuthorDomain(d.domain) ?? d.domain.toLowerCase(),
    result: d.result,
    usable: true,
  }));
}

/** The state shared by the alignment checks of one Author Domain. */
class Aligner {
  private orgOfAuthor: Promise<{ ok: true; org: string } | { ok: false; message: string }> | null = null;
  readonly author: string;
  private readonly lookup: DmarcLookup;
  private readonly budget: { left: number };
  knownOrg: string | null;

  constructor(author: string, knownOrg: string | null, lookup: DmarcLookup, budget: number) {
    this.author = author;
    this.knownOrg = knownOrg;
    this.lookup = lookup;
    this.budget = { left: budget };
  }

  authorOrg(): Promise<{ ok: true; org: string } | { ok: false; message: string }> {
    if (this.knownOrg !== null) return Promise.resolve({ ok: true, org: this.knownOrg });
    this.orgOfAuthor ??= organizationalDomain(this.author, this.lookup).then((r) => {
      if (!r.ok) return { ok: false as const, message: r.error.message };
      this.knownOrg = r.orgDomain;
      return { ok: true as const, org: r.orgDomain };
    });
    return this.orgOfAuthor;
  }

  async check(id: Identifier, mode: AlignmentMode): Promise<AlignmentCheck> {
    const base = { method: id.method, domain: id.domain, result: id.result };
    if (!id.usable) return { ...base, outcome: 'ignored', note: id.note };
    if (id.result !== 'pass') return { ...base, outcome: 'unauthenticated' };
    if (id.domain === this.author) return { ...base, outcome: 'strict' };
    if (mode === 's')
      return { ...base, outcome: 'unaligned', note: 'strict alignment needs the same domain' };
    // Organizational Domains are ancestors-or-self, so names without a common top-level label
    // can never share one; no walk (and no DNS failure) can change that
    if (lastLabel(id.domain) !== lastLabel(this.author)) {
      return { ...base, outcome: 'unaligned', note: 'no parent domain in common' };
    }
    const org = await this.authorOrg();
    if (!org.ok) return { ...base, outcome: 'error', note: org.message };
    // an Organizational Domain is always its domain or an ancestor, so only names at or below
    // the Author Domain's Organizational Domain can share it
    if (id.domain !== org.org && !id.domain.endsWith(`.${org.org}`)) {
      return { ...base, outcome: 'unaligned', note: `not within the Organizational Domain ${org.org}` };
    }
    // the Organizational Domain's own walk selects itself (same records from there up)
    if (id.domain === org.org) return { ...base, outcome: 'relaxed', orgDomain: org.org };
    const walk = await organizationalDomain(id.domain, this.lookup, this.budget);
    if (!walk.ok) {
      if (walk.error.status === 'limit') {
        return { ...base, outcome: 'unaligned', note: `not evaluated: ${walk.error.message}` };
      }
      return { ...base, outcome: 'error', note: walk.error.message };
    }
    if (walk.orgDomain === org.org) return { ...base, outcome: 'relaxed', orgDomain: walk.orgDomain };
    return {
      ...base,
      outcome: 'unaligned',
      orgDomain: walk.orgDomain,
      note: `Organizational Domain ${walk.orgDomain}, not ${org.org}`,
    };
  }
}

function lastLabel(domain: string): string {
  return domain.slice(domain.lastIndexOf('.') + 1);
}

function isAligned(c: AlignmentCheck): boolean {
  return c.outcome === 'strict' || c.outcome === 'relaxed';
}

function describeCheck(c: AlignmentCheck): string {
  const what = c.method === 'spf' ? `SPF ${c.result} for ${c.domain}` : `DKIM ${c.result} for d=${c.domain}`;
  switch (c.outcome) {
    case 'strict':
    case 'relaxed':
      return `${what} (${c.outcome} alignment)`;
    case 'unauthenticated':
      return `${what} (not authenticated)`;
    default:
      return `${what} (${c.outcome}${c.note ? `: ${c.note}` : ''})`;
  }
}

function authorSummary(a: AuthorExtraction): DmarcResult['author'] {
  return { fields: a.fields, domains: a.domains, problems: a.problems };
}

function base(
  fromDomain: string,
  author: DmarcResult['author'],
  result: DmarcResultCode,
  reason: string,
  queries: number,
): DmarcResult {
  return {
    result,
    policy: 'none',
    appliedPolicy: null,
    disposition: 'none',
    alignment: emptyAlignment(),
    fromDomain,
    policyDomain: null,
    orgDomain: null,
    record: null,
    testing: NO_TESTING,
    reason,
    author,
    queries,
  };
}

interface Settings {
  honorPct: boolean;
  maxAlignmentQueries: number;
  random: () => number;
}

/** DMARC for one Author Domain. */
async function evaluateDomain(
  author: string,
  input: DmarcInput,
  lookup: DmarcLookup,
  settings: Settings,
  authorInfo: DmarcResult['author'],
): Promise<DmarcResult> {
  const discovery = await discoverPolicy(author, lookup);
  const notes = discovery.notes.length ? ` (${discovery.notes.join('; ')})` : '';
  if (discovery.status === 'temperror') {
    return base(
      author,
      authorInfo,
      'temperror',
      `DMARC record lookup failed: ${discovery.message}`,
      lookup.queries,
    );
  }
  if (discovery.status === 'none') {
    return base(
      author,
      authorInfo,
      'none',
      `no DMARC policy record for ${author} or a parent domain${notes}`,
      lookup.queries,
    );
  }
  const published = discovery.record;
  const record = effectiveRecord(published);
  if (record === null) {
    const r = base(
      author,
      authorInfo,
      'permerror',
      `the DMARC record at _dmarc.${discovery.policyDomain} has no valid p= (or an invalid sp=/np=) and no valid rua=`,
      lookup.queries,
    );
    return { ...r, policyDomain: discovery.policyDomain, record: published, orgDomain: discovery.orgDomain };
  }

  // identifier alignment (§4.10.2, §5.3.4)
  const spf = spfIdentifier(input);
  const dkim = dkimIdentifiers(input);
  let knownOrg = discovery.orgDomain;
  // §4.10.2 note: identifiers all equal to an Author Domain with its own record need no walk
  if (
    knownOrg === null &&
    discovery.policyDomain === author &&
    [spf, ...dkim].every((id) => id === null || !id.usable || id.result !== 'pass' || id.domain === author)
  ) {
    knownOrg = author;
  }
  const aligner = new Aligner(author, knownOrg, lookup, settings.maxAlignmentQueries);
  const checks: AlignmentCheck[] = [];
  let spfAligned: AlignmentCheck | null = null;
  if (spf) {
    const c = await aligner.check(spf, record.aspf);
    checks.push(c);
    if (isAligned(c)) spfAligned = c;
  }
  let dkimAligned: AlignmentCheck | null = null;
  // identical domains first: they align without DNS queries
  const ordered = [...dkim.filter((d) => d.domain === author), ...dkim.filter((d) => d.domain !== author)];
  for (const id of ordered) {
    // once a signature aligned, the others need no tree walks
    if (dkimAligned && id.result === 'pass' && id.domain !== author) continue;
    const c = await aligner.check(id, record.adkim);
    checks.push(c);
    if (!dkimAligned && isAligned(c)) dkimAligned = c;
  }
  const alignment: DmarcAlignment = {
    spf: spfAligned ? 'pass' : 'fail',
    dkim: dkimAligned ? 'pass' : 'fail',
    spfMode: record.aspf,
    dkimMode: record.adkim,
    spfDomain: spfAligned?.domain ?? null,
    dkimDomain: dkimAligned?.domain ?? null,
    checks,
  };
  const pass = spfAligned !== null || dkimAligned !== null;
  const errors = checks.filter((c) => c.outcome === 'error');

  // the policy that applies: p at the Author Domain, else sp or np (§4.10.1)
  let applied: 'p' | 'sp' | 'np' = 'p';
  let domainExists: boolean | undefined;
  let existenceError: string | null = null;
  if (discovery.policyDomain !== author) {
    applied = record.sp ? 'sp' : 'p';
    // np= applies to a non-existent Author Domain (NXDOMAIN, §3.2.13)
    if (record.np) {
      const exists = await lookup.exists(author);
      if (typeof exists === 'boolean') {
        domainExists = exists;
        if (!exists) applied = 'np';
      } else if (record.np !== (record.sp ?? record.p)) {
        // which of the two policies applies is unknown; with equal values it does not matter
        existenceError = `the existence check of ${author} failed (${exists})`;
      }
    }
  }
  const policy = (applied === 'p' ? record.p : applied === 'sp' ? record.sp : record.np) ?? 'none';

  const result: DmarcResult = {
    result: pass ? 'pass' : 'fail',
    policy,
    appliedPolicy: applied,
    disposition: 'none',
    alignment,
    fromDomain: author,
    policyDomain: discovery.policyDomain,
    orgDomain: aligner.knownOrg,
    record,
    testing: { t: record.t, pct: record.pct, sampledOut: false, reduced: false },
    ...(domainExists !== undefined ? { domainExists } : {}),
    reason: '',
    author: authorInfo,
    queries: lookup.queries,
  };
  const where = discovery.policyDomain === author ? '' : ` (record of ${discovery.policyDomain})`;
  if (pass) {
    const by = [spfAligned, dkimAligned].filter((c): c is AlignmentCheck => c !== null).map(describeCheck);
    result.reason = `${by.join(' and ')} aligns with ${author}${where}`;
    return result;
  }
  if (errors.length > 0 || existenceError) {
    const why = existenceError ?? errors.map(describeCheck).join('; ');
    return {
      ...result,
      result: 'temperror',
      disposition: 'none',
      reason: `DMARC could not be evaluated: ${why}`,
    };
  }
  // fail: the disposition the owner asks for, lowered one level under testing
  let disposition = policy;
  const testing = result.testing;
  if (policy !== 'none') {
    if (record.t) {
      disposition = lowerPolicy(policy);
      testing.reduced = true;
    } else if (settings.honorPct && record.pct < 100) {
      const sampled = settings.random() * 100 < record.pct;
      if (!sampled) {
        disposition = lowerPolicy(policy);
        testing.sampledOut = true;
        testing.reduced = true;
      }
    }
  }
  result.disposition = disposition;
  const tried = checks.length ? checks.map(describeCheck).join('; ') : 'no SPF or DKIM result';
  const test = testing.reduced ? (record.t ? ', t=y testing' : `, outside the pct=${record.pct} sample`) : '';
  result.reason = `no authenticated identifier aligns with ${author}: ${tried}; ${applied}=${policy}${where}${test}`;
  return result;
}

/** Picks the strictest of several Author Domains' results (§11.5). */
function strictest(results: DmarcResult[]): DmarcResult {
  const fails = results.filter((r) => r.result === 'fail');
  if (fails.length > 0) {
    return fails.reduce((a, b) => (STRICTNESS[b.disposition] > STRICTNESS[a.disposition] ? b : a));
  }
  for (const code of ['temperror', 'permerror', 'pass'] as const) {
    const r = results.find((x) => x.result === code);
    if (r) return r;
  }
  return results[0]!;
}

/** Evaluates DMARC for a message. Never throws for DNS trouble or malformed input. */
export async function checkDmarc(
  input: DmarcInput,
  deps: DmarcDeps,
  options: DmarcOptions = {},
): Promise<DmarcResult> {
  const lookup = new DmarcLookup(deps.resolver, deps.signal);
  const settings: Settings = {
    honorPct: options.honorPct ?? true,
    maxAlignmentQueries: options.maxAlignmentQueries ?? DEFAULT_MAX_ALIGNMENT_QUERIES,
    random: deps.random ?? Math.random,
  };
  const extraction = extractAuthorDomains(input.from);
  const author = authorSummary(extraction);
  const problems = extraction.problems;
  const stop = (reason: string, fromDomain = ''): DmarcResult =>
    base(fromDomain, author, 'permerror', reason, 0);

  if (problems.includes('absent')) return stop('the message has no From header field');
  let domains = extraction.domains;
  if (problems.includes('syntax')) {
    if (options.malformedFrom !== 'salvage' || extraction.salvaged.length === 0) {
      return stop(`the From field does not parse (${extraction.detail}); no Author Domain`);
    }
    domains = extraction.salvaged;
  } else if (problems.includes('no-address')) {
    return stop('the From field holds no address');
  }
  const several =
    domains.length + (problems.includes('invalid-domain') ? 1 : 0) > 1 ||
    problems.includes('multiple-fields');
  if (domains.length === 0) {
    return stop(extraction.detail ?? 'no usable Author Domain in the From field');
  }
  if (several && options.multipleAuthors === 'permerror') {
    const what = problems.includes('multiple-fields')
      ? `${extraction.fields} From fields`
      : `${domains.length} Author Domains`;
    return stop(`${what}: DMARC validation is not possible (RFC 9989 §5.3.1)`, domains[0]);
  }
  const max = options.maxAuthorDomains ?? DEFAULT_MAX_AUTHOR_DOMAINS;
  if (domains.length > max) {
    return stop(
      `${domains.length} Author Domains, more than the ${max} evaluated (RFC 9989 §11.5)`,
      domains[0],
    );
  }

  const results: DmarcResult[] = [];
  for (const domain of domains) results.push(await evaluateDomain(domain, input, lookup, settings, author));
  if (problems.includes('invalid-domain')) {
    results.push(base('', author, 'permerror', extraction.detail ?? 'an Author Domain is not usable', 0));
  }
  for (const r of results) r.queries = lookup.queries;
  if (results.length === 1) return results[0]!;
  const top = strictest(results);
  const prefix = problems.includes('multiple-fields')
    ? `${extraction.fields} From fields`
    : `${results.length} Author Domains`;
  return {
    ...top,
    reason: `${prefix}, strictest result: ${top.reason}`,
    perDomain: results,
    queries: lookup.queries,
  };
}

/**
 * The dmarc= resinfo(s) for Authentication-Results (RFC 8601, RFC 9989 §9), one per Author
 * Domain evaluated, e.g. `dmarc=pass (p=reject dis=none) header.from=example.com`. The comment
 * shows the published p=, the sp=/np= value when that tag applied, t=y or pct= when they lowered
 * the disposition, and dis= (the disposition). With `policyProperty`, `policy.dmarc=` (the
 * disposition, §9.1) is added as well.
 */
export function dmarcMethodResults(r: DmarcResult, opts: { policyProperty?: boolean } = {}): MethodResult[] {
  const all = r.perDomain ?? [r];
  return all.map((x) => methodResult(x, opts.policyProperty ?? false));
}

function methodResult(r: DmarcResult, policyProperty: boolean): MethodResult {
  const properties: Array<[string, string]> = [];
  if (r.fromDomain) properties.push(['header.from', r.fromDomain]);
  const out: MethodResult = { method: 'dmarc', result: r.result, properties };
  const rec: DmarcRecord | null = r.record;
  if (rec && (r.result === 'pass' || r.result === 'fail')) {
    const words = [`p=${rec.p ?? 'none'}`];
    if (r.appliedPolicy === 'sp' || r.appliedPolicy === 'np') words.push(`${r.appliedPolicy}=${r.policy}`);
    if (r.testing.reduced) words.push(rec.t ? 't=y' : `pct=${rec.pct}`);
    words.push(`dis=${r.disposition}`);
    out.comment = words.join(' ');
    if (policyProperty) properties.push(['policy.dmarc', r.disposition]);
  } else if (r.result === 'permerror' || r.result === 'temperror') {
    out.comment = r.reason.length > 120 ? `${r.reason.slice(0, 117)}...` : r.reason;
  }
  return out;
}
