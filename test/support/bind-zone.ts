/**
 * A small parser for BIND-style zone files (RFC 1035 §5) as used by peer test suites such as
 * authentication_milter's t/zonefile: one record per line or per parenthesised group,
 * `name [ttl] [class] type rdata`, absolute names (a trailing dot) or names relative to
 * $ORIGIN (no $ORIGIN: taken as absolute), "@" for the origin, a blank owner for the previous
 * one, `;` comments, quoted or bare character-strings for TXT. Types: A, AAAA, CNAME, PTR, NS,
 * MX, TXT, SRV, SOA. The suite's extension `;ERROR,<name>,<type>,NXDOMAIN` is returned in
 * `errors`. The result is ZoneData for test/support/zone.ts (MemoryResolver, test DNS server).
 */
import type { ZoneData, ZoneEntry } from './zone.ts';

export interface BindZone {
  data: ZoneData;
  /** `;ERROR,<name>,<type>,<rcode>` lines, in order */
  errors: Array<{ name: string; type: string; rcode: string }>;
  /** resource records read */
  records: number;
}

const CLASSES = new Set(['IN', 'CH', 'HS', 'CS']);
const TYPES = new Set(['A', 'AAAA', 'CNAME', 'PTR', 'NS', 'MX', 'TXT', 'SRV', 'SOA']);

interface Word {
  text: string;
  quoted: boolean;
}

/** Splits an entry into words; quoted strings keep their spaces, ";" starts a comment. */
function words(line: string): { words: Word[]; depth: number } {
  const out: Word[] = [];
  let depth = 0;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ';') break;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
    } else if (c === '(' || c === ')') {
      depth += c === '(' ? 1 : -1;
      i++;
    } else if (c === '"') {
      let text = '';
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) i++;
        text += line[i];
        i++;
      }
      i++;
      out.push({ text, quoted: true });
    } else {
      let text = '';
      while (i < line.length && !' \t\r\n();"'.includes(line[i]!)) text += line[i++];
      out.push({ text, quoted: false });
    }
  }
  return { words: out, depth };
}

function absolute(name: string, origin: string | null): string {
  if (name === '@') return origin ?? '';
  if (name.endsWith('.')) return name.slice(0, -1).toLowerCase();
  return (origin ? `${name}.${origin}` : name).toLowerCase();
}

/** Parses zone file text. Throws on a record it cannot read, naming the line. */
export function parseBindZone(text: string): BindZone {
  const data: Record<string, ZoneEntry[]> = {};
  const errors: BindZone['errors'] = [];
  let origin: string | null = null;
  let previous: string | null = null;
  let records = 0;
  const lines = text.split(/\r?\n/);
  for (let ln = 0; ln < lines.length; ln++) {
    let line = lines[ln]!;
    const error = /^;ERROR,([^,]+),([^,]+),(\w+)/.exec(line);
    if (error) {
      errors.push({ name: error[1]!.toLowerCase().replace(/\.$/, ''), type: error[2]!, rcode: error[3]! });
      continue;
    }
    const startsBlank = /^[ \t]/.test(line);
    let parsed = words(line);
    // a parenthesised entry may continue on the next lines
    while (parsed.depth > 0 && ln + 1 < lines.length) {
      line += ' ' + lines[++ln];
      parsed = words(line);
    }
    const w = parsed.words;
    if (w.length === 0) continue;
    if (w[0]!.text === '$ORIGIN') {
      origin = absolute(w[1]!.text, null);
      continue;
    }
    if (w[0]!.text.startsWith('$')) continue;
    let k = 0;
    let owner: string;
    if (startsBlank) {
      if (previous === null) throw new Error(`zone line ${ln + 1}: no owner name`);
      owner = previous;
    } else owner = absolute(w[k++]!.text, origin);
    // [ttl] [class] in either order
    for (let n = 0; n < 2; n++) {
      const t = w[k]?.text.toUpperCase();
      if (t !== undefined && (/^\d+$/.test(t) || CLASSES.has(t))) k++;
    }
    const type = w[k++]?.text.toUpperCase();
    if (type === undefined || !TYPES.has(type)) throw new Error(`zone line ${ln + 1}: unknown type ${type}`);
    const rdata = w.slice(k);
    const entry = recordEntry(type, rdata, origin);
    if (entry === null) throw new Error(`zone line ${ln + 1}: bad ${type} data`);
    const entries = data[owner] ?? [];
    entries.push(entry);
    data[owner] = entries;
    previous = owner;
    records++;
  }
  return { data, errors, records };
}

function recordEntry(type: string, rdata: Word[], origin: string | null): ZoneEntry | null {
  const first = rdata[0]?.text;
  switch (type) {
    case 'A':
    case 'AAAA':
      return first ? { [type]: first } : null;
    case 'CNAME':
    case 'PTR':
    case 'NS':
      return first ? { [type]: absolute(first, origin) } : null;
    case 'MX':
      return rdata.length >= 2 ? { MX: [Number(first), absolute(rdata[1]!.text, origin)] } : null;
    case 'SRV':
      return rdata.length >= 4
        ? {
            SRV: [
              Number(first),
              Number(rdata[1]!.text),
              Number(rdata[2]!.text),
              absolute(rdata[3]!.text, origin),
            ],
          }
        : null;
    case 'TXT':
      // a TXT record with no character-string at all is kept as one empty string
      return { TXT: rdata.length ? rdata.map((x) => x.text) : [''] };
    case 'SOA':
      return rdata.length >= 7 ? { SOA: rdata.map((x) => x.text).join(' ') } : null;
    default:
      return null;
  }
}
