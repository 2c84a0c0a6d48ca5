/**
 * SPF macros (RFC 7208 §7): parsing a macro-string once into tokens, and expanding those tokens
 * against the values of one check_host() evaluation.
 *
 *   macro-string = *( macro-expand / macro-literal )
 *   macro-expand = ( "%{" macro-letter transformers *delimiter "}" ) / "%%" / "%_" / "%-"
 *   macro-literal = %x21-24 / %x26-7E
 *   transformers = *DIGIT [ "r" ]
 *   delimiter    = "." / "-" / "+" / "," / "/" / "_" / "="
 *
 * Parsing is strict: a "%" not followed by "{", "%", "_" or "-" is a syntax error (§7.1), and so
 * is an unknown letter, a zero DIGIT transformer, or "c", "r", "t" outside explanation text.
 */

export type MacroLetter = 's' | 'l' | 'o' | 'd' | 'i' | 'p' | 'h' | 'c' | 'r' | 't' | 'v';

/** One "%{...}" reference. */
export interface MacroExpand {
  letter: MacroLetter;
  /** number of right-hand parts to keep; 0 keeps them all */
  digits: number;
  reverse: boolean;
  /** the delimiter characters to split on; '' means the default "." */
  delimiters: string;
  /** an upper-case letter: the expansion is URL-escaped (§7.3) */
  escape: boolean;
}

export type MacroToken = string | MacroExpand;

export interface MacroString {
  /** the text as written */
  text: string;
  /** literal runs (with %%, %_ and %- already resolved) and macro references, in order */
  tokens: MacroToken[];
  /** true when a %{p} reference is present, which needs DNS before expansion */
  usesP: boolean;
  /** true when the last token came from a macro-expand (the domain-end rule of §7.1) */
  endsWithMacro: boolean;
}

/**
 * Where a macro-string appears. "domain" is a domain-spec (no c/r/t, no spaces); "explain" is the
 * TXT text an exp= points to (all letters, spaces allowed); "modifier" is an unknown modifier's
 * value, which is checked against the ABNF only and never expanded.
 */
export type MacroContext = 'domain' | 'explain' | 'modifier';

export type MacroParseResult = { ok: true; value: MacroString } | { ok: false; error: string };

const DOMAIN_LETTERS = 'slodiphv';
const ALL_LETTERS = 'slodiphvcrt';
const DELIMITERS = '.-+,/_=';

function describe(code: number): string {
  return code >= 0x21 && code <= 0x7e
    ? `'${String.fromCharCode(code)}'`
    : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Parses a macro-string; never throws. */
export function parseMacroString(text: string, context: MacroContext): MacroParseResult {
  const tokens: MacroToken[] = [];
  let literal = '';
  let usesP = false;
  let endsWithMacro = false;
  const letters = context === 'domain' ? DOMAIN_LETTERS : ALL_LETTERS;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const code = text.charCodeAt(i);
    if (code !== 0x25) {
      const allowed = (code >= 0x21 && code <= 0x7e) || (code === 0x20 && context === 'explain');
      if (!allowed) return { ok: false, error: `invalid character ${describe(code)} at offset ${i}` };
      // take the whole literal run at once
      let j = i + 1;
      while (j < n) {
        const c = text.charCodeAt(j);
        if (c === 0x25 || !((c >= 0x21 && c <= 0x7e) || (c === 0x20 && context === 'explain'))) break;
        j++;
      }
      literal += text.slice(i, j);
      endsWithMacro = false;
      i = j;
      continue;
    }
    const next = i + 1 < n ? text[i + 1] : '';
    if (next === '%' || next === '_' || next === '-') {
      literal += next === '%' ? '%' : next === '_' ? ' ' : '%20';
      endsWithMacro = true;
      i += 2;
      continue;
    }
    if (next !== '{') {
      return {
        ok: false,
        error:
          next === ''
            ? `'%' at the end of '${text}' is not followed by '{', '%', '_' or '-'`
            : `'%${next}' at offset ${i} is not a macro: '%' must be followed by '{', '%', '_' or '-'`,
      };
    }
    const close = text.indexOf('}', i + 2);
    if (close < 0) return { ok: false, error: `unterminated macro at offset ${i}` };
    const body = text.slice(i + 2, close);
    const parsed = parseExpand(body, letters);
    if (typeof parsed === 'string') return { ok: false, error: `macro '%{${body}}': ${parsed}` };
    if (literal) {
      tokens.push(literal);
      literal = '';
    }
    tokens.push(parsed);
    if (parsed.letter === 'p') usesP = true;
    endsWithMacro = true;
    i = close + 1;
  }
  if (literal) tokens.push(literal);
  return { ok: true, value: { text, tokens, usesP, endsWithMacro } };
}

function parseExpand(body: string, letters: string): MacroExpand | string {
  if (body.length === 0) return 'no macro letter';
  const first = body[0]!;
  const letter = first.toLowerCase();
  if (!ALL_LETTERS.includes(letter)) return `unknown macro letter '${first}'`;
  if (!letters.includes(letter)) return `macro letter '${letter}' is allowed only in explanation text (§7.1)`;
  let i = 1;
  let digitText = '';
  while (i < body.length && body.charCodeAt(i) >= 0x30 && body.charCodeAt(i) <= 0x39) digitText += body[i++];
  let digits = 0;
  if (digitText) {
    // any count above the number of labels a name can have keeps every part
    digits = digitText.length > 3 ? 1000 : Number(digitText);
    if (/^0+$/.test(digitText)) return 'the DIGIT transformer must be nonzero';
  }
  let reverse = false;
  if (i < body.length && (body[i] === 'r' || body[i] === 'R')) {
    reverse = true;
    i++;
  }
  let delimiters = '';
  for (; i < body.length; i++) {
    const c = body[i]!;
    if (!DELIMITERS.includes(c)) return `invalid delimiter or transformer '${c}'`;
    if (!delimiters.includes(c)) delimiters += c;
  }
  return { letter: letter as MacroLetter, digits, reverse, delimiters, escape: first !== letter };
}

/** The values macro letters expand to during one evaluation (§7.3). */
export interface MacroValues {
  /** <sender>: local-part@domain */
  s: string;
  /** local-part of <sender> */
  l: string;
  /** domain of <sender> */
  o: string;
  /** <domain>: the domain whose record is being evaluated */
  d: string;
  /** <ip>: dotted quad, or 32 dot-separated nibbles for IPv6 */
  i: string;
  /** the validated domain name of <ip>, or "unknown"; resolved by the caller before expansion */
  p: string;
  /** HELO/EHLO domain */
  h: string;
  /** <ip> in its readable form (explanation only) */
  c: string;
  /** the receiving host's domain (explanation only) */
  r: string;
  /** current time, seconds since the epoch (explanation only) */
  t: string;
  /** "in-addr" or "ip6" */
  v: string;
}

const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;
const HEX = '0123456789ABCDEF';

/** Percent-encodes every octet outside RFC 3986's unreserved set (UTF-8 for non-ASCII). */
export function urlEscape(value: string): string {
  if (UNRESERVED.test(value)) return value;
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    if (byte < 0x80 && UNRESERVED.test(ch)) out += ch;
    else out += '%' + HEX[byte >> 4] + HEX[byte & 15];
  }
  return out;
}

function transform(value: string, m: MacroExpand): string {
  if (m.digits === 0 && !m.reverse && m.delimiters === '') return value;
  let parts: string[];
  if (m.delimiters === '' || m.delimiters === '.') parts = value.split('.');
  else {
    parts = [''];
    for (const ch of value) {
      if (m.delimiters.includes(ch)) parts.push('');
      else parts[parts.length - 1] += ch;
    }
  }
  if (m.reverse) parts.reverse();
  if (m.digits > 0 && m.digits < parts.length) parts = parts.slice(parts.length - m.digits);
  return parts.join('.');
}

/** Expands parsed tokens; never throws. `values.p` must be resolved first when `usesP` is set. */
export function expandMacroString(macro: MacroString, values: MacroValues): string {
  const tokens = macro.tokens;
  if (tokens.length === 1 && typeof tokens[0] === 'string') return tokens[0];
  let out = '';
  for (const token of tokens) {
    if (typeof token === 'string') {
      out += token;
      continue;
    }
    const value = transform(values[token.letter], token);
    out += token.escape ? urlEscape(value) : value;
  }
  return out;
}

/**
 * §7.3: an expanded name longer than 253 characters loses labels from the left until it fits.
 * One trailing dot is dropped first (it is not part of the name as queried).
 */
export function truncateDomain(name: string): string {
  let n = name.endsWith('.') ? name.slice(0, -1) : name;
  while (n.length > 253) {
    const dot = n.indexOf('.');
    if (dot < 0) break;
    n = n.slice(dot + 1);
  }
  return n;
}
