/**
 * The score: a pure function of a profile and the facts the checks found, so the web UI can show
 * "this IP and domain would score N" for a profile being edited without asking DNS again.
 *
 *   SCORE        base + the deltas of every enabled check that answered, clamped to 0..100;
 *                -1 (UNKNOWN) when no enabled check answered at all
 *   IP-SCORE     base + the deltas of the IP checks, clamped; -1 when none of them answered
 *   DOMAIN-SCORE the same over the domain checks; REL-SCORE over the IP/domain relationship checks
 *   CONFIDENCE   100 × answered / asked, over the enabled checks that apply to the question
 *                (domain and relationship checks only when a domain was given; the local lists
 *                are overrides and not counted)
 *   TTL          the profile's, at most 60 s when a check failed for DNS trouble
 *   TEXT         "dnsbl=pass iprev=fail spf_pass=pass ..." for the checks that answered, ≤ 255 octets
 */
import type { SiqAnswerDetails } from '../codec.ts';
import { CHECK_GROUP, CHECK_IDS, type CheckId, type SiqProfile } from './profile.ts';

/** A check's finding: pass, fail, neutral, or none (no information: not applicable, no data, DNS trouble). */
export type CheckOutcome = 'pass' | 'fail' | 'neutral' | 'none';

export interface CheckFact {
  outcome: CheckOutcome;
  /** one short human sentence */
  detail: string;
  /** the check could not answer because of DNS trouble (shortens the TTL) */
  error?: boolean;
}

/** What the checks found about one IP and domain (plain JSON). A check left out was not run. */
export interface SiqFacts {
  ip: string;
  /** '' for an IP-only question */
  domain: string;
  checks: Partial<Record<CheckId, CheckFact>>;
}

export interface Contribution {
  check: CheckId;
  outcome: CheckOutcome;
  /** what it added to the score (0 for none) */
  delta: number;
  detail: string;
}

/** What a reply carries: the score, and the sub-scores, confidence, TTL and TEXT. */
export interface SiqAnswer extends SiqAnswerDetails {
  /** 0..100, or -1 UNKNOWN */
  score: number;
}

export interface SiqScore extends SiqAnswer {
  /** the enabled checks in TEXT order, with what each added */
  contributions: Contribution[];
}

/** TTL cap when a check hit DNS trouble, seconds. */
export const ERROR_TTL = 60;

const clamp = (v: number): number => Math.max(0, Math.min(100, Math.round(v)));

export function scoreQuery(profile: SiqProfile, facts: SiqFacts): SiqScore {
  const hasDomain = facts.domain !== '';
  const sums = { ip: 0, domain: 0, rel: 0 };
  const answeredIn = { ip: 0, domain: 0, rel: 0 };
  let total = 0;
  let answered = 0;
  let asked = 0;
  let counted = 0;
  let error = false;
  const contributions: Contribution[] = [];
  for (const id of CHECK_IDS) {
    const weights = profile.checks[id];
    if (!weights.enabled) continue;
    const group = CHECK_GROUP[id];
    const fact = facts.checks[id] ?? { outcome: 'none' as const, detail: 'not run' };
    const local = id === 'local_ip' || id === 'local_domain';
    const applies = group === 'ip' || hasDomain;
    if (applies && !local) asked++;
    if (fact.error) error = true;
    const delta = fact.outcome === 'none' ? 0 : weights[fact.outcome];
    contributions.push({ check: id, outcome: fact.outcome, delta, detail: fact.detail });
    if (fact.outcome === 'none') continue;
    answered++;
    if (applies && !local) counted++;
    total += delta;
    sums[group] += delta;
    answeredIn[group]++;
  }
  const text = summary(contributions);
  const ttl = error ? Math.min(profile.ttl, ERROR_TTL) : profile.ttl;
  if (answered === 0)
    return {
      score: -1,
      ipScore: -1,
      domainScore: -1,
      relScore: -1,
      confidence: -1,
      ttl,
      text,
      contributions,
    };
  const sub = (g: 'ip' | 'domain' | 'rel'): number =>
    answeredIn[g] > 0 ? clamp(profile.base + sums[g]) : -1;
  return {
    score: clamp(profile.base + total),
    ipScore: sub('ip'),
    domainScore: sub('domain'),
    relScore: sub('rel'),
    confidence: asked > 0 ? Math.round((100 * counted) / asked) : -1,
    ttl,
    text,
    contributions,
  };
}

/** The same function under the name the web UI uses for "what would this score". */
export const preview = scoreQuery;

/** "dnsbl=pass iprev=fail ..." over the checks that answered, cut at a space to fit 255 octets. */
export function summary(contributions: readonly Contribution[]): string {
  let out = '';
  for (const c of contributions) {
    if (c.outcome === 'none') continue;
    const item = `${c.check}=${c.outcome}`;
    const next = out === '' ? item : `${out} ${item}`;
    if (next.length > 255) break;
    out = next;
  }
  return out;
}
