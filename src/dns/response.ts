/**
 * Turns a decoded response into a resolver result: follows the CNAME chain in the answer section
 * (RFC 1034 §3.6.2), tells NXDOMAIN from NODATA (RFC 2308 §2) and from a referral, and takes the
 * negative TTL from the SOA in the authority section (RFC 2308 §5: min(SOA TTL, SOA MINIMUM)).
 */
import { CLASS_IN, type DnsMessage, namesEqual, RCODE, rcodeName, TYPE } from './codec.ts';
import type { DnsFailure, DnsResult, RecordMap, RecordType, SoaRecord } from './types.ts';

/** Longest CNAME chain we follow inside one answer (BIND stops at 16 too). */
export const MAX_CNAME_CHAIN = 16;

export type Interpretation<T extends RecordType> =
  | { final: true; result: DnsResult<T> }
  | {
      final: false;
      status: DnsFailure;
      message: string;
      /** the server may have choked on our OPT record: retry it without EDNS (RFC 6891 §7) */
      ednsProblem: boolean;
    };

function retry<T extends RecordType>(
  status: DnsFailure,
  message: string,
  ednsProblem = false,
): Interpretation<T> {
  return { final: false, status, message, ednsProblem };
}

/** min(SOA TTL, SOA MINIMUM) of the first SOA in the authority section; 0 without one. */
export function negativeTtl(msg: DnsMessage): number {
  for (const rr of msg.authorities) {
    if (rr.type === TYPE.SOA && rr.class === CLASS_IN) {
      const soa = rr.data as SoaRecord;
      return Math.min(rr.ttl, soa.minimum);
    }
  }
  return 0;
}

/**
 * `qname` must be in canonical form (see codec.canonicalName). The caller has already checked
 * that the response answers our question (ID, name, type, class).
 */
export function interpretResponse<T extends RecordType>(
  msg: DnsMessage,
  qname: string,
  type: T,
): Interpretation<T> {
  const rcode = msg.rcode;
  if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) {
    switch (rcode) {
      case RCODE.SERVFAIL:
        return retry('servfail', 'SERVFAIL');
      case RCODE.REFUSED:
        return retry('refused', 'REFUSED');
      case RCODE.FORMERR:
        return retry('formerr', 'FORMERR', true);
      case RCODE.NOTIMP:
        return retry('error', 'NOTIMP', true);
      case RCODE.BADVERS:
        return retry('formerr', 'BADVERS', true);
      default:
        return retry('error', rcodeName(rcode));
    }
  }

  const code = TYPE[type];
  const answers = msg.answers;
  let current = qname;
  let chainTtl = Number.POSITIVE_INFINITY;
  let hops = 0;
  const seen = [qname.toLowerCase()];
  const records: RecordMap[T][] = [];
  let recordsTtl = Number.POSITIVE_INFINITY;
  for (;;) {
    for (const rr of answers) {
      if (rr.type === code && rr.class === CLASS_IN && namesEqual(rr.name, current)) {
        records.push(rr.data as RecordMap[T]);
        if (rr.ttl < recordsTtl) recordsTtl = rr.ttl;
      }
    }
    if (records.length > 0 || code === TYPE.CNAME) break;
    let next: string | null = null;
    for (const rr of answers) {
      if (rr.type === TYPE.CNAME && rr.class === CLASS_IN && namesEqual(rr.name, current)) {
        next = rr.data as string;
        if (rr.ttl < chainTtl) chainTtl = rr.ttl;
        break;
      }
    }
    if (next === null) break;
    const lower = next.toLowerCase();
    if (seen.includes(lower))
      return { final: true, result: { status: 'error', message: `CNAME loop at ${next}` } };
    if (++hops > MAX_CNAME_CHAIN)
      return { final: true, result: { status: 'error', message: 'CNAME chain too long' } };
    seen.push(lower);
    current = next;
  }

  if (rcode === RCODE.NOERROR && records.length > 0) {
    return {
      final: true,
      result: { status: 'ok', records, ttl: Math.min(recordsTtl, chainTtl), authenticated: msg.ad },
    };
  }
  const ttl = Math.min(negativeTtl(msg), chainTtl);
  if (rcode === RCODE.NXDOMAIN) return { final: true, result: { status: 'nxdomain', ttl } };

  // NOERROR without data: NODATA, unless it is a referral (RFC 2308 §2.2: NS in the authority
  // section and no SOA), i.e. the server is not recursive for us.
  if (!msg.aa && hops === 0) {
    let ns = false;
    let soa = false;
    for (const rr of msg.authorities) {
      if (rr.type === TYPE.NS) ns = true;
      else if (rr.type === TYPE.SOA) soa = true;
    }
    if (ns && !soa) return retry('error', 'referral: the server did not recurse');
  }
  return { final: true, result: { status: 'nodata', ttl } };
}
