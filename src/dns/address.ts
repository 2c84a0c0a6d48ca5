/** Name-server addresses: `host`, `host:port`, `[v6]:port`, bare IPv6, IPv6 with a `%scope`. */
import { isIPv4, isIPv6 } from 'node:net';
import { normalizeIp } from '../common/ip.ts';

export const DNS_PORT = 53;

export interface ServerAddress {
  /** an IP address; a link-local IPv6 address may carry its zone: fe80::1%eth0 */
  host: string;
  port: number;
  family: 4 | 6;
}

const SCOPE = /^[A-Za-z0-9_.-]{1,64}$/;

function parseHost(text: string): { host: string; family: 4 | 6 } | null {
  if (isIPv4(text)) return { host: normalizeIp(text)!, family: 4 };
  const pct = text.indexOf('%');
  const addr = pct < 0 ? text : text.slice(0, pct);
  const scope = pct < 0 ? '' : text.slice(pct + 1);
  if (!isIPv6(addr)) return null;
  if (pct >= 0 && !SCOPE.test(scope)) return null;
  const norm = normalizeIp(addr);
  if (!norm) return null;
  // an IPv4-mapped IPv6 address is folded to IPv4 by normalizeIp: talk IPv4 to it
  if (isIPv4(norm)) return { host: norm, family: 4 };
  return { host: pct < 0 ? norm : `${norm}%${scope}`, family: 6 };
}

function parsePort(text: string, spec: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new Error(`bad port in DNS server "${spec}"`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new Error(`bad port in DNS server "${spec}"`);
  return port;
}

/**
 * Parses a server spec: "192.0.2.1", "192.0.2.1:5353", "2001:db8::1", "[2001:db8::1]:5353",
 * "fe80::1%eth0", "[fe80::1%eth0]:53". Only IP addresses (a resolver cannot need a resolver to
 * find its server). Throws an Error naming the spec when it is not valid.
 */
export function parseServerSpec(spec: string, defaultPort = DNS_PORT): ServerAddress {
  const s = spec.trim();
  let hostText: string;
  let port = defaultPort;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) throw new Error(`missing "]" in DNS server "${spec}"`);
    hostText = s.slice(1, close);
    const rest = s.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new Error(`unexpected text after "]" in DNS server "${spec}"`);
      port = parsePort(rest.slice(1), spec);
    }
    const host = parseHost(hostText);
    if (!host) throw new Error(`not an IP address in DNS server "${spec}"`);
    return { ...host, port };
  }
  const colons = s.split(':').length - 1;
  if (colons === 1) {
    const at = s.indexOf(':');
    hostText = s.slice(0, at);
    port = parsePort(s.slice(at + 1), spec);
  } else {
    hostText = s;
  }
  const host = parseHost(hostText);
  if (!host) throw new Error(`not an IP address in DNS server "${spec}"`);
  return { ...host, port };
}

/** "192.0.2.1:53" or "[2001:db8::1]:53". */
export function formatServer(server: ServerAddress): string {
  return server.family === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

/** True when a datagram's source address is the server's (IPv6 compared canonically, zone ignored). */
export function sameHost(server: ServerAddress, address: string): boolean {
  if (address === server.host) return true;
  const strip = (a: string): string => {
    const pct = a.indexOf('%');
    return pct < 0 ? a : a.slice(0, pct);
  };
  const a = normalizeIp(strip(address));
  return a !== null && a === normalizeIp(strip(server.host));
}
