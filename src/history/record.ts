/**
 * A verdict record: one final verdict (every action but CONTINUE) summarized as plain JSON, for
 * the verdict history (store.ts), the dashboard's live stream and the threshold what-if
 * (whatif.ts). It keeps who sent what, what was decided and why, the mail-log facts string, and
 * the typed numbers a what-if needs to decide again under other thresholds (SIQ score, rating
 * scores, DNS list score and zones, the identity, DMARC and ARC).
 *
 * A record never holds the session's live objects: `recordFromEvent` copies what it needs, so
 * the session may go on changing its facts.
 */
import type { Facts } from '../engine/facts.ts';
import type { VerdictEvent } from '../engine/observer.ts';
import type { Action, SmtpReply, Stage } from '../engine/verdict.ts';
import { factsSummary } from '../telemetry/maillog.ts';

/** The record layout's version; a store refuses records it does not know. */
export const RECORD_VERSION = 1;

export interface SiqNumbers {
  /** the SIQ outcome's kind: score, unknown, tempfail, redirect, error, timeout, skipped, failed */
  kind: string;
  /** 0..100 when the server gave a score, else null */
  score: number | null;
  /** the sub-scores 0..100; null when unknown (-1) or not given */
  ipScore: number | null;
  domainScore: number | null;
  relScore: number | null;
  confidence: number | null;
}

export interface RatingNumbers {
  /** the rated (identity) domain */
  domain: string;
  status: 'found' | 'none' | 'temperror' | 'permerror';
  /** weighted average, min and max of the scored ratings; null when nothing could be scored */
  average: number | null;
  min: number | null;
  max: number | null;
  /** rating services that did not answer (temperror) */
  failed: number;
  /** service:grade, as in the explanation */
  grades: string[];
}

export interface DnsblZoneNumbers {
  zone: string;
  type: 'ip' | 'domain';
  weight: number;
  status: 'listed' | 'not-listed' | 'error' | 'disabled';
}

export interface DnsblNumbers {
  /** sum of the weights of the listing entries (ip and domain lists together) */
  score: number;
  /** the IP lists' part of the score: what was known at connect (domain lists answer at MAIL) */
  ipScore: number;
  listed: string[];
  /** every list asked (a domain list once per domain it looked up), with its weight and status */
  zones: DnsblZoneNumbers[];
}

export interface VerdictRecord {
  /** RECORD_VERSION */
  v: number;
  /** when the verdict was made, milliseconds since the epoch */
  time: number;
  /** the client IP */
  ip: string;
  helo: string | null;
  /** the ID command's domain */
  id: string | null;
  /** the MAIL FROM address ('' is the null sender); null before MAIL */
  mailFrom: string | null;
  /** the recipients the verdict is about (a RCPT-stage verdict: its own recipient only) */
  rcpt: string[];
  /** a RCPT-stage verdict's recipient */
  recipient: string | null;
  stage: Stage;
  action: Action;
  reply: SmtpReply;
  reason: string;
  explanation: string[];
  /** the mail-log line's facts string (factsSummary) */
  facts: string;
  /** the stage's time in milliseconds */
  ms: number;
  /** the verdict asked the adapter to tag the subject */
  subjectTagged: boolean;
  siq: SiqNumbers | null;
  ratings: RatingNumbers | null;
  dnsbl: DnsblNumbers | null;
  /** the identity (ID command, else the HELO name) and its SPF1 result */
  identity: { domain: string; source: 'id' | 'helo'; result: string } | null;
  /** the operator's local lists: the IP's match */
  localIp: 'allow' | 'block' | 'none' | null;
  iprev: string | null;
  /** SPF for MAIL FROM */
  spf: string | null;
  /** one word for the message: pass when any signature passed, else the first one's result */
  dkim: string | null;
  dmarc: { result: string; disposition: string; domain: string } | null;
  /** the ARC chain's cv and its newest sealer's domain (when the chain passed) */
  arc: { cv: string; sealer: string | null } | null;
}

const sub = (n: number): number | null => (n >= 0 && n <= 100 ? n : null);

function siqNumbers(f: Facts): SiqNumbers | null {
  const s = f.siq?.siq;
  if (!s) return null;
  const r = s.result;
  if (r.status !== 'answer') return { kind: s.kind, score: null, ipScore: null, domainScore: null, relScore: null, confidence: null };
  const reply = r.reply;
  return {
    kind: s.kind,
    score: s.kind === 'score' ? reply.score : null,
    ipScore: sub(reply.ipScore),
    domainScore: sub(reply.domainScore),
    relScore: sub(reply.relScore),
    confidence: sub(reply.confidence),
  };
}

function ratingNumbers(f: Facts): RatingNumbers | null {
  const r = f.ratings;
  if (!r) return null;
  return {
    domain: r.domain,
    status: r.status,
    average: r.scores.average,
    min: r.scores.min,
    max: r.scores.max,
    failed: r.outcomes.filter((o) => o.status === 'temperror').length,
    grades: r.ratings.map((g) => `${g.service}:${g.grade}`),
  };
}

function dnsblNumbers(f: Facts): DnsblNumbers | null {
  const d = f.dnsbl;
  if (!d) return null;
  // an IP list has one subject, so one result per config entry: its listed weights sum exactly
  const ipScore = d.results.filter((z) => z.type === 'ip' && z.status === 'listed').reduce((sum, z) => sum + z.weight, 0);
  return {
    score: d.score,
    ipScore,
    listed: [...d.listed],
    zones: d.results.map((z) => ({ zone: z.zone, type: z.type, weight: z.weight, status: z.status })),
  };
}

function dkimWord(f: Facts): string | null {
  if (!f.dkim || f.dkim.length === 0) return null;
  if (f.dkim.some((d) => d.result === 'pass')) return 'pass';
  return f.dkim[0]!.result;
}

/** Summarizes a verdict event (copying: the event's facts stay live in the session). */
export function recordFromEvent(event: VerdictEvent, now: number = Date.now()): VerdictRecord {
  const { facts: f, verdict: v } = event;
  const e = f.envelope;
  const arc = f.arc;
  return {
    v: RECORD_VERSION,
    time: now,
    ip: e.ip,
    helo: e.helo ?? null,
    id: e.id ?? null,
    mailFrom: e.mailFrom ?? null,
    rcpt: event.recipient !== undefined ? [event.recipient] : [...e.rcpt],
    recipient: event.recipient ?? null,
    stage: v.stage,
    action: v.action,
    reply: { code: v.reply.code, xcode: v.reply.xcode, text: v.reply.text },
    reason: v.reason,
    explanation: [...v.explanation],
    facts: factsSummary(f),
    ms: Math.round(event.ms * 10) / 10,
    subjectTagged: v.subjectTag !== undefined && v.subjectTag !== '',
    siq: siqNumbers(f),
    ratings: ratingNumbers(f),
    dnsbl: dnsblNumbers(f),
    identity: f.identity ? { domain: f.identity.domain, source: f.identity.source, result: f.identity.result } : null,
    localIp: f.localList ? f.localList.ip : null,
    iprev: f.iprev?.result ?? null,
    spf: f.spfMailFrom?.result ?? null,
    dkim: dkimWord(f),
    dmarc: f.dmarc ? { result: f.dmarc.result, disposition: f.dmarc.disposition, domain: f.dmarc.fromDomain } : null,
    arc: arc ? { cv: arc.cv, sealer: arc.cv === 'pass' ? (arc.sealers[arc.sealers.length - 1]?.d.toLowerCase() ?? null) : null } : null,
  };
}

/** The sender a record is counted under: the MAIL FROM domain, else the identity, else the HELO name. */
export function senderOf(r: VerdictRecord): string {
  if (r.mailFrom) {
    const at = r.mailFrom.lastIndexOf('@');
    if (at >= 0 && at < r.mailFrom.length - 1) return r.mailFrom.slice(at + 1).toLowerCase();
  }
  if (r.id) return r.id.toLowerCase();
  if (r.identity) return r.identity.domain;
  if (r.helo) return r.helo.toLowerCase();
  return r.mailFrom === '' ? '<>' : '-';
}

export class RecordError extends Error {
  override name = 'RecordError';
}

const STAGES: readonly string[] = ['connect', 'helo', 'id', 'mail', 'rcpt', 'data', 'eom'];
const ACTIONS: readonly string[] = ['ACCEPT', 'REJECT', 'FILTER', 'CONTINUE', 'TEMPFAIL', 'DISCARD'];

/**
 * Reads a record back from stored JSON text, checking the fields every reader relies on; a
 * record that is not one (a foreign row, a newer layout) is a RecordError, never a crash later.
 */
export function parseRecord(text: string): VerdictRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new RecordError(`not JSON: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new RecordError('not a JSON object');
  const r = raw as Record<string, unknown>;
  if (r.v !== RECORD_VERSION) throw new RecordError(`unknown record version ${JSON.stringify(r.v)}`);
  if (typeof r.time !== 'number' || !Number.isFinite(r.time)) throw new RecordError('"time" is not a number');
  if (typeof r.ip !== 'string') throw new RecordError('"ip" is not a string');
  if (typeof r.stage !== 'string' || !STAGES.includes(r.stage)) throw new RecordError(`bad "stage" ${JSON.stringify(r.stage)}`);
  if (typeof r.action !== 'string' || !ACTIONS.includes(r.action)) throw new RecordError(`bad "action" ${JSON.stringify(r.action)}`);
  if (typeof r.reason !== 'string') throw new RecordError('"reason" is not a string');
  if (!Array.isArray(r.rcpt) || !Array.isArray(r.explanation)) throw new RecordError('"rcpt" and "explanation" must be lists');
  return raw as VerdictRecord;
}
