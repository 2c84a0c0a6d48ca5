/**
 * The SMTP envelope of a stored message, recovered for a replay (docs/replay.md):
 *
 * 1. an envelope file next to the message (`<file>.envelope.json`), else
 * 2. the line for its Message-ID in the `--envelope FILE` JSON Lines file, else
 * 3. the headers: the Received header the operator's own MTA added when it took the message from
 *    the outside gives the client IP and HELO; Return-Path gives MAIL FROM; X-Original-To,
 *    Envelope-To or Delivered-To give RCPT.
 *
 * Envelope files hold one JSON object: {"ip", "helo", "mail_from", "rcpt", "id"} (and
 * "message_id" in the JSON Lines file). Only "ip" is required; what a file gives is the whole
 * envelope (nothing is added from the headers).
 *
 * Which Received header: headers without a client IP (qmail-queue's "invoked from network", a
 * local submission) and headers from a loopback client (content filters re-injecting) are never
 * hops and are not counted. Of the others, the topmost by default; `trustedHops` N skips N more
 * (internal relays between the border MTA and the mailbox); `receivedBy` takes the topmost one
 * whose `by` host is one of the names (".example.org" matches any name under it).
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { type IpAddress, inPrefix, parseIp } from '../common/ip.ts';
import { type ReceivedFormat, type ReceivedInfo, parseReceived } from './received.ts';

export class EnvelopeError extends Error {
  override name = 'EnvelopeError';
}

/** An envelope as an envelope file gives it (validated). */
export interface GivenEnvelope {
  ip: string;
  helo?: string;
  mailFrom?: string;
  rcpt: string[];
  id?: string;
}

export interface ReplayEnvelope extends GivenEnvelope {
  /** where it came from */
  source: 'envelope-file' | 'envelope-jsonl' | 'headers';
  /** the Received header used (headers only) */
  received?: {
    /** position among the message's header fields, 0 = topmost */
    field: number;
    format: ReceivedFormat;
    by?: string;
    reverse?: string;
    date?: string;
  };
  /** the header fields each part came from (headers only) */
  fields?: { mailFrom?: string; rcpt?: string };
}

export interface HopChoice {
  /** Received headers with a client IP to skip below the topmost (default 0) */
  trustedHops?: number;
  /** take the topmost Received header whose `by` host is one of these */
  receivedBy?: string[];
}

export type Recovery =
  | { ok: true; envelope: ReplayEnvelope; /** the header fields the MTA got start here */ firstField: number; warnings: string[] }
  | { ok: false; /** for counting: no-received, no-client-ip, trusted-hops, received-by */ code: string; reason: string; warnings: string[] };

const KEYS: Record<string, true> = { ip: true, helo: true, mail_from: true, rcpt: true, id: true, message_id: true };

/** Edit distance, for "did you mean" (keys are short). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

function closest(key: string): string {
  const k = key.toLowerCase().replace(/-/g, '_').slice(0, 40);
  let best = '';
  let bestDistance = 3;
  for (const known of Object.keys(KEYS)) {
    const d = Math.min(distance(k, known), distance(k, known.replace('_', '')));
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  return best ? ` (did you mean "${best}"?)` : '';
}

/** Validates one envelope object; `where` names the file (and line) in errors. */
export function givenEnvelope(value: unknown, where: string): GivenEnvelope & { messageId?: string } {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new EnvelopeError(`${where}: not a JSON object`);
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KEYS[key]) throw new EnvelopeError(`${where}: unknown key "${key}"${closest(key)}`);
  }
  const str = (key: string): string | undefined => {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new EnvelopeError(`${where}: "${key}" must be a string`);
    if (/[\0\r\n]/.test(v)) throw new EnvelopeError(`${where}: "${key}" contains a line break or NUL`);
    return v;
  };
  const ipText = str('ip');
  if (ipText === undefined) throw new EnvelopeError(`${where}: "ip" is required`);
  if (!parseIp(ipText.trim())) throw new EnvelopeError(`${where}: "ip" ${JSON.stringify(ipText)} is not an IP address`);
  const out: GivenEnvelope & { messageId?: string } = { ip: ipText.trim(), rcpt: [] };
  const helo = str('helo');
  if (helo !== undefined) out.helo = helo;
  const mailFrom = str('mail_from');
  if (mailFrom !== undefined) out.mailFrom = mailFrom;
  const id = str('id');
  if (id !== undefined) out.id = id;
  const mid = str('message_id');
  if (mid !== undefined) out.messageId = mid;
  const rcpt = o.rcpt;
  if (typeof rcpt === 'string') out.rcpt = [rcpt];
  else if (Array.isArray(rcpt)) {
    for (const r of rcpt) {
      if (typeof r !== 'string' || /[\0\r\n]/.test(r)) throw new EnvelopeError(`${where}: "rcpt" must be a string or a list of strings`);
      out.rcpt.push(r);
    }
  } else if (rcpt !== undefined && rcpt !== null) throw new EnvelopeError(`${where}: "rcpt" must be a string or a list of strings`);
  return out;
}

/** Reads `<file>.envelope.json`; null when there is none. */
export async function readEnvelopeFile(path: string): Promise<GivenEnvelope | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new EnvelopeError(`${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (text.length > 64 * 1024) throw new EnvelopeError(`${path}: larger than 64 KiB`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EnvelopeError(`${path}: not JSON (${(err as Error).message})`);
  }
  const { messageId: _ignored, ...envelope } = givenEnvelope(value, path);
  return envelope;
}

/**
 * Loads a JSON Lines envelope file keyed by Message-ID (angle brackets optional). Blank lines and
 * lines starting with "#" are skipped; a bad line is an EnvelopeError naming its line. A later
 * line for the same Message-ID replaces an earlier one.
 */
export async function loadEnvelopeLines(path: string): Promise<Map<string, GivenEnvelope>> {
  const map = new Map<string, GivenEnvelope>();
  const stream = createReadStream(path, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (err) {
    throw new EnvelopeError(`${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let n = 0;
  for await (const line of lines) {
    n++;
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    if (t.length > 64 * 1024) throw new EnvelopeError(`${path} line ${n}: longer than 64 KiB`);
    let value: unknown;
    try {
      value = JSON.parse(t);
    } catch (err) {
      throw new EnvelopeError(`${path} line ${n}: not JSON (${(err as Error).message})`);
    }
    const { messageId, ...envelope } = givenEnvelope(value, `${path} line ${n}`);
    if (!messageId) throw new EnvelopeError(`${path} line ${n}: "message_id" is required`);
    map.set(messageKey(messageId), envelope);
  }
  return map;
}

/** The key a Message-ID is looked up by: no angle brackets, no surrounding white space. */
export function messageKey(messageId: string): string {
  const v = messageId.trim();
  return (v.startsWith('<') && v.endsWith('>') ? v.slice(1, -1) : v).trim();
}

const LOOPBACK4 = parseIp('127.0.0.0')!;
const LOOPBACK6 = parseIp('::1')!;
const PRIVATE: Array<[IpAddress, number]> = (
  [
    ['10.0.0.0', 8],
    ['172.16.0.0', 12],
    ['192.168.0.0', 16],
    ['100.64.0.0', 10],
    ['169.254.0.0', 16],
    ['fc00::', 7],
    ['fe80::', 10],
  ] as const
).map(([a, p]) => [parseIp(a)!, p]);

export function isLoopback(ip: string): boolean {
  const p = parseIp(ip);
  if (!p) return false;
  return inPrefix(p, LOOPBACK4, 8) || inPrefix(p, LOOPBACK6, 128);
}

export function isPrivate(ip: string): boolean {
  const p = parseIp(ip);
  return p !== null && PRIVATE.some(([net, len]) => inPrefix(p, net, len));
}

function byMatches(by: string | undefined, names: string[]): boolean {
  if (!by) return false;
  const b = by.toLowerCase().replace(/\.$/, '');
  return names.some((raw) => {
    const n = raw.toLowerCase().replace(/\.$/, '');
    return n.startsWith('.') ? b.endsWith(n) : b === n;
  });
}

/** Unfolded, trimmed header value. */
function unfold(value: string): string {
  return value.replace(/\r?\n/g, '').trim();
}

/** "<a@b>" → "a@b", "<>" → "", "a@b (comment)" → "a@b". */
function pathOf(value: string): string {
  const v = unfold(value);
  const m = /<([^<>]*)>/.exec(v);
  if (m) return m[1]!.trim();
  return v.replace(/\s*\(.*\)\s*$/, '').trim();
}

function addresses(value: string): string[] {
  return unfold(value)
    .split(',')
    .map((a) => pathOf(a))
    .filter((a) => a !== '');
}

/** Picks the Received header and reads the envelope from the header fields. */
export function envelopeFromHeaders(headers: Array<[string, string]>, choice: HopChoice = {}): Recovery {
  const warnings: string[] = [];
  const hops: Array<{ field: number; info: ReceivedInfo }> = [];
  let received = 0;
  let loopback = 0;
  let chosen: { field: number; info: ReceivedInfo } | undefined;
  for (let i = 0; i < headers.length; i++) {
    if (headers[i]![0].toLowerCase() !== 'received') continue;
    received++;
    const info = parseReceived(headers[i]![1]);
    if (info.ip === undefined) continue;
    if (isLoopback(info.ip)) {
      loopback++;
      continue;
    }
    hops.push({ field: i, info });
  }
  const names = choice.receivedBy ?? [];
  if (names.length > 0) {
    chosen = hops.find((h) => byMatches(h.info.by, names));
    if (!chosen) {
      return { ok: false, code: 'received-by', reason: `no Received header by ${names.join(', ')} names a client IP (${received} Received header${received === 1 ? '' : 's'})`, warnings };
    }
  } else {
    const k = choice.trustedHops ?? 0;
    chosen = hops[k];
    if (!chosen) {
      const reason =
        received === 0
          ? 'no Received header'
          : hops.length === 0
            ? `no Received header names a client IP${loopback > 0 ? ' other than loopback' : ''} (${received} Received header${received === 1 ? '' : 's'})`
            : `--trusted-hops ${k} needs ${k + 1} Received headers with a client IP; this message has ${hops.length}`;
      const code = received === 0 ? 'no-received' : hops.length === 0 ? 'no-client-ip' : 'trusted-hops';
      return { ok: false, code, reason, warnings };
    }
  }
  const info = chosen.info;
  const ip = info.ip!;
  if (isPrivate(ip)) warnings.push(`client IP ${ip} is private: an internal hop? (--trusted-hops, --received-by)`);
  const envelope: ReplayEnvelope = {
    ip,
    rcpt: [],
    source: 'headers',
    received: {
      field: chosen.field,
      format: info.format,
      ...(info.by ? { by: info.by } : {}),
      ...(info.reverse ? { reverse: info.reverse } : {}),
      ...(info.date ? { date: info.date } : {}),
    },
  };
  if (info.helo !== undefined) envelope.helo = info.helo;

  // the delivery headers the operator's side added sit above the chosen Received; ones below it
  // came with the message from the outside and say nothing about this delivery
  const above = headers.slice(0, chosen.field);
  const named = (name: string) => above.filter(([n]) => n.toLowerCase() === name);
  const from: NonNullable<ReplayEnvelope["fields"]> = {};
  const returnPath = named('return-path')[0];
  if (returnPath) {
    envelope.mailFrom = pathOf(returnPath[1]);
    from.mailFrom = 'Return-Path';
  } else if (info.envelopeFrom !== undefined) {
    envelope.mailFrom = info.envelopeFrom;
    from.mailFrom = 'Received (envelope-from)';
  } else warnings.push('no MAIL FROM: no Return-Path above the Received header');
  const originalTo = named('x-original-to').flatMap(([, v]) => addresses(v));
  const envelopeTo = named('envelope-to').flatMap(([, v]) => addresses(v));
  const deliveredTo = named('delivered-to');
  if (originalTo.length > 0) {
    envelope.rcpt = [...new Set(originalTo)];
    from.rcpt = 'X-Original-To';
  } else if (envelopeTo.length > 0) {
    envelope.rcpt = [...new Set(envelopeTo)];
    from.rcpt = 'Envelope-To';
  } else if (deliveredTo.length > 0) {
    // the bottommost is the first delivery, the nearest to the RCPT the MTA was given
    envelope.rcpt = addresses(deliveredTo[deliveredTo.length - 1]![1]).slice(0, 1);
    from.rcpt = 'Delivered-To';
  } else if (info.for !== undefined) {
    envelope.rcpt = [info.for];
    from.rcpt = 'Received (for)';
  } else warnings.push('no RCPT: no X-Original-To, Envelope-To, Delivered-To or "for" clause');
  envelope.fields = from;
  return { ok: true, envelope, firstField: chosen.field, warnings };
}
