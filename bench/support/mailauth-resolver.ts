/**
 * Our Resolver seen through mailauth's resolver contract (node:dns.promises.resolve style:
 * TXT → string[][], MX → {priority, exchange}[], errors with code ENOTFOUND/ENODATA/ETIMEOUT/…),
 * so a peer and we run over the very same DNS answers and cache.
 */
import type { RecordType, Resolver } from '../../src/dns/types.ts';

// mailauth's typings say string[] | string[][]; MX answers are objects in practice (its docs).
type MailauthResolver = (name: string, rrtype: string) => Promise<string[] | string[][]>;

/** node:dns error codes, as mailauth reads them (NXDOMAIN and NODATA are void lookups for SPF) */
const CODES: Record<string, string> = { nxdomain: 'ENOTFOUND', nodata: 'ENODATA', timeout: 'ETIMEOUT', refused: 'EREFUSED' };

export function mailauthResolver(resolver: Resolver): MailauthResolver {
  return async (name, type) => {
    const r = await resolver.query(name, type as RecordType);
    if (r.status === 'ok') {
      if (type === 'MX') {
        return (r.records as Array<{ preference: number; exchange: string }>).map((m) => ({ priority: m.preference, exchange: m.exchange })) as never;
      }
      return r.records as string[] | string[][];
    }
    throw Object.assign(new Error(`${type} ${name}: ${CODES[r.status] ?? 'ESERVFAIL'}`), { code: CODES[r.status] ?? 'ESERVFAIL' });
  };
}
