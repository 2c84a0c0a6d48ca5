/**
 * Reading a DNSxL A answer (RFC 5782 §2.1): the codes must lie in 127.0.0.0/8. Anything else is
 * not a listing: 127.255.255.0/24 is Spamhaus's error range (the query was refused), and an
 * address outside 127/8 usually means a resolver that rewrites NXDOMAIN into an advert page.
 */
import { type DnsResult, isDnsFailure } from '../../dns/types.ts';
import { parseIp } from '../../common/ip.ts';
import type { AddressFilter } from './filter.ts';

export type AnswerClass =
  /** the name exists with usable return codes (not yet filtered) */
  | { kind: 'codes'; codes: string[] }
  /** NXDOMAIN or NODATA: the subject is not on the list */
  | { kind: 'absent' }
  /** no usable answer: DNS failure, or error codes from the list operator */
  | { kind: 'error'; codes: string[]; error: string };

const SPAMHAUS_ERRORS: Record<string, string> = {
  '127.255.255.252': 'typing error in the DNSBL name',
  '127.255.255.254': 'query refused: sent through a public or open resolver',
  '127.255.255.255': 'query refused: excessive number of queries',
};

/** Why a code is an error answer, or null when it is a usable return code. */
export function errorCode(code: string, extra?: AddressFilter): string | null {
  const ip = parseIp(code);
  if (ip?.family !== 4) return `answer ${code} is not an IPv4 address`;
  const b = ip.bytes;
  if (b[0] !== 127) return `answer ${code} is outside 127.0.0.0/8 (resolver rewriting NXDOMAIN?)`;
  if (b[1] === 255 && b[2] === 255) {
    return `error code ${code}: ${SPAMHAUS_ERRORS[code] ?? 'list operator error range 127.255.255.0/24'}`;
  }
  if (extra?.matches(code)) return `error code ${code} (matches the zone's error filter)`;
  return null;
}

export function classifyAnswer(result: DnsResult<'A'>, errorFilter?: AddressFilter): AnswerClass {
  if (result.status === 'ok') {
    const codes = [...new Set(result.records)];
    const errors = codes.map((c) => errorCode(c, errorFilter)).filter((e): e is string => e !== null);
    if (errors.length > 0) return { kind: 'error', codes, error: errors.join('; ') };
    return { kind: 'codes', codes };
  }
  if (isDnsFailure(result.status)) {
    const message = 'message' in result ? result.message : '';
    return { kind: 'error', codes: [], error: `${result.status}${message ? `: ${message}` : ''}` };
  }
  return { kind: 'absent' };
}
