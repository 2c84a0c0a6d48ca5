/**
 * The Author Domain (RFC 9989 §3.2.2, §5.3.1): the domain of the RFC5322.From mailbox. The From
 * field holds a mailbox-list (RFC 5322 §3.6.2), or an address-list with groups (RFC 6854), in the
 * RFC 5322 §3.4 syntax including its obsolete forms (§4.4: CFWS between the parts of an address,
 * "." in phrases, empty list members, source routes), with UTF-8 allowed (RFC 6532). A U-label
 * domain is converted to its A-label (§5.3.1, RFC 5890 §2.3).
 */
import { domainToASCII } from 'node:url';
import type { AuthorExtraction, AuthorProblem, Mailbox } from './types.ts';

type TokenKind = 'atom' | 'qstring' | 'literal' | '<' | '>' | '@' | ',' | ';' | ':' | '.';

interface Token {
  kind: TokenKind;
  value: string;
  at: number;
}

export type AddressListParse = { ok: true; mailboxes: Mailbox[] } | { ok: false; error: string; at: number };

class AddressSyntaxError extends Error {
  readonly at: number;
  constructor(message: string, at: number) {
    super(message);
    this.at = at;
  }
}

// atext (RFC 5322 §3.2.3) plus any non-ASCII character (RFC 6532 §3.2)
function isAtext(code: number): boolean {
  if (code >= 0x80) return true;
  if ((code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a) || (code >= 0x30 && code <= 0x39))
    return true;
  return "!#$%&'*+-/=?^_`{|}~".includes(String.fromCharCode(code));
}

function isWsp(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

function tokenize(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = s.length;
  while (i < n) {
    const c = s[i]!;
    if (isWsp(c)) {
      i++;
      continue;
    }
    if (c === '(') {
      // comment, nested, with quoted-pairs (§3.2.2)
      const start = i;
      let depth = 0;
      for (; i < n; i++) {
        const d = s[i];
        if (d === '\\') i++;
        else if (d === '(') depth++;
        else if (d === ')' && --depth === 0) break;
      }
      if (i >= n) throw new AddressSyntaxError('unterminated comment', start);
      i++;
      continue;
    }
    if (c === '"') {
      const start = i;
      let value = '';
      i++;
      for (; i < n && s[i] !== '"'; i++) {
        if (s[i] === '\\') {
          i++;
          if (i >= n) break;
        }
        const ch = s[i]!;
        // folding inside a quoted string is not part of its value (§3.2.4)
        if (ch !== '\r' && ch !== '\n') value += ch;
      }
      if (i >= n) throw new AddressSyntaxError('unterminated quoted string', start);
      i++;
      tokens.push({ kind: 'qstring', value, at: start });
      continue;
    }
    if (c === '[') {
      const start = i;
      let value = '[';
      i++;
      for (; i < n && s[i] !== ']'; i++) {
        if (s[i] === '[') throw new AddressSyntaxError('"[" inside a domain literal', i);
        if (s[i] === '\\') i++;
        if (i < n && !isWsp(s[i]!)) value += s[i];
      }
      if (i >= n) throw new AddressSyntaxError('unterminated domain literal', start);
      i++;
      tokens.push({ kind: 'literal', value: value + ']', at: start });
      continue;
    }
    if ('<>@,;:.'.includes(c)) {
      tokens.push({ kind: c as TokenKind, value: c, at: i });
      i++;
      continue;
    }
    const code = s.charCodeAt(i);
    if (!isAtext(code)) throw new AddressSyntaxError(`unexpected character ${JSON.stringify(c)}`, i);
    const start = i;
    while (i < n && isAtext(s.charCodeAt(i))) i++;
    tokens.push({ kind: 'atom', value: s.slice(start, i), at: start });
  }
  return tokens;
}

class Parser {
  private i = 0;
  private readonly tokens: Token[];
  private readonly end: number;
  readonly mailboxes: Mailbox[] = [];

  constructor(tokens: Token[], length: number) {
    this.tokens = tokens;
    this.end = length;
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  private fail(message: string): never {
    throw new AddressSyntaxError(message, this.peek()?.at ?? this.end);
  }

  private expect(kind: TokenKind, what: string): void {
    if (this.peek()?.kind !== kind) this.fail(`expected ${what}`);
    this.i++;
  }

  /** address-list, with the obsolete empty members (§4.4 obs-addr-list) */
  addressList(): void {
    for (;;) {
      while (this.peek()?.kind === ',') this.i++;
      if (this.peek() === undefined) return;
      this.address(true, undefined);
      const t = this.peek();
      if (t === undefined) return;
      if (t.kind !== ',') this.fail('expected "," between addresses');
    }
  }

  /** words (atoms, quoted strings) and dots: a phrase, or the local-part of an addr-spec */
  private words(): Token[] {
    const out: Token[] = [];
    for (
      let t = this.peek();
      t && (t.kind === 'atom' || t.kind === 'qstring' || t.kind === '.');
      t = this.peek()
    ) {
      out.push(t);
      this.i++;
    }
    return out;
  }

  private address(allowGroup: boolean, group: string | undefined): void {
    const phrase = this.words();
    const t = this.peek();
    if (t?.kind === '<') {
      this.i++;
      this.angleAddr(displayText(phrase), group);
      return;
    }
    if (t?.kind === ':' && phrase.length > 0) {
      if (!allowGroup) this.fail('a group inside a group');
      this.i++;
      const name = displayText(phrase);
      for (;;) {
        while (this.peek()?.kind === ',') this.i++;
        const u = this.peek();
        if (u === undefined) this.fail('unterminated group (";" missing)');
        if (u.kind === ';') {
          this.i++;
          return;
        }
        this.address(false, name);
        const v = this.peek();
        if (v?.kind !== ',' && v?.kind !== ';') this.fail('expected "," or ";" in a group');
      }
    }
    if (t?.kind === '@') {
      this.i++;
      const local = localPart(phrase, t.at);
      this.mailboxes.push({ displayName: '', localPart: local, domain: this.domain(), group });
      return;
    }
    if (phrase.length === 0) this.fail('expected an address');
    this.fail(t === undefined ? 'a display name without an address' : `unexpected "${t.value}"`);
  }

  private angleAddr(displayName: string, group: string | undefined): void {
    // obs-route: "@a.example,@b.example:" before the addr-spec (§4.4)
    if (this.peek()?.kind === '@' || this.peek()?.kind === ',') {
      for (;;) {
        while (this.peek()?.kind === ',') this.i++;
        if (this.peek()?.kind !== '@') break;
        this.i++;
        this.domain();
      }
      this.expect(':', '":" after a source route');
    }
    const words = this.words();
    const at = this.peek()?.at ?? this.end;
    this.expect('@', '"@" in the address');
    const local = localPart(words, at);
    const domain = this.domain();
    this.expect('>', '">" closing the address');
    this.mailboxes.push({ displayName, localPart: local, domain, group });
  }

  private domain(): string {
    const t = this.peek();
    if (t?.kind === 'literal') {
      this.i++;
      return t.value;
    }
    if (t?.kind !== 'atom') this.fail('expected a domain');
    let domain = t.value;
    this.i++;
    while (this.peek()?.kind === '.') {
      this.i++;
      const u = this.peek();
      if (u?.kind !== 'atom') this.fail('a domain cannot end with "." or have an empty label');
      domain += '.' + u.value;
      this.i++;
    }
    return domain;
  }
}

function displayText(words: Token[]): string {
  let out = '';
  for (const w of words) {
    if (w.kind === '.') out += '.';
    else out += (out && !out.endsWith('.') ? ' ' : '') + w.value;
  }
  return out;
}

/** local-part = word *("." word) (dot-atom, quoted-string, obs-local-part) */
function localPart(words: Token[], atSign: number): string {
  if (words.length === 0) throw new AddressSyntaxError('empty local part', atSign);
  let out = '';
  for (let k = 0; k < words.length; k++) {
    const w = words[k]!;
    const wantWord = k % 2 === 0;
    if (wantWord !== (w.kind !== '.')) throw new AddressSyntaxError('malformed local part', w.at);
    out += w.value;
  }
  const last = words[words.length - 1]!;
  if (last.kind === '.') throw new AddressSyntaxError('local part ends with "."', last.at);
  return out;
}

/** Parses one From field value (an address list; folding allowed). */
export function parseAddressList(value: string): AddressListParse {
  try {
    const parser = new Parser(tokenize(value), value.length);
    parser.addressList();
    return { ok: true, mailboxes: parser.mailboxes };
  } catch (e) {
    if (e instanceof AddressSyntaxError) return { ok: false, error: e.message, at: e.at };
    throw e;
  }
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;

/**
 * The DMARC form of a mailbox domain: lower case, A-labels, no trailing dot; null for a
 * domain-literal or a name that cannot be a DNS domain (empty or over-long labels, odd characters).
 */
export function normalizeAuthorDomain(domain: string): string | null {
  let d = domain.trim();
  if (d.startsWith('[')) return null;
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (/[^\x00-\x7f]/.test(d)) {
    d = domainToASCII(d);
    if (d === '') return null;
  }
  d = d.toLowerCase();
  if (d.length === 0 || d.length > 253) return null;
  for (const label of d.split('.')) {
    if (label.length === 0 || label.length > 63 || !LABEL.test(label)) return null;
  }
  return d;
}

/** Domains a lenient scan finds after "@" signs, for a From field that does not parse. */
export function salvageDomains(value: string): string[] {
  const out: string[] = [];
  for (const m of value.matchAll(/@[ \t\r\n]*([^\s<>()[\]\\,;:"@]+)/g)) {
    const d = normalizeAuthorDomain(m[1]!);
    if (d !== null && !out.includes(d)) out.push(d);
  }
  return out;
}

/** The From field values of a header, given as (name, value) pairs; names match without case or trailing blanks. */
export function fromFieldValues(headers: Iterable<readonly [string, string]>): string[] {
  const out: string[] = [];
  for (const [name, value] of headers) if (name.trim().toLowerCase() === 'from') out.push(value);
  return out;
}

const PROBLEM_ORDER: readonly AuthorProblem[] = [
  'absent',
  'syntax',
  'no-address',
  'invalid-domain',
  'multiple-fields',
  'multiple-domains',
];

/** Extracts the Author Domain(s) from the From field values (RFC 9989 §5.3.1). */
export function extractAuthorDomains(from: readonly string[]): AuthorExtraction {
  const problems = new Set<AuthorProblem>();
  const mailboxes: Mailbox[] = [];
  const domains: string[] = [];
  const salvaged: string[] = [];
  let detail: string | undefined;
  if (from.length === 0) problems.add('absent');
  if (from.length > 1) problems.add('multiple-fields');
  for (const value of from) {
    const parsed = parseAddressList(value);
    if (!parsed.ok) {
      problems.add('syntax');
      detail ??= `From field: ${parsed.error} at offset ${parsed.at}`;
      for (const d of salvageDomains(value)) if (!salvaged.includes(d)) salvaged.push(d);
      continue;
    }
    for (const mailbox of parsed.mailboxes) {
      mailboxes.push(mailbox);
      const d = normalizeAuthorDomain(mailbox.domain);
      if (d === null) {
        problems.add('invalid-domain');
        detail ??= `From address ${mailbox.localPart}@${mailbox.domain} has no usable domain`;
      } else if (!domains.includes(d)) domains.push(d);
    }
  }
  if (from.length > 0 && mailboxes.length === 0 && !problems.has('syntax')) problems.add('no-address');
  if (domains.length > 1) problems.add('multiple-domains');
  const ordered = PROBLEM_ORDER.filter((p) => problems.has(p));
  return {
    fields: from.length,
    mailboxes,
    domains,
    problems: ordered,
    ...(detail ? { detail } : {}),
    salvaged,
  };
}
