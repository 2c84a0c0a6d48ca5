/** Renders the headers a verdict prepends, from facts, identically for every adapter. */
import { arcMethodResults } from '../checks/arc/index.ts';
import { dmarcMethodResults } from '../checks/dmarc/index.ts';
import type { Facts } from '../engine/facts.ts';
import type { HeaderField } from '../engine/verdict.ts';
import { AUTHENT_LABEL, renderAuthent } from './authent.ts';
import { foldParts, sanitize } from './fold.ts';
import { AUTHENTICATION_RESULTS, type MethodResult, renderAuthenticationResults } from './authentication-results.ts';

import type { HeaderKind } from '../policy/config.ts';

/** The RFC 8601 resinfo list for the facts gathered so far. */
export function methodResults(facts: Facts): MethodResult[] {
  const out: MethodResult[] = [];
  const ip = facts.envelope.ip;
  if (facts.iprev) {
    const r = facts.iprev;
    out.push({
      method: 'iprev',
      result: r.result,
      ...(r.validatedName ? { comment: r.validatedName } : {}),
      properties: [['policy.iprev', ip]],
    });
  }
  if (facts.spfMailFrom) {
    const s = facts.spfMailFrom;
    out.push({
      method: 'spf',
      result: s.result,
      comment: `${facts.envelope.ip} ${spfComment(s.result)} ${s.domain}`,
      properties: [['smtp.mailfrom', s.sender]],
    });
  }
  if (facts.spfHelo) {
    const s = facts.spfHelo;
    out.push({
      method: 'spf',
      result: s.result,
      comment: `${facts.envelope.ip} ${spfComment(s.result)} ${s.domain}`,
      properties: [['smtp.helo', s.domain]],
    });
  }
  for (const d of facts.dkim ?? []) {
    if (d.result === 'none') {
      out.push({ method: 'dkim', result: 'none', properties: [] });
      continue;
    }
    const props: Array<[string, string]> = [];
    if (d.domain) props.push(['header.d', d.domain]);
    if (d.auid) props.push(['header.i', d.auid]);
    if (d.selector) props.push(['header.s', d.selector]);
    if (d.b) props.push(['header.b', d.b]);
    out.push({ method: 'dkim', result: d.result, ...(d.result !== 'pass' && d.reason ? { reason: d.reason } : {}), properties: props });
  }
  if (facts.dmarc) out.push(...dmarcMethodResults(facts.dmarc));
  if (facts.arc) out.push(...arcMethodResults(facts.arc, { remoteIp: ip }));
  if (facts.dnsbl) {
    for (const z of facts.dnsbl.results) {
      if (z.status === 'listed' && z.weight < 0) {
        const props: Array<[string, string]> = [
          ['dns.zone', z.zone],
          ['policy.ip', z.codes[0] ?? ''],
        ];
        if (z.text) props.push(['policy.txt', z.text]);
        out.push({ method: 'dnswl', result: 'pass', properties: props });
      }
    }
  }
  return out;
}

function spfComment(result: string): string {
  switch (result) {
    case 'pass':
      return 'is authorized by';
    case 'fail':
      return 'is not authorized by';
    case 'softfail':
      return 'is probably not authorized by';
    case 'neutral':
      return 'is neither authorized nor forbidden by';
    case 'none':
      return 'finds no SPF policy for';
    default:
      return `has an SPF ${result} for`;
  }
}

/** What header rendering needs from the config. */
export interface HeaderSettings {
  headers: readonly HeaderKind[];
  authservId: string;
  siq: { reportHeader: string; tagScore: number };
}

/**
 * `SIQ-Report: pass=YES|NO|UNKNOWN ip= dn= score= text='…'` (smtpf's form, docs/siq.md): pass=NO
 * at or below the tag threshold, UNKNOWN when the servers gave no score.
 */
export function renderSiqReport(siq: NonNullable<Facts['siq']>, tagScore: number): string {
  const reply = siq.siq.result.status === 'answer' ? siq.siq.result.reply : null;
  const score = siq.siq.kind === 'score' && reply ? reply.score : null;
  const pass = score === null ? 'UNKNOWN' : tagScore >= 0 && score <= tagScore ? 'NO' : 'YES';
  const text = score === null ? 'UNKNOWN' : sanitize(reply?.text ?? '').replace(/'/g, '').slice(0, 200);
  const words = [`pass=${pass}`, `ip=${siq.siq.ip}`, `dn=${siq.siq.domain || '<>'}`, `score=${score ?? -1}`, `text='${text}'`];
  return foldParts('SIQ-Report:', words);
}

export function renderHeaders(facts: Facts, settings: HeaderSettings): HeaderField[] {
  const { headers: kinds, authservId } = settings;
  const headers: HeaderField[] = [];
  if (kinds.includes('authentication-results')) {
    headers.push({
      label: `${AUTHENTICATION_RESULTS}:`,
      text: renderAuthenticationResults(authservId, methodResults(facts)),
    });
  }
  if (kinds.includes('authent') && facts.identity) {
    // registry ratings belong to an authenticated identity only; SIQ rates the IP and MAIL FROM domain
    const ratings = [
      ...(facts.ratings?.status === 'found' && facts.identity.result === 'pass' ? facts.ratings.ratings : []),
      ...(facts.siq?.status === 'found' ? facts.siq.ratings : []),
    ];
    headers.push({
      label: AUTHENT_LABEL,
      text: renderAuthent({
        ip: facts.envelope.ip,
        id: facts.identity.domain,
        method: facts.identity.method,
        result: facts.identity.result,
        ratings,
      }),
    });
  }
  if (facts.siq && settings.siq.reportHeader && facts.siq.siq.kind !== 'skipped') {
    headers.push({ label: `${settings.siq.reportHeader}:`, text: renderSiqReport(facts.siq, settings.siq.tagScore) });
  }
  return headers;
}
