/**
 * The header fields of a message as a signature sees them: selection by h= (RFC 6376 §5.4.2,
 * bottom-up, names listed more often than present select nothing: over-signing) and the octets
 * the header hash covers (§3.7). Shared with ARC (AMS and AS are hashed the same way).
 */
import { asciiLower, type Canonicalization, canonicalizeHeader, relaxedHeaderValue } from './canon.ts';

export interface HeaderField {
  /** the name as received (case kept; simple canonicalization needs it) */
  name: string;
  /** everything after the colon, as received, folding kept */
  value: string;
  /** the name in lower case without surrounding white space, for matching */
  key: string;
}

export function headerField(name: string, value: string): HeaderField {
  let a = 0;
  let b = name.length;
  while (a < b && (name.charCodeAt(a) === 0x20 || name.charCodeAt(a) === 0x09)) a++;
  while (b > a && (name.charCodeAt(b - 1) === 0x20 || name.charCodeAt(b - 1) === 0x09)) b--;
  return { name, value, key: asciiLower(a === 0 && b === name.length ? name : name.slice(a, b)) };
}

/** Positions of the fields by lower-case name, top to bottom; build once per message. */
export type FieldIndex = Map<string, number[]>;

export function indexFields(fields: readonly HeaderField[]): FieldIndex {
  const index: FieldIndex = new Map();
  for (let i = 0; i < fields.length; i++) {
    const key = fields[i]!.key;
    const list = index.get(key);
    if (list) list.push(i);
    else index.set(key, [i]);
  }
  return index;
}

/**
 * The fields h= selects, in h= order: for each name the last instance not yet used, moving up;
 * null for a name with no instance left. The field at `exclude` (the signature being verified)
 * is never selected, even when h= names its kind.
 */
export function selectFields(
  fields: readonly HeaderField[],
  index: FieldIndex,
  names: readonly string[],
  exclude = -1,
): Array<HeaderField | null> {
  const used = new Map<string, number>();
  const out: Array<HeaderField | null> = [];
  for (const name of names) {
    const positions = index.get(name);
    let cursor = used.get(name) ?? (positions ? positions.length : 0);
    let picked: HeaderField | null = null;
    while (positions && cursor > 0) {
      const at = positions[--cursor]!;
      if (at === exclude) continue;
      picked = fields[at]!;
      break;
    }
    used.set(name, cursor);
    out.push(picked);
  }
  return out;
}

/**
 * The header hash input (§3.7): each selected field canonicalized and ended by CRLF, then the
 * signature's own field with its b= value removed, canonicalized, without a final CRLF.
 */
export function signedHeaderText(
  selected: ReadonlyArray<HeaderField | null>,
  canon: Canonicalization,
  signatureName: string,
  signatureValueWithoutB: string,
): string {
  let s = '';
  for (const f of selected) {
    if (!f) continue;
    // relaxed: the field's lower-case name (key) is the canonical name
    s +=
      canon === 'relaxed'
        ? `${f.key}:${relaxedHeaderValue(f.value)}\r\n`
        : `${canonicalizeHeader(canon, f.name, f.value)}\r\n`;
  }
  return s + canonicalizeHeader(canon, signatureName, signatureValueWithoutB);
}

/** RFC 5322 field-name, with the white space before the colon that old software writes. */
const FIELD_LINE = /^([\x21-\x39\x3b-\x7e]+[ \t]*):/;
const LINE_END = /\r?\n/;

/** Where the header block ends and the body starts (after the first empty line; LF or CRLF). */
function findBody(raw: Uint8Array): { headerEnd: number; bodyStart: number } {
  const n = raw.length;
  if (raw[0] === 0x0a) return { headerEnd: 0, bodyStart: 1 };
  if (raw[0] === 0x0d && raw[1] === 0x0a) return { headerEnd: 0, bodyStart: 2 };
  let i = raw.indexOf(0x0a);
  while (i >= 0) {
    const next = raw[i + 1];
    if (next === 0x0a) return { headerEnd: i + 1, bodyStart: i + 2 };
    if (next === 0x0d && raw[i + 2] === 0x0a) return { headerEnd: i + 1, bodyStart: i + 3 };
    i = raw.indexOf(0x0a, i + 1);
  }
  return { headerEnd: n, bodyStart: n };
}

/**
 * Splits a raw message into header fields and the offset where the body starts. Lines end in
 * CRLF or LF; folded lines are joined with CRLF, so the values look as on the SMTP wire. A line
 * that is neither a field nor a continuation (an mbox "From " line, garbage) is skipped. The
 * header block ends at the first empty line; without one the whole input is header.
 */
export function splitRawMessage(raw: Uint8Array): { fields: HeaderField[]; bodyStart: number } {
  const { headerEnd, bodyStart } = findBody(raw);
  const fields: HeaderField[] = [];
  if (headerEnd === 0) return { fields, bodyStart };
  const block = Buffer.from(raw.buffer, raw.byteOffset, headerEnd).toString('latin1');
  const lines = block.split(LINE_END);
  let name: string | null = null;
  let value = '';
  for (const line of lines) {
    if (line === '') continue;
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) {
      if (name !== null) value += `\r\n${line}`;
      continue;
    }
    if (name !== null) fields.push(headerField(name, value));
    const m = FIELD_LINE.exec(line);
    if (m) {
      name = m[1]!;
      value = line.slice(m[0].length);
    } else name = null;
  }
  if (name !== null) fields.push(headerField(name, value));
  return { fields, bodyStart };
}
