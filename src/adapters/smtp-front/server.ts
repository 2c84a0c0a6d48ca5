/**
 * The SMTP server half of the front-end: the command parser, the per-connection protocol state
 * machine, and the socket wiring (TCP, STARTTLS, idle timeout, connection limit, draining).
 *
 * The state machine (`SmtpProtocol`) does no I/O of its own: bytes go in through `receive()`,
 * replies come out through an `SmtpIo`, and what to answer at each stage comes from an
 * `SmtpHandler` (adapter.ts asks the engine and the back-end). Unit tests and the fuzzer drive it
 * directly. It knows SMTP only: RFC 5321 sequencing and limits, PIPELINING (RFC 2920), SIZE
 * (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034/3463),
 * STARTTLS (RFC 3207) and the checkID `ID` command (also accepted as `XID`).
 */
import net from 'node:net';
import tls from 'node:tls';
import { isFqdn } from '../../common/domain.ts';

/** An SMTP reply: basic code, enhanced status code ('' for none), text lines. */
export interface Reply {
  code: number;
  enhanced: string;
  lines: string[];
}

export function reply(code: number, enhanced: string, ...lines: string[]): Reply {
  return { code, enhanced, lines };
}

/** RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its CRLF. */
const REPLY_LINE_MAX = 512;

/** Splits text into pieces of at most `max` octets (UTF-8), at spaces where possible. */
function wrap(text: string, max: number): string[] {
  if (Buffer.byteLength(text) <= max) return [text];
  const out: string[] = [];
  let line = '';
  let bytes = 0;
  let lastSpace = -1;
  for (const ch of text) {
    const size = Buffer.byteLength(ch);
    while (bytes + size > max) {
      const cut = lastSpace > 0 ? lastSpace : line.length;
      out.push(line.slice(0, cut));
      line = line.slice(cut).replace(/^ /, '');
      bytes = Buffer.byteLength(line);
      lastSpace = line.lastIndexOf(' ');
    }
    if (ch === ' ') lastSpace = line.length;
    line += ch;
    bytes += size;
  }
  out.push(line);
  return out;
}

/**
 * The reply as sent: one line per text line (long lines wrapped), continuation lines marked with
 * "-", the enhanced code on every line (RFC 2034 §3), control characters replaced by spaces.
 */
export function formatReply(r: Reply): string {
  const prefix = r.enhanced ? `${r.enhanced} ` : '';
  const max = REPLY_LINE_MAX - 6 - prefix.length;
  const lines: string[] = [];
  for (const line of r.lines.length > 0 ? r.lines : [''])
    lines.push(...wrap(line.replace(/[\x00-\x1f\x7f]/g, ' '), max));
  let out = '';
  for (let i = 0; i < lines.length; i++)
    out += `${r.code}${i === lines.length - 1 ? ' ' : '-'}${prefix}${lines[i]}`.trimEnd() + '\r\n';
  return out;
}

// ---------------------------------------------------------------------------------------------
// Command parser

/** The MAIL FROM parameters this server supports. */
export interface MailParams {
  /** SIZE=, the client's estimate in octets (RFC 1870) */
  size?: number;
  /** BODY= (RFC 6152) */
  body?: '7BIT' | '8BITMIME';
  /** SMTPUTF8 (RFC 6531) */
  smtputf8: boolean;
}

export type Command =
  | { verb: 'EHLO' | 'HELO'; domain: string }
  | { verb: 'ID'; keyword: 'ID' | 'XID'; domain: string }
  | { verb: 'MAIL'; address: string; params: MailParams; hasParams: boolean }
  | { verb: 'RCPT'; address: string }
  | { verb: 'DATA' | 'RSET' | 'QUIT' | 'STARTTLS' | 'NOOP' }
  | { verb: 'VRFY' | 'HELP'; argument: string };

export type ParseResult = { command: Command } | { error: Reply };

/** Verbs we know but do not offer: answered 502 (RFC 5321 §4.2.4), not 500. */
const NOT_IMPLEMENTED = new Set([
  'EXPN',
  'TURN',
  'ETRN',
  'ATRN',
  'AUTH',
  'BDAT',
  'XCLIENT',
  'XFORWARD',
  'SAML',
  'SEND',
  'SOML',
]);

const syntax = (text: string): { error: Reply } => ({ error: reply(501, '5.5.4', text) });

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10ffff}]+$/u;
const QUOTED_CONTENT = /^(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\u{10ffff}]|\\[\x20-\x7e])*$/u;
const LABEL =
  /^[A-Za-z0-9\u0080-\u{10ffff}](?:[A-Za-z0-9\u0080-\u{10ffff}-]*[A-Za-z0-9\u0080-\u{10ffff}])?$/u;
const ADDRESS_LITERAL = /^\[[\x21-\x5a\x5e-\x7e]+\]$/;
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * Checks a mailbox (RFC 5321 §4.1.2, RFC 6531 §3.3 for UTF-8): 'ok', 'syntax', or 'utf8' when it
 * is valid only with SMTPUTF8 and that was not given.
 */
export function checkMailbox(mailbox: string, utf8: boolean): 'ok' | 'syntax' | 'utf8' {
  const at = mailbox.lastIndexOf('@');
  if (at <= 0 || at === mailbox.length - 1) return 'syntax';
  const local = mailbox.slice(0, at);
  const domain = mailbox.slice(at + 1);
  if (Buffer.byteLength(local) > 64 || Buffer.byteLength(domain) > 255) return 'syntax';
  if (local.startsWith('"')) {
    if (local.length < 2 || !local.endsWith('"') || !QUOTED_CONTENT.test(local.slice(1, -1))) return 'syntax';
  } else if (!local.split('.').every((atom) => ATEXT.test(atom))) return 'syntax';
  if (domain.startsWith('[')) {
    if (!ADDRESS_LITERAL.test(domain)) return 'syntax';
  } else if (!domain.split('.').every((label) => label.length <= 63 && LABEL.test(label))) return 'syntax';
  if (!utf8 && NON_ASCII.test(mailbox)) return 'utf8';
  return 'ok';
}

/**
 * Reads a reverse-path or forward-path at the start of `s`: "<...>" (a quoted local part may hold
 * ">" or spaces) or, leniently, a bare address. Returns the mailbox (source route dropped, RFC 5321
 * §4.1.2/§C) and the text after it, or null.
 */
function readPath(s: string): { mailbox: string; rest: string } | null {
  let inner: string;
  let rest: string;
  if (s.startsWith('<')) {
    let i = 1;
    let quoted = false;
    for (; i < s.length; i++) {
      const c = s[i];
      if (quoted) {
        if (c === '\\') i++;
        else if (c === '"') quoted = false;
      } else if (c === '"') quoted = true;
      else if (c === '>') break;
      else if (c === '<') return null;
    }
    if (i >= s.length) return null;
    inner = s.slice(1, i);
    rest = s.slice(i + 1);
    if (rest !== '' && !rest.startsWith(' ')) return null;
  } else {
    const sp = s.indexOf(' ');
    inner = sp < 0 ? s : s.slice(0, sp);
    rest = sp < 0 ? '' : s.slice(sp);
    if (inner === '' || /[<>"]/.test(inner)) return null;
  }
  const route = /^@[^,:@\s]+(?:,@[^,:@\s]+)*:/.exec(inner);
  if (route) inner = inner.slice(route[0].length);
  if (Buffer.byteLength(inner) > 254) return null;
  return { mailbox: inner, rest: rest.trim() };
}

/** ESMTP parameters: "KEYWORD[=value]" separated by spaces (RFC 5321 §4.1.2 esmtp-param). */
function readParams(s: string): Map<string, string | null> | Reply {
  const params = new Map<string, string | null>();
  for (const token of s.split(' ')) {
    if (token === '') continue;
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:=(.*))?$/.exec(token);
    if (!m || (m[2] !== undefined && !/^[\x21-\x3c\x3e-\x7e\u0080-\u{10ffff}]+$/u.test(m[2])))
      return reply(501, '5.5.4', `Bad parameter syntax: ${token.slice(0, 60)}`);
    const key = m[1]!.toUpperCase();
    if (params.has(key)) return reply(501, '5.5.4', `Parameter ${key} given twice`);
    params.set(key, m[2] ?? null);
  }
  return params;
}

function mailParams(raw: Map<string, string | null>): MailParams | Reply {
  const params: MailParams = { smtputf8: false };
  for (const [key, value] of raw) {
    switch (key) {
      case 'SIZE':
        if (value === null || !/^\d{1,20}$/.test(value)) return reply(501, '5.5.4', 'Syntax: SIZE=octets');
        params.size = Number(value);
        break;
      case 'BODY': {
        const body = value?.toUpperCase();
        if (body === '7BIT' || body === '8BITMIME') params.body = body;
        else if (body === 'BINARYMIME')
          return reply(555, '5.5.4', 'BODY=BINARYMIME is not supported (no CHUNKING)');
        else return reply(501, '5.5.4', 'Syntax: BODY=7BIT or BODY=8BITMIME');
        break;
      }
      case 'SMTPUTF8':
        if (value !== null) return reply(501, '5.5.4', 'SMTPUTF8 takes no value');
        params.smtputf8 = true;
        break;
      default:
        return reply(555, '5.5.4', `Unsupported MAIL parameter ${key}`);
    }
  }
  return params;
}

const isReply = (x: unknown): x is Reply =>
  typeof x === 'object' && x !== null && 'code' in x && 'lines' in x;

/**
 * Parses one command line (without its line end). `utf8`: the current transaction was opened with
 * SMTPUTF8, so RCPT addresses may be UTF-8. Sequence rules are the protocol's business, not this.
 */
export function parseCommand(line: string, utf8 = false): ParseResult {
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(line))
    return { error: reply(500, '5.5.2', 'Control characters are not allowed in commands') };
  const sp = line.indexOf(' ');
  const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
  const arg = sp < 0 ? '' : line.slice(sp + 1);
  const noArgument = (v: 'DATA' | 'RSET' | 'QUIT' | 'STARTTLS'): ParseResult =>
    arg.trim() === '' ? { command: { verb: v } } : syntax(`Syntax: ${v} (no argument)`);
  switch (verb) {
    case 'EHLO':
    case 'HELO': {
      const domain = arg.trim();
      if (domain === '' || /\s/.test(domain)) return syntax(`Syntax: ${verb} hostname`);
      return { command: { verb, domain } };
    }
    case 'ID':
    case 'XID': {
      const domain = arg.trim();
      if (domain === '' || /\s/.test(domain) || !isFqdn(domain))
        return syntax(`Syntax: ${verb} domain (a fully qualified domain name)`);
      return { command: { verb: 'ID', keyword: verb, domain } };
    }
    case 'MAIL': {
      if (!/^FROM:/i.test(arg)) return syntax('Syntax: MAIL FROM:<address>');
      const path = readPath(arg.slice(5).trimStart());
      if (!path) return { error: reply(501, '5.1.7', 'Bad sender address syntax') };
      const raw = readParams(path.rest);
      if (isReply(raw)) return { error: raw };
      const params = mailParams(raw);
      if (isReply(params)) return { error: params };
      if (path.mailbox !== '') {
        const check = checkMailbox(path.mailbox, params.smtputf8);
        if (check === 'syntax') return { error: reply(501, '5.1.7', 'Bad sender address syntax') };
        if (check === 'utf8')
          return { error: reply(553, '5.6.7', 'Non-ASCII sender address needs the SMTPUTF8 parameter') };
      }
      return { command: { verb: 'MAIL', address: path.mailbox, params, hasParams: raw.size > 0 } };
    }
    case 'RCPT': {
      if (!/^TO:/i.test(arg)) return syntax('Syntax: RCPT TO:<address>');
      const path = readPath(arg.slice(3).trimStart());
      if (!path || path.mailbox === '') return { error: reply(501, '5.1.3', 'Bad recipient address syntax') };
      const raw = readParams(path.rest);
      if (isReply(raw)) return { error: raw };
      const first = raw.keys().next();
      if (!first.done) return { error: reply(555, '5.5.4', `Unsupported RCPT parameter ${first.value}`) };
      // RFC 5321 §4.5.1: "postmaster" without a domain is always a valid recipient
      if (path.mailbox.toLowerCase() !== 'postmaster') {
        const check = checkMailbox(path.mailbox, utf8);
        if (check === 'syntax') return { error: reply(501, '5.1.3', 'Bad recipient address syntax') };
        if (check === 'utf8')
          return { error: reply(553, '5.6.7', 'Non-ASCII recipient address needs SMTPUTF8 in MAIL FROM') };
      }
      return { command: { verb: 'RCPT', address: path.mailbox } };
    }
    case 'DATA':
    case 'RSET':
    case 'QUIT':
    case 'STARTTLS':
      return noArgument(verb);
    case 'NOOP':
      return { command: { verb: 'NOOP' } };
    case 'VRFY':
      if (arg.trim() === '') return syntax('Syntax: VRFY address');
      return { command: { verb: 'VRFY', argument: arg.trim() } };
    case 'HELP':
      return { command: { verb: 'HELP', argument: arg.trim() } };
    default:
      if (NOT_IMPLEMENTED.has(verb)) return { error: reply(502, '5.5.1', `${verb} is not implemented`) };
      return { error: reply(500, '5.5.2', 'Command not recognized') };
  }
}

// ---------------------------------------------------------------------------------------------
// Message content

/** One header field as received: its name and every byte of its lines (CRLF line ends). */
export interface HeaderFieldRaw {
  name: string;
  raw: Buffer;
}

/** A message as received, dot-unstuffed, every line ending in CRLF. */
export interface ReceivedMessage {
  headers: HeaderFieldRaw[];
  /** what follows the header fields: the empty separator line (when `separated`), then the body */
  body: Buffer[];
  /** the header section ended with an empty line (false: the content had no header section end) */
  separated: boolean;
  /** octets received (unstuffed, with CRLFs) */
  size: number;
}

export type BareLineEndPolicy = 'normalize' | 'reject';

const CRLF = Buffer.from('\r\n');
const DOT = 46;
const CR = 13;
const LF = 10;

interface ContentSink {
  /** a complete header field: its name, and its value byte for byte (latin1) after the colon */
  header(name: string, value: string): void;
  /** the header section is over (also when the content had none, or no empty line after it) */
  endOfHeaders(): void;
  /** body content after the empty separator line */
  body(chunk: Buffer): void;
}

/**
 * Reads DATA content up to the terminating CRLF "." CRLF (RFC 5321 §4.1.1.4): removes dot-stuffing,
 * splits the header fields off as they complete (passing each to the sink), keeps the message in a
 * buffer capped at `maxSize` (beyond it only the end is looked for), and notes the limit
 * violations the protocol refuses the message for: over-size, lines over `maxLine` octets, and
 * a CR or LF that is not part of a CRLF (under the 'reject' policy; 'normalize' makes each a
 * CRLF). Only CRLF "." CRLF ends the data: "\n.\n" and the like are content, so no line end a
 * back-end might read differently can end a message early ("SMTP smuggling").
 */
export class MessageReader {
  readonly message: ReceivedMessage = { headers: [], body: [], separated: false, size: 0 };
  oversize = false;
  longLine = false;
  bareLineEnd = false;
  private inHeaders = true;
  private field: { name: string; colon: number; parts: Buffer[] } | null = null;
  private carry: Buffer | null = null;
  private skipping = false;
  private readonly maxSize: number;
  private readonly maxLine: number;
  private readonly policy: BareLineEndPolicy;
  private readonly sink: ContentSink;

  constructor(options: {
    maxSize: number;
    maxLine: number;
    bareLineEnd: BareLineEndPolicy;
    sink: ContentSink;
  }) {
    this.maxSize = options.maxSize;
    this.maxLine = options.maxLine;
    this.policy = options.bareLineEnd;
    this.sink = options.sink;
  }

  /** Whether the content so far is refused anyway (nothing more needs keeping). */
  private get refused(): boolean {
    return this.oversize || this.longLine || (this.bareLineEnd && this.policy === 'reject');
  }

  /**
   * Consumes `buf` from `start`. Returns the offset just past the end-of-data line, or -1 when all
   * of it was content (more is needed).
   */
  push(buf: Buffer, start = 0): number {
    let pos = start;
    let span = -1;
    const flush = (end: number) => {
      if (span >= 0 && end > span) this.appendBody(buf.subarray(span, end));
      span = -1;
    };
    while (pos < buf.length) {
      const lf = buf.indexOf(LF, pos);
      if (lf === -1) {
        flush(pos);
        this.keepPartial(buf.subarray(pos));
        return -1;
      }
      if (this.skipping) {
        // the rest of an over-long line
        this.skipping = false;
        this.count(lf + 1 - pos);
        pos = lf + 1;
        continue;
      }
      if (this.carry === null && !this.inHeaders) {
        // fast path for ordinary body lines: CRLF-terminated, no leading dot, no stray CR
        const len = lf + 1 - pos;
        if (
          len >= 2 &&
          buf[lf - 1] === CR &&
          buf[pos] !== DOT &&
          len <= this.maxLine &&
          buf.indexOf(CR, pos) === lf - 1 &&
          this.size(len)
        ) {
          if (span < 0) span = pos;
          pos = lf + 1;
          continue;
        }
      }
      flush(pos);
      let line = buf.subarray(pos, lf + 1);
      if (this.carry !== null) {
        line = Buffer.concat([this.carry, line]);
        this.carry = null;
      }
      pos = lf + 1;
      if (this.line(line)) return pos;
    }
    flush(pos);
    return -1;
  }

  /** Counts `len` octets; false (and nothing kept from now on) once over the size limit. */
  private size(len: number): boolean {
    this.message.size += len;
    if (this.message.size > this.maxSize && !this.oversize) {
      this.oversize = true;
      this.drop();
    }
    return !this.refused;
  }

  private drop(): void {
    this.message.headers = [];
    this.message.body = [];
    this.field = null;
  }

  private keepPartial(part: Buffer): void {
    const total = (this.carry?.length ?? 0) + part.length;
    if (this.skipping) {
      this.count(part.length);
      return;
    }
    if (total > this.maxLine) {
      // an over-long line: refused at the end; only its end matters now
      this.longLine = true;
      this.count(total);
      this.carry = null;
      this.skipping = true;
      this.drop();
      return;
    }
    this.carry = this.carry ? Buffer.concat([this.carry, part]) : Buffer.from(part);
  }

  private count(len: number): void {
    this.message.size += len;
    if (this.message.size > this.maxSize) this.oversize = true;
  }

  /** One whole line, its LF included. True at the end of data. */
  private line(line: Buffer): boolean {
    const n = line.length;
    const crlf = n >= 2 && line[n - 2] === CR;
    let content = line.subarray(0, n - (crlf ? 2 : 1));
    if (crlf && content.length === 1 && content[0] === DOT) {
      if (this.inHeaders) this.endHeaders(false);
      return true;
    }
    // RFC 5321 §4.5.2: a leading dot with more on the line was added by the client
    if (content.length > 1 && content[0] === DOT) content = content.subarray(1);
    if (content.length + 2 > this.maxLine) {
      this.longLine = true;
      this.drop();
    }
    let pieces: Buffer[] = [content];
    if (!crlf || content.indexOf(CR) !== -1) {
      this.bareLineEnd = true;
      if (this.policy === 'reject') this.drop();
      else pieces = split(content, CR);
    }
    for (const piece of pieces) {
      const keep = this.size(piece.length + 2);
      if (!keep) continue;
      if (this.inHeaders) this.headerLine(piece);
      else {
        this.appendBody(piece);
        this.appendBody(CRLF);
      }
    }
    return false;
  }

  private headerLine(content: Buffer): void {
    if (content.length === 0) {
      this.endHeaders(true);
      // the separator is kept for relaying, but is not body content (DKIM's body hash starts after it)
      if (!this.refused) this.message.body.push(CRLF);
      return;
    }
    const c0 = content[0];
    if ((c0 === 32 || c0 === 9) && this.field) {
      this.field.parts.push(content, CRLF);
      return;
    }
    const colon = content.indexOf(58);
    if (colon > 0) {
      let end = colon;
      while (end > 0 && (content[end - 1] === 32 || content[end - 1] === 9)) end--;
      let ok = end > 0;
      for (let i = 0; ok && i < end; i++) ok = content[i]! > 32 && content[i]! < 127;
      if (ok) {
        this.finishField();
        this.field = { name: content.subarray(0, end).toString('latin1'), colon, parts: [content, CRLF] };
        return;
      }
    }
    // not a header field: the body starts here, without a separator line
    this.endHeaders(false);
    this.appendBody(content);
    this.appendBody(CRLF);
  }

  private finishField(): void {
    const f = this.field;
    if (!f) return;
    this.field = null;
    const raw = Buffer.concat(f.parts);
    this.message.headers.push({ name: f.name, raw });
    // byte for byte (DKIM's simple canonicalization): the leading space and folding kept
    this.sink.header(f.name, raw.subarray(f.colon + 1, raw.length - 2).toString('latin1'));
  }

  private endHeaders(separated: boolean): void {
    this.finishField();
    this.inHeaders = false;
    this.message.separated = separated;
    this.sink.endOfHeaders();
  }

  private appendBody(chunk: Buffer): void {
    if (this.refused) return;
    this.message.body.push(chunk);
    this.sink.body(chunk);
  }
}

function split(buf: Buffer, byte: number): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (let i = buf.indexOf(byte); i !== -1; i = buf.indexOf(byte, from)) {
    out.push(buf.subarray(from, i));
    from = i + 1;
  }
  out.push(buf.subarray(from));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The protocol state machine

/** What the handler learns about the connection. */
export interface ConnectionInfo {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
}

/** The transaction a message belongs to, as the protocol saw it. */
export interface Transaction {
  mailFrom: string;
  params: MailParams;
  /** recipients the handler accepted (2xx), in order */
  recipients: string[];
}

/** The connection state a message was received in (for the Received: header). */
export interface ReceiptInfo {
  helo: string;
  esmtp: boolean;
  secure: boolean;
  tlsProtocol?: string;
  tlsCipher?: string;
}

/**
 * The stage callbacks. A `null` answer means "the protocol's default success reply"; any other
 * reply is sent as given (a non-2xx one refuses the command, and the state does not advance).
 */
export interface SmtpHandler {
  /** at connection; a 5xx becomes a 554 greeting (then 503 to all but QUIT), a 4xx a 421 and close */
  connect(): Promise<Reply | null>;
  helo(name: string, esmtp: boolean): Promise<Reply | null>;
  id(domain: string): Promise<Reply | null>;
  mail(address: string, params: MailParams): Promise<Reply | null>;
  rcpt(address: string, transaction: Transaction): Promise<Reply | null>;
  /** before the 354: a non-3xx reply refuses DATA */
  data(transaction: Transaction): Promise<Reply | null>;
  /**
   * Each header field as it completes: the name as received, the value byte for byte after the
   * colon (leading space and folding CRLFs kept, octets as latin1 characters).
   */
  header(name: string, value: string): void;
  /** the header section is complete */
  endOfHeaders(): void;
  /** body content as it arrives, after the separator line (CRLF line ends, unstuffed) */
  body(chunk: Buffer): void;
  /** the final reply to the message; the transaction ends with it whatever it says */
  endOfData(message: ReceivedMessage, transaction: Transaction, receipt: ReceiptInfo): Promise<Reply>;
  /** the transaction (if any) is abandoned: RSET, a new EHLO, STARTTLS, or a refused message */
  reset(): void;
  /** the connection is over (QUIT, peer gone, timeout, shutdown) */
  close(): void;
}

export interface SmtpLimits {
  /** a command line, CRLF included (RFC 5321 §4.5.3.1.4: 512) */
  maxCommandLine: number;
  /** a text line of the message, CRLF included (RFC 5321 §4.5.3.1.6: 1000) */
  maxTextLine: number;
  /** the SIZE limit (octets) */
  maxMessageSize: number;
  /** accepted recipients per transaction (RFC 5321 §4.5.3.1.8 asks for at least 100) */
  maxRecipients: number;
  /** commands per connection before 421 */
  maxCommands: number;
  /** protocol errors (syntax, sequence, unknown commands) per connection before 421 */
  maxErrors: number;
  /** input buffered while a command is worked on before reading pauses (pipelining) */
  maxPendingInput: number;
}

export const DEFAULT_LIMITS: SmtpLimits = {
  maxCommandLine: 512,
  maxTextLine: 1000,
  maxMessageSize: 26_214_400,
  maxRecipients: 100,
  maxCommands: 10_000,
  maxErrors: 20,
  maxPendingInput: 65_536,
};

export interface SmtpProtocolOptions {
  /** our host name: greeting, EHLO reply */
  hostname: string;
  /** STARTTLS is offered (a certificate is configured) */
  starttls?: boolean;
  bareLineEnd?: BareLineEndPolicy;
  limits?: Partial<SmtpLimits>;
}

/** The transport under the protocol. */
export interface SmtpIo {
  write(data: string): void;
  /** close after what was written is sent */
  close(): void;
  /** switch to TLS (after the 220 was written); call tlsStarted() or close() when done */
  startTls(): void;
  pause(): void;
  resume(): void;
}

type Phase = 'greeting' | 'refused' | 'command' | 'data' | 'tls' | 'closed';

/** Commands after which replies are sent at once, whatever is still buffered (RFC 2920 §3.1). */
const SYNC_POINTS = new Set(['EHLO', 'HELO', 'DATA', 'VRFY', 'QUIT', 'NOOP', 'STARTTLS', 'HELP']);

const decoder = new TextDecoder('utf-8', { fatal: true });
const ANSWERED = Symbol('answered');

/** One SMTP server connection, without I/O. */
export class SmtpProtocol {
  readonly limits: SmtpLimits;
  private readonly options: SmtpProtocolOptions;
  private readonly handler: SmtpHandler;
  private readonly io: SmtpIo;
  private readonly info: ConnectionInfo;
  private phase: Phase = 'greeting';
  private input: Buffer = Buffer.alloc(0);
  private out: string[] = [];
  private running = false;
  private paused = false;
  private discardLine = false;
  private draining = false;
  private helo: { name: string; esmtp: boolean } | null = null;
  private idGiven = false;
  private mailSinceHelo = false;
  private tx: Transaction | null = null;
  private reader: MessageReader | null = null;
  private tlsInfo: { protocol: string; cipher: string } | null = null;
  private commands = 0;
  private errors = 0;
  private handlerClosed = false;

  constructor(handler: SmtpHandler, io: SmtpIo, info: ConnectionInfo, options: SmtpProtocolOptions) {
    this.handler = handler;
    this.io = io;
    this.info = info;
    this.options = options;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
  }

  get secure(): boolean {
    return this.tlsInfo !== null;
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** True while waiting for a command with nothing under way (a shutdown may close now). */
  get idle(): boolean {
    return this.phase === 'command' && !this.running && this.tx === null;
  }

  /** Asks the handler about the connection and sends the greeting. */
  async start(): Promise<void> {
    this.running = true;
    let r: Reply | null;
    try {
      r = await this.handler.connect();
    } catch {
      r = reply(421, '4.3.0', `${this.options.hostname} Temporary internal error; try again later`);
    }
    if (this.closed) return;
    this.running = false;
    const code = r?.code ?? 220;
    if (code >= 500) {
      this.send({ code: 554, enhanced: r?.enhanced ?? '5.7.1', lines: r?.lines ?? ['No SMTP service here'] });
      this.phase = 'refused';
    } else if (code >= 400) {
      this.send({
        code: 421,
        enhanced: r?.enhanced ?? '4.3.0',
        lines: r?.lines ?? ['Service not available'],
      });
      this.finish();
      return;
    } else {
      this.send(reply(220, '', `${this.options.hostname} ESMTP checkid`));
      this.phase = 'command';
    }
    this.flush();
    void this.run();
  }

  /** Bytes from the client. */
  receive(chunk: Buffer): void {
    if (this.phase === 'closed' || this.phase === 'tls') return;
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    if (this.running && this.input.length > this.limits.maxPendingInput && !this.paused) {
      this.paused = true;
      this.io.pause();
    }
    if (this.phase !== 'greeting') void this.run();
  }

  /** The TLS handshake after STARTTLS succeeded: start over (RFC 3207 §4.2). */
  tlsStarted(info: { protocol: string; cipher: string }): void {
    if (this.phase !== 'tls') return;
    this.tlsInfo = info;
    this.helo = null;
    this.idGiven = false;
    this.mailSinceHelo = false;
    this.phase = 'command';
    void this.run();
  }

  /** No input for too long. Ignored while we are working (the work has its own deadlines). */
  timeout(): void {
    if (this.closed || this.running) return;
    if (this.phase === 'tls') {
      this.finish();
      return;
    }
    this.send(reply(421, '4.4.2', `${this.options.hostname} Error: timeout exceeded`));
    this.finish();
  }

  /** The client went away. */
  end(): void {
    if (this.closed) return;
    this.phase = 'closed';
    this.closeHandler();
  }

  /** Stop: at once when idle, else after the reply to the command or message under way. */
  shutdown(): void {
    this.draining = true;
    if (this.closed) return;
    if (!this.running && this.phase !== 'data') this.closeForShutdown();
  }

  private closeForShutdown(): void {
    if (this.closed) return;
    this.send(reply(421, '4.3.2', `${this.options.hostname} Service shutting down; try again later`));
    this.finish();
  }

  private send(r: Reply): void {
    this.out.push(formatReply(r));
  }

  private flush(): void {
    if (this.out.length === 0) return;
    const text = this.out.join('');
    this.out = [];
    this.io.write(text);
  }

  private finish(): void {
    this.flush();
    this.phase = 'closed';
    this.input = Buffer.alloc(0);
    this.closeHandler();
    this.io.close();
  }

  private closeHandler(): void {
    if (this.handlerClosed) return;
    this.handlerClosed = true;
    try {
      this.handler.close();
    } catch {
      // the connection is over either way
    }
  }

  /** Whether a whole command line is buffered (then replies may wait: RFC 2920 §3.1). */
  private moreInput(): boolean {
    return this.input.indexOf(LF) !== -1;
  }

  /** Works through the buffered input, one command (or message) at a time. */
  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.closed && this.phase !== 'tls' && this.phase !== 'greeting') {
        if (this.phase === 'data') {
          if (!(await this.dataStep())) break;
          continue;
        }
        const line = this.nextLine();
        if (line === null) break;
        const verb = line === ANSWERED ? '' : await this.command(line);
        // the command may have moved the phase on (TS narrowed it above)
        const phase = this.phase as Phase;
        if (phase === 'closed' || phase === 'tls') break;
        if (this.draining && phase !== 'data') {
          this.closeForShutdown();
          break;
        }
        if (SYNC_POINTS.has(verb) || !this.moreInput()) this.flush();
      }
    } catch {
      // a bug here must end this connection, not the process (an unhandled rejection would)
      if (!this.closed) {
        this.out = [];
        this.send(reply(421, '4.3.0', `${this.options.hostname} Internal error; closing connection`));
        this.finish();
      }
    } finally {
      this.running = false;
      if (!this.closed) this.flush();
      if (this.paused && this.input.length <= this.limits.maxPendingInput) {
        this.paused = false;
        this.io.resume();
      }
    }
  }

  /**
   * Takes one command line off the input, or null when none is whole; ANSWERED for a line that was
   * refused already (too long, not UTF-8).
   */
  private nextLine(): string | typeof ANSWERED | null {
    for (;;) {
      const lf = this.input.indexOf(LF);
      if (lf === -1) {
        if (this.input.length > this.limits.maxCommandLine) {
          this.input = Buffer.alloc(0);
          if (!this.discardLine) {
            this.discardLine = true;
            this.protocolError(reply(500, '5.5.2', 'Line too long'));
            this.flush();
          }
        }
        return null;
      }
      const raw = this.input.subarray(0, lf);
      this.input = this.input.subarray(lf + 1);
      if (this.discardLine) {
        this.discardLine = false;
        continue;
      }
      if (raw.length + 1 > this.limits.maxCommandLine) {
        this.protocolError(reply(500, '5.5.2', 'Line too long'));
        return ANSWERED;
      }
      const text = raw.length > 0 && raw[raw.length - 1] === CR ? raw.subarray(0, raw.length - 1) : raw;
      try {
        return decoder.decode(text);
      } catch {
        this.protocolError(reply(500, '5.5.2', 'Command is not valid UTF-8'));
        return ANSWERED;
      }
    }
  }

  private protocolError(r: Reply): void {
    this.send(r);
    this.errors++;
    if (this.errors >= this.limits.maxErrors) {
      this.send(reply(421, '4.7.0', `${this.options.hostname} Error: too many errors`));
      this.finish();
    }
  }

  private async ask<T extends Reply | null>(work: () => Promise<T>): Promise<T | Reply> {
    try {
      return await work();
    } catch {
      return reply(451, '4.3.0', 'Temporary internal error; try again later');
    }
  }

  /** Handles one command line; returns its verb (for the flush rule), '' when it was refused. */
  private async command(line: string): Promise<string> {
    this.commands++;
    if (this.commands > this.limits.maxCommands) {
      this.send(reply(421, '4.7.0', `${this.options.hostname} Error: too many commands`));
      this.finish();
      return 'QUIT';
    }
    const parsed = parseCommand(line, this.tx?.params.smtputf8 ?? false);
    if ('error' in parsed) {
      // in a refused session, every command but QUIT gets 503 (RFC 5321 §3.1)
      if (this.phase === 'refused') this.protocolError(reply(503, '5.5.1', 'No SMTP service here; say QUIT'));
      else this.protocolError(parsed.error);
      return '';
    }
    const c = parsed.command;
    if (this.phase === 'refused' && c.verb !== 'QUIT') {
      this.protocolError(reply(503, '5.5.1', 'No SMTP service here; say QUIT'));
      return c.verb;
    }
    switch (c.verb) {
      case 'EHLO':
      case 'HELO':
        await this.onHelo(c.domain, c.verb === 'EHLO');
        break;
      case 'ID':
        await this.onId(c.domain, c.keyword);
        break;
      case 'MAIL':
        await this.onMail(c.address, c.params, c.hasParams);
        break;
      case 'RCPT':
        await this.onRcpt(c.address);
        break;
      case 'DATA':
        await this.onData();
        break;
      case 'RSET':
        this.abort();
        this.send(reply(250, '2.0.0', 'OK'));
        break;
      case 'NOOP':
        this.send(reply(250, '2.0.0', 'OK'));
        break;
      case 'QUIT':
        this.send(reply(221, '2.0.0', `${this.options.hostname} closing connection`));
        this.finish();
        break;
      case 'VRFY':
        this.send(reply(252, '2.5.0', 'Cannot VRFY user; send mail and delivery will be attempted'));
        break;
      case 'HELP':
        this.send(
          reply(
            214,
            '2.0.0',
            'Commands: EHLO HELO ID MAIL RCPT DATA RSET NOOP QUIT VRFY HELP' +
              (this.options.starttls ? ' STARTTLS' : ''),
            'ID domain: after EHLO and before MAIL, declares the domain responsible for this connection (XID is a synonym)',
            'End of HELP',
          ),
        );
        break;
      case 'STARTTLS':
        this.onStartTls();
        break;
    }
    return c.verb;
  }

  /** Ends the transaction, if any, without a message. */
  private abort(): void {
    this.tx = null;
    try {
      this.handler.reset();
    } catch {
      // nothing to undo
    }
  }

  private async onHelo(name: string, esmtp: boolean): Promise<void> {
    // a new EHLO is an implicit RSET and forgets the ID (RFC 5321 §4.1.4)
    this.abort();
    this.helo = null;
    this.idGiven = false;
    this.mailSinceHelo = false;
    const r = await this.ask(() => this.handler.helo(name, esmtp));
    if (r && (r.code < 200 || r.code > 299)) {
      this.send(r);
      return;
    }
    this.helo = { name, esmtp };
    const host = this.options.hostname;
    if (!esmtp) {
      this.send(reply(250, '', host));
      return;
    }
    const keywords = [
      // the name is the client's: shortened, so the line stays one line (a second would read as a keyword)
      `${host} Hello ${name.length > 64 ? `${name.slice(0, 61)}...` : name} [${this.info.remoteAddress}]`,
      'PIPELINING',
      `SIZE ${this.limits.maxMessageSize}`,
      ...(this.options.starttls && !this.secure ? ['STARTTLS'] : []),
      'ENHANCEDSTATUSCODES',
      '8BITMIME',
      'SMTPUTF8',
      'ID',
    ];
    this.send({ code: 250, enhanced: '', lines: keywords });
  }

  private async onId(domain: string, keyword: string): Promise<void> {
    if (!this.helo) {
      this.protocolError(reply(503, '5.5.1', `Send EHLO before ${keyword}`));
      return;
    }
    if (!this.helo.esmtp) {
      this.protocolError(reply(503, '5.5.1', `${keyword} is an ESMTP extension: send EHLO, not HELO`));
      return;
    }
    if (this.tx || this.mailSinceHelo) {
      this.protocolError(reply(503, '5.5.1', `${keyword} must come before MAIL`));
      return;
    }
    if (this.idGiven) {
      this.protocolError(reply(503, '5.5.1', `${keyword} was already given; send EHLO to start over`));
      return;
    }
    this.idGiven = true;
    const r = await this.ask(() => this.handler.id(domain));
    this.send(r ?? reply(250, '2.0.0', `ID ${domain} OK`));
  }

  private async onMail(address: string, params: MailParams, hasParams: boolean): Promise<void> {
    if (!this.helo) {
      this.protocolError(reply(503, '5.5.1', 'Send HELO/EHLO first'));
      return;
    }
    if (this.tx) {
      this.protocolError(reply(503, '5.5.1', 'Nested MAIL command'));
      return;
    }
    if (hasParams && !this.helo.esmtp) {
      this.protocolError(reply(555, '5.5.4', 'MAIL parameters need EHLO'));
      return;
    }
    if (params.size !== undefined && params.size > this.limits.maxMessageSize) {
      this.send(
        reply(552, '5.3.4', `Message size exceeds fixed limit of ${this.limits.maxMessageSize} octets`),
      );
      return;
    }
    this.mailSinceHelo = true;
    const r = await this.ask(() => this.handler.mail(address, params));
    if (r && (r.code < 200 || r.code > 299)) {
      this.send(r);
      return;
    }
    this.tx = { mailFrom: address, params, recipients: [] };
    this.send(r ?? reply(250, '2.1.0', 'OK'));
  }

  private async onRcpt(address: string): Promise<void> {
    const tx = this.tx;
    if (!tx) {
      this.protocolError(reply(503, '5.5.1', 'Need MAIL before RCPT'));
      return;
    }
    if (tx.recipients.length >= this.limits.maxRecipients) {
      this.send(reply(452, '4.5.3', 'Too many recipients'));
      return;
    }
    const r = await this.ask(() => this.handler.rcpt(address, tx));
    if (r && (r.code < 200 || r.code > 299)) {
      this.send(r);
      return;
    }
    tx.recipients.push(address);
    this.send(r ?? reply(250, '2.1.5', 'OK'));
  }

  private async onData(): Promise<void> {
    const tx = this.tx;
    if (!tx) {
      this.protocolError(reply(503, '5.5.1', 'Need MAIL command'));
      return;
    }
    if (tx.recipients.length === 0) {
      this.protocolError(reply(554, '5.5.1', 'No valid recipients'));
      return;
    }
    const r = await this.ask(() => this.handler.data(tx));
    if (r && (r.code < 300 || r.code > 399)) {
      this.send(r);
      return;
    }
    this.send(r ?? reply(354, '', 'End data with <CR><LF>.<CR><LF>'));
    const handler = this.handler;
    this.reader = new MessageReader({
      maxSize: this.limits.maxMessageSize,
      maxLine: this.limits.maxTextLine,
      bareLineEnd: this.options.bareLineEnd ?? 'normalize',
      sink: {
        header: (name, value) => {
          try {
            handler.header(name, value);
          } catch {
            // a handler bug must not break the framing
          }
        },
        endOfHeaders: () => {
          try {
            handler.endOfHeaders();
          } catch {
            // as above
          }
        },
        body: (chunk) => {
          try {
            handler.body(chunk);
          } catch {
            // as above
          }
        },
      },
    });
    this.phase = 'data';
  }

  /** Feeds buffered content to the reader; at the end of data, answers. False when more is needed. */
  private async dataStep(): Promise<boolean> {
    const reader = this.reader!;
    if (this.input.length === 0) return false;
    const end = reader.push(this.input, 0);
    if (end === -1) {
      this.input = Buffer.alloc(0);
      return false;
    }
    this.input = this.input.subarray(end);
    this.reader = null;
    this.phase = 'command';
    const tx = this.tx!;
    this.tx = null;
    let r: Reply;
    if (reader.oversize)
      r = reply(552, '5.3.4', `Message size exceeds fixed limit of ${this.limits.maxMessageSize} octets`);
    else if (reader.longLine)
      r = reply(
        500,
        '5.5.2',
        `Message has a line longer than ${this.limits.maxTextLine - 2} characters (RFC 5321 section 4.5.3.1.6)`,
      );
    else if (reader.bareLineEnd && this.options.bareLineEnd === 'reject')
      r = reply(550, '5.5.2', 'Message has a bare CR or LF; lines must end with CRLF (RFC 5321 section 2.3.8)');
    else {
      const receipt: ReceiptInfo = {
        helo: this.helo?.name ?? '',
        esmtp: this.helo?.esmtp ?? false,
        secure: this.secure,
        ...(this.tlsInfo ? { tlsProtocol: this.tlsInfo.protocol, tlsCipher: this.tlsInfo.cipher } : {}),
      };
      r = await this.ask(() => this.handler.endOfData(reader.message, tx, receipt));
      this.send(r);
      if (this.draining) this.closeForShutdown();
      else this.flush();
      return !this.closed;
    }
    this.abort();
    this.send(r);
    if (this.draining) this.closeForShutdown();
    else this.flush();
    return !this.closed;
  }

  private onStartTls(): void {
    if (!this.options.starttls) {
      this.protocolError(reply(502, '5.5.1', 'STARTTLS is not available'));
      return;
    }
    if (this.secure) {
      this.protocolError(reply(503, '5.5.1', 'TLS is already active'));
      return;
    }
    if (!this.helo?.esmtp) {
      this.protocolError(reply(503, '5.5.1', 'Send EHLO first'));
      return;
    }
    if (this.tx) {
      this.protocolError(reply(503, '5.5.1', 'STARTTLS is not allowed in a transaction'));
      return;
    }
    this.send(reply(220, '2.0.0', 'Ready to start TLS'));
    this.flush();
    // RFC 3207 §4.2 / CVE-2011-0411: nothing sent before the handshake may be read as a command
    this.input = Buffer.alloc(0);
    this.abort();
    this.phase = 'tls';
    this.io.startTls();
  }
}

// ---------------------------------------------------------------------------------------------
// Sockets

export interface SmtpServerOptions extends SmtpProtocolOptions {
  /** a new handler for each connection */
  handler(info: ConnectionInfo): SmtpHandler;
  /** certificate and key (PEM) for STARTTLS; none: STARTTLS is not offered */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** concurrent connections; beyond it new ones get 421 and are closed (default 1000) */
  maxConnections?: number;
  /** no input for this long → 421 and close (default 300 s, RFC 5321 §4.5.3.2.7) */
  idleTimeoutMs?: number;
  /** after a shutdown began, connections still open this long later are cut (default 30 s) */
  drainTimeoutMs?: number;
  log?: (
    level: 'debug' | 'info' | 'warn' | 'error',
    message: string,
    fields?: Record<string, unknown>,
  ) => void;
}

export interface SmtpServer {
  readonly server: net.Server;
  /** connections open now */
  readonly connections: number;
  listen(port: number, host?: string): Promise<{ address: string; port: number }>;
  /** stops accepting; idle connections get 421 at once, busy ones after their current reply */
  close(): Promise<void>;
}

/** Strips the IPv4-mapped prefix Node reports on dual-stack sockets. */
export function plainAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export function createSmtpServer(options: SmtpServerOptions): SmtpServer {
  const secureContext = options.tls
    ? tls.createSecureContext({ key: options.tls.key, cert: options.tls.cert })
    : undefined;
  const maxConnections = options.maxConnections ?? 1000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 300_000;
  const live = new Set<{ protocol: SmtpProtocol; socket: net.Socket }>();
  const log = options.log ?? (() => {});
  const drained: Array<() => void> = [];
  let closing = false;

  const server = net.createServer((raw) => {
    raw.on('error', () => {});
    // replies are batched per flush (PIPELINING), so each flush may go out at once
    raw.setNoDelay(true);
    if (closing || live.size >= maxConnections) {
      raw.end(formatReply(reply(421, '4.7.0', `${options.hostname} Too many connections; try again later`)));
      return;
    }
    const info: ConnectionInfo = {
      remoteAddress: plainAddress(raw.remoteAddress),
      remotePort: raw.remotePort ?? 0,
      localAddress: plainAddress(raw.localAddress),
      localPort: raw.localPort ?? 0,
    };
    let socket: net.Socket = raw;
    let handler: SmtpHandler;
    try {
      handler = options.handler(info);
    } catch (err) {
      log('error', 'smtp: cannot start a session', {
        error: (err as Error).message,
        client: info.remoteAddress,
      });
      raw.end(formatReply(reply(421, '4.3.0', `${options.hostname} Temporary internal error`)));
      return;
    }
    const onData = (chunk: Buffer) => protocol.receive(chunk);
    const io: SmtpIo = {
      write: (data) => {
        if (!socket.destroyed) socket.write(data);
      },
      close: () => {
        if (!socket.destroyed) socket.end();
        // a client that never reads must not keep the socket forever
        setTimeout(() => socket.destroy(), 10_000).unref();
      },
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      startTls: () => {
        if (!secureContext) return io.close();
        raw.off('data', onData);
        raw.setTimeout(0);
        const secure = new tls.TLSSocket(raw, { isServer: true, secureContext });
        socket = secure;
        secure.on('error', () => raw.destroy());
        secure.setTimeout(idleTimeoutMs, () => protocol.timeout());
        secure.once('secure', () => {
          secure.on('data', onData);
          protocol.tlsStarted({
            protocol: secure.getProtocol() ?? 'TLS',
            cipher: secure.getCipher()?.name ?? '',
          });
        });
      },
    };
    const protocol = new SmtpProtocol(handler, io, info, {
      ...options,
      starttls: secureContext !== undefined,
    });
    const entry = { protocol, socket: raw };
    live.add(entry);
    raw.on('data', onData);
    raw.setTimeout(idleTimeoutMs, () => protocol.timeout());
    raw.on('close', () => {
      live.delete(entry);
      protocol.end();
      if (live.size === 0) for (const wake of drained.splice(0)) wake();
    });
    protocol.start().catch(() => raw.destroy());
  });
  server.on('error', (err) => log('error', 'smtp: listener error', { error: err.message }));

  return {
    server,
    get connections() {
      return live.size;
    },
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as net.AddressInfo;
          resolve({ address: a.address, port: a.port });
        });
      });
    },
    async close() {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of live) c.protocol.shutdown();
      const deadline = setTimeout(() => {
        for (const c of live) c.socket.destroy();
      }, options.drainTimeoutMs ?? 30_000);
      await stopped;
      // the listener's close can come before the last sockets' own close events
      if (live.size > 0) await new Promise<void>((resolve) => drained.push(resolve));
      clearTimeout(deadline);
    },
  };
}
