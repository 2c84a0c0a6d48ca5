/** The arc= resinfo for Authentication-Results (RFC 8601; method and properties: RFC 8617's IANA section). */
import type { MethodResult } from '../../headers/authentication-results.ts';
import type { ArcResult } from './types.ts';

export interface ArcMethodOptions {
  /** the client's IP address, as smtp.remote-ip (a property RFC 8617 registers) */
  remoteIp?: string;
}

const REASON_MAX = 120;

/**
 * One `arc=` resinfo: `arc=pass (i=2) header.oldest-pass=0 smtp.remote-ip=192.0.2.1`. The comment
 * names the newest instance; a failure carries its reason (a key that could not be fetched says
 * so: RFC 8617 registers only none, pass and fail for arc, so it is rendered as fail with a
 * reason, and the result's `temperror` tells the policy). header.oldest-pass is written when it
 * was computed and the chain passed, as RFC 8617 counts it: 0 when every AMS verified.
 */
export function arcMethodResults(r: ArcResult, opts: ArcMethodOptions = {}): MethodResult[] {
  const properties: Array<[string, string]> = [];
  const out: MethodResult = { method: 'arc', result: r.cv, properties };
  if (r.cv !== 'none' && r.instances > 0) out.comment = `i=${r.instances}`;
  if (r.cv === 'fail') {
    const reason = r.temperror ? `temporary failure: ${r.reason}` : r.reason;
    out.reason = reason.length > REASON_MAX ? `${reason.slice(0, REASON_MAX - 3)}...` : reason;
  }
  if (r.cv === 'pass' && r.oldestPass !== undefined)
    properties.push(['header.oldest-pass', String(r.oldestPass <= 1 ? 0 : r.oldestPass)]);
  if (opts.remoteIp && r.cv !== 'none') properties.push(['smtp.remote-ip', opts.remoteIp]);
  return [out];
}
