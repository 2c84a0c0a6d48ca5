/**
 * The tag=value list of RFC 6376 §3.2, shared by DKIM-Signature, DKIM key records and the ARC
 * header fields (RFC 8617 reuses the same syntax).
 *
 *   tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *   tag-name  =  ALPHA *ALNUMPUNC          ; ALNUMPUNC = ALPHA / DIGIT / "_"
 *   tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
 *   tval      =  1*VALCHAR                 ; VALCHAR = %x21-3A / %x3C-7E
 *
 * Tag names are case-sensitive; a name given twice makes the whole list invalid. Two leniencies,
 * both common in published records: an empty tag-spec (";;", or only white space between
 * semicolons) is skipped, and octets above 0x7E are accepted in values (UTF-8 in n= notes).
 * Control characters other than folding white space are a syntax error.
 */

export interface Tag {
  /** the tag name as written (case-sensitive) */
  name: string;
  /** the value without leading and trailing folding white space; inner white space kept */
  value: string;
  /** offset in the input of the character after "=" */
  valueStart: number;
  /** offset in the input one past the end of the tag-spec (the ";" or the end of the input) */
  specEnd: number;
}

export type TagListResult =
  | { ok: true; tags: Map<string, Tag>; list: Tag[] }
  | { ok: false; error: string; tags: Map<string, Tag>; list: Tag[] };

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

function isFws(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/**
 * Parses a tag-list. On a syntax error the result is not ok and names the first error; the
 * well-formed tags around it are still returned (the first of duplicates), for diagnostics such
 * as reporting header.d of a signature that cannot be used.
 */
export function parseTagList(text: string): TagListResult {
  // one scan for control characters; only when there are some does each value get checked
  const controls = CONTROL.test(text);
  const tags = new Map<string, Tag>();
  const list: Tag[] = [];
  let error: string | null = null;
  const n = text.length;
  let pos = 0;
  while (pos <= n) {
    let end = text.indexOf(';', pos);
    if (end < 0) end = n;
    const spec = parseSpec(text, pos, end, controls);
    pos = end + 1;
    if (spec === null) continue;
    if (typeof spec === 'string') {
      error ??= spec;
      continue;
    }
    if (tags.has(spec.name)) {
      error ??= `duplicate tag ${spec.name}=`;
      continue;
    }
    tags.set(spec.name, spec);
    list.push(spec);
  }
  return error === null ? { ok: true, tags, list } : { ok: false, error, tags, list };
}

/** One tag-spec in text[pos, end): the tag, null when empty, or an error message. */
function parseSpec(text: string, pos: number, end: number, controls: boolean): Tag | string | null {
  let a = pos;
  while (a < end && isFws(text.charCodeAt(a))) a++;
  // an empty tag-spec is tolerated (see the module comment)
  if (a === end) return null;
  const eq = text.indexOf('=', a);
  if (eq < 0 || eq >= end) return `tag without "=": ${JSON.stringify(clip(text.slice(a, end)))}`;
  let ne = eq;
  while (ne > a && isFws(text.charCodeAt(ne - 1))) ne--;
  const name = text.slice(a, ne);
  if (!NAME.test(name)) return `invalid tag name ${JSON.stringify(clip(name))}`;
  let vs = eq + 1;
  while (vs < end && isFws(text.charCodeAt(vs))) vs++;
  let ve = end;
  while (ve > vs && isFws(text.charCodeAt(ve - 1))) ve--;
  if (controls) {
    for (let i = vs; i < ve; i++) {
      const c = text.charCodeAt(i);
      if ((c < 0x21 && !isFws(c)) || c === 0x7f) return `control character in the value of ${name}=`;
    }
  }
  return { name, value: text.slice(vs, ve), valueStart: eq + 1, specEnd: end };
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** The value with every folding white-space character removed (for b=, bh= and p=). */
export function stripFws(value: string): string {
  return /[ \t\r\n]/.test(value) ? value.replace(/[ \t\r\n]+/g, '') : value;
}

/**
 * A colon-separated list (h=, s=, t=, q=, key h=) as its elements without surrounding folding
 * white space. Empty elements are kept as '' so callers can reject them where the grammar does.
 */
export function splitColonList(value: string): string[] {
  return /[ \t\r\n]/.test(value) ? value.replace(EDGE_FWS, '').split(COLON_FWS) : value.split(':');
}

const EDGE_FWS = /^[ \t\r\n]+|[ \t\r\n]+$/g;
const COLON_FWS = /[ \t\r\n]*:[ \t\r\n]*/;

/**
 * The text of a header field value with the value of one tag removed, keeping everything else
 * byte for byte ("b=abc; x" becomes "b=; x"). RFC 6376 §3.7 hashes the signature header field
 * this way, "with the value of the b= tag (including all surrounding whitespace) deleted".
 */
export function withoutTagValue(text: string, tag: Tag): string {
  return text.slice(0, tag.valueStart) + text.slice(tag.specEnd);
}

/**
 * base64string of RFC 6376 §2.4 (the base64 alphabet, then at most two "=", folding white space
 * anywhere) decoded; null when the text is not of that form or cannot be a whole number of
 * octets. As the grammar allows, the padding may be missing.
 */
export function decodeBase64(value: string): Buffer | null {
  const s = stripFws(value);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  let data = s.length;
  while (data > 0 && s.charCodeAt(data - 1) === 0x3d) data--;
  if (data % 4 === 1 || (data < s.length && (data + (s.length - data)) % 4 !== 0)) return null;
  return Buffer.from(s, 'base64');
}
