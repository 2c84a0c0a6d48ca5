/**
 * Header folding and value sanitising (RFC 5322 §2.2.3, §3.2.2): every header this project
 * writes goes through here, so all adapters emit identical text.
 */

/** Strips CR, LF and other control characters from text that will be placed in a header. */
export function sanitize(text: string): string {
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f]+/g, ' ');
}

/** A token (RFC 2045) is left alone; anything else becomes a quoted-string. */
export function quoteValue(value: string): string {
  const clean = sanitize(value);
  if (clean.length > 0 && /^[A-Za-z0-9!#$%&'*+\-.^_`{|}~@]+$/.test(clean)) return clean;
  return `"${clean.replace(/(["\\])/g, '\\$1')}"`;
}

/** A comment body with parentheses and backslashes escaped. */
export function comment(text: string): string {
  return `(${sanitize(text).replace(/([()\\])/g, '\\$1')})`;
}

/**
 * Folds `label + ' ' + parts.join(sep)` so no line exceeds `width` octets where a break is
 * possible; breaks go only between parts (before the part, as CRLF + tab). Returns the value
 * without the label; lines are joined with "\r\n\t".
 */
export function foldParts(label: string, parts: string[], width = 78): string {
  let out = '';
  let lineLength = label.length + 1;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const lead = i === 0 ? '' : ' ';
    if (i > 0 && lineLength + lead.length + part.length > width) {
      out += '\r\n\t' + part;
      lineLength = 8 + part.length;
    } else {
      out += lead + part;
      lineLength += lead.length + part.length;
    }
  }
  return out;
}
