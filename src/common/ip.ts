import { isIPv6 } from 'node:net';

/** An IP address as bytes: 4 for IPv4 (IPv4-mapped IPv6 is folded to IPv4), 16 for IPv6. */
export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
}

/** Dotted quad, each part 0-255 in decimal without leading zeros (as node:net's isIPv4). */
function parseV4(text: string): Uint8Array | null {
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // a final "." closes the last part
    if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return null; // leading zero
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return null;
    } else if (c === 46) {
      if (digits === 0 || part > 3) return null;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else return null;
  }
  return part === 4 ? out : null;
}

function parseV6(text: string): Uint8Array | null {
  if (!isIPv6(text)) return null;
  let head = text;
  let tail4: Uint8Array | null = null;
  const lastColon = head.lastIndexOf(':');
  const maybeV4 = head.slice(lastColon + 1);
  if (maybeV4.includes('.')) {
    tail4 = parseV4(maybeV4);
    if (!tail4) return null;
    head = head.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  const left = halves[0] ? halves[0].split(':') : [];
  const right = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups = new Array<string>(8).fill('0');
  for (let i = 0; i < left.length; i++) groups[i] = left[i]!;
  for (let i = 0; i < right.length; i++) groups[8 - right.length + i] = right[i]!;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const v = Number.parseInt(groups[i]!, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  if (tail4) out.set(tail4, 12);
  return out;
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** Parses an IPv4 or IPv6 address (brackets and an "IPv6:" tag are not accepted here). */
export function parseIp(text: string): IpAddress | null {
  const v4 = parseV4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseV6(text);
  if (!v6) return null;
  if (MAPPED_PREFIX.every((b, i) => v6[i] === b)) return { family: 4, bytes: v6.slice(12) };
  return { family: 6, bytes: v6 };
}

/** Canonical text: dotted quad, or RFC 5952 compressed lower-case IPv6. */
export function formatIp(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

/** Normalises an address text; null when it is not an address. */
export function normalizeIp(text: string): string | null {
  const ip = parseIp(text);
  return ip ? formatIp(ip) : null;
}

/** True when the first `prefix` bits of `ip` equal those of `network` (same family only). */
export function inPrefix(ip: IpAddress, network: IpAddress, prefix: number): boolean {
  if (ip.family !== network.family) return false;
  const max = ip.family === 4 ? 32 : 128;
  if (prefix < 0 || prefix > max) return false;
  const full = prefix >> 3;
  for (let i = 0; i < full; i++) if (ip.bytes[i] !== network.bytes[i]) return false;
  const rest = prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip.bytes[full]! & mask) === (network.bytes[full]! & mask);
}

/** A CIDR such as 192.0.2.0/24 or 2001:db8::/32 (a bare address is a host route). */
export interface Cidr {
  network: IpAddress;
  prefix: number;
}

export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const network = parseIp(addr);
  if (!network) return null;
  // an IPv4-mapped IPv6 network keeps its IPv6 prefix length semantics
  const max = network.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (network.family === 4 && isIPv6(addr)) prefix -= 96;
    if (prefix < 0 || prefix > max) return null;
  }
  return { network, prefix };
}

export function inCidr(ip: IpAddress, cidr: Cidr): boolean {
  return inPrefix(ip, cidr.network, cidr.prefix);
}

/**
 * The reverse-lookup labels: "1.2.0.192" for 192.0.2.1, nibbles for IPv6. Append ".in-addr.arpa"
 * or ".ip6.arpa" for PTR, or a DNSBL zone for RFC 5782 lookups.
 */
export function reverseLabels(ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).reverse().join('.');
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) {
    const b = ip.bytes[i]!;
    nibbles.push((b & 0xf).toString(16), (b >> 4).toString(16));
  }
  return nibbles.join('.');
}

export function reverseName(ip: IpAddress): string {
  return `${reverseLabels(ip)}.${ip.family === 4 ? 'in-addr.arpa' : 'ip6.arpa'}`;
}

export function sameIp(a: IpAddress, b: IpAddress): boolean {
  if (a.family !== b.family) return false;
  for (let i = 0; i < a.bytes.length; i++) if (a.bytes[i] !== b.bytes[i]) return false;
  return true;
}
