/** Renders the headers a verdict prepends, from facts, identically for every adapter. */
import type { Facts } from '../engine/facts.ts';
import type { HeaderField } from '../engine/verdict.ts';
import { AUTHENT_LABEL, renderAuthent } from './authent.ts';
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

export function renderHeaders(facts: Facts, kinds: readonly HeaderKind[], authservId: string): HeaderField[] {
  const headers: HeaderField[] = [];
  if (kinds.includes('authentication-results')) {
    headers.push({
      label: `${AUTHENTICATION_RESULTS}:`,
      text: renderAuthenticationResults(authservId, methodResults(facts)),
    });
  }
  if (kinds.includes('authent') && facts.identity) {
    // ratings belong to an authenticated identity only
    const ratings = facts.ratings?.status === 'found' && facts.identity.result === 'pass' ? facts.ratings.ratings : [];
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
  return headers;
}
