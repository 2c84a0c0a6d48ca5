/**
 * SPF record selection (RFC 7208 §4.5) and the record parser (§4.6, §5, §6, ABNF in §12).
 *
 * The whole record is parsed before evaluation starts, so a syntax error anywhere is a permerror
 * even when an earlier mechanism would have matched (§4.6). Unknown mechanisms, a repeated
 * redirect= or exp=, a CIDR length out of range or with a leading zero, a domain-spec that does
 * not end in a macro or a valid top label, and any character outside printable US-ASCII are all
 * errors. The parser never throws; it answers with the record or with an error naming the term.
 */
import { type MacroString, parseMacroString } from './macro.ts';

export type Qualifier = '+' | '-' | '~' | '?';

interface Directive {
  qualifier: Qualifier;
  /** the term as written in the record, e.g. "-ip4:192.0.2.0/24" */
  text: string;
}

export interface AllMechanism extends Directive {
  kind: 'all';
}
export interface IncludeMechanism extends Directive {
  kind: 'include';
  domain: MacroString;
}
export interface AddressMechanism extends Directive {
  kind: 'a' | 'mx';
  /** null: the current <domain> */
  domain: MacroString | null;
  cidr4: number;
  cidr6: number;
}
export interface PtrMechanism extends Directive {
  kind: 'ptr';
  domain: MacroString | null;
}
export interface Ip4Mechanism extends Directive {
  kind: 'ip4';
  /** the network as an unsigned 32-bit number, already masked */
  network: number;
  /** the prefix as a 32-bit mask */
  mask: number;
  prefix: number;
}
export interface Ip6Mechanism extends Directive {
  kind: 'ip6';
  /** 16 bytes (an IPv4-mapped network stays in its IPv6 form here) */
  network: Uint8Array;
  prefix: number;
}
export interface ExistsMechanism extends Directive {
  kind: 'exists';
  domain: MacroString;
}

export type SpfMechanism =
  | AllMechanism
  | IncludeMechanism
  | AddressMechanism
  | PtrMechanism
  | Ip4Mechanism
  | Ip6Mechanism
  | ExistsMechanism;

export interface SpfUnknownModifier {
  name: string;
  value: string;
}

export interface SpfRecord {
  text: string;
  mechanisms: SpfMechanism[];
  redirect: MacroString | null;
  exp: MacroString | null;
  /** unknown modifiers, ignored by evaluation (§6) but kept for diagnostics */
  modifiers: SpfUnknownModifier[];
}

export interface SpfSyntaxError {
  /** one sentence naming the problem */
  message: string;
  /** the offending term as written, when one term is to blame */
  term: string | null;
}

export type SpfParseResult = { ok: true; record: SpfRecord } | { ok: false; error: SpfSyntaxError };

/** True when `text` starts with the version section "v=spf1" (any case) ended by SP or the end. */
export function isSpfRecord(text: string): boolean {
  if (text.length < 6 || (text.length > 6 && text.charCodeAt(6) !== 0x20)) return false;
  return text.startsWith('v=spf1') || text.slice(0, 6).toLowerCase() === 'v=spf1';
}

export type RecordSelection =
  | { kind: 'none' }
  | { kind: 'record'; text: string }
  | { kind: 'multiple'; count: number };

/**
 * §4.5: the character-strings of each TXT record are joined with nothing between them, records
 * not starting with "v=spf1" are discarded, and more than one survivor is an error.
 */
export function selectRecord(txt: readonly (readonly string[])[]): RecordSelection {
  let found: string | null = null;
  let count = 0;
  for (const strings of txt) {
    const text = strings.length === 1 ? strings[0]! : strings.join('');
    if (!isSpfRecord(text)) continue;
    count++;
    found = text;
  }
  if (count === 0) return { kind: 'none' };
  if (count > 1) return { kind: 'multiple', count };
  return { kind: 'record', text: found! };
}

function fail(message: string, term: string | null): { ok: false; error: SpfSyntaxError } {
  return { ok: false, error: { message, term } };
}

function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ).
 * Written as a scan rather than a regular expression so a long hostile label costs linear time.
 */
export function isTopLabel(label: string): boolean {
  const n = label.length;
  if (n === 0) return false;
  let alpha = false;
  let dash = false;
  for (let i = 0; i < n; i++) {
    const c = label.charCodeAt(i);
    if (isAlpha(c)) alpha = true;
    else if (c === 0x2d) dash = true;
    else if (!isDigit(c)) return false;
  }
  if (!dash) return alpha;
  return label.charCodeAt(0) !== 0x2d && label.charCodeAt(n - 1) !== 0x2d;
}

/**
 * domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand.
 * Returns the parsed macro-string or an error text.
 */
export function parseDomainSpec(text: string): MacroString | string {
  if (text.length === 0) return 'the domain-spec is empty';
  const parsed = parseMacroString(text, 'domain');
  if (!parsed.ok) return parsed.error;
  const spec = parsed.value;
  if (spec.endsWithMacro) return spec;
  // the literal tail after the last macro-expand must end in "." toplabel [ "." ]
  const last = spec.tokens[spec.tokens.length - 1];
  let tail = typeof last === 'string' ? last : '';
  if (tail.endsWith('.')) tail = tail.slice(0, -1);
  const dot = tail.lastIndexOf('.');
  if (dot < 0) return `'${text}' does not end in a macro or in "." followed by a top-level label`;
  const top = tail.slice(dot + 1);
  if (!isTopLabel(top)) {
    if (/^\d+$/.test(top)) return `the top-level label '${top}' of '${text}' is all-numeric`;
    return `'${top}' in '${text}' is not a valid top-level label`;
  }
  return spec;
}

/** Parses a CIDR length ("0" or no leading zero) within 0..max; null when invalid. */
function parseCidrLength(digits: string, max: number): number | null {
  if (digits.length === 0 || digits.length > 3) return null;
  if (digits.length > 1 && digits.charCodeAt(0) === 0x30) return null;
  for (let i = 0; i < digits.length; i++) if (!isDigit(digits.charCodeAt(i))) return null;
  const v = Number(digits);
  return v <= max ? v : null;
}

/**
 * ip4-network = qnum "." qnum "." qnum "." qnum, qnum 0–255 without leading zeros; as an unsigned
 * 32-bit number, or null.
 */
export function ip4ToNumber(text: string): number | null {
  const n = text.length;
  if (n < 7 || n > 15) return null;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return null;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && octet === 0) return null; // leading zero
      octet = octet * 10 + (c - 0x30);
      if (++digits > 3 || octet > 255) return null;
    } else return null;
  }
  if (dots !== 3 || digits === 0) return null;
  return value * 256 + octet;
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** RFC 4291 §2.2 text forms, without zone index or brackets; 16 bytes, mapped forms not folded. */
export function parseIp6(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > 45) return null;
  if (!/^[0-9a-f:.]+$/i.test(text)) return null;
  let head = text;
  let tail: number | null = null;
  if (text.includes('.')) {
    const lastColon = text.lastIndexOf(':');
    tail = ip4ToNumber(text.slice(lastColon + 1));
    if (tail === null) return null;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const doubles = head.split('::');
  if (doubles.length > 2) return null;
  const left = doubles[0] ? doubles[0].split(':') : [];
  const right = doubles.length === 2 && doubles[1] ? doubles[1].split(':') : [];
  if (doubles.length === 1 && left.length !== 8) return null;
  if (doubles.length === 2 && left.length + right.length > 7) return null;
  const groups = [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = new Uint8Array(16);
  for (let g = 0; g < 8; g++) {
    const s = groups[g]!;
    if (!/^[0-9a-f]{1,4}$/i.test(s)) return null;
    const v = Number.parseInt(s, 16);
    out[g * 2] = v >> 8;
    out[g * 2 + 1] = v & 0xff;
  }
  if (tail !== null) {
    out[12] = tail >>> 24;
    out[13] = (tail >>> 16) & 0xff;
    out[14] = (tail >>> 8) & 0xff;
    out[15] = tail & 0xff;
  }
  return out;
}

/**
 * Splits a dual-cidr-length off the end of `text`: [ "/" ip4 ] [ "//" ip6 ]. Returns the part
 * before it and the digit strings found (not yet validated).
 */
function splitDualCidr(text: string): { rest: string; cidr4: string | null; cidr6: string | null } {
  let rest = text;
  let cidr4: string | null = null;
  let cidr6: string | null = null;
  let end = rest.length;
  let i = end;
  while (i > 0 && isDigit(rest.charCodeAt(i - 1))) i--;
  if (i < end && i >= 2 && rest[i - 1] === '/' && rest[i - 2] === '/') {
    cidr6 = rest.slice(i, end);
    rest = rest.slice(0, i - 2);
    end = rest.length;
    i = end;
    while (i > 0 && isDigit(rest.charCodeAt(i - 1))) i--;
  }
  if (i < end && i >= 1 && rest[i - 1] === '/') {
    cidr4 = rest.slice(i, end);
    rest = rest.slice(0, i - 1);
  }
  return { rest, cidr4, cidr6 };
}

const MECHANISMS = new Set(['all', 'include', 'a', 'mx', 'ptr', 'ip4', 'ip6', 'exists']);

function parseDirective(term: string): SpfMechanism | SpfSyntaxError {
  let qualifier: Qualifier = '+';
  let i = 0;
  const q = term[0];
  if (q === '+' || q === '-' || q === '~' || q === '?') {
    qualifier = q;
    i = 1;
  }
  let j = i;
  while (j < term.length && (isAlpha(term.charCodeAt(j)) || isDigit(term.charCodeAt(j)))) j++;
  const rawName = term.slice(i, j);
  const name = rawName.toLowerCase();
  const args = term.slice(j);
  if (!MECHANISMS.has(name)) {
    if (rawName === '') return { message: `'${term}' is neither a mechanism nor a modifier`, term };
    return { message: `unknown mechanism '${rawName}'`, term };
  }
  const err = (message: string): SpfSyntaxError => ({ message: `${name}: ${message}`, term });
  switch (name) {
    case 'all':
      if (args !== '') return err('"all" takes no argument');
      return { kind: 'all', qualifier, text: term };
    case 'include':
    case 'exists': {
      if (args[0] !== ':') return err(`"${name}" needs ":" and a domain-spec`);
      const spec = parseDomainSpec(args.slice(1));
      if (typeof spec === 'string') return err(spec);
      return { kind: name, qualifier, text: term, domain: spec };
    }
    case 'a':
    case 'mx': {
      const { rest, cidr4, cidr6 } = splitDualCidr(args);
      let cidr4n = 32;
      let cidr6n = 128;
      if (cidr4 !== null) {
        const v = parseCidrLength(cidr4, 32);
        if (v === null) return err(`invalid IPv4 CIDR length '/${cidr4}'`);
        cidr4n = v;
      }
      if (cidr6 !== null) {
        const v = parseCidrLength(cidr6, 128);
        if (v === null) return err(`invalid IPv6 CIDR length '//${cidr6}'`);
        cidr6n = v;
      }
      let domain: MacroString | null = null;
      if (rest !== '') {
        if (rest[0] !== ':') return err(`unexpected '${rest}'`);
        const spec = parseDomainSpec(rest.slice(1));
        if (typeof spec === 'string') return err(spec);
        domain = spec;
      }
      return { kind: name, qualifier, text: term, domain, cidr4: cidr4n, cidr6: cidr6n };
    }
    case 'ptr': {
      if (args === '') return { kind: 'ptr', qualifier, text: term, domain: null };
      if (args[0] !== ':') return err(`unexpected '${args}'`);
      const spec = parseDomainSpec(args.slice(1));
      if (typeof spec === 'string') return err(spec);
      return { kind: 'ptr', qualifier, text: term, domain: spec };
    }
    case 'ip4': {
      if (args[0] !== ':') return err('"ip4" needs ":" and a network');
      const slash = args.indexOf('/');
      const addr = slash < 0 ? args.slice(1) : args.slice(1, slash);
      const network = ip4ToNumber(addr);
      if (network === null) return err(`'${addr}' is not an IPv4 network (four decimal octets)`);
      let prefix = 32;
      if (slash >= 0) {
        const v = parseCidrLength(args.slice(slash + 1), 32);
        if (v === null) return err(`invalid IPv4 CIDR length '${args.slice(slash)}'`);
        prefix = v;
      }
      const mask = maskOf(prefix);
      return { kind: 'ip4', qualifier, text: term, network: (network & mask) >>> 0, mask, prefix };
    }
    case 'ip6': {
      if (args[0] !== ':') return err('"ip6" needs ":" and a network');
      const slash = args.indexOf('/');
      const addr = slash < 0 ? args.slice(1) : args.slice(1, slash);
      const network = parseIp6(addr);
      if (network === null) return err(`'${addr}' is not an IPv6 network`);
      let prefix = 128;
      if (slash >= 0) {
        const v = parseCidrLength(args.slice(slash + 1), 128);
        if (v === null) return err(`invalid IPv6 CIDR length '${args.slice(slash)}'`);
        prefix = v;
      }
      return { kind: 'ip6', qualifier, text: term, network, prefix };
    }
  }
  return err('unsupported');
}

/** Finds the first character outside printable US-ASCII; -1 when there is none. */
function firstBadChar(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return i;
  }
  return -1;
}

/** Parses one SPF record (which must start with the version section). Never throws. */
export function parseRecord(text: string): SpfParseResult {
  if (!isSpfRecord(text)) return fail('the record does not start with "v=spf1"', null);
  const bad = firstBadChar(text);
  if (bad >= 0) {
    const code = text.charCodeAt(bad);
    const start = text.lastIndexOf(' ', bad) + 1;
    let end = text.indexOf(' ', bad);
    if (end < 0) end = text.length;
    const kind = code > 0x7e ? 'non-ASCII' : 'control';
    const hex = code.toString(16).toUpperCase().padStart(4, '0');
    return fail(`${kind} character U+${hex} (only printable US-ASCII is allowed, §3.1/§12)`, text.slice(start, end));
  }
  const mechanisms: SpfMechanism[] = [];
  const modifiers: SpfUnknownModifier[] = [];
  let redirect: MacroString | null = null;
  let exp: MacroString | null = null;
  let redirectSeen = false;
  let expSeen = false;
  let pos = 6;
  const n = text.length;
  while (pos < n) {
    if (text.charCodeAt(pos) === 0x20) {
      pos++;
      continue;
    }
    let end = text.indexOf(' ', pos);
    if (end < 0) end = n;
    const term = text.slice(pos, end);
    pos = end;
    // modifier: name "=" ...; name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
    let k = 0;
    if (isAlpha(term.charCodeAt(0))) {
      k = 1;
      while (k < term.length) {
        const c = term.charCodeAt(k);
        if (isAlpha(c) || isDigit(c) || c === 0x2d || c === 0x5f || c === 0x2e) k++;
        else break;
      }
    }
    if (k > 0 && term.charCodeAt(k) === 0x3d) {
      const name = term.slice(0, k);
      const lower = name.toLowerCase();
      const value = term.slice(k + 1);
      if (lower === 'redirect' || lower === 'exp') {
        if (lower === 'redirect' ? redirectSeen : expSeen) {
          return fail(`"${lower}" appears more than once (§6)`, term);
        }
        const spec = parseDomainSpec(value);
        if (typeof spec === 'string') return fail(`${lower}: ${spec}`, term);
        if (lower === 'redirect') {
          redirectSeen = true;
          redirect = spec;
        } else {
          expSeen = true;
          exp = spec;
        }
      } else {
        const parsed = parseMacroString(value, 'modifier');
        if (!parsed.ok) return fail(`modifier '${name}': ${parsed.error}`, term);
        modifiers.push({ name, value });
      }
      continue;
    }
    const directive = parseDirective(term);
    if ('message' in directive) return { ok: false, error: directive };
    mechanisms.push(directive);
  }
  return { ok: true, record: { text, mechanisms, redirect, exp, modifiers } };
}
