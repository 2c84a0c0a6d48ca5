/**
 * A Received header field (RFC 5321 §4.4) read back: who connected (client IP, HELO, the name
 * the receiving MTA found in reverse DNS), who received (`by`), how (`with`), the queue id, the
 * recipient of the `for` clause, and Exim's `envelope-from`.
 *
 * Each MTA writes the client its own way; the forms read here (docs/replay.md shows one of each):
 *
 *   Postfix   from HELO (REVERSE [IP])                          REVERSE is "unknown" when none
 *             from HELO (REVERSE [IPv6:2001:db8::1])
 *   Sendmail  from HELO (REVERSE [IP])   from HELO ([IP])   from HELO (user@REVERSE [IP])
 *             from HELO (REVERSE [IP] (may be forged))     (from REVERSE [IP])   (no HELO given)
 *   Exim      from NAME ([IP] helo=HELO)   from NAME ([IP]:PORT)   from [IP] (helo=HELO)
 *             from [IP] (port=PORT helo=HELO ident=USER)   IPv6 as [2001:db8::1]
 *             NAME is the verified reverse name; no helo= means the HELO equalled NAME or [IP]
 *   qmail     from REMOTEHOST (HELO HELO) (IP)   from REMOTEHOST (INFO@IP)   from HELO (IP)
 *             REMOTEHOST is "unknown" without reverse DNS; no (HELO …) means HELO = REMOTEHOST
 *   Exchange  from HELO (IP) by HOST (IP) with Microsoft SMTP Server …   IPv6 without brackets
 *
 * So: the client IP is the first address literal ("[…]", with or without "IPv6:") or bare address
 * in a comment of the from clause, else the from name itself when it is an address literal; the
 * HELO is an explicit one (Exim's helo=, qmail's "HELO x") or else the from name.
 *
 * Bounded: the value is cut at 16 KiB and comments nest at most 16 deep; parsing is one pass.
 * Never throws: a header without a usable client gives `ip: undefined` and a `problem`.
 */
import { formatIp, parseIp } from '../common/ip.ts';

export type ReceivedFormat = 'postfix' | 'sendmail' | 'exim' | 'qmail' | 'exchange' | 'generic';

export interface ReceivedInfo {
  /** the from clause's name as written: the HELO for most MTAs, the verified name for Exim */
  fromName?: string;
  /** the client's HELO/EHLO argument, as far as the header tells */
  helo?: string;
  /** the name the receiving MTA found for the IP (reverse DNS), when it wrote one */
  reverse?: string;
  /** the client's address, canonical (RFC 5952 for IPv6) */
  ip?: string;
  port?: number;
  /** RFC 1413 ident or qmail's remote info */
  ident?: string;
  /** the receiving host */
  by?: string;
  /** the protocol (SMTP, ESMTPS, LMTP, …) */
  with?: string;
  id?: string;
  /** the recipient of the `for` clause, without angle brackets */
  for?: string;
  /** Exim's `(envelope-from <…>)` */
  envelopeFrom?: string;
  /** the date after the semicolon */
  date?: string;
  format: ReceivedFormat;
  /** why no client IP could be read */
  problem?: string;
}

const MAX_VALUE = 16 * 1024;
const MAX_DEPTH = 16;
/** a host name, an address literal, "unknown": no white space, quotes or angle brackets */
const ATOM = /^[^\s"<>]+$/;
const KEYWORDS = new Set(['from', 'by', 'via', 'with', 'id', 'for']);

type Token = { kind: 'word'; text: string } | { kind: 'comment'; text: string };

/** Words and comments (outer parentheses removed, nested ones kept) up to the first top-level ";". */
function tokenize(value: string): { tokens: Token[]; date?: string } {
  const tokens: Token[] = [];
  let i = 0;
  const n = value.length;
  while (i < n) {
    const c = value[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
      continue;
    }
    if (c === ';') {
      const date = value.slice(i + 1).trim();
      return date ? { tokens, date } : { tokens };
    }
    if (c === '(') {
      let depth = 0;
      let j = i;
      for (; j < n; j++) {
        const d = value[j];
        if (d === '\\') j++;
        else if (d === '(') depth = Math.min(depth + 1, MAX_DEPTH + 1);
        else if (d === ')' && --depth === 0) break;
      }
      // an unclosed comment runs to the end
      tokens.push({ kind: 'comment', text: value.slice(i + 1, Math.min(j, n)).trim() });
      i = j + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      for (; j < n && value[j] !== '"'; j++) if (value[j] === '\\') j++;
      tokens.push({ kind: 'word', text: value.slice(i, Math.min(j + 1, n)) });
      i = j + 1;
      continue;
    }
    if (c === '<') {
      const j = value.indexOf('>', i);
      const end = j < 0 ? n : j + 1;
      tokens.push({ kind: 'word', text: value.slice(i, end) });
      i = end;
      continue;
    }
    if (c === ')') {
      // a stray closing parenthesis: nothing to close
      i++;
      continue;
    }
    let j = i;
    while (j < n && !' \t\r\n();"'.includes(value[j]!)) j++;
    // "<" inside a word (a@b<c>) stays part of it
    tokens.push({ kind: 'word', text: value.slice(i, j) });
    i = j;
  }
  return { tokens };
}

/** Text of a comment without its nested comments ("a [ip] (may be forged)" → "a [ip]"). */
function outerText(comment: string): string {
  let out = '';
  let depth = 0;
  for (let i = 0; i < comment.length; i++) {
    const c = comment[i]!;
    if (c === '\\') {
      if (depth === 0) out += comment.slice(i, i + 2);
      i++;
    } else if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0) out += c;
  }
  return out.trim();
}

/** "[192.0.2.1]", "[IPv6:2001:db8::1]", "[2001:db8::1]" (Exim), with an optional ":port". */
const LITERAL = /\[(?:ipv6:)?([0-9a-f:.]{2,45})\](?::(\d{1,5}))?/i;

function literalIp(text: string): { ip: string; port?: number; at: number } | null {
  const m = LITERAL.exec(text);
  if (!m) return null;
  const ip = parseIp(m[1]!);
  if (!ip) return null;
  return { ip: formatIp(ip), ...(m[2] ? { port: Number(m[2]) } : {}), at: m.index };
}

function bareIp(text: string): string | null {
  const ip = parseIp(text);
  return ip ? formatIp(ip) : null;
}

function unbracket(address: string): string {
  const a = address.trim();
  return a.startsWith('<') && a.endsWith('>') ? a.slice(1, -1).trim() : a;
}

/** Reads one Received value (folded or not). */
export function parseReceived(raw: string): ReceivedInfo {
  const value = (raw.length > MAX_VALUE ? raw.slice(0, MAX_VALUE) : raw).replace(/\r?\n(?=[ \t])/g, '');
  const { tokens, date } = tokenize(value);
  const info: ReceivedInfo = { format: 'generic' };
  if (date) info.date = date;

  // the clauses: keyword → its words and comments
  const fromComments: string[] = [];
  const otherComments: string[] = [];
  let clause: string | null = null;
  let first = true;
  for (const t of tokens) {
    if (t.kind === 'comment') {
      // Sendmail without HELO: "(from REVERSE [IP])" before "by"
      if (first && /^from\s/i.test(t.text)) {
        fromComments.push(t.text.slice(5).trim());
        clause = 'from-comment';
      } else if (clause === 'from' || clause === 'from-comment') fromComments.push(t.text);
      else otherComments.push(t.text);
      first = false;
      continue;
    }
    first = false;
    const lower = t.text.toLowerCase();
    if (KEYWORDS.has(lower)) {
      clause = lower;
      continue;
    }
    switch (clause) {
      case 'from':
        // a host name or address literal: one atom (a quoted string or <…> here is damage)
        if (ATOM.test(t.text)) info.fromName ??= t.text;
        break;
      case 'by':
        if (ATOM.test(t.text)) info.by ??= t.text;
        break;
      case 'with':
        // Exchange: "with Microsoft SMTP Server"; keep the first word only
        info.with ??= t.text;
        break;
      case 'id':
        info.id ??= t.text;
        break;
      case 'for':
        if (info.for === undefined && t.text.includes('@')) info.for = unbracket(t.text);
        break;
      default:
        break;
    }
  }

  const all = [...fromComments, ...otherComments];
  for (const c of otherComments) {
    const m = /^envelope-from\s+(<[^>]*>|\S+)/i.exec(c);
    if (m) info.envelopeFrom = unbracket(m[1]!);
  }

  // the client
  let helo: string | undefined;
  for (const comment of fromComments) {
    const c = outerText(comment);
    const qmailHelo = /^HELO\s+(\S*)$/i.exec(c);
    if (qmailHelo) {
      helo ??= qmailHelo[1]!;
      continue;
    }
    const eximHelo = /(?:^|\s)helo=(\S*)/i.exec(c);
    if (eximHelo) helo ??= eximHelo[1]!;
    const ident = /(?:^|\s)ident=(\S+)/i.exec(c);
    if (ident) info.ident ??= ident[1]!;
    const port = /(?:^|\s)port=(\d{1,5})(?:\s|$)/i.exec(c);
    if (info.ip !== undefined) continue;
    const lit = literalIp(c);
    if (lit) {
      info.ip = lit.ip;
      if (lit.port !== undefined) info.port = lit.port;
      else if (port) info.port = Number(port[1]);
      const before = c.slice(0, lit.at).trim();
      if (before) {
        // "REVERSE", "user@REVERSE", "unknown"
        const at = before.lastIndexOf('@');
        const name = at >= 0 ? before.slice(at + 1) : before;
        if (at > 0) info.ident ??= before.slice(0, at);
        if (name && name.toLowerCase() !== 'unknown' && !name.includes(' ')) info.reverse = name.replace(/\.$/, '');
      }
      continue;
    }
    // qmail "(INFO@IP)" / "(IP)", Exchange "(IP)"
    const at = c.lastIndexOf('@');
    const ip = bareIp(at >= 0 ? c.slice(at + 1) : c);
    if (ip) {
      info.ip = ip;
      if (at > 0) info.ident ??= c.slice(0, at);
    }
  }
  if (info.ip === undefined && info.fromName?.startsWith('[')) {
    const lit = literalIp(info.fromName);
    if (lit) {
      info.ip = lit.ip;
      if (lit.port !== undefined) info.port = lit.port;
      for (const c of fromComments) {
        const port = /(?:^|\s)port=(\d{1,5})(?:\s|$)/i.exec(c);
        if (port) info.port ??= Number(port[1]);
      }
    }
  }
  // an explicit HELO (Exim, qmail), else the from name (Postfix, Sendmail, Exchange; Exim and
  // qmail write none when it equalled the name)
  if (helo !== undefined && helo !== '') info.helo = helo;
  else if (info.fromName !== undefined) info.helo = info.fromName;

  info.format = formatOf(info, fromComments, all);
  // Exim writes the verified reverse name as the from name (Sendmail's "from HELO ([IP])" does not)
  if (info.format === 'exim' && info.reverse === undefined && info.fromName && !info.fromName.startsWith('[')) info.reverse = info.fromName;
  if (info.ip === undefined) {
    info.problem =
      info.fromName === undefined && fromComments.length === 0
        ? 'no "from" clause (a local or internal hop)'
        : 'no client IP address in the "from" clause';
  }
  return info;
}

function formatOf(info: ReceivedInfo, fromComments: string[], comments: string[]): ReceivedFormat {
  if (comments.some((c) => /^Exim \d/i.test(c)) || fromComments.some((c) => /(?:^|\s)helo=/i.test(c))) return 'exim';
  if (/^Microsoft$/i.test(info.with ?? '') || comments.some((c) => /Microsoft SMTP Server/i.test(c))) return 'exchange';
  if (comments.some((c) => /^Postfix\b/i.test(c))) return 'postfix';
  // Sendmail's "by HOST (8.17.1/8.17.1)" version pair
  if (comments.some((c) => /^\d+\.\d+(?:\.\d+)?(?:\/[\w.+-]+)+$/.test(c))) return 'sendmail';
  if (fromComments.some((c) => /^HELO\s/i.test(c)) || comments.some((c) => /^qmail \d+ invoked/i.test(c))) return 'qmail';
  return 'generic';
}
