/**
 * The resolver contract every check depends on. A query never throws for DNS trouble: it answers
 * with a status, because NXDOMAIN, NODATA, SERVFAIL and a timeout mean different things to SPF
 * (void lookup vs temperror), DNSBL (not listed vs zone broken) and iprev (fail vs temperror).
 */
export type RecordType = 'A' | 'AAAA' | 'TXT' | 'MX' | 'PTR' | 'SRV' | 'CNAME' | 'NS' | 'SOA';

export interface MxRecord {
  preference: number;
  /** host name, no trailing dot; '' for the null MX "." (RFC 7505) */
  exchange: string;
}

export interface SrvRecord {
  priority: number;
  weight: number;
  port: number;
  /** host name, no trailing dot; '' for "." */
  target: string;
}

export interface SoaRecord {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

/** What one record of each type decodes to. TXT keeps its character-strings apart. */
export interface RecordMap {
  A: string;
  AAAA: string;
  TXT: string[];
  MX: MxRecord;
  PTR: string;
  SRV: SrvRecord;
  CNAME: string;
  NS: string;
  SOA: SoaRecord;
}

/** Failures: the question could not be answered (as opposed to NXDOMAIN/NODATA, which are answers). */
export type DnsFailure = 'servfail' | 'refused' | 'timeout' | 'formerr' | 'error';

export type DnsStatus = 'ok' | 'nxdomain' | 'nodata' | DnsFailure;

export type DnsResult<T extends RecordType> =
  | {
      status: 'ok';
      /** in answer order; names without the trailing dot */
      records: RecordMap[T][];
      /** seconds the answer may be cached (already clamped by the cache's min/max) */
      ttl: number;
      /** the AD bit of the upstream answer */
      authenticated: boolean;
    }
  | { status: 'nxdomain' | 'nodata'; ttl: number }
  | { status: DnsFailure; message: string };

export interface QueryOptions {
  signal?: AbortSignal;
}

export interface Resolver {
  /** Names are absolute (no search list); a trailing dot is optional. Never rejects for DNS trouble. */
  query<T extends RecordType>(name: string, type: T, options?: QueryOptions): Promise<DnsResult<T>>;
}

export function isDnsFailure(status: DnsStatus): status is DnsFailure {
  return status !== 'ok' && status !== 'nxdomain' && status !== 'nodata';
}
