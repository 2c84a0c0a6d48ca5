/**
 * Heuristic for "generic" reverse names: the names ISPs give whole address pools, such as
 * c-192-0-2-1.hsd1.example.net or dsl-pool-7.example.com. A mail server's own name rarely looks
 * like that, so reputation systems weigh it. Only the labels left of the last two are examined
 * (a rough stand-in for the registered domain), so a provider called "dsl-example.net" is not
 * flagged for its own name.
 */
import type { IpAddress } from '../../common/ip.ts';

const GENERIC_WORDS = new Set([
  'adsl',
  'broadband',
  'cable',
  'cpe',
  'cust',
  'customer',
  'dhcp',
  'dial',
  'dialin',
  'dialup',
  'dsl',
  'dyn',
  'dynamic',
  'dynip',
  'fttb',
  'ftth',
  'fttp',
  'fttx',
  'mobile',
  'nat',
  'pool',
  'ppp',
  'pppoe',
  'residential',
  'resnet',
  'sdsl',
  'unassigned',
  'vdsl',
  'wireless',
  'xdsl',
]);

function hostPart(name: string): string {
  const labels = name.toLowerCase().split('.');
  if (labels.length <= 2) return '';
  return labels.slice(0, -2).join('.');
}

function containsRun(haystack: string[], needle: string[]): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

function embedsV4(host: string, bytes: Uint8Array): boolean {
  const octets = Array.from(bytes, String);
  const reversed = [...octets].reverse();
  const runs = (host.match(/\d+/g) ?? []).map((d) => String(Number(d)));
  if (containsRun(runs, octets) || containsRun(runs, reversed)) return true;
  if (containsRun(runs, octets.slice(1)) || containsRun(runs, reversed.slice(0, 3))) return true;
  const padded = Array.from(bytes, (b) => String(b).padStart(3, '0'));
  const digits = host.match(/\d{12,}/g) ?? [];
  if (digits.some((d) => d.includes(padded.join('')) || d.includes([...padded].reverse().join('')))) return true;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return host.replace(/[^0-9a-f]/g, '').includes(hex);
}

function embedsV6(host: string, bytes: Uint8Array): boolean {
  const nibbles = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  if (host.replace(/[^0-9a-z]/g, '').includes(nibbles.slice(16))) return true;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  const tokens = host.split(/[^0-9a-z]+/).map((t) => (/^[0-9a-f]{1,4}$/.test(t) ? t.replace(/^0+(?=.)/, '') : t));
  return containsRun(tokens, groups.slice(4));
}

/** Why the name looks generic for this address, or null when it does not. */
export function genericReverseName(name: string, ip: IpAddress): string | null {
  const host = hostPart(name);
  if (host === '') return null;
  if (ip.family === 4 ? embedsV4(host, ip.bytes) : embedsV6(host, ip.bytes)) return 'the name embeds the address';
  for (const word of host.split(/[^a-z]+/)) {
    if (GENERIC_WORDS.has(word)) return `the name contains "${word}"`;
  }
  return null;
}
