/** Domain-name helpers shared by the checks (RFC 1035 / RFC 5321 syntax). */

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Lower-cases and drops one trailing dot. */
export function normalizeDomain(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * True for a syntactically valid host name in the LDH form (A-labels only): at least two labels,
 * each 1–63 octets, at most 253 octets, and a top-level label that is not all digits.
 */
export function isFqdn(name: string): boolean {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n.length === 0 || n.length > 253) return false;
  const labels = n.split('.');
  if (labels.length < 2) return false;
  if (!labels.every((l) => LABEL.test(l))) return false;
  return !/^\d+$/.test(labels[labels.length - 1]!);
}

/** An envelope address without its angle brackets and surrounding white space ("<a@b>" → "a@b"). */
export function stripBrackets(address: string): string {
  const a = address.trim();
  return a.startsWith('<') && a.endsWith('>') ? a.slice(1, -1).trim() : a;
}

/** The domain part of an address ("user@Example.COM" → "example.com"); '' for the null sender. */
export function domainOfAddress(address: string): string {
  const a = stripBrackets(address);
  const at = a.lastIndexOf('@');
  if (at < 0) return '';
  return normalizeDomain(a.slice(at + 1));
}

/** The local part of an address; '' when there is none. */
export function localPartOfAddress(address: string): string {
  const a = stripBrackets(address);
  const at = a.lastIndexOf('@');
  return at < 0 ? '' : a.slice(0, at);
}
