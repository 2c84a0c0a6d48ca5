/**
 * The SIQ (Server Index Query, draft-irtf-asrg-iar-howe-siq-00..-03) UDP packets.
 *
 * We send -02 queries (22 octets + the domain; no EXTRA) and read -00, -01 and -02 replies, which
 * all carry VERSION 1 and differ only after octet 7, so the layout is told apart by the datagram
 * length (see `detectLayout`). -03 keeps the -02 layout and defines the TEMP-REDIRECT text.
 * All integers are big-endian. Scores, sub-scores and CONFIDENCE are int8; TEXT-LENGTH,
 * EXTRA-LENGTH and QD-LENGTH uint8; TTL uint16 (-02) or int32 (-01).
 *
 * Decoding never throws anything but SiqDecodeError; encoding throws SiqEncodeError.
 */
import type { IpAddress } from '../common/ip.ts';
import { formatIp, parseIp } from '../common/ip.ts';

export const SIQ_PORT = 6262;
export const SIQ_VERSION = 1;
/** no query or reply may exceed this (draft §3.1) */
export const SIQ_MAX_PACKET = 512;
export const QUERY_HEADER = 22;
/** the shortest reply: the 8 octets every revision shares */
export const REPLY_HEADER_00 = 8;

/** The negative scores. -00/-01 define -3..-1 (with every error as -1); -02 adds -4. */
export const SIQ_SCORE = { ERROR: -4, REDIRECT: -3, TEMPFAIL: -2, UNKNOWN: -1 } as const;

/** QT: 0 = the MAIL FROM domain (pre-DATA), 1 = a domain found in the message (post-DATA). */
export type SiqQueryType = 'mail' | 'data';

/** Reply layouts: -03 is byte-compatible with -02 and reported as '02'. */
export type SiqRevision = '00' | '01' | '02';

/** What a reply's SCORE means. */
export type SiqScoreKind = 'score' | 'unknown' | 'tempfail' | 'redirect' | 'error';

/** libsnert's experimental flags in the reserved bits of octet 1; off unless asked for. */
export const FLAG_HL = 0x80;
export const FLAG_ML = 0x40;
const FLAG_QT = 0x01;

export class SiqDecodeError extends Error {
  override name = 'SiqDecodeError';
  /** a short machine-readable reason: short, version, truncated, ... */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

export class SiqEncodeError extends Error {
  override name = 'SiqEncodeError';
}

// --- addresses --------------------------------------------------------------------------------

/**
 * The 16 octets of the IP field: IPv4 (and IPv4-mapped IPv6, which parseIp folds to IPv4) as
 * IPv4-compatible `::a.b.c.d` (12 zero octets), IPv6 unchanged.
 */
export function ipField(ip: string | IpAddress): Uint8Array {
  const addr = typeof ip === 'string' ? parseIp(ip) : ip;
  if (!addr) throw new SiqEncodeError(`not an IP address: ${JSON.stringify(ip)}`);
  const out = new Uint8Array(16);
  if (addr.family === 4) out.set(addr.bytes, 12);
  else out.set(addr.bytes);
  return out;
}

/**
 * The address in a 16-octet IP field, as text: IPv4-compatible (`::a.b.c.d`, except `::` and
 * `::1`) and IPv4-mapped forms become a dotted quad, anything else RFC 5952 IPv6.
 */
export function ipFromField(field: Uint8Array): string {
  let zeros = 0;
  while (zeros < 10 && field[zeros] === 0) zeros++;
  if (zeros === 10) {
    const mapped = field[10] === 0xff && field[11] === 0xff;
    const v4 = ((field[12]! << 24) | (field[13]! << 16) | (field[14]! << 8) | field[15]!) >>> 0;
    const compatible = field[10] === 0 && field[11] === 0 && v4 > 1;
    if (mapped || compatible) return formatIp({ family: 4, bytes: Uint8Array.from(field.subarray(12, 16)) });
  }
  return formatIp({ family: 6, bytes: Uint8Array.from(field.subarray(0, 16)) });
}

/** US-ASCII printable, no space, no "@" (a domain, never a local part) */
function checkDomain(domain: string): void {
  if (domain.length > 255) throw new SiqEncodeError(`domain over 255 octets (${domain.length})`);
  for (let i = 0; i < domain.length; i++) {
    const c = domain.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) throw new SiqEncodeError('the domain must be printable US-ASCII (convert IDNs to A-labels)');
    if (c === 0x40) throw new SiqEncodeError('a SIQ query carries a domain, never a local part ("@")');
  }
}

// --- queries ----------------------------------------------------------------------------------

export interface SiqQuery {
  /** 0..65535, echoed in the reply */
  id: number;
  type: SiqQueryType;
  /** the connecting SMTP client */
  ip: string | IpAddress;
  /** the MAIL FROM domain (type 'mail') or a domain from the message (type 'data'); '' for none */
  domain: string;
  /** libsnert's experimental HL (HELO resolves to the IP) and ML (HELO ends with the domain) bits */
  hl?: boolean;
  ml?: boolean;
}

/** A -02 query: VERSION, flags, ID, IP, QD-LENGTH, EXTRA-LENGTH = 0, QD. No EXTRA-ID, no EXTRA. */
export function encodeQuery(q: SiqQuery): Uint8Array {
  if (!Number.isInteger(q.id) || q.id < 0 || q.id > 0xffff) throw new SiqEncodeError(`query ID ${q.id} is not 0..65535`);
  checkDomain(q.domain);
  const out = new Uint8Array(QUERY_HEADER + q.domain.length);
  out[0] = SIQ_VERSION;
  out[1] = (q.type === 'data' ? FLAG_QT : 0) | (q.hl ? FLAG_HL : 0) | (q.ml ? FLAG_ML : 0);
  out[2] = q.id >> 8;
  out[3] = q.id & 0xff;
  out.set(ipField(q.ip), 4);
  out[20] = q.domain.length;
  out[21] = 0;
  for (let i = 0; i < q.domain.length; i++) out[QUERY_HEADER + i] = q.domain.charCodeAt(i);
  return out;
}

export interface DecodedQuery {
  version: number;
  id: number;
  type: SiqQueryType;
  /** the whole flags octet (QT in bit 0, HL 0x80, ML 0x40, the rest reserved) */
  flags: number;
  hl: boolean;
  ml: boolean;
  /** dotted quad for IPv4-compatible and IPv4-mapped fields */
  ip: string;
  domain: string;
  /** hex; the 4 octets before EXTRA when the query carries them (-02/-03), else null */
  extraId: string | null;
  /** hex; EXTRA (-01/-02) or RD, the RCPT domain of -00, as bytes */
  extra: string;
}

/** Reads a query of any revision (for servers and tests). Trailing octets are an error. */
export function decodeQuery(packet: Uint8Array): DecodedQuery {
  const len = packet.length;
  if (len < QUERY_HEADER) throw new SiqDecodeError('short', `query of ${len} octets, at least ${QUERY_HEADER} needed`);
  if (len > SIQ_MAX_PACKET) throw new SiqDecodeError('long', `query of ${len} octets, at most ${SIQ_MAX_PACKET} allowed`);
  if (packet[0] !== SIQ_VERSION) throw new SiqDecodeError('version', `query version ${packet[0]}, expected ${SIQ_VERSION}`);
  const qd = packet[20]!;
  const extraLen = packet[21]!;
  const qdEnd = QUERY_HEADER + qd;
  if (qdEnd > len) throw new SiqDecodeError('truncated', `QD-LENGTH ${qd} runs past the end of a ${len}-octet query`);
  const rest = len - qdEnd;
  let extraId: string | null = null;
  let extraStart = qdEnd;
  if (rest === extraLen + 4) {
    extraId = hex(packet.subarray(qdEnd, qdEnd + 4));
    extraStart += 4;
  } else if (rest !== extraLen) {
    throw new SiqDecodeError('length', `query has ${rest} octets after QD, EXTRA-LENGTH says ${extraLen}`);
  }
  const flags = packet[1]!;
  return {
    version: packet[0]!,
    id: (packet[2]! << 8) | packet[3]!,
    type: flags & FLAG_QT ? 'data' : 'mail',
    flags,
    hl: (flags & FLAG_HL) !== 0,
    ml: (flags & FLAG_ML) !== 0,
    ip: ipFromField(packet.subarray(4, 20)),
    domain: latin1(packet, QUERY_HEADER, qdEnd),
    extraId,
    extra: hex(packet.subarray(extraStart, len)),
  };
}

// --- replies ----------------------------------------------------------------------------------

export interface SiqReply {
  /** the layout the datagram was read as */
  revision: SiqRevision;
  id: number;
  /** SCORE as sent (int8): 0..100, or -1 UNKNOWN, -2 TEMPFAIL, -3 REDIRECT, -4 ERROR; see `kind` */
  score: number;
  /** what SCORE means; a reserved value (outside -4..100, or -4 in a -00/-01 layout) is 'error' */
  kind: SiqScoreKind;
  /** sub-scores 0..100, -1 unknown (a reserved value is read as -1 and noted in `anomalies`) */
  ipScore: number;
  domainScore: number;
  relScore: number;
  /** seconds the reply may be cached; 0 = this transaction only; null = the layout has none (-00) */
  ttl: number | null;
  /** 0..100 (100 = strong), -1 = not given (-00 has none). -03 calls this octet DEVIATION. */
  confidence: number;
  /** TEXT, one char per octet (latin1, lossless); US-ASCII from well-behaved servers */
  text: string;
  /** hex of the 4 octets after TEXT when 4 + EXTRA-LENGTH octets follow it (-02), else null */
  extraId: string | null;
  /** hex of EXTRA */
  extra: string;
  /** for kind 'redirect': the target in TEXT, when it parses (-03's `ADDRESS PORT`) */
  redirect: RedirectTarget | null;
  /** things we tolerated: reserved values, trailing octets */
  anomalies: string[];
}

/** The fields after SCORE that every SIQ answer has, read or computed. */
export interface SiqAnswerDetails<Ttl = number> {
  ipScore: number;
  domainScore: number;
  relScore: number;
  confidence: number;
  ttl: Ttl;
  text: string;
}

/** Those fields of a reply (or a computed score) alone, in reply order: for JSON output. */
export function answerDetails<Ttl>(r: SiqAnswerDetails<Ttl>): SiqAnswerDetails<Ttl> {
  return {
    ipScore: r.ipScore,
    domainScore: r.domainScore,
    relScore: r.relScore,
    confidence: r.confidence,
    ttl: r.ttl,
    text: r.text,
  };
}

/** What a reply carries; `encodeReply` writes it in a chosen layout. */
export interface ReplyInput {
  id: number;
  score: number;
  ipScore?: number;
  domainScore?: number;
  relScore?: number;
  /** ignored by -00; -02 takes 0..65535, -01 any int32 */
  ttl?: number;
  /** ignored by -00 */
  confidence?: number;
  text?: string;
  /** -02 only: 4 octets put before EXTRA */
  extraId?: Uint8Array;
  /** ignored by -00 */
  extra?: Uint8Array;
}

function int8(v: number, what: string): number {
  if (!Number.isInteger(v) || v < -128 || v > 127) throw new SiqEncodeError(`${what} ${v} is not an int8`);
  return v & 0xff;
}

/** Writes a reply in the -00, -01 or -02 layout (for test servers and a SIQ server). */
export function encodeReply(r: ReplyInput, revision: SiqRevision = '02'): Uint8Array {
  if (!Number.isInteger(r.id) || r.id < 0 || r.id > 0xffff) throw new SiqEncodeError(`reply ID ${r.id} is not 0..65535`);
  const text = r.text ?? '';
  if (text.length > 255) throw new SiqEncodeError(`TEXT over 255 octets (${text.length})`);
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0xff) throw new SiqEncodeError('TEXT must be single octets');
  }
  const extra = revision === '00' ? new Uint8Array(0) : (r.extra ?? new Uint8Array(0));
  if (extra.length > 255) throw new SiqEncodeError(`EXTRA over 255 octets (${extra.length})`);
  const extraId = revision === '02' ? r.extraId : undefined;
  if (extraId && extraId.length !== 4) throw new SiqEncodeError('EXTRA-ID is 4 octets');
  const head = revision === '00' ? 8 : revision === '01' ? 14 : 12;
  const out = new Uint8Array(head + text.length + (extraId ? 4 : 0) + extra.length);
  if (out.length > SIQ_MAX_PACKET) throw new SiqEncodeError(`reply of ${out.length} octets, at most ${SIQ_MAX_PACKET} allowed`);
  out[0] = SIQ_VERSION;
  out[1] = int8(r.score, 'SCORE');
  out[2] = r.id >> 8;
  out[3] = r.id & 0xff;
  out[4] = int8(r.ipScore ?? -1, 'IP-SCORE');
  out[5] = int8(r.domainScore ?? -1, 'DOMAIN-SCORE');
  out[6] = int8(r.relScore ?? -1, 'REL-SCORE');
  out[7] = text.length;
  const view = new DataView(out.buffer);
  const ttl = r.ttl ?? 0;
  if (revision === '01') {
    if (!Number.isInteger(ttl) || ttl < -0x80000000 || ttl > 0x7fffffff) throw new SiqEncodeError(`TTL ${ttl} is not an int32`);
    view.setInt32(8, ttl);
    out[12] = int8(r.confidence ?? -1, 'CONFIDENCE');
    out[13] = extra.length;
  } else if (revision === '02') {
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0xffff) throw new SiqEncodeError(`TTL ${ttl} is not a uint16`);
    view.setUint16(8, ttl);
    out[10] = int8(r.confidence ?? -1, 'CONFIDENCE');
    out[11] = extra.length;
  }
  for (let i = 0; i < text.length; i++) out[head + i] = text.charCodeAt(i);
  let at = head + text.length;
  if (extraId) {
    out.set(extraId, at);
    at += 4;
  }
  out.set(extra, at);
  return out;
}

/**
 * The reply layout, from the length L and TEXT-LENGTH T (octet 7), as the spec summary
 * recommends: L = 8+T is -00 (and the TTL-less Outbound Index server); otherwise -02 when what
 * follows TEXT is EXTRA-LENGTH (octet 11) octets, or 4 more (EXTRA-ID); otherwise -01 when
 * L = 14+T+octet 13; otherwise the longest layout the length allows, the rest ignored; null when
 * TEXT itself does not fit.
 *
 * One refinement: when the -02 and the -01 rules both fit, the -02 reading always claims two more
 * octets of EXTRA than the -01 one (it happens to a -01 reply whose TTL's low octet is E+2 or E-2,
 * e.g. TTL 2 or 258 with no EXTRA: 1 in 256 of those). No server is known to have sent EXTRA, so
 * the -01 reading wins when it is sound (TTL not negative, CONFIDENCE -1..100).
 */
export function detectLayout(packet: Uint8Array): SiqRevision | null {
  const len = packet.length;
  if (len < REPLY_HEADER_00) return null;
  const t = packet[7]!;
  if (len === 8 + t) return '00';
  let fits02 = false;
  if (len >= 12 + t) {
    const after = len - 12 - t;
    const e = packet[11]!;
    fits02 = after === e || after === e + 4;
  }
  const fits01 = len >= 14 + t && len === 14 + t + packet[13]!;
  if (fits02 && fits01) {
    const confidence = (packet[12]! << 24) >> 24;
    return packet[8]! < 0x80 && confidence >= -1 && confidence <= 100 ? '01' : '02';
  }
  if (fits02) return '02';
  if (fits01) return '01';
  if (len >= 12 + t) return '02';
  if (len >= 8 + t) return '00';
  return null;
}

/** The meaning of a SCORE (a reserved value is an error, draft -02 §3.2; -4 is ERROR from -02 on). */
export function scoreKind(score: number): SiqScoreKind {
  if (score >= 0 && score <= 100) return 'score';
  switch (score) {
    case SIQ_SCORE.UNKNOWN:
      return 'unknown';
    case SIQ_SCORE.TEMPFAIL:
      return 'tempfail';
    case SIQ_SCORE.REDIRECT:
      return 'redirect';
    default:
      return 'error';
  }
}

function sub(packet: Uint8Array, at: number, what: string, anomalies: string[]): number {
  const v = (packet[at]! << 24) >> 24;
  if (v >= -1 && v <= 100) return v;
  anomalies.push(`${what} ${v} out of range, read as -1`);
  return -1;
}

/** Reads a reply datagram. Throws SiqDecodeError (never anything else) when it is malformed. */
export function decodeReply(packet: Uint8Array): SiqReply {
  const len = packet.length;
  if (len < REPLY_HEADER_00) throw new SiqDecodeError('short', `reply of ${len} octets, at least ${REPLY_HEADER_00} needed`);
  if (len > SIQ_MAX_PACKET) throw new SiqDecodeError('long', `reply of ${len} octets, at most ${SIQ_MAX_PACKET} allowed`);
  if (packet[0] !== SIQ_VERSION) throw new SiqDecodeError('version', `reply version ${packet[0]}, expected ${SIQ_VERSION}`);
  const revision = detectLayout(packet);
  const t = packet[7]!;
  if (revision === null) throw new SiqDecodeError('truncated', `TEXT-LENGTH ${t} runs past the end of a ${len}-octet reply`);
  const anomalies: string[] = [];
  const score = (packet[1]! << 24) >> 24;
  const kind = scoreKind(score);
  if (kind === 'error' && score !== SIQ_SCORE.ERROR) anomalies.push(`reserved score ${score}`);
  if (revision !== '02' && score === SIQ_SCORE.ERROR) anomalies.push(`score -4 in a -${revision} layout`);
  let ttl: number | null = null;
  let confidence = -1;
  let head = 8;
  let extraLen = 0;
  if (revision === '01') {
    const raw = ((packet[8]! << 24) | (packet[9]! << 16) | (packet[10]! << 8) | packet[11]!) | 0;
    if (raw < 0) anomalies.push(`negative TTL ${raw}, read as 0`);
    ttl = Math.max(0, raw);
    confidence = sub(packet, 12, 'confidence', anomalies);
    extraLen = packet[13]!;
    head = 14;
  } else if (revision === '02') {
    ttl = (packet[8]! << 8) | packet[9]!;
    confidence = sub(packet, 10, 'confidence', anomalies);
    extraLen = packet[11]!;
    head = 12;
  }
  const textEnd = head + t;
  const text = latin1(packet, head, textEnd);
  let extraId: string | null = null;
  let extra = '';
  const rest = len - textEnd;
  if (revision === '00') {
    if (rest > 0) anomalies.push(`${rest} octets after TEXT ignored`);
  } else if (revision === '02' && rest >= extraLen + 4) {
    extraId = hex(packet.subarray(textEnd, textEnd + 4));
    extra = hex(packet.subarray(textEnd + 4, textEnd + 4 + extraLen));
    if (rest > extraLen + 4) anomalies.push(`${rest - extraLen - 4} octets after EXTRA ignored`);
  } else if (rest >= extraLen) {
    extra = hex(packet.subarray(textEnd, textEnd + extraLen));
    if (rest > extraLen) anomalies.push(`${rest - extraLen} octets after EXTRA ignored`);
  } else {
    anomalies.push(`EXTRA-LENGTH ${extraLen} but ${rest} octets after TEXT; EXTRA ignored`);
  }
  const reply: SiqReply = {
    revision,
    id: (packet[2]! << 8) | packet[3]!,
    score,
    kind,
    ipScore: sub(packet, 4, 'ip score', anomalies),
    domainScore: sub(packet, 5, 'domain score', anomalies),
    relScore: sub(packet, 6, 'relationship score', anomalies),
    ttl,
    confidence,
    text,
    extraId,
    extra,
    redirect: kind === 'redirect' ? parseRedirectTarget(text) : null,
    anomalies,
  };
  return reply;
}

// --- TEMP-REDIRECT ------------------------------------------------------------------------------

export interface RedirectTarget {
  /** an IP address (IPv4-compatible IPv6 turned back into a dotted quad) or a host name */
  host: string;
  port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

function redirectHost(text: string): string | null {
  const ip = parseIp(text);
  if (ip) return ip.family === 6 ? ipFromField(ip.bytes) : formatIp(ip);
  if (HOSTNAME.test(text) && !/^[\d.]+$/.test(text)) return text.toLowerCase().replace(/\.$/, '');
  return null;
}

/**
 * The target of a REDIRECT: -03 defines `ADDRESS<space>PORT` (ADDRESS an IPv6 address, IPv4 in
 * IPv4-compatible form, or an FQDN); we also take a bare ADDRESS (port 6262), `host:port` and
 * `[v6]:port`, since -02 left the format open. Null when the text is none of these.
 */
export function parseRedirectTarget(text: string): RedirectTarget | null {
  const s = text.trim();
  if (s.length === 0 || s.length > 300) return null;
  const words = s.split(/\s+/);
  let hostText: string;
  let portText: string | undefined;
  if (words.length === 2) {
    [hostText, portText] = words as [string, string];
  } else if (words.length === 1) {
    hostText = s;
    const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
    if (bracket) {
      hostText = bracket[1]!;
      portText = bracket[2];
    } else if (s.split(':').length === 2) {
      const at = s.indexOf(':');
      hostText = s.slice(0, at);
      portText = s.slice(at + 1);
    }
  } else {
    return null;
  }
  let port = SIQ_PORT;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return null;
    port = Number(portText);
    if (port < 1 || port > 65535) return null;
  }
  const host = redirectHost(hostText);
  return host ? { host, port } : null;
}

// --- helpers ----------------------------------------------------------------------------------

function latin1(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

function hex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}

/** `hex` back to bytes (for tests and a cache that stores replies as JSON). */
export function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(text)) throw new Error('not hex');
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}
