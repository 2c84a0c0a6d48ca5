/**
 * The threshold what-if: over recorded verdicts, what would have happened under other
 * thresholds — SIQ tag and reject scores (`siq.tag_score`, `siq.reject_score`), the DNS list
 * score (`prescreen.threshold`) and the global rating thresholds (`ratings.reject`,
 * `ratings.accept`) — and what that changes against what did happen. Pure: records and a config
 * in, a report out (the dashboard and the replay tool both use it).
 *
 * How a record is decided again (mirroring src/policy/decide.ts, rule by rule and stage by stage):
 *
 * - The session runs connect, helo, id, mail, rcpt, eom; each stage runs the rules in order
 *   (1 local lists, 2 DNS lists, 3 connection checks, 4 identity, 5 MAIL FROM SPF, 5b SIQ,
 *   6 ratings, 7 DMARC, 8 the end-of-message default) and the first final verdict ends it.
 * - The record's own verdict came from one rule at one stage. When that rule does not read a
 *   threshold (local lists, SPF, DMARC, …) it still fires at the same point under any thresholds.
 * - The threshold rules are evaluated again at every stage where their facts existed: the IP
 *   lists' score from connect, the domain lists' from MAIL, SIQ from MAIL, the ratings once the
 *   identity is ready (the ID stage, or MAIL for an identity from HELO; RCPT and the end with
 *   per-recipient thresholds). The earliest firing point wins, as in the session.
 * - When the record's own rule read a threshold, it is decided again together with the other
 *   threshold rules up to its own point. When none fires there: at the end of the message the
 *   DMARC rule and the default decide (ACCEPT when DNS allow-listed, else FILTER); before it,
 *   rules that read no threshold would have had their turn next, and then checks that never
 *   ran, so the outcome is unknown (`action: null`).
 *
 * Not modelled: a policy hook's own changes (a hook's verdict is kept where it was made), a
 * second HELO or MAIL FROM in one session (the record holds the last message's facts).
 */
import type { Action, Stage } from '../engine/verdict.ts';
import type { Config, Thresholds } from '../policy/config.ts';
import { thresholdsFor } from '../policy/decide.ts';
import { senderOf, type VerdictRecord } from './record.ts';

/** The thresholds a what-if tries; a key left out keeps the config's value. */
export interface Candidate {
  /** siq.tag_score: a score at or below it tags a FILTERed message; -1 = off */
  siqTagScore?: number;
  /** siq.reject_score: a score at or below it is rejected; -1 = off */
  siqRejectScore?: number;
  /** prescreen.threshold: a DNS list score at or above it is rejected (unless allow-listed) */
  dnsblThreshold?: number;
  /** ratings.reject (global): null = off */
  ratingsReject?: Thresholds | null;
  /** ratings.accept (global): null = off */
  ratingsAccept?: Thresholds | null;
}

/** The config with the candidate's thresholds (a copy; the config is not changed). */
export function withCandidate(config: Config, c: Candidate): Config {
  const out: Config = {
    ...config,
    prescreen: { ...config.prescreen },
    siq: { ...config.siq },
    ratings: { ...config.ratings },
  };
  if (c.siqTagScore !== undefined) out.siq.tagScore = c.siqTagScore;
  if (c.siqRejectScore !== undefined) out.siq.rejectScore = c.siqRejectScore;
  if (c.dnsblThreshold !== undefined) out.prescreen.threshold = c.dnsblThreshold;
  if (c.ratingsReject !== undefined) out.ratings.reject = c.ratingsReject === null ? null : { ...c.ratingsReject };
  if (c.ratingsAccept !== undefined) out.ratings.accept = c.ratingsAccept === null ? null : { ...c.ratingsAccept };
  return out;
}

/** The config's current values of the what-if's thresholds. */
export function candidateOf(config: Config): Required<Candidate> {
  return {
    siqTagScore: config.siq.tagScore,
    siqRejectScore: config.siq.rejectScore,
    dnsblThreshold: config.prescreen.threshold,
    ratingsReject: config.ratings.reject,
    ratingsAccept: config.ratings.accept,
  };
}

export interface Outcome {
  /** null: the session would have gone on past the point it stopped; later checks never ran */
  action: Action | null;
  reason: string;
  /** FILTER with a subject tag */
  tagged: boolean;
  stage: Stage | null;
}

const STAGE_ORDER: Record<Stage, number> = { connect: 0, helo: 1, id: 2, mail: 3, rcpt: 4, data: 5, eom: 6 };

/** A point in the session: a stage and a rule's place within it. */
interface Point {
  stage: Stage;
  rank: number;
}

interface Fired extends Point {
  action: Action;
  reason: string;
}

const before = (a: Point, b: Point): boolean => STAGE_ORDER[a.stage] < STAGE_ORDER[b.stage] || (a.stage === b.stage && a.rank < b.rank);

/**
 * Where the record's own verdict was made, and whether its rule reads one of the what-if's
 * thresholds (then it is decided again rather than kept).
 */
export function ruleOf(r: VerdictRecord): { rank: number; thresholdDependent: boolean } {
  switch (r.reason) {
    case 'timeout':
    case 'internal-error':
      return { rank: 0, thresholdDependent: false };
    case 'local-block':
    case 'local-allow':
      return { rank: 1, thresholdDependent: false };
    case 'dnsbl':
      return { rank: 2, thresholdDependent: true };
    case 'helo-invalid':
    case 'iprev-fail':
    case 'csa-fail':
    case 'spf-helo-fail':
      return { rank: 3, thresholdDependent: false };
    case 'identity-spf-fail':
      return { rank: 4, thresholdDependent: false };
    case 'spf-fail':
      return { rank: 5, thresholdDependent: false };
    case 'siq-tempfail':
      return { rank: 5.1, thresholdDependent: false };
    case 'siq-reject':
      return { rank: 5.2, thresholdDependent: true };
    case 'reputation':
    case 'reputable':
      return { rank: 6, thresholdDependent: true };
    case 'dmarc-reject':
      return { rank: 7, thresholdDependent: false };
    case 'dns-allow':
    case 'unknown-sender':
      return { rank: 8, thresholdDependent: false };
    case 'dns-temperror': {
      // decide.ts's tempfail() explains with "<what>: <detail>"; <what> names the rule
      const what = r.explanation[0] ?? '';
      if (what.startsWith('the DNS allow lists')) return { rank: 2, thresholdDependent: true };
      if (what.startsWith('SPF of')) return { rank: 5, thresholdDependent: false };
      if (what.startsWith('ratings of')) return { rank: 6, thresholdDependent: r.ratings?.status === 'found' };
      return { rank: 4, thresholdDependent: false };
    }
    default:
      // a policy hook's verdict: kept, after the default rules of its stage
      return { rank: 9, thresholdDependent: false };
  }
}

/** The stages the record's session went through, up to its verdict's stage. */
function stagesOf(r: VerdictRecord): Stage[] {
  const out: Stage[] = ['connect'];
  if (r.helo !== null) out.push('helo');
  if (r.id !== null) out.push('id');
  if (r.mailFrom !== null) out.push('mail');
  if (r.rcpt.length > 0) out.push('rcpt');
  out.push('eom');
  const last = STAGE_ORDER[r.stage];
  const reached = out.filter((s) => STAGE_ORDER[s] <= last);
  if (!reached.includes(r.stage)) reached.push(r.stage);
  return reached.sort((a, b) => STAGE_ORDER[a] - STAGE_ORDER[b]);
}

function meets(s: { min: number | null; max: number | null; average: number | null }, t: Thresholds, kind: 'accept' | 'reject'): boolean {
  if (s.average === null || s.min === null || s.max === null) return false;
  if (t.average === undefined && t.min === undefined && t.max === undefined) return false;
  if (kind === 'accept') {
    return (t.average === undefined || s.average >= t.average) && (t.min === undefined || s.min >= t.min) && (t.max === undefined || s.max >= t.max);
  }
  return (t.average === undefined || s.average <= t.average) && (t.max === undefined || s.max <= t.max) && (t.min === undefined || s.min <= t.min);
}

/** The DNS list rule at a stage with a given score: rule 2 of decide.ts. */
function dnsblAt(r: VerdictRecord, stage: Stage, config: Config): Fired | null {
  const d = r.dnsbl;
  if (!d) return null;
  const beforeMail = STAGE_ORDER[stage] < STAGE_ORDER.mail;
  const zones = beforeMail ? d.zones.filter((z) => z.type === 'ip') : d.zones;
  // before MAIL only the IP lists had answered (no IP list at all: no DNS list fact yet)
  if (beforeMail && zones.length === 0) return null;
  const score = beforeMail ? d.ipScore : d.score;
  const allowListed = score <= config.prescreen.allowThreshold;
  if (allowListed || score < config.prescreen.threshold) return null;
  const failedAllowLists = zones.some((z) => z.weight < 0 && z.status === 'error');
  if (failedAllowLists) return { stage, rank: 2, action: 'TEMPFAIL', reason: 'dns-temperror' };
  return { stage, rank: 2, action: 'REJECT', reason: 'dnsbl' };
}

/** The ratings rule at a stage: rule 6 of decide.ts (the threshold part). */
function ratingsAt(r: VerdictRecord, stage: Stage, config: Config, recipient: string | undefined): Fired | null {
  const ratings = r.ratings;
  if (!ratings || r.identity?.result !== 'pass' || ratings.status !== 'found') return null;
  const t = thresholdsFor(config, recipient);
  if (t.reject && meets(ratings, t.reject, 'reject')) {
    if (ratings.failed > 0 && config.ratings.tempfailOnError) return { stage, rank: 6, action: 'TEMPFAIL', reason: 'dns-temperror' };
    return { stage, rank: 6, action: 'REJECT', reason: 'reputation' };
  }
  if (t.accept && meets(ratings, t.accept, 'accept')) return { stage, rank: 6, action: 'ACCEPT', reason: 'reputable' };
  return null;
}

/** The earliest firing of a rule that reads a threshold, over the stages the session went through. */
function thresholdRules(r: VerdictRecord, config: Config): Fired | null {
  const stages = stagesOf(r);
  const fired: Fired[] = [];
  // 2. DNS lists: the IP lists from connect, all lists from MAIL (same facts in between)
  const firstDnsbl = dnsblAt(r, 'connect', config);
  if (firstDnsbl) fired.push(firstDnsbl);
  for (const s of stages) {
    if (STAGE_ORDER[s] < STAGE_ORDER.mail) continue;
    const f = dnsblAt(r, s, config);
    if (f) fired.push(f);
    break;
  }
  // 5b. SIQ: asked at MAIL
  const score = r.siq?.score ?? null;
  if (score !== null && config.siq.rejectScore >= 0 && score <= config.siq.rejectScore) {
    const at = stages.find((s) => STAGE_ORDER[s] >= STAGE_ORDER.mail);
    if (at) fired.push({ stage: at, rank: 5.2, action: 'REJECT', reason: 'siq-reject' });
  }
  // 6. ratings, once the identity is ready
  if (r.identity && r.ratings) {
    const perRecipient = config.ratings.recipients.length > 0;
    const recipient = r.recipient ?? r.rcpt[0];
    for (const s of stages) {
      if (s === 'helo' || s === 'connect') continue;
      if (s === 'id' && r.identity.source !== 'id') continue;
      if (perRecipient && s !== 'rcpt' && s !== 'eom') continue;
      const f = ratingsAt(r, s, config, s === 'rcpt' ? recipient : undefined);
      if (f) {
        fired.push(f);
        break;
      }
      // without per-recipient thresholds the same facts give the same answer at later stages
      if (!perRecipient) break;
    }
  }
  let first: Fired | null = null;
  for (const f of fired) if (!first || before(f, first)) first = f;
  return first;
}

function siqTags(r: VerdictRecord, config: Config): boolean {
  const score = r.siq?.score ?? null;
  return score !== null && config.siq.tagScore >= 0 && score <= config.siq.tagScore;
}

/** The subject tag of a FILTER verdict, as makeVerdict decides it. */
function taggedUnder(r: VerdictRecord, action: Action | null, config: Config): boolean {
  if (action !== 'FILTER') return false;
  const tag = siqTags(r, config) ? config.siq.subjectTag : config.filter.subjectTag;
  return tag !== '';
}

/** The end of the message when no earlier rule fired: DMARC (rule 7), then the default (8). */
function endOfMessage(r: VerdictRecord, config: Config): Fired {
  const d = r.dmarc;
  if (d && d.result === 'fail' && d.disposition === 'reject' && config.dmarc.rejectOnPolicy) {
    const sealer = r.arc?.cv === 'pass' ? r.arc.sealer : null;
    const trusted = sealer !== null && config.arc.trustedSealers.includes(sealer);
    if (!config.dmarc.exempt.includes(d.domain) && !trusted) return { stage: 'eom', rank: 7, action: 'REJECT', reason: 'dmarc-reject' };
  }
  const score = r.dnsbl?.score;
  const allowListed = score !== undefined && score <= config.prescreen.allowThreshold;
  return allowListed ? { stage: 'eom', rank: 8, action: 'ACCEPT', reason: 'dns-allow' } : { stage: 'eom', rank: 8, action: 'FILTER', reason: 'unknown-sender' };
}

/** What the policy would have decided for the record under `config`. */
export function decideAgain(r: VerdictRecord, config: Config): Outcome {
  const own = ruleOf(r);
  const fired = thresholdRules(r, config);
  let result: Fired | null;
  if (!own.thresholdDependent) {
    const kept: Fired = { stage: r.stage, rank: own.rank, action: r.action, reason: r.reason };
    result = fired && before(fired, kept) ? fired : kept;
  } else {
    // the record's own rule is decided again with the others up to its point; past it, rules that
    // read no threshold (and whose facts the record may not hold) would have had their turn first
    const own: Point = { stage: r.stage, rank: ruleOf(r).rank };
    if (fired && !before(own, fired)) result = fired;
    else result = r.stage === 'eom' ? endOfMessage(r, config) : null;
  }
  if (!result) return { action: null, reason: 'unknown', tagged: false, stage: null };
  // a verdict kept from a hook or an error keeps its own tag; the policy's FILTER is tagged anew
  const tagged = result.reason === r.reason && ruleOf(r).rank === 9 ? r.subjectTagged : taggedUnder(r, result.action, config);
  return { action: result.action, reason: result.reason, tagged, stage: result.stage };
}

// --- the report --------------------------------------------------------------------------------

export interface ChangeCounts {
  /** records looked at */
  records: number;
  /** records whose action or tag would change (unknown outcomes included) */
  changed: number;
  newlyRejected: number;
  noLongerRejected: number;
  newlyTagged: number;
  noLongerTagged: number;
  newlyAccepted: number;
  noLongerAccepted: number;
  newlyTempfailed: number;
  /** the session would have gone on to checks that never ran: outcome not known */
  unknown: number;
}

export interface GroupRow extends ChangeCounts {
  /** a sender domain or a client IP */
  key: string;
}

export interface ChangeSample {
  time: number;
  ip: string;
  sender: string;
  stage: Stage;
  before: { action: Action; tagged: boolean; reason: string };
  after: Outcome;
}

export interface WhatIfReport {
  /** the thresholds compared: the config's and the candidate's */
  current: Required<Candidate>;
  candidate: Required<Candidate>;
  totals: ChangeCounts;
  rejectedBefore: number;
  rejectedAfter: number;
  taggedBefore: number;
  taggedAfter: number;
  /** before → after actions ("?" for unknown), with counts, most first */
  transitions: Array<{ from: string; to: string; count: number }>;
  /** the senders (MAIL FROM domain, else identity, else HELO) with the most changes */
  senders: GroupRow[];
  /** the client IPs with the most changes */
  clients: GroupRow[];
  /** the newest changed records (at most `samples`) */
  samples: ChangeSample[];
}

export interface WhatIfOptions {
  /** rows in the sender and client lists (default 20) */
  top?: number;
  /** changed records listed (default 50) */
  samples?: number;
}

function zero(): ChangeCounts {
  return {
    records: 0,
    changed: 0,
    newlyRejected: 0,
    noLongerRejected: 0,
    newlyTagged: 0,
    noLongerTagged: 0,
    newlyAccepted: 0,
    noLongerAccepted: 0,
    newlyTempfailed: 0,
    unknown: 0,
  };
}

function tally(c: ChangeCounts, was: { action: Action; tagged: boolean }, now: Outcome): boolean {
  c.records++;
  const changed = now.action !== was.action || now.tagged !== was.tagged;
  if (!changed) return false;
  c.changed++;
  if (now.action === null) c.unknown++;
  if (now.action === 'REJECT' && was.action !== 'REJECT') c.newlyRejected++;
  if (was.action === 'REJECT' && now.action !== 'REJECT') c.noLongerRejected++;
  if (now.tagged && !was.tagged) c.newlyTagged++;
  if (was.tagged && !now.tagged) c.noLongerTagged++;
  if (now.action === 'ACCEPT' && was.action !== 'ACCEPT') c.newlyAccepted++;
  if (was.action === 'ACCEPT' && now.action !== 'ACCEPT') c.noLongerAccepted++;
  if (now.action === 'TEMPFAIL' && was.action !== 'TEMPFAIL') c.newlyTempfailed++;
  return true;
}

const label = (action: Action | null, tagged: boolean): string => (action === null ? '?' : tagged ? `${action}+tag` : action);

/** Compares what happened with what `candidate` (applied to `config`) would have decided. */
export function whatIf(records: Iterable<VerdictRecord>, config: Config, candidate: Candidate, options: WhatIfOptions = {}): WhatIfReport {
  const next = withCandidate(config, candidate);
  const totals = zero();
  const senders = new Map<string, GroupRow>();
  const clients = new Map<string, GroupRow>();
  const transitions = new Map<string, { from: string; to: string; count: number }>();
  const samples: ChangeSample[] = [];
  const maxSamples = options.samples ?? 50;
  let rejectedBefore = 0;
  let rejectedAfter = 0;
  let taggedBefore = 0;
  let taggedAfter = 0;
  for (const r of records) {
    const was = { action: r.action, tagged: r.subjectTagged };
    const now = decideAgain(r, next);
    if (was.action === 'REJECT') rejectedBefore++;
    if (now.action === 'REJECT') rejectedAfter++;
    if (was.tagged) taggedBefore++;
    if (now.tagged) taggedAfter++;
    const sender = senderOf(r);
    const s = senders.get(sender) ?? { key: sender, ...zero() };
    const c = clients.get(r.ip) ?? { key: r.ip, ...zero() };
    senders.set(sender, s);
    clients.set(r.ip, c);
    tally(s, was, now);
    tally(c, was, now);
    if (!tally(totals, was, now)) continue;
    const key = `${label(was.action, was.tagged)}\u0000${label(now.action, now.tagged)}`;
    const t = transitions.get(key) ?? { from: label(was.action, was.tagged), to: label(now.action, now.tagged), count: 0 };
    t.count++;
    transitions.set(key, t);
    samples.push({ time: r.time, ip: r.ip, sender, stage: r.stage, before: { ...was, reason: r.reason }, after: now });
    if (samples.length > maxSamples * 2) samples.splice(0, samples.length - maxSamples);
  }
  const top = options.top ?? 20;
  const rank = (rows: Iterable<GroupRow>) =>
    [...rows]
      .filter((g) => g.changed > 0)
      .sort((a, b) => b.changed - a.changed || b.records - a.records || (a.key < b.key ? -1 : 1))
      .slice(0, top);
  return {
    current: candidateOf(config),
    candidate: candidateOf(next),
    totals,
    rejectedBefore,
    rejectedAfter,
    taggedBefore,
    taggedAfter,
    transitions: [...transitions.values()].sort((a, b) => b.count - a.count),
    senders: rank(senders.values()),
    clients: rank(clients.values()),
    samples: samples.slice(-maxSamples).reverse(),
  };
}

// --- distributions -----------------------------------------------------------------------------

export interface Bucket {
  /** the bucket holds values v with from <= v < to (the last one: v <= to) */
  from: number;
  to: number;
  label: string;
  total: number;
  /** how the records in it were decided */
  byAction: Partial<Record<Action, number>>;
}

export interface Histogram {
  name: string;
  buckets: Bucket[];
  /** records without this number */
  missing: number;
}

function histogram(name: string, values: Array<{ v: number | null; action: Action }>, edges: number[], fmt: (from: number, to: number, last: boolean) => string): Histogram {
  const buckets: Bucket[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    buckets.push({ from: edges[i]!, to: edges[i + 1]!, label: fmt(edges[i]!, edges[i + 1]!, i + 2 === edges.length), total: 0, byAction: {} });
  }
  let missing = 0;
  for (const { v, action } of values) {
    if (v === null || !Number.isFinite(v) || buckets.length === 0) {
      missing++;
      continue;
    }
    let i = buckets.findIndex((b) => v >= b.from && v < b.to);
    if (i < 0) i = v < buckets[0]!.from ? 0 : buckets.length - 1;
    const b = buckets[i]!;
    b.total++;
    b.byAction[action] = (b.byAction[action] ?? 0) + 1;
  }
  return { name, buckets, missing };
}

/** Edges of width `step` (widened so there are at most `max` buckets) covering lo..hi. */
function edgesFor(lo: number, hi: number, step: number, max: number): number[] {
  let width = step;
  while ((Math.floor(hi / width) - Math.floor(lo / width) + 1) > max) width *= 2;
  const start = Math.floor(lo / width) * width;
  const edges: number[] = [];
  for (let e = start; e <= hi; e += width) edges.push(e);
  edges.push(edges[edges.length - 1]! + width);
  return edges;
}

function extent(values: number[]): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

function numbers(records: readonly VerdictRecord[], pick: (r: VerdictRecord) => number | null | undefined) {
  return records.map((r) => ({ v: pick(r) ?? null, action: r.action }));
}

/**
 * Score distributions, split by action: SIQ scores in tens (0–9 … 90–100), rating averages in
 * steps of 1 and DNS list scores per whole number (widened to at most 30 buckets).
 */
export function distributions(records: readonly VerdictRecord[]): { siq: Histogram; ratings: Histogram; dnsbl: Histogram } {
  const siqEdges = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 101];
  const siq = histogram('SIQ score', numbers(records, (r) => r.siq?.score), siqEdges, (f, t) => `${f}–${t - 1}`);
  const avg = numbers(records, (r) => (r.ratings?.status === 'found' ? r.ratings.average : null));
  const known = avg.map((x) => x.v).filter((v): v is number => v !== null && Number.isFinite(v));
  const ratings =
    known.length === 0
      ? { name: 'rating average', buckets: [], missing: records.length }
      : histogram('rating average', avg, edgesFor(...extent(known), 1, 30), (f, t) => `${f}–${t}`);
  const dn = numbers(records, (r) => r.dnsbl?.score);
  const dk = dn.map((x) => x.v).filter((v): v is number => v !== null);
  const dnsbl =
    dk.length === 0
      ? { name: 'DNS list score', buckets: [], missing: records.length }
      : histogram('DNS list score', dn, edgesFor(...extent(dk), 1, 30), (f, t) => (t - f === 1 ? String(f) : `${f}–${t - 1}`));
  return { siq, ratings, dnsbl };
}
