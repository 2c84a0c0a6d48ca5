/**
 * Our Resolver seen through mailauth's resolver contract (node:dns.promises.resolve style:
 * TXT → string[][], MX → {priority, exchange}[], errors with code ENOTFOUND/ENODATA/ETIMEOUT/…),
 * so a peer and we run over the very same DNS answers and cache.
 */
import type { RecordType, Resolver } from '../../src/dns/types.ts';

// mailauth's typings say string[] | string[][]; MX answers are objects in practice (its docs).
type MailauthResolver = (name: string, rrtype: string) => Promise<string[] | string[][]>;

export function mailauthResolver(resolver: Resolver): MailauthResolver {
  return async (name, type) => {
    const r = await resolver.query(name, type as RecordType);
    if (r.status === 'ok') {
      if (type === 'MX') {
        return (r.records as Array<{ preference: number; exchange: string }>).map((m) => ({ priority: m.preference, exchange: m.exchange })) as never;
      }
      return r.records as string[] | string[][];
    }
    const code = r.status === 'nxdomain' ? 'ENOTFOUND' : r.status === 'nodata' ? 'ENODATA' : r.status === 'timeout' ? 'ETIMEOUT' : 'ESERVFAIL';
    throw Object.assign(new Error(code), { code });
  };
}
