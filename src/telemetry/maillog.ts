/**
 * The mail-log line: one line per final verdict, in the key=value style of Postfix's mail log,
 * for postmasters who grep (docs/operations.md):
 *
 *   checkid: client=[192.0.2.1] helo=mx.example.com id=example.com from=<a@example.com>
 *     to=<b@example.org>,<c@example.org> stage=mail action=REJECT reply="550 5.7.1 ..."
 *     reason=identity-spf-fail facts="iprev=pass helo=pass id=fail spf=fail"      (one line)
 *
 * Fields always come in this order, each present: `-` stands for "not known at this stage"
 * (helo, id, from, to), `from=<>` is the null sender. Bare values have white space, control
 * characters, `"` and `\` written as \xHH; quoted values (reply, facts) escape `"` and `\` with a
 * backslash and control characters as \xHH. So a line never breaks and splits on spaces outside
 * quotes.
 */
import type { Facts } from '../engine/facts.ts';
import type { Verdict } from '../engine/verdict.ts';

export const MAIL_LOG_TAG = 'checkid:';

const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** A value outside quotes: nothing that would end the field or the line. */
export function bare(value: string): string {
  return value.replace(/[\s\x00-\x1f\x7f"\\]/g, hex);
}

/** A value inside double quotes. */
export function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`).replace(/[\x00-\x1f\x7f]/g, hex)}"`;
}

function address(a: string): string {
  return `<${bare(a)}>`;
}

/**
 * The facts that decide, in one space-separated string: only the checks that ran, in stage order.
 *
 *   local=block|allow      the operator's lists matched the IP (or, local-domain=, an identity)
 *   dnsbl=SCORE            DNS list score; listed zones follow in parentheses: dnsbl=2(zen.example)
 *   iprev=pass             iprev result
 *   helo=pass|fail|invalid|local|temperror   the HELO check (pass: one of the 3 strikes holds)
 *   csa=ok                 CSA status
 *   spf-helo=pass          SPF for the HELO identity
 *   id=pass                SPF1 for the declared identity (ID command, or the HELO name)
 *   ratings=7.5            average rating score (found), or the status (none, temperror, ...)
 *   siq=45                 SIQ score, or its kind (unknown, timeout, ...)
 *   spf=fail               SPF for MAIL FROM
 *   dkim=pass,fail         one result per signature
 *   arc=pass               ARC chain validation
 *   dmarc=fail(reject)     DMARC result, with the disposition when not none
 *   forged-ar=1            received Authentication-Results carrying our authserv-id (removed)
 *   errors=1               internal errors
 */
export function factsSummary(f: Facts): string {
  const out: string[] = [];
  if (f.localList) {
    if (f.localList.ip !== 'none') out.push(`local=${f.localList.ip}`);
    const d = f.localList.domains.find((m) => m.list === 'block') ?? f.localList.domains[0];
    if (d) out.push(`local-domain=${d.list}`);
  }
  if (f.dnsbl) out.push(`dnsbl=${f.dnsbl.score}${f.dnsbl.listed.length > 0 ? `(${f.dnsbl.listed.join(',')})` : ''}`);
  if (f.iprev) out.push(`iprev=${f.iprev.result}`);
  if (f.helo) {
    const h = f.helo;
    out.push(`helo=${h.syntax === 'invalid' ? 'invalid' : h.local ? 'local' : h.threeStrikes.pass ? 'pass' : h.threeStrikes.temperror ? 'temperror' : 'fail'}`);
  }
  if (f.csa) out.push(`csa=${f.csa.result}`);
  if (f.spfHelo) out.push(`spf-helo=${f.spfHelo.result}`);
  if (f.identity) out.push(`id=${f.identity.result}`);
  if (f.ratings) out.push(`ratings=${f.ratings.status === 'found' && f.ratings.scores.average !== null ? round(f.ratings.scores.average) : f.ratings.status}`);
  if (f.siq) {
    const r = f.siq.siq.result;
    out.push(`siq=${f.siq.siq.kind === 'score' && r.status === 'answer' ? r.reply.score : f.siq.siq.kind}`);
  }
  if (f.spfMailFrom) out.push(`spf=${f.spfMailFrom.result}`);
  if (f.dkim && f.dkim.length > 0) out.push(`dkim=${f.dkim.map((d) => d.result).join(',')}`);
  if (f.arc) out.push(`arc=${f.arc.cv}`);
  if (f.dmarc) out.push(`dmarc=${f.dmarc.result}${f.dmarc.disposition !== 'none' ? `(${f.dmarc.disposition})` : ''}`);
  if (f.forgedAuthResults.length > 0) out.push(`forged-ar=${f.forgedAuthResults.length}`);
  if (f.internalErrors.length > 0) out.push(`errors=${f.internalErrors.length}`);
  return out.join(' ');
}

function round(n: number): string {
  return String(Math.round(n * 100) / 100);
}

export function replyText(reply: Verdict['reply']): string {
  return [String(reply.code), reply.xcode, reply.text].filter((p) => p !== '').join(' ');
}

/** The line for one verdict (no line feed). `recipient`: the one a RCPT-stage verdict is about. */
export function mailLogLine(facts: Facts, verdict: Verdict, recipient?: string): string {
  const e = facts.envelope;
  const rcpt = recipient !== undefined ? [recipient] : e.rcpt;
  return [
    MAIL_LOG_TAG,
    `client=[${bare(e.ip)}]`,
    `helo=${e.helo ? bare(e.helo) : '-'}`,
    `id=${e.id ? bare(e.id) : '-'}`,
    `from=${e.mailFrom === undefined ? '-' : address(e.mailFrom)}`,
    `to=${rcpt.length === 0 ? '-' : rcpt.map(address).join(',')}`,
    `stage=${verdict.stage}`,
    `action=${verdict.action}`,
    `reply=${quoted(replyText(verdict.reply))}`,
    `reason=${bare(verdict.reason)}`,
    `facts=${quoted(factsSummary(facts))}`,
  ].join(' ');
}
