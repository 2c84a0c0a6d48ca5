/**
 * The DMARC Policy Record (RFC 9989 §4.7, §4.8): a DKIM-style tag-value list that must start
 * with v=DMARC1. Anything else in the record that does not parse is dropped in favour of the
 * default value (§4.8), and noted in `problems`; unknown tags are ignored (§4.7).
 *
 * ABNF quoted strings are case-insensitive (RFC 5234 §2.3), so tag names and the keyword values
 * (p=Reject, ADKIM=S) are matched without case; only "DMARC1" is case-sensitive (%s"DMARC1").
 */
import type { AlignmentMode, DmarcPolicy, DmarcRecord, DmarcRecordParse, PsdFlag } from './types.ts';

const VERSION = /^[ \t]*v[ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)/i;
const TAG_NAME = /^[a-z]+$/i;
const POLICIES: ReadonlySet<string> = new Set(['none', 'quarantine', 'reject']);
const OBS_REPORT_SIZE = /!\d+[kmgt]?$/i;
const URI = /^[a-z][a-z0-9+.-]*:[\x22-\x2b\x2d-\x7e]+$/i;

/** True when `text` starts with the v=DMARC1 tag (§4.10 step 2: other TXT records are discarded). */
export function isDmarcRecord(text: string): boolean {
  const m = VERSION.exec(text);
  // "DMARC1" is case-sensitive, the "v" is not
  return m !== null && /DMARC1/.test(m[0]);
}

function trimWsp(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** A reporting URI is syntactically valid (RFC 3986 scheme ":" ..., with the obsolete !size dropped). */
export function isValidReportingUri(uri: string): boolean {
  return URI.test(uri.replace(OBS_REPORT_SIZE, ''));
}

function uriList(value: string): string[] {
  return value
    .split(',')
    .map(trimWsp)
    .filter((u) => u.length > 0);
}

/** Parses one TXT record (its character-strings already joined). */
export function parseDmarcRecord(text: string): DmarcRecordParse {
  if (!isDmarcRecord(text)) {
    return { ok: false, error: 'the record does not start with v=DMARC1' };
  }
  const record: DmarcRecord = {
    text,
    p: null,
    sp: null,
    np: null,
    pInvalid: false,
    spInvalid: false,
    npInvalid: false,
    adkim: 'r',
    aspf: 'r',
    pct: 100,
    t: false,
    psd: 'u',
    rua: [],
    ruf: [],
    fo: null,
    tags: [['v', 'DMARC1']],
    problems: [],
  };
  const seen = new Set<string>(['v']);
  const parts = text.split(';');
  for (let i = 1; i < parts.length; i++) {
    const part = trimWsp(parts[i]!);
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) {
      record.problems.push(`"${part}" is not a tag=value pair`);
      continue;
    }
    const name = trimWsp(part.slice(0, eq)).toLowerCase();
    const value = trimWsp(part.slice(eq + 1));
    if (!TAG_NAME.test(name)) {
      record.problems.push(`"${part}" has an invalid tag name`);
      continue;
    }
    if (seen.has(name)) {
      record.problems.push(`${name}= appears again; the first one is used`);
      continue;
    }
    seen.add(name);
    record.tags.push([name, value]);
    applyTag(record, name, value);
  }
  return { ok: true, record };
}

function policyValue(value: string): DmarcPolicy | null {
  const v = value.toLowerCase();
  return POLICIES.has(v) ? (v as DmarcPolicy) : null;
}

function applyTag(record: DmarcRecord, name: string, value: string): void {
  const lower = value.toLowerCase();
  switch (name) {
    case 'p':
    case 'sp':
    case 'np': {
      const policy = policyValue(value);
      if (policy === null) {
        record.problems.push(`${name}=${value} is not none, quarantine or reject`);
        if (name === 'p') record.pInvalid = true;
        else if (name === 'sp') record.spInvalid = true;
        else record.npInvalid = true;
      } else record[name] = policy;
      break;
    }
    case 'adkim':
    case 'aspf':
      if (lower === 'r' || lower === 's') record[name] = lower as AlignmentMode;
      else record.problems.push(`${name}=${value} is not r or s; relaxed is used`);
      break;
    case 't':
      if (lower === 'y' || lower === 'n') record.t = lower === 'y';
      else record.problems.push(`t=${value} is not y or n; n is used`);
      break;
    case 'psd':
      if (lower === 'y' || lower === 'n' || lower === 'u') record.psd = lower as PsdFlag;
      else record.problems.push(`psd=${value} is not y, n or u; u is used`);
      break;
    case 'pct':
      if (/^\d{1,3}$/.test(value) && Number(value) <= 100) record.pct = Number(value);
      else record.problems.push(`pct=${value} is not an integer from 0 to 100; 100 is used`);
      break;
    case 'rua':
    case 'ruf':
      record[name] = uriList(value);
      break;
    case 'fo':
      record.fo = value;
      break;
    default:
      // unknown and historic tags (rf, ri, ...) are ignored (§4.7)
      break;
  }
}

/**
 * §4.10.1: a record without a valid p=, or with an invalid sp= or np=, counts as p=none when its
 * rua= has at least one valid URI; otherwise no DMARC processing applies. Returns the record to
 * apply, or null for the latter case.
 */
export function effectiveRecord(record: DmarcRecord): DmarcRecord | null {
  if (record.p !== null && !record.spInvalid && !record.npInvalid) return record;
  if (!record.rua.some(isValidReportingUri)) return null;
  return { ...record, p: 'none', sp: null, np: null };
}

/** Picks the one DMARC record among the TXT records at a name (§4.10 step 2). */
export function selectDmarcRecord(
  txt: readonly (readonly string[])[],
): { record: DmarcRecord } | { record: null; count: number } {
  let found: DmarcRecord | null = null;
  let count = 0;
  for (const strings of txt) {
    const parsed = parseDmarcRecord(strings.join(''));
    if (!parsed.ok) continue;
    count++;
    found = parsed.record;
  }
  return count === 1 ? { record: found! } : { record: null, count };
}
