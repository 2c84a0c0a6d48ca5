/**
 * Postscreen-style reply filters for DNSBL/DNSWL answers.
 *
 * A filter is one or more IPv4 address patterns separated by ";". Each pattern has four dotted
 * octets; an octet is a number (0-255) or a bracketed set of numbers and ranges separated by ";",
 * where a range is "a..b" (Postfix) or "a-b":
 *
 *   127.0.0.2            only 127.0.0.2
 *   127.0.0.[2..11]      127.0.0.2 through 127.0.0.11
 *   127.0.[2..15].[0;1]  the DNSWL trust levels 0 and 1
 *   127.0.0.2;127.0.0.3  either address
 *
 * A reply A record matches the filter when it matches any pattern.
 */
import { parseIp } from '../../common/ip.ts';

export interface AddressFilter {
  /** the pattern text as configured */
  readonly source: string;
  /** true when the dotted-quad `address` matches one of the patterns */
  matches(address: string): boolean;
}

/** One pattern: for each of the four octets, the set of accepted values as a 256-entry table. */
type OctetSets = [Uint8Array, Uint8Array, Uint8Array, Uint8Array];

export class FilterSyntaxError extends Error {
  constructor(pattern: string, detail: string) {
    super(`invalid DNSBL reply filter "${pattern}": ${detail}`);
    this.name = 'FilterSyntaxError';
  }
}

/** Splits on `sep` outside square brackets. */
function splitOutsideBrackets(text: string, sep: string, pattern: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '[') {
      if (depth > 0) throw new FilterSyntaxError(pattern, 'nested "["');
      depth++;
    } else if (c === ']') {
      if (depth === 0) throw new FilterSyntaxError(pattern, 'unbalanced "]"');
      depth--;
    } else if (c === sep && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) throw new FilterSyntaxError(pattern, 'unbalanced "["');
  parts.push(text.slice(start));
  return parts;
}

function octetValue(text: string, pattern: string): number {
  if (!/^\d{1,3}$/.test(text)) throw new FilterSyntaxError(pattern, `"${text}" is not an octet value`);
  const n = Number(text);
  if (n > 255) throw new FilterSyntaxError(pattern, `${n} is larger than 255`);
  return n;
}

function parseOctet(text: string, pattern: string): Uint8Array {
  const set = new Uint8Array(256);
  if (!text.startsWith('[')) {
    set[octetValue(text, pattern)] = 1;
    return set;
  }
  if (!text.endsWith(']')) throw new FilterSyntaxError(pattern, `"${text}" has text after "]"`);
  const body = text.slice(1, -1);
  if (body === '') throw new FilterSyntaxError(pattern, 'empty "[]"');
  for (const item of body.split(';')) {
    const range = /^(\d{1,3})(?:\.\.|-)(\d{1,3})$/.exec(item);
    if (range) {
      const lo = octetValue(range[1]!, pattern);
      const hi = octetValue(range[2]!, pattern);
      if (lo > hi) throw new FilterSyntaxError(pattern, `range ${item} is reversed`);
      set.fill(1, lo, hi + 1);
    } else {
      set[octetValue(item, pattern)] = 1;
    }
  }
  return set;
}

function parsePattern(text: string, pattern: string): OctetSets {
  const octets = splitOutsideBrackets(text, '.', pattern);
  if (octets.length !== 4) throw new FilterSyntaxError(pattern, `"${text}" does not have four octets`);
  return octets.map((o) => parseOctet(o, pattern)) as OctetSets;
}

/** Compiles a filter; throws FilterSyntaxError (naming the pattern) when it is malformed. */
export function compileFilter(source: string): AddressFilter {
  const trimmed = source.replace(/\s+/g, '');
  if (trimmed === '') throw new FilterSyntaxError(source, 'empty filter');
  const patterns = splitOutsideBrackets(trimmed, ';', source).map((p) => {
    if (p === '') throw new FilterSyntaxError(source, 'empty alternative');
    return parsePattern(p, source);
  });
  return {
    source,
    matches(address: string): boolean {
      const ip = parseIp(address);
      if (ip?.family !== 4) return false;
      return patterns.some((sets) => sets.every((set, i) => set[ip.bytes[i]!] === 1));
    },
  };
}
