/** SIQ server specs: `host`, `host:port`, `[v6]:port`, bare IPv6; host an IP address or a name. */
import { isIPv4, isIPv6 } from 'node:net';
import { normalizeIp } from '../common/ip.ts';
import { SIQ_PORT } from './codec.ts';

export interface SiqServer {
  /** an IP address (canonical text) or a host name (lower case, no trailing dot) */
  host: string;
  port: number;
  /** 4 or 6 for an address, 0 for a host name the client looks up */
  family: 0 | 4 | 6;
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$/;

export class SiqServerSpecError extends Error {
  override name = 'SiqServerSpecError';
}

function port(text: string, spec: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new SiqServerSpecError(`bad port in SIQ server "${spec}"`);
  const n = Number(text);
  if (n < 1 || n > 65535) throw new SiqServerSpecError(`bad port in SIQ server "${spec}"`);
  return n;
}

function host(text: string, spec: string): { host: string; family: 0 | 4 | 6 } {
  if (isIPv4(text)) return { host: normalizeIp(text)!, family: 4 };
  if (isIPv6(text)) {
    const norm = normalizeIp(text)!;
    // IPv4-mapped folds to IPv4: talk IPv4 to it
    return { host: norm, family: isIPv4(norm) ? 4 : 6 };
  }
  const name = text.toLowerCase().replace(/\.$/, '');
  if (HOSTNAME.test(name) && !/^[\d.]+$/.test(name)) return { host: name, family: 0 };
  throw new SiqServerSpecError(`not an IP address or host name in SIQ server "${spec}"`);
}

/**
 * Parses "192.0.2.1", "192.0.2.1:6264", "siq.example.net:6264", "2001:db8::1",
 * "[2001:db8::1]:6264". The port defaults to 6262 (the drafts'; Outbound Index used 6264).
 */
export function parseSiqServer(spec: string, defaultPort = SIQ_PORT): SiqServer {
  const s = spec.trim();
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) throw new SiqServerSpecError(`missing "]" in SIQ server "${spec}"`);
    const inner = s.slice(1, close);
    if (!isIPv6(inner)) throw new SiqServerSpecError(`not an IPv6 address in brackets in SIQ server "${spec}"`);
    const rest = s.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new SiqServerSpecError(`unexpected text after "]" in SIQ server "${spec}"`);
    return { ...host(inner, spec), port: rest === '' ? defaultPort : port(rest.slice(1), spec) };
  }
  const colons = s.split(':').length - 1;
  if (colons === 1) {
    const at = s.indexOf(':');
    return { ...host(s.slice(0, at), spec), port: port(s.slice(at + 1), spec) };
  }
  if (colons > 1 && !isIPv6(s)) throw new SiqServerSpecError(`not an IP address or host name in SIQ server "${spec}"`);
  return { ...host(s, spec), port: defaultPort };
}

/** "192.0.2.1:6262", "[2001:db8::1]:6262", "siq.example.net:6262". */
export function formatSiqServer(server: Pick<SiqServer, 'host' | 'port'>): string {
  return server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}
