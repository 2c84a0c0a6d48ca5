/** Authentication-Results (RFC 8601): rendering, and spotting forged copies with our authserv-id. */
import { comment, foldParts, quoteValue } from './fold.ts';

export const AUTHENTICATION_RESULTS = 'Authentication-Results';

/** One resinfo: `method=result [reason="..."] (comment) ptype.property=value ...`. */
export interface MethodResult {
  method: string;
  result: string;
  reason?: string;
  comment?: string;
  properties: Array<[string, string]>;
}

/** The header value (after "Authentication-Results:"), folded. With no results: `id; none`. */
export function renderAuthenticationResults(authservId: string, results: MethodResult[]): string {
  const id = quoteValue(authservId);
  if (results.length === 0) return `${id}; none`;
  const parts: string[] = [`${id};`];
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    const words = [`${r.method}=${r.result}`];
    if (r.comment) words.push(comment(r.comment));
    if (r.reason) words.push(`reason=${quoteValue(r.reason)}`);
    for (const [key, value] of r.properties) words.push(`${key}=${propertyValue(value)}`);
    // a resinfo ends with ";" unless it is the last; folding may break between any two words
    if (i < results.length - 1) words[words.length - 1] += ';';
    parts.push(...words);
  }
  return foldParts(`${AUTHENTICATION_RESULTS}:`, parts);
}

/** Property values (RFC 8601 pvalue): tokens and addresses as they are, anything else quoted. */
function propertyValue(value: string): string {
  return quoteValue(value);
}

/** The authserv-id of a received Authentication-Results value, or null when it has none. */
export function authservIdOf(value: string): string | null {
  let s = value.trim();
  // skip leading comments
  while (s.startsWith('(')) {
    let depth = 0;
    let i = 0;
    for (; i < s.length; i++) {
      const c = s[i];
      if (c === '\\') i++;
      else if (c === '(') depth++;
      else if (c === ')' && --depth === 0) break;
    }
    s = s.slice(i + 1).trim();
  }
  if (s.startsWith('"')) {
    const m = /^"((?:[^"\\]|\\.)*)"/.exec(s);
    return m ? m[1]!.replace(/\\(.)/g, '$1') : null;
  }
  const m = /^[^\s;()]+/.exec(s);
  return m ? m[0] : null;
}

/** True when a received A-R header claims to come from us: it must be removed (RFC 8601 §5). */
export function isForgedAuthenticationResults(value: string, authservId: string): boolean {
  const id = authservIdOf(value);
  return id !== null && id.toLowerCase() === authservId.toLowerCase();
}
