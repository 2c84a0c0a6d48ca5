/**
 * DNS message codec: RFC 1035 messages, RFC 6891 EDNS(0), RFC 3597 unknown types.
 *
 * Names are text in the RFC 1035 §5.1 presentation form without the trailing dot ('' is the
 * root): a label byte that is not printable ASCII is written `\DDD` (decimal), and a literal
 * `.` or `\` inside a label is written `\.` / `\\`. So every decoded name is pure ASCII and
 * lossless, and can be fed back into the encoder. Names keep the case they had on the wire;
 * compare them with `namesEqual` (ASCII case-insensitive, RFC 4343).
 *
 * The decoder never trusts the input: every read is bounds-checked, compression pointers must
 * point strictly backwards (so they cannot loop) and are limited in number, names are limited
 * to 255 octets, and RDATA must use exactly its RDLENGTH. Anything wrong throws a
 * `DnsDecodeError`; nothing else escapes, and the work is linear in the input size.
 */
import { formatIp, parseIp } from '../common/ip.ts';
import type { MxRecord, RecordType, SoaRecord, SrvRecord } from './types.ts';

/** The input is not a well-formed DNS message. `offset` is where decoding gave up. */
export class DnsDecodeError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} (at offset ${offset})`);
    this.name = 'DnsDecodeError';
    this.offset = offset;
  }
}

/** The message or name asked for cannot be put on the wire (bad name, label too long, …). */
export class DnsEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DnsEncodeError';
  }
}

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
} as const;

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));

export const CLASS_IN = 1;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  YXDOMAIN: 6,
  YXRRSET: 7,
  NXRRSET: 8,
  NOTAUTH: 9,
  NOTZONE: 10,
  BADVERS: 16,
} as const;

const RCODE_NAMES = new Map<number, string>(Object.entries(RCODE).map(([k, v]) => [v, k]));

/** The numeric type of a record type name. */
export function typeCode(type: RecordType): number {
  return TYPE[type];
}

/** 'A', 'TXT', … or the RFC 3597 form 'TYPE99' for types this codec does not name. */
export function typeName(code: number): string {
  return TYPE_NAMES.get(code) ?? `TYPE${code}`;
}

export function rcodeName(code: number): string {
  return RCODE_NAMES.get(code) ?? `RCODE${code}`;
}

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

/**
 * Decoded RDATA: A/AAAA → address text; NS/CNAME/PTR → name; TXT → character-strings (latin1,
 * so each char is one byte); MX/SRV/SOA → objects; any other type → the raw bytes (a copy).
 */
export type RecordData = string | string[] | MxRecord | SrvRecord | SoaRecord | Uint8Array;

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  /** seconds; a TTL with the top bit set is read as 0 (RFC 2181 §8) */
  ttl: number;
  data: RecordData;
}

export interface EdnsOption {
  code: number;
  data: Uint8Array;
}

export interface Edns {
  udpPayloadSize: number;
  /** the upper 8 bits of the 12-bit rcode, as carried in the OPT TTL */
  extendedRcode: number;
  version: number;
  dnssecOk: boolean;
  options: EdnsOption[];
}

export interface DnsMessage {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  /** the full rcode: header 4 bits plus the OPT extended bits (e.g. 16 = BADVERS) */
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  /** the additional section without the OPT pseudo-record, which is decoded into `edns` */
  additionals: DnsRecord[];
  edns: Edns | null;
}

// ---------------------------------------------------------------------------------------------
// names

const MAX_NAME_WIRE = 255;
const MAX_LABEL = 63;
/** A name of 255 octets has at most 127 labels, so more pointers than that is an attack. */
const MAX_POINTERS = 127;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Splits a presentation-form name into its labels' bytes. Accepts an optional trailing dot;
 * '' and '.' are the root (no labels). Non-ASCII text is encoded as UTF-8 (IDNs should be
 * turned into A-labels by the caller first).
 */
export function parseName(text: string): Uint8Array[] {
  if (text === '' || text === '.') return [];
  return parsePlainName(text) ?? parseEscapedName(text);
}

/** The common case: LDH-like ASCII without escapes. null when the slow path must decide. */
function parsePlainName(text: string): Uint8Array[] | null {
  const len = text.length;
  const end = text.charCodeAt(len - 1) === 0x2e ? len - 1 : len;
  if (end + 2 > MAX_NAME_WIRE) return null; // length octet of the first label + root octet
  const labels: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= end; i++) {
    const c = i === end ? 0x2e : text.charCodeAt(i);
    if (c === 0x2e) {
      const n = i - start;
      if (n === 0 || n > MAX_LABEL) return null;
      const label = new Uint8Array(n);
      for (let k = 0; k < n; k++) label[k] = text.charCodeAt(start + k);
      labels.push(label);
      start = i + 1;
    } else if (c >= 0x80 || c === 0x5c) {
      return null;
    }
  }
  return labels;
}

function parseEscapedName(text: string): Uint8Array[] {
  const labels: Uint8Array[] = [];
  const cur = new Uint8Array(MAX_LABEL + 4);
  let n = 0;
  let wire = 1; // the root label
  const push = (b: number): void => {
    if (n >= MAX_LABEL) throw new DnsEncodeError(`label longer than ${MAX_LABEL} octets in "${text}"`);
    cur[n++] = b;
  };
  const endLabel = (): void => {
    if (n === 0) throw new DnsEncodeError(`empty label in "${text}"`);
    wire += n + 1;
    if (wire > MAX_NAME_WIRE) throw new DnsEncodeError(`name longer than ${MAX_NAME_WIRE} octets: "${text}"`);
    labels.push(cur.slice(0, n));
    n = 0;
  };
  const len = text.length;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      endLabel();
      if (i === len - 1) return labels; // one trailing dot
    } else if (c === 0x5c) {
      if (i + 1 >= len) throw new DnsEncodeError(`dangling escape in "${text}"`);
      const d = text.charCodeAt(i + 1);
      if (isDigit(d)) {
        if (i + 3 >= len) throw new DnsEncodeError(`bad \\DDD escape in "${text}"`);
        const d2 = text.charCodeAt(i + 2);
        const d3 = text.charCodeAt(i + 3);
        if (!isDigit(d2) || !isDigit(d3)) throw new DnsEncodeError(`bad \\DDD escape in "${text}"`);
        const v = (d - 0x30) * 100 + (d2 - 0x30) * 10 + (d3 - 0x30);
        if (v > 255) throw new DnsEncodeError(`bad \\DDD escape in "${text}"`);
        push(v);
        i += 3;
      } else if (d >= 0xd800 && d <= 0xdfff) {
        throw new DnsEncodeError(`bad escape in "${text}"`);
      } else if (d < 0x80) {
        push(d);
        i += 1;
      } else {
        // an escaped non-ASCII char is just that char
        i += 1;
        i = pushUtf8(text, i, push);
      }
    } else if (c < 0x80) {
      push(c);
    } else {
      i = pushUtf8(text, i, push);
    }
  }
  endLabel();
  return labels;
}

/** Pushes the UTF-8 bytes of the code point at text[i]; returns the index of its last unit. */
function pushUtf8(text: string, i: number, push: (b: number) => void): number {
  const cp = text.codePointAt(i)!;
  if (cp >= 0xd800 && cp <= 0xdfff) throw new DnsEncodeError(`lone surrogate in "${text}"`);
  if (cp < 0x800) {
    push(0xc0 | (cp >> 6));
    push(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    push(0xe0 | (cp >> 12));
    push(0x80 | ((cp >> 6) & 0x3f));
    push(0x80 | (cp & 0x3f));
  } else {
    push(0xf0 | (cp >> 18));
    push(0x80 | ((cp >> 12) & 0x3f));
    push(0x80 | ((cp >> 6) & 0x3f));
    push(0x80 | (cp & 0x3f));
    return i + 1;
  }
  return i;
}

/** Presentation text of one label's bytes (escaping per RFC 1035 §5.1). */
export function labelText(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let plain = true;
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (b <= 0x20 || b >= 0x7f || b === 0x2e || b === 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) {
    if (Buffer.isBuffer(bytes)) return bytes.toString('latin1', start, end);
    let s = '';
    for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
    return s;
  }
  let s = '';
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (b === 0x2e || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b <= 0x20 || b >= 0x7f) s += '\\' + String(b).padStart(3, '0');
    else s += String.fromCharCode(b);
  }
  return s;
}

/** The canonical presentation form of a name (escapes normalised, no trailing dot; case kept). */
export function canonicalName(text: string): string {
  return plainCanonical(text) ?? formatName(parseName(text));
}

/**
 * canonicalName's common case without building labels (it runs for every DNS cache look-up): a
 * name of printable ASCII without escapes, empty labels or over-long ones is its own canonical
 * form, less a trailing dot. null when parsing must decide.
 */
function plainCanonical(text: string): string | null {
  const len = text.length;
  const end = len > 0 && text.charCodeAt(len - 1) === 0x2e ? len - 1 : len;
  if (end === 0 || end + 2 > MAX_NAME_WIRE) return null;
  let start = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (i === start || i - start > MAX_LABEL) return null;
      start = i + 1;
    } else if (c <= 0x20 || c >= 0x7f || c === 0x5c) return null;
  }
  if (end === start || end - start > MAX_LABEL) return null;
  return end === len ? text : text.slice(0, end);
}

/** Presentation text of a name given as label bytes (no trailing dot; '' for the root). */
export function formatName(labels: readonly Uint8Array[]): string {
  let s = '';
  for (let i = 0; i < labels.length; i++) s += i === 0 ? labelText(labels[i]!) : `.${labelText(labels[i]!)}`;
  return s;
}

/** ASCII case-insensitive comparison of two names in canonical form (RFC 4343). */
export function namesEqual(a: string, b: string): boolean {
  return a.length === b.length && (a === b || a.toLowerCase() === b.toLowerCase());
}

/** The wire form of a name (uncompressed), e.g. for comparisons or hand-built messages. */
export function nameToWire(text: string): Uint8Array {
  const labels = parseName(text);
  let size = 1;
  for (const l of labels) size += l.length + 1;
  const out = new Uint8Array(size);
  let p = 0;
  for (const l of labels) {
    out[p++] = l.length;
    out.set(l, p);
    p += l.length;
  }
  out[p] = 0;
  return out;
}

// ---------------------------------------------------------------------------------------------
// decoding

class Reader {
  readonly buf: Buffer;
  readonly len: number;
  pos = 0;
  constructor(buf: Buffer) {
    this.buf = buf;
    this.len = buf.length;
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.len)
      throw new DnsDecodeError(`${what} runs past the end of the message`, this.pos);
  }

  u8(): number {
    return this.buf[this.pos++]!;
  }

  u16(): number {
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  u32(): number {
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  /** Reads a possibly compressed name; `limit` is where the name's own bytes must end. */
  name(limit: number): string {
    const buf = this.buf;
    let pos = this.pos;
    let segmentStart = pos;
    let end = limit;
    let jumped = false;
    let pointers = 0;
    let wire = 1;
    let text = '';
    for (;;) {
      if (pos >= end) throw new DnsDecodeError('name runs past the end of its data', pos);
      const b = buf[pos]!;
      if (b === 0) {
        if (!jumped) this.pos = pos + 1;
        return text;
      }
      const kind = b & 0xc0;
      if (kind === 0xc0) {
        if (pos + 1 >= end)
          throw new DnsDecodeError('compression pointer runs past the end of its data', pos);
        const target = ((b & 0x3f) << 8) | buf[pos + 1]!;
        if (target >= segmentStart) {
          throw new DnsDecodeError('compression pointer does not point backwards', pos);
        }
        if (++pointers > MAX_POINTERS) throw new DnsDecodeError('too many compression pointers', pos);
        if (!jumped) {
          this.pos = pos + 2;
          jumped = true;
        }
        // a pointer may reach anywhere earlier in the message, not only inside the RDATA
        end = this.len;
        pos = segmentStart = target;
        continue;
      }
      if (kind !== 0) throw new DnsDecodeError(`unsupported label type 0x${b.toString(16)}`, pos);
      wire += b + 1;
      if (wire > MAX_NAME_WIRE) throw new DnsDecodeError(`name longer than ${MAX_NAME_WIRE} octets`, pos);
      const start = pos + 1;
      const stop = start + b;
      if (stop > end) throw new DnsDecodeError('label runs past the end of its data', pos);
      const label = labelText(buf, start, stop);
      text = text === '' ? label : `${text}.${label}`;
      pos = stop;
    }
  }
}

function toBuffer(input: Uint8Array): Buffer {
  return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

function decodeRdata(r: Reader, type: number, rdlength: number): RecordData {
  const start = r.pos;
  const end = start + rdlength;
  const buf = r.buf;
  let data: RecordData;
  switch (type) {
    case TYPE.A:
      if (rdlength !== 4) throw new DnsDecodeError(`A record with RDLENGTH ${rdlength}`, start);
      data = `${buf[start]}.${buf[start + 1]}.${buf[start + 2]}.${buf[start + 3]}`;
      r.pos = end;
      return data;
    case TYPE.AAAA:
      if (rdlength !== 16) throw new DnsDecodeError(`AAAA record with RDLENGTH ${rdlength}`, start);
      data = formatIp({ family: 6, bytes: buf.subarray(start, end) });
      r.pos = end;
      return data;
    case TYPE.NS:
    case TYPE.CNAME:
    case TYPE.PTR:
      data = r.name(end);
      break;
    case TYPE.MX: {
      if (rdlength < 3) throw new DnsDecodeError(`MX record with RDLENGTH ${rdlength}`, start);
      const preference = r.u16();
      data = { preference, exchange: r.name(end) };
      break;
    }
    case TYPE.SRV: {
      if (rdlength < 7) throw new DnsDecodeError(`SRV record with RDLENGTH ${rdlength}`, start);
      const priority = r.u16();
      const weight = r.u16();
      const port = r.u16();
      data = { priority, weight, port, target: r.name(end) };
      break;
    }
    case TYPE.SOA: {
      const mname = r.name(end);
      const rname = r.name(end);
      if (r.pos + 20 > end) throw new DnsDecodeError('SOA record too short', r.pos);
      data = {
        mname,
        rname,
        serial: r.u32(),
        refresh: r.u32(),
        retry: r.u32(),
        expire: r.u32(),
        minimum: r.u32(),
      };
      break;
    }
    case TYPE.TXT: {
      const strings: string[] = [];
      let p = start;
      while (p < end) {
        const n = buf[p]!;
        if (p + 1 + n > end) throw new DnsDecodeError('TXT character-string runs past its RDATA', p);
        strings.push(buf.toString('latin1', p + 1, p + 1 + n));
        p += 1 + n;
      }
      r.pos = end;
      return strings;
    }
    default:
      r.pos = end;
      return copyBytes(buf, start, end);
  }
  if (r.pos !== end) {
    throw new DnsDecodeError(
      `${typeName(type)} RDATA is ${r.pos - start} octets, RDLENGTH says ${rdlength}`,
      start,
    );
  }
  return data;
}

/** A plain Uint8Array copy (not a Buffer view that would pin the whole packet). */
function copyBytes(buf: Buffer, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(buf.subarray(start, end));
  return out;
}

function decodeOptions(buf: Buffer, start: number, end: number): EdnsOption[] {
  const options: EdnsOption[] = [];
  let p = start;
  while (p < end) {
    if (p + 4 > end) throw new DnsDecodeError('EDNS option header runs past the OPT RDATA', p);
    const code = (buf[p]! << 8) | buf[p + 1]!;
    const len = (buf[p + 2]! << 8) | buf[p + 3]!;
    if (p + 4 + len > end) throw new DnsDecodeError('EDNS option runs past the OPT RDATA', p);
    options.push({ code, data: copyBytes(buf, p + 4, p + 4 + len) });
    p += 4 + len;
  }
  return options;
}

/** Decodes a whole DNS message. Throws `DnsDecodeError` for anything malformed. */
export function decodeMessage(input: Uint8Array): DnsMessage {
  const buf = toBuffer(input);
  const len = buf.length;
  if (len < 12) throw new DnsDecodeError(`message of ${len} octets is shorter than a header`, 0);
  const r = new Reader(buf);
  const id = r.u16();
  const flags = r.u16();
  const qd = r.u16();
  const an = r.u16();
  const ns = r.u16();
  const ar = r.u16();
  // a question needs at least 5 octets and a record at least 11: reject absurd counts up front
  if (qd * 5 + (an + ns + ar) * 11 > len - 12) {
    throw new DnsDecodeError(`section counts (${qd}/${an}/${ns}/${ar}) exceed the message size`, 4);
  }
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < qd; i++) {
    const name = r.name(len);
    r.need(4, 'question');
    questions.push({ name, type: r.u16(), class: r.u16() });
  }
  let edns: Edns | null = null;
  let extendedRcode = 0;
  const readSection = (count: number, section: 'answer' | 'authority' | 'additional'): DnsRecord[] => {
    const out: DnsRecord[] = [];
    for (let i = 0; i < count; i++) {
      const at = r.pos;
      const name = r.name(len);
      r.need(10, 'record header');
      const type = r.u16();
      const klass = r.u16();
      const ttlRaw = r.u32();
      const rdlength = r.u16();
      r.need(rdlength, 'RDATA');
      if (type === TYPE.OPT) {
        if (section !== 'additional') throw new DnsDecodeError(`OPT record in the ${section} section`, at);
        if (edns) throw new DnsDecodeError('more than one OPT record', at);
        if (name !== '') throw new DnsDecodeError('OPT record owner is not the root', at);
        extendedRcode = ttlRaw >>> 24;
        edns = {
          udpPayloadSize: klass,
          extendedRcode,
          version: (ttlRaw >>> 16) & 0xff,
          dnssecOk: (ttlRaw & 0x8000) !== 0,
          options: decodeOptions(buf, r.pos, r.pos + rdlength),
        };
        r.pos += rdlength;
        continue;
      }
      const data = decodeRdata(r, type, rdlength);
      out.push({ name, type, class: klass, ttl: ttlRaw > 0x7fffffff ? 0 : ttlRaw, data });
    }
    return out;
  };
  const answers = readSection(an, 'answer');
  const authorities = readSection(ns, 'authority');
  const additionals = readSection(ar, 'additional');
  return {
    id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    ad: (flags & 0x0020) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: (extendedRcode << 4) | (flags & 0xf),
    questions,
    answers,
    authorities,
    additionals,
    edns,
  };
}

// ---------------------------------------------------------------------------------------------
// encoding

export interface QueryInput {
  /** 16-bit message ID, chosen (randomly) by the caller */
  id: number;
  /** presentation text, or labels from parseName */
  name: string | readonly Uint8Array[];
  type: number | RecordType;
  /** default IN */
  class?: number;
  /** default true */
  recursionDesired?: boolean;
  checkingDisabled?: boolean;
  /** an OPT record advertising this UDP payload size (RFC 6891); false or absent: none */
  edns?: { udpPayloadSize?: number; dnssecOk?: boolean } | false;
}

/** The default EDNS UDP payload size (DNS flag day 2020: avoids IP fragmentation). */
export const DEFAULT_UDP_PAYLOAD = 1232;

/** Encodes a standard query with one question. Throws `DnsEncodeError` for an invalid name. */
export function encodeQuery(q: QueryInput): Buffer {
  const labels = typeof q.name === 'string' ? parseName(q.name) : q.name;
  let size = 12 + 1 + 4;
  for (const l of labels) size += l.length + 1;
  if (q.edns) size += 11;
  const out = Buffer.allocUnsafe(size);
  const id = q.id & 0xffff;
  out[0] = id >> 8;
  out[1] = id & 0xff;
  out[2] = q.recursionDesired === false ? 0 : 0x01;
  out[3] = q.checkingDisabled ? 0x10 : 0;
  out[4] = 0;
  out[5] = 1;
  out[6] = 0;
  out[7] = 0;
  out[8] = 0;
  out[9] = 0;
  out[10] = 0;
  out[11] = q.edns ? 1 : 0;
  let p = 12;
  for (const l of labels) {
    out[p++] = l.length;
    out.set(l, p);
    p += l.length;
  }
  out[p++] = 0;
  const type = typeof q.type === 'number' ? q.type : TYPE[q.type];
  const klass = q.class ?? CLASS_IN;
  out[p++] = type >> 8;
  out[p++] = type & 0xff;
  out[p++] = klass >> 8;
  out[p++] = klass & 0xff;
  if (q.edns) {
    const size = q.edns.udpPayloadSize ?? DEFAULT_UDP_PAYLOAD;
    out[p++] = 0; // root owner
    out[p++] = 0;
    out[p++] = TYPE.OPT;
    out[p++] = size >> 8;
    out[p++] = size & 0xff;
    out[p++] = 0; // extended rcode
    out[p++] = 0; // version 0
    out[p++] = q.edns.dnssecOk ? 0x80 : 0;
    out[p++] = 0;
    out[p++] = 0; // RDLENGTH 0
    out[p++] = 0;
  }
  return out;
}

class Writer {
  buf = new Uint8Array(512);
  pos = 0;
  readonly compression: Map<string, number> | null;
  constructor(compress: boolean) {
    this.compression = compress ? new Map() : null;
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf[this.pos++] = (v >> 8) & 0xff;
    this.buf[this.pos++] = v & 0xff;
  }
  u32(v: number): void {
    this.u16(v >>> 16);
    this.u16(v & 0xffff);
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  name(text: string, compressible: boolean): void {
    const labels = parseName(text);
    const table = compressible ? this.compression : null;
    for (let i = 0; i < labels.length; i++) {
      if (table) {
        // exact-case keys: compression never changes the case the caller wrote
        const key = formatName(labels.slice(i));
        const at = table.get(key);
        if (at !== undefined) {
          this.u16(0xc000 | at);
          return;
        }
        if (this.pos < 0x4000) table.set(key, this.pos);
      }
      this.u8(labels[i]!.length);
      this.bytes(labels[i]!);
    }
    this.u8(0);
  }
}

export interface RecordInput {
  name: string;
  type: number | RecordType;
  class?: number;
  ttl?: number;
  data: RecordData;
}

export interface MessageInput {
  id?: number;
  qr?: boolean;
  opcode?: number;
  aa?: boolean;
  tc?: boolean;
  rd?: boolean;
  ra?: boolean;
  ad?: boolean;
  cd?: boolean;
  /** the full rcode; values above 15 need `edns` for their upper bits */
  rcode?: number;
  questions?: { name: string; type: number | RecordType; class?: number }[];
  answers?: RecordInput[];
  authorities?: RecordInput[];
  additionals?: RecordInput[];
  edns?: Partial<Edns> | null;
}

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new DnsEncodeError('character-string has a char above U+00FF (use latin1 bytes)');
    out[i] = c;
  }
  return out;
}

function writeRdata(w: Writer, type: number, data: RecordData): void {
  switch (type) {
    case TYPE.A: {
      const ip = typeof data === 'string' ? parseIp(data) : null;
      if (ip?.family !== 4) throw new DnsEncodeError(`bad A data ${String(data)}`);
      w.bytes(ip.bytes);
      return;
    }
    case TYPE.AAAA: {
      const ip = typeof data === 'string' ? parseIp(data) : null;
      if (!ip) throw new DnsEncodeError(`bad AAAA data ${String(data)}`);
      if (ip.family === 6) w.bytes(ip.bytes);
      else w.bytes(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ip.bytes));
      return;
    }
    case TYPE.NS:
    case TYPE.CNAME:
    case TYPE.PTR:
      w.name(String(data), true);
      return;
    case TYPE.MX: {
      const mx = data as MxRecord;
      w.u16(mx.preference);
      w.name(mx.exchange, true);
      return;
    }
    case TYPE.SRV: {
      const srv = data as SrvRecord;
      w.u16(srv.priority);
      w.u16(srv.weight);
      w.u16(srv.port);
      w.name(srv.target, false); // RFC 2782: no compression
      return;
    }
    case TYPE.SOA: {
      const soa = data as SoaRecord;
      w.name(soa.mname, true);
      w.name(soa.rname, true);
      w.u32(soa.serial);
      w.u32(soa.refresh);
      w.u32(soa.retry);
      w.u32(soa.expire);
      w.u32(soa.minimum);
      return;
    }
    case TYPE.TXT: {
      const strings = typeof data === 'string' ? [data] : (data as string[]);
      for (const s of strings) {
        const b = latin1Bytes(s);
        if (b.length > 255) throw new DnsEncodeError('TXT character-string longer than 255 octets');
        w.u8(b.length);
        w.bytes(b);
      }
      return;
    }
    default:
      if (!(data instanceof Uint8Array)) throw new DnsEncodeError(`${typeName(type)} data must be raw bytes`);
      w.bytes(data);
  }
}

function writeRecord(w: Writer, rr: RecordInput): void {
  const type = typeof rr.type === 'number' ? rr.type : TYPE[rr.type];
  w.name(rr.name, true);
  w.u16(type);
  w.u16(rr.class ?? CLASS_IN);
  w.u32(rr.ttl ?? 0);
  const lengthAt = w.pos;
  w.u16(0);
  writeRdata(w, type, rr.data);
  const rdlength = w.pos - lengthAt - 2;
  if (rdlength > 0xffff) throw new DnsEncodeError('RDATA longer than 65535 octets');
  w.buf[lengthAt] = rdlength >> 8;
  w.buf[lengthAt + 1] = rdlength & 0xff;
}

/**
 * Encodes a whole message (responses included: used by tests, the fuzzer and tools). Names are
 * compressed where RFC 3597 allows it unless `compress` is false.
 */
export function encodeMessage(m: MessageInput, options: { compress?: boolean } = {}): Uint8Array {
  const w = new Writer(options.compress !== false);
  const questions = m.questions ?? [];
  const answers = m.answers ?? [];
  const authorities = m.authorities ?? [];
  const additionals = m.additionals ?? [];
  const rcode = m.rcode ?? 0;
  if (rcode > 15 && !m.edns) throw new DnsEncodeError(`rcode ${rcode} needs EDNS`);
  w.u16(m.id ?? 0);
  w.u16(
    (m.qr ? 0x8000 : 0) |
      (((m.opcode ?? 0) & 0xf) << 11) |
      (m.aa ? 0x0400 : 0) |
      (m.tc ? 0x0200 : 0) |
      (m.rd ? 0x0100 : 0) |
      (m.ra ? 0x0080 : 0) |
      (m.ad ? 0x0020 : 0) |
      (m.cd ? 0x0010 : 0) |
      (rcode & 0xf),
  );
  w.u16(questions.length);
  w.u16(answers.length);
  w.u16(authorities.length);
  w.u16(additionals.length + (m.edns ? 1 : 0));
  for (const q of questions) {
    w.name(q.name, true);
    w.u16(typeof q.type === 'number' ? q.type : TYPE[q.type]);
    w.u16(q.class ?? CLASS_IN);
  }
  for (const rr of answers) writeRecord(w, rr);
  for (const rr of authorities) writeRecord(w, rr);
  for (const rr of additionals) writeRecord(w, rr);
  if (m.edns) {
    const e = m.edns;
    w.u8(0);
    w.u16(TYPE.OPT);
    w.u16(e.udpPayloadSize ?? DEFAULT_UDP_PAYLOAD);
    w.u8(rcode >> 4);
    w.u8(e.version ?? 0);
    w.u16(e.dnssecOk ? 0x8000 : 0);
    const lengthAt = w.pos;
    w.u16(0);
    for (const o of e.options ?? []) {
      w.u16(o.code);
      w.u16(o.data.length);
      w.bytes(o.data);
    }
    const rdlength = w.pos - lengthAt - 2;
    w.buf[lengthAt] = rdlength >> 8;
    w.buf[lengthAt + 1] = rdlength & 0xff;
  }
  if (w.pos > 0xffff) throw new DnsEncodeError('message longer than 65535 octets');
  return w.buf.slice(0, w.pos);
}
