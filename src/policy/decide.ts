/**
 * The default policy: the one place that turns facts into an action, a reply and headers.
 * Philosophy (checkID's): reject only forgeries under the owner's strict policy and senders the
 * operator chose to reject; otherwise tag (FILTER) and let the operator observe first; DNS
 * trouble → TEMPFAIL 451 4.4.3, never a reject. See docs/policy.md.
 */
import type { Facts } from '../engine/facts.ts';
import type { Action, SmtpReply, Stage, Verdict } from '../engine/verdict.ts';
import { sanitize } from '../headers/fold.ts';
import { renderHeaders } from '../headers/render.ts';
import type { Config, Thresholds } from './config.ts';

export interface DecideContext {
  /** at the rcpt stage: the recipient being decided */
  recipient?: string;
}

const REPLY_OK: SmtpReply = { code: 250, xcode: '', text: 'Sender OK' };
const REPLY_CONTINUE: SmtpReply = { code: 250, xcode: '', text: 'OK' };
/** RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets; leave room for code and enhanced code */
const MAX_REPLY_TEXT = 400;

/**
 * Reply text may carry sender-controlled strings (HELO, exp= macros): one line of printable
 * US-ASCII (RFC 5321 §4.2), bounded.
 */
export function replyText(text: string): string {
  const clean = sanitize(text)
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
  return clean.length > MAX_REPLY_TEXT ? `${clean.slice(0, MAX_REPLY_TEXT - 3)}...` : clean;
}

/** Builds a verdict; ACCEPT and FILTER carry the headers and the forged-header removals. */
export function makeVerdict(stage: Stage, action: Action, reply: SmtpReply, reason: string, explanation: string[], facts: Facts, config: Config): Verdict {
  const keepsMessage = action === 'ACCEPT' || action === 'FILTER';
  const v: Verdict = {
    action,
    reply: { code: reply.code, xcode: reply.xcode, text: replyText(reply.text) },
    headers: keepsMessage ? renderHeaders(facts, config) : [],
    removeHeaders: keepsMessage ? [...facts.forgedAuthResults] : [],
    stage,
    reason,
    explanation,
  };
  const tag = siqTags(facts, config) ? config.siq.subjectTag : config.filter.subjectTag;
  if (action === 'FILTER' && tag) v.subjectTag = sanitize(tag);
  return v;
}

/** The SIQ score, when the servers gave one. */
function siqScore(facts: Facts): number | null {
  const s = facts.siq?.siq;
  if (s?.kind !== 'score' || s.result.status !== 'answer') return null;
  return s.result.reply.score;
}

/** milter-siq: a score at or below the tag threshold tags the message. */
function siqTags(facts: Facts, config: Config): boolean {
  const score = siqScore(facts);
  return score !== null && config.siq.tagScore >= 0 && score <= config.siq.tagScore;
}

/** The thresholds in force for a recipient (the first matching `recipients` entry, else global). */
export function thresholdsFor(config: Config, recipient?: string): { accept: Thresholds | null; reject: Thresholds | null } {
  const global = { accept: config.ratings.accept, reject: config.ratings.reject };
  if (!recipient) return global;
  const r = recipient.toLowerCase();
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
  if (t.average === undefined && t.min === undefined && t.max === undefined) return false;
  if (kind === 'accept') {
    return (t.average === undefined || scores.average >= t.average) && (t.min === undefined || scores.min >= t.min) && (t.max === undefined || scores.max >= t.max);
  }
  return (t.average === undefined || scores.average <= t.average) && (t.max === undefined || scores.max <= t.max) && (t.min === undefined || scores.min <= t.min);
}

/**
 * Decides at one stage from the facts gathered so far. Returns CONTINUE while nothing is certain;
 * at the end of the message it returns a final action.
 */
export function decide(stage: Stage, facts: Facts, config: Config, ctx: DecideContext = {}): Verdict {
  const ip = facts.envelope.ip;
  const why: string[] = [];
  const verdict = (action: Action, reply: SmtpReply, reason: string, explanation: string[]) => makeVerdict(stage, action, reply, reason, explanation, facts, config);
  const reject = (code: number, xcode: string, text: string, reason: string, explanation: string[]) => verdict('REJECT', { code, xcode, text }, reason, explanation);
  const tempfail = (what: string, detail: string) =>
    verdict('TEMPFAIL', { code: 451, xcode: '4.4.3', text: `Temporary DNS failure checking ${what}; try again later` }, 'dns-temperror', [`${what}: ${detail}`]);
  // RFC 5321 §4.3.2: 554 answers the connection; MAIL and RCPT are refused with 550
  const blockCode = stage === 'connect' ? 554 : 550;

  // 1. local lists: the operator's own choices come first
  const local = facts.localList;
  if (local?.ip === 'block') {
    return reject(blockCode, '5.7.1', `Client host [${ip}] blocked by local policy`, 'local-block', [`${ip} is on the local block list (${local.ipEntry ?? ''})`]);
  }
  const blockedDomain = local?.domains.find((d) => d.list === 'block');
  if (blockedDomain) {
    return reject(550, '5.7.1', `Sender domain '${blockedDomain.domain}' blocked by local policy`, 'local-block', [
      `${blockedDomain.identity} ${blockedDomain.domain} matches the local block list entry ${blockedDomain.entry}`,
    ]);
  }
  if (local?.ip === 'allow') return verdict('ACCEPT', REPLY_OK, 'local-allow', [`${ip} is on the local allow list (${local.ipEntry ?? ''})`]);
  // a domain on the allow list counts only once that domain is authenticated (else anyone could claim it)
  const identity = facts.identity;
  const spf = facts.spfMailFrom;
  const allowedDomain = local?.domains.find(
    (d) => d.list === 'allow' && ((d.domain === identity?.domain && identity.result === 'pass') || (d.identity === 'mailfrom' && spf?.result === 'pass' && spf.domain === d.domain)),
  );
  if (allowedDomain && stage !== 'helo') {
    return verdict('ACCEPT', REPLY_OK, 'local-allow', [`${allowedDomain.domain} is authenticated and on the local allow list (${allowedDomain.entry})`]);
  }

  // 2. DNS block/allow lists (postscreen-style score)
  const dnsbl = facts.dnsbl;
  const allowListed = dnsbl !== undefined && dnsbl.score <= config.prescreen.allowThreshold;
  if (dnsbl && !allowListed && dnsbl.score >= config.prescreen.threshold) {
    const zones = dnsbl.listed.join(', ');
    // an allow list that could not answer might have pulled the score below the threshold
    const failedAllowLists = dnsbl.results.filter((z) => z.weight < 0 && z.status === 'error').map((z) => z.zone);
    if (failedAllowLists.length > 0) return tempfail(`the DNS allow lists ${failedAllowLists.join(', ')}`, `listed by ${zones}, allow lists unanswered`);
    return reject(blockCode, '5.7.1', `Service unavailable; client host [${ip}] blocked using ${zones}`, 'dnsbl', [
      `DNSBL score ${dnsbl.score} ≥ threshold ${config.prescreen.threshold} (${zones})`,
    ]);
  }
  if (allowListed) why.push(`DNS allow-listed (score ${dnsbl.score})`);

  // 3. connection checks the operator chose to enforce
  if (facts.helo && config.helo.rejectInvalid && facts.helo.syntax === 'invalid') {
    const text = `HELO name '${facts.envelope.helo ?? ''}' is not a valid host name`;
    // a reply to HELO itself is a syntax error; refusing a later command is a policy decision
    if (stage === 'helo') return reject(501, '5.5.2', text, 'helo-invalid', ['HELO name is not an FQDN or address literal']);
    return reject(550, '5.7.1', text, 'helo-invalid', ['HELO name is not an FQDN or address literal']);
  }
  if (facts.iprev && config.iprev.rejectFail && facts.iprev.result === 'fail') {
    return reject(550, '5.7.25', `Client host [${ip}] has no forward-confirmed reverse DNS`, 'iprev-fail', [facts.iprev.reason]);
  }
  if (facts.csa && config.csa.rejectFail && facts.csa.result === 'fail') {
    return reject(550, '5.7.1', `Client host [${ip}] not authorized by the CSA record of '${facts.envelope.helo ?? ''}'`, 'csa-fail', [facts.csa.reason]);
  }
  if (facts.spfHelo && config.spf.rejectHeloFail && facts.spfHelo.result === 'fail') {
    const s = facts.spfHelo;
    return reject(550, '5.7.23', s.explanation ?? `SPF: '${s.domain}' does not designate '${ip}' as permitted sender`, 'spf-helo-fail', [s.reason]);
  }

  // 4. the identity, authenticated against the IP (the seed's check). An identity taken from HELO
  //    waits for MAIL: the client may still declare an ID.
  const identityReady = identity !== undefined && !(identity.source === 'helo' && stage === 'helo');
  if (identity && identityReady) {
    if (identity.result === 'fail' && config.identity.rejectFail) {
      return reject(550, '5.7.1', `Sending MTA '${ip}' not authorized by '${identity.domain}'`, 'identity-spf-fail', [identity.spf.reason]);
    }
    if (identity.result === 'temperror') return tempfail(`'${identity.domain}'`, identity.spf.reason);
    why.push(`identity ${identity.domain} (${identity.source}): SPF ${identity.result}`);
  }

  // 5. MAIL FROM SPF: fail under the owner's "-all" is a forgery; temperror per RFC 7208 §8.6
  if (spf) {
    if (spf.result === 'fail' && config.spf.rejectFail) {
      const text = spf.explanation ?? `SPF: '${spf.domain}' does not designate '${ip}' as permitted sender`;
      return reject(550, '5.7.23', text, 'spf-fail', [spf.reason]);
    }
    if (spf.result === 'temperror') return tempfail(`SPF of '${spf.domain}'`, spf.reason);
    why.push(`MAIL FROM <${spf.sender}>: SPF ${spf.result}`);
  }

  // 5b. SIQ (milter-siq's behaviour): 451 on TEMPFAIL, reject at or below the reject threshold
  //     once the operator turned it on, tag at or below the tag threshold; no answer changes nothing
  const siq = facts.siq;
  if (siq) {
    const score = siqScore(facts);
    if (siq.siq.kind === 'tempfail' && config.siq.tempfailOnTempfail) {
      return verdict('TEMPFAIL', { code: 451, xcode: '4.7.1', text: 'SIQ reputation service asks to try again later' }, 'siq-tempfail', [siq.message]);
    }
    if (score !== null && config.siq.rejectScore >= 0 && score <= config.siq.rejectScore) {
      return reject(550, '5.7.1', `message rejected, SIQ score ${score} too low`, 'siq-reject', [siq.message]);
    }
    why.push(siq.message);
    if (siqTags(facts, config)) why.push(`SIQ score ${score} ≤ tag threshold ${config.siq.tagScore}: tagged`);
  }

  // 6. ratings of an authenticated identity
  const ratings = facts.ratings;
  if (ratings && identity?.result === 'pass' && identityReady) {
    const failed = ratings.outcomes.filter((o) => o.status === 'temperror');
    if (ratings.status === 'temperror' && config.ratings.tempfailOnError) {
      return tempfail(`ratings of '${ratings.domain}'`, failed.map((o) => o.message).join('; '));
    }
    const perRecipient = config.ratings.recipients.length > 0;
    // with per-recipient thresholds, reputation is decided per RCPT, not before
    if (ratings.status === 'found' && (!perRecipient || ctx.recipient !== undefined || stage === 'eom')) {
      const t = thresholdsFor(config, ctx.recipient);
      const s = ratings.scores;
      const summary = `ratings ${ratings.ratings.map((r) => `${r.service}:${r.grade}`).join(',')} → min ${s.min}, max ${s.max}, average ${s.average?.toFixed(2)}`;
      if (t.reject && meets(s, t.reject, 'reject')) {
        // a rating service that did not answer might have rated the sender better
        if (failed.length > 0 && config.ratings.tempfailOnError) return tempfail(`ratings of '${ratings.domain}'`, failed.map((o) => o.message).join('; '));
        return reject(550, '5.7.1', `Recipient won't accept mail from '${ratings.domain}' based on its current reputation`, 'reputation', [summary]);
      }
      if (t.accept && meets(s, t.accept, 'accept')) {
        return verdict('ACCEPT', REPLY_OK, 'reputable', [...why, summary, 'reputable: accepted without further tests']);
      }
      why.push(summary);
    } else if (ratings.status !== 'found') {
      why.push(`no ratings for ${ratings.domain} (${ratings.status})`);
    }
  }

  // 7. DMARC (end of message): the owner's p=reject is honoured for a failure, unless the operator
  //    exempts the domain; quarantine and none only tag
  const dmarc = facts.dmarc;
  if (dmarc) {
    if (dmarc.result === 'fail' && dmarc.disposition === 'reject' && config.dmarc.rejectOnPolicy) {
      const domain = dmarc.fromDomain ?? '';
      // a forwarder the operator trusts vouches, by its ARC seal, for authentication it saw
      const arc = facts.arc;
      const newest = arc?.cv === 'pass' ? arc.sealers[arc.sealers.length - 1] : undefined;
      const trustedSealer = newest && config.arc.trustedSealers.includes(newest.d.toLowerCase()) ? newest.d : null;
      if (config.dmarc.exempt.includes(domain)) {
        why.push(`DMARC fail for ${domain}: p=reject not applied (local exemption)`);
      } else if (trustedSealer) {
        why.push(`DMARC fail for ${domain}: p=reject not applied (ARC chain passes, sealed by trusted ${trustedSealer})`);
      } else {
        return reject(550, '5.7.1', `Unauthenticated email from ${domain} is not accepted due to the domain's DMARC policy`, 'dmarc-reject', [dmarc.reason]);
      }
    } else {
      why.push(`DMARC ${dmarc.result}${dmarc.fromDomain ? ` for ${dmarc.fromDomain}` : ''}`);
    }
  }

  if (stage !== 'eom') {
    // nothing certain yet: later stages (and the message checks) may still decide
    return verdict('CONTINUE', REPLY_CONTINUE, 'continue', why);
  }
  if (allowListed) return verdict('ACCEPT', REPLY_OK, 'dns-allow', why);
  return verdict('FILTER', REPLY_OK, 'unknown-sender', [...why, 'not reputable enough to skip filtering: tagged']);
}
