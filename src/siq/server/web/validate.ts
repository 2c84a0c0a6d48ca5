/** Checks of what postmasters type into the SIQ pages, with messages meant for them. */
import { LocalListError, LocalLists } from '../../../checks/locallist/index.ts';
import { isFqdn } from '../../../common/domain.ts';
import { formatIp, parseCidr, parseIp } from '../../../common/ip.ts';

/** A source IP to register: one IPv4 or IPv6 address (no network, no port, no zone). */
export function sourceIpProblem(text: string): { ip: string } | { error: string } {
  const t = text.trim().replace(/^\[(.*)\]$/, '$1');
  if (t === '') return { error: 'Enter the IP address your mail gateway sends SIQ queries from.' };
  if (t.includes('%'))
    return { error: `${text.trim().slice(0, 60)}: write the address without a zone (%…).` };
  if (t.includes('/'))
    return {
      error: `${text.trim().slice(0, 60)} is a network: register single addresses (one per gateway).`,
    };
  const ip = parseIp(t);
  if (!ip) return { error: `${text.trim().slice(0, 60)} is not an IPv4 or IPv6 address.` };
  const b = ip.bytes;
  if (b.every((x) => x === 0)) return { error: 'The unspecified address cannot send queries.' };
  if (ip.family === 4 && (b[0]! >= 224 || b[0] === 0))
    return { error: `${formatIp(ip)} is not a unicast host address.` };
  if (ip.family === 6 && b[0] === 0xff) return { error: `${formatIp(ip)} is a multicast address.` };
  return { ip: formatIp(ip) };
}

/**
 * An allow/block list entry, checked by the same parser the server's lists use
 * (src/checks/locallist): an IP address, a CIDR network (no host bits), a domain (that name only)
 * or `.domain` (every name under it; `*.domain` is written `.domain`). Returns the canonical form.
 */
export function listEntryProblem(text: string): { entry: string } | { error: string } {
  const t = text.trim();
  if (t === '') return { error: 'Enter an IP address, a network (CIDR), a domain or .domain.' };
  if (t.length > 255 || /[\s#%]/.test(t))
    return { error: `${t.slice(0, 80)} is not an IP address, network, domain or .domain.` };
  let entry: string;
  const cidr = t.includes('/') || parseIp(t) ? parseCidr(t) : null;
  if (cidr) {
    const base = formatIp(cidr.network);
    entry = t.includes('/') ? `${base}/${cidr.prefix}` : base;
  } else {
    entry = t.toLowerCase().replace(/^\*\./, '.').replace(/\.$/, '');
  }
  try {
    new LocalLists({ block: [entry] });
  } catch (err) {
    if (err instanceof LocalListError)
      return { error: `${t.slice(0, 80)}: ${err.message.replace(/^local block list entry "[^"]*": /, '')}.` };
    throw err;
  }
  return { entry };
}

/** A domain for the preview (optional): '' or a domain name; an address is cut to its domain. */
export function previewDomainProblem(text: string): { domain: string } | { error: string } {
  let t = text.trim().toLowerCase();
  if (t.includes('@')) t = t.slice(t.lastIndexOf('@') + 1);
  t = t.replace(/\.$/, '');
  if (t === '') return { domain: '' };
  if (!isFqdn(t)) return { error: `${text.trim().slice(0, 80)} is not a domain name.` };
  return { domain: t };
}
