/**
 * The default policy: the one place that turns facts into an action, a reply and headers.
 * Philosophy (checkID's): reject only forgeries under the owner's strict policy and senders the
 * operator chose to reject; otherwise tag (FILTER) and let the operator observe first; DNS
 * trouble → TEMPFAIL 451 4.4.3, never a reject. See docs/policy.md.
 */
import type { Facts } from '../engine/facts.ts';
import type { Action, SmtpReply, Stage, Verdict } from '../engine/verdict.ts';
import { renderHeaders } from '../headers/render.ts';
import type { Config, Thresholds } from './config.ts';

export interface DecideContext {
  /** at the rcpt stage: the recipient being decided */
  recipient?: string;
}

const REPLY_OK: SmtpReply = { code: 250, xcode: '', text: 'Sender OK' };

function verdict(
  stage: Stage,
  action: Action,
  reply: SmtpReply,
  reason: string,
  explanation: string[],
  facts: Facts,
  config: Config,
): Verdict {
  const keepsMessage = action === 'ACCEPT' || action === 'FILTER';
  const v: Verdict = {
    action,
    reply,
    headers: keepsMessage ? renderHeaders(facts, config.headers, config.authservId) : [],
    removeHeaders: keepsMessage ? [...facts.forgedAuthResults] : [],
    stage,
    reason,
    explanation,
  };
  if (action === 'FILTER' && config.filter.subjectTag) v.subjectTag = config.filter.subjectTag;
  return v;
}

function tempfail(stage: Stage, what: string, detail: string, facts: Facts, config: Config): Verdict {
  return verdict(
    stage,
    'TEMPFAIL',
    { code: 451, xcode: '4.4.3', text: `Temporary DNS failure checking ${what}; try again later` },
    'dns-temperror',
    [`${what}: ${detail}`],
    facts,
    config,
  );
}

function reject(stage: Stage, code: number, xcode: string, text: string, reason: string, why: string[], facts: Facts, config: Config): Verdict {
  return verdict(stage, 'REJECT', { code, xcode, text }, reason, why, facts, config);
}

/** The thresholds in force for a recipient (the first matching `recipients` entry, else global). */
export function thresholdsFor(config: Config, recipient?: string): { accept: Thresholds | null; reject: Thresholds | null } {
  const global = { accept: config.ratings.accept, reject: config.ratings.reject };
  if (!recipient) return global;
  const r = recipient.toLowerCase().replace(/^<|>$/g, '');
  const domain = r.slice(r.lastIndexOf('@') + 1);
  for (const entry of config.ratings.recipients) {
    if (entry.match.some((m) => m === r || m === `@${domain}` || m === domain)) {
      return {
        accept: entry.accept !== undefined ? entry.accept : global.accept,
        reject: entry.reject !== undefined ? entry.reject : global.reject,
      };
    }
  }
  return global;
}

function meets(scores: { min: number | null; max: number | null; average: number | null }, t: Thresholds, kind: 'accept' | 'reject'): boolean {
  if (scores.average === null || scores.min === null || scores.max === null) return false;
  if (kind === 'accept') {
    if (t.average !== undefined && scores.average < t.average) return false;
    if (t.min !== undefined && scores.min < t.min) return false;
    if (t.max !== undefined && scores.max < t.max) return false;
    return t.average !== undefined || t.min !== undefined || t.max !== undefined;
  }
  if (t.average !== undefined && scores.average > t.average) return false;
  if (t.max !== undefined && scores.max > t.max) return false;
  if (t.min !== undefined && scores.min > t.min) return false;
  return t.average !== undefined || t.min !== undefined || t.max !== undefined;
}

/**
 * Decides at one stage from the facts gathered so far. Returns CONTINUE when nothing is certain
 * yet; at the end of the message (or `ctx.last`) it returns a final action.
 */
export function decide(stage: Stage, facts: Facts, config: Config, ctx: DecideContext = {}): Verdict {
  const ip = facts.envelope.ip;
  const why: string[] = [];

  // 1. local lists: the operator's own choices come first
  const local = facts.localList;
  if (local?.ip === 'block') {
    return reject(stage, 554, '5.7.1', `Client host [${ip}] blocked by local policy`, 'local-block', [`${ip} is on the local block list`], facts, config);
  }
  const blockedDomain = local?.domains.find((d) => d.list === 'block');
  if (blockedDomain) {
    return reject(stage, 550, '5.7.1', `Sender domain '${blockedDomain.domain}' blocked by local policy`, 'local-block', [`${blockedDomain.domain} matches the local block list entry ${blockedDomain.entry}`], facts, config);
  }
  if (local?.ip === 'allow') {
    return verdict(stage, 'ACCEPT', REPLY_OK, 'local-allow', [`${ip} is on the local allow list`], facts, config);
  }

  // 2. DNS block/allow lists (postscreen-style score)
  const dnsbl = facts.dnsbl;
  const allowListed = dnsbl !== undefined && dnsbl.score <= config.prescreen.allowThreshold;
  if (dnsbl && !allowListed && dnsbl.score >= config.prescreen.threshold) {
    const zones = dnsbl.listed.join(', ');
    return reject(stage, 554, '5.7.1', `Service unavailable; client host [${ip}] blocked using ${zones}`, 'dnsbl', [`DNSBL score ${dnsbl.score} ≥ threshold ${config.prescreen.threshold} (${zones})`], facts, config);
  }
  if (allowListed) why.push(`DNS allow-listed (score ${dnsbl.score})`);

  // 3. connection identity checks the operator chose to enforce
  if (facts.helo && config.helo.rejectInvalid && facts.helo.syntax === 'invalid') {
    return reject(stage, 501, '5.5.2', `HELO name '${facts.envelope.helo ?? ''}' is not a valid host name`, 'helo-invalid', ['HELO name is not an FQDN or address literal'], facts, config);
  }
  if (facts.iprev && config.iprev.rejectFail && facts.iprev.result === 'fail') {
    return reject(stage, 550, '5.7.25', `Client host [${ip}] has no forward-confirmed reverse DNS`, 'iprev-fail', [facts.iprev.reason], facts, config);
  }
  if (facts.csa && config.csa.rejectFail && facts.csa.result === 'fail') {
    return reject(stage, 550, '5.7.1', `Client host [${ip}] not authorized by the CSA record of '${facts.envelope.helo ?? ''}'`, 'csa-fail', [facts.csa.reason], facts, config);
  }
  if (facts.spfHelo && config.spf.rejectHeloFail && facts.spfHelo.result === 'fail') {
    const s = facts.spfHelo;
    return reject(stage, 550, '5.7.23', s.explanation ?? `SPF: '${s.domain}' does not designate '${ip}' as permitted sender`, 'spf-helo-fail', [s.reason], facts, config);
  }

  // 4. the declared identity, authenticated against the IP (the seed's check)
  const identity = facts.identity;
  if (identity) {
    if (identity.result === 'fail' && config.identity.rejectFail) {
      return reject(stage, 550, '5.7.1', `Sending MTA '${ip}' not authorized by '${identity.domain}'`, 'identity-spf-fail', [identity.spf.reason], facts, config);
    }
    if (identity.result === 'temperror') return tempfail(stage, `'${identity.domain}'`, identity.spf.reason, facts, config);
    why.push(`identity ${identity.domain} (${identity.source}): SPF ${identity.result}`);
  }

  // 5. MAIL FROM SPF: fail under the owner's "-all" is a forgery; temperror per RFC 7208 §8.6
  const spf = facts.spfMailFrom;
  if (spf) {
    if (spf.result === 'fail' && config.spf.rejectFail) {
      const text = spf.explanation ? `${spf.explanation}` : `SPF: '${spf.domain}' does not designate '${ip}' as permitted sender`;
      return reject(stage, 550, '5.7.23', text, 'spf-fail', [spf.reason], facts, config);
    }
    if (spf.result === 'temperror') return tempfail(stage, `SPF of '${spf.domain}'`, spf.reason, facts, config);
    why.push(`MAIL FROM ${spf.sender || '<>'}: SPF ${spf.result}`);
  }

  // 6. ratings of an authenticated identity
  const ratings = facts.ratings;
  const reputable = allowListed;
  if (ratings && identity?.result === 'pass') {
    if (ratings.status === 'temperror' && config.ratings.tempfailOnError) {
      return tempfail(stage, `ratings of '${ratings.domain}'`, ratings.outcomes.map((o) => o.message).join('; '), facts, config);
    }
    const perRecipient = config.ratings.recipients.length > 0;
    // with per-recipient thresholds, reputation is decided per RCPT, not before
    if (ratings.status === 'found' && (!perRecipient || ctx.recipient !== undefined || stage === 'eom')) {
      const t = thresholdsFor(config, ctx.recipient);
      const s = ratings.scores;
      const summary = `ratings ${ratings.ratings.map((r) => `${r.service}:${r.grade}`).join(',')} → min ${s.min}, max ${s.max}, average ${s.average?.toFixed(2)}`;
      if (t.reject && meets(s, t.reject, 'reject')) {
        return reject(stage, 550, '5.7.1', `Recipient won't accept mail from '${ratings.domain}' based on its current reputation`, 'reputation', [summary], facts, config);
      }
      if (t.accept && meets(s, t.accept, 'accept')) {
        return verdict(stage, 'ACCEPT', REPLY_OK, 'reputable', [...why, summary, 'reputable: accepted without further tests'], facts, config);
      }
      why.push(summary);
    } else if (ratings.status !== 'found') {
      why.push(`no ratings for ${ratings.domain} (${ratings.status})`);
    }
  }
  if (stage !== 'eom') {
    // nothing certain yet: the message stages (DKIM, DMARC, ARC) may still decide
    return verdict(stage, 'CONTINUE', { code: 250, xcode: '', text: 'OK' }, 'continue', why, facts, config);
  }
  if (reputable) return verdict(stage, 'ACCEPT', REPLY_OK, 'dns-allow', why, facts, config);
  return verdict(stage, 'FILTER', REPLY_OK, 'unknown-sender', [...why, 'not reputable enough to skip filtering: tagged'], facts, config);
}
