/**
 * Fuzzes what `checkid replay` reads from outside: the mbox reader (src/replay/mbox.ts), the
 * Received parser (src/replay/received.ts), and the stored-message check and envelope recovery
 * behind them. Inputs alternate between the two:
 *
 * - mbox: messages made of header and body lines that an mbox must quote ("From ", ">From ",
 *   ">>From ", postmark-looking lines), long lines, CRLF, empty messages, written as an mboxrd
 *   writer would; then, for some, damaged at byte level (random bytes, cut, NULs, a missing
 *   postmark). Invariants:
 *   - the reader never throws; chunking changes nothing (whole vs random pieces);
 *   - an undamaged stream reads back to exactly the messages written (mboxrd round trip);
 *   - every message is within the size bound (else an error item), every item's offset points at
 *     a "From " line of the input, indexes count up by one;
 *   - each message, checked and run through envelope recovery, gives a MessageError or an
 *     answer, never another exception.
 * - Received: a header field generated from each MTA's grammar (Postfix, Sendmail, Exim, qmail,
 *   Exchange) with a known client IP and HELO, then mutated for some. Invariants:
 *   - the parser never throws; an IP it gives is canonical; a HELO has no white space;
 *   - for an unmutated field, the IP and HELO are exactly the generated ones.
 * - no input takes more than a second.
 *
 *   node fuzz/replay.ts [inputs=1000000] [seed=1]
 *
 * Prints JSON {inputs, mboxes, messages, errorItems, roundTrips, received, exact, crashes, ms,
 * seed}; exit status 1 on any crash.
 */
import { normalizeIp } from '../src/common/ip.ts';
import { envelopeFromHeaders } from '../src/replay/envelope.ts';
import type { MboxItem } from '../src/replay/mbox.ts';
import { MessageError, parseStoredMessage } from '../src/replay/message.ts';
import { parseReceived } from '../src/replay/received.ts';
import { splitMbox } from '../test/replay/fixtures.ts';
import { between, chance, pick, prng } from './support/prng.ts';

type Rng = () => number;

const MAX = 4096;

const BODY_LINES = [
  '',
  'Hello,',
  'From the desk of the president',
  '>From a quoted line',
  '>>From twice quoted',
  '>>>From ',
  'From ',
  'From me Mon Jun  3 10:00:00 2024',
  'From: not a postmark',
  ' From indented',
  '>',
  '>>',
  'x'.repeat(1200),
  `>From ${'y'.repeat(1100)}`,
  '\u00e9t\u00e9',
  '\r',
  '.',
];
const HEADER_LINES = ['Subject: fuzz', 'From: a@example.com', 'Message-ID: <x@example.com>', 'Received: from a.example (a.example [192.0.2.1]) by mx (Postfix) with ESMTP id X; d', '\tfolded continuation', 'Return-Path: <a@example.com>', 'X-Original-To: b@example.org'];

function messageText(rng: Rng): string {
  const lines: string[] = [];
  for (let i = between(rng, 0, 4); i > 0; i--) lines.push(pick(rng, HEADER_LINES));
  if (chance(rng, 0.9)) lines.push('');
  for (let i = between(rng, 0, 8); i > 0; i--) lines.push(pick(rng, BODY_LINES));
  const eol = chance(rng, 0.2) ? '\r\n' : '\n';
  // an mbox writer stores whole lines: every message ends with a line end
  return lines.length === 0 ? '' : lines.join(eol) + eol;
}

/** mboxrd writing: >+From quoted, a postmark before and a blank line after each message. */
function writeMboxrd(messages: string[], rng: Rng): string {
  return messages
    .map((m) => {
      const postmark = pick(rng, ['From a@example.com Mon Jun  3 10:00:00 2024', 'From MAILER-DAEMON Thu Jan  1 00:00:00 1970', 'From - Mon Jun 03 10:00:00 +0000 2024']);
      return `${postmark}\n${m.replace(/^(>*From )/gm, '>$1')}\n`;
    })
    .join('');
}

function damage(data: Buffer, rng: Rng): Buffer {
  const copy = Buffer.from(data);
  const r = rng();
  if (r < 0.3) {
    for (let h = between(rng, 1, 6); h > 0 && copy.length > 0; h--) copy[Math.floor(rng() * copy.length)] = Math.floor(rng() * 256);
    return copy;
  }
  if (r < 0.5) return copy.subarray(0, Math.floor(rng() * copy.length));
  if (r < 0.65) return Buffer.concat([Buffer.from('garbage before the first postmark\n'), copy]);
  if (r < 0.8) return Buffer.from(copy.toString('latin1').replace(/\n/g, () => (chance(rng, 0.1) ? '\0' : '\n')), 'latin1');
  return Buffer.from(Array.from({ length: between(rng, 0, 600) }, () => Math.floor(rng() * 256)));
}

const split = (data: Buffer, cuts: number[]): MboxItem[] => splitMbox(data, { maxMessageBytes: MAX }, cuts);

const describe = (items: MboxItem[]) => JSON.stringify(items.map((i) => (i.kind === 'message' ? [i.offset, i.index, i.postmark, i.raw.toString('base64')] : [i.offset, i.index, i.error])));

export function fuzzMbox(rng: Rng): { messages: number; errors: number; roundTrip: boolean } {
  const written = Array.from({ length: between(rng, 0, 5) }, () => messageText(rng));
  const clean = Buffer.from(writeMboxrd(written, rng), 'latin1');
  const damaged = chance(rng, 0.4);
  const data = damaged ? damage(clean, rng) : clean;
  const whole = split(data, []);
  const cuts: number[] = [];
  for (let at = 0; ; ) {
    at += 1 + Math.floor(rng() * rng() * 200);
    if (at >= data.length) break;
    cuts.push(at);
  }
  if (describe(split(data, cuts)) !== describe(whole)) throw new Error('chunking changed the items');
  let messages = 0;
  let errors = 0;
  let index = 0;
  for (const item of whole) {
    if (item.kind === 'error') {
      errors++;
      if (item.index !== 0 && item.index !== index + 1) throw new Error('error item out of sequence');
      if (item.index !== 0) index = item.index;
      continue;
    }
    messages++;
    if (item.index !== index + 1) throw new Error(`index ${item.index} after ${index}`);
    index = item.index;
    if (item.raw.length > MAX) throw new Error(`message of ${item.raw.length} bytes passed the ${MAX}-byte bound`);
    if (data.toString('latin1', item.offset, item.offset + 5) !== 'From ') throw new Error(`offset ${item.offset} is not at a "From " line`);
    try {
      const m = parseStoredMessage(item.raw);
      envelopeFromHeaders(m.headers, chance(rng, 0.5) ? {} : { trustedHops: between(rng, 0, 2) });
      envelopeFromHeaders(m.headers, { receivedBy: ['mx', '.example'] });
    } catch (err) {
      if (!(err instanceof MessageError)) throw err;
    }
  }
  let roundTrip = false;
  if (!damaged) {
    const back = whole.map((i) => (i.kind === 'message' ? i.raw.toString('latin1') : `ERROR ${i.error}`));
    const expected = written.map((m) => (Buffer.byteLength(m, 'latin1') > MAX ? 'TOO BIG' : m));
    const got = back.map((b) => (b.startsWith('ERROR') && b.includes('larger than') ? 'TOO BIG' : b));
    if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`round trip: wrote ${JSON.stringify(expected)}, read ${JSON.stringify(got)}`);
    roundTrip = true;
  }
  return { messages, errors, roundTrip };
}

// --- Received ------------------------------------------------------------------------------------

const HOSTS = ['mail.example.com', 'mx1.example.net', 'a.b.c.example', 'mail-wr1-f54.google.com', 'EX01.corp.example.org', 'localhost', 'x'];

function ipv4(rng: Rng): string {
  return [between(rng, 1, 254), between(rng, 0, 255), between(rng, 0, 255), between(rng, 1, 254)].join('.');
}
function ipv6(rng: Rng): string {
  const groups = Array.from({ length: 8 }, () => between(rng, 0, 0xffff).toString(16));
  if (chance(rng, 0.5)) groups.fill('0', 3, 6);
  return groups.join(':');
}

/** A Received value in one MTA's form, with the client IP (canonical) and HELO it names. */
export function receivedOf(rng: Rng): { value: string; ip: string; helo: string | undefined } {
  const v6 = chance(rng, 0.3);
  const ip = v6 ? ipv6(rng) : ipv4(rng);
  const canonical = normalizeIp(ip)!;
  const helo = pick(rng, HOSTS);
  const rev = chance(rng, 0.3) ? 'unknown' : pick(rng, HOSTS);
  const fold = pick(rng, ['\r\n\t', '\n\t', ' ', '\r\n  ']);
  const date = 'Mon, 3 Jun 2024 10:00:00 +0200';
  const lit = v6 ? `IPv6:${ip}` : ip;
  switch (between(rng, 0, 6)) {
    case 0:
      return { value: `from ${helo} (${rev} [${lit}])${fold}(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))${fold}by mx.example.org (Postfix) with ESMTPS id 4VtQ9k0X${fold}for <b@example.org>; ${date}`, ip: canonical, helo };
    case 1:
      return { value: `from ${helo} (${chance(rng, 0.3) ? 'joe@' : ''}${rev === 'unknown' ? '' : `${rev} `}[${lit}]${chance(rng, 0.3) ? ' (may be forged)' : ''})${fold}by mx.example.org (8.17.1/8.17.1) with ESMTP id 453A; ${date}`, ip: canonical, helo };
    case 2:
      return chance(rng, 0.5)
        ? { value: `from ${rev} ([${ip}]${chance(rng, 0.5) ? `:${between(rng, 1, 65535)}` : ''} helo=${helo})${fold}by mx.example.org with esmtp (Exim 4.96)${fold}(envelope-from <a@example.com>)${fold}id 1sE5xY-000ABC-2D; ${date}`, ip: canonical, helo }
        : { value: `from [${ip}] (port=${between(rng, 1, 65535)} helo=${helo})${fold}by mx.example.org with esmtp (Exim 4.96)${fold}id 1sE5xY-000ABC-2D; ${date}`, ip: canonical, helo };
    case 3:
      return { value: `from ${rev} (HELO ${helo}) (${chance(rng, 0.2) ? 'joe@' : ''}${v6 && chance(rng, 0.5) ? `[${ip}]` : ip})${fold}by mx.example.org with SMTP; 3 Jun 2024 08:00:00 -0000`, ip: canonical, helo };
    case 4:
      return { value: `from ${helo} (${ip}) by EX02.corp.example.org (10.0.0.6) with Microsoft SMTP Server (version=TLS1_2,${fold}cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.1.2507.39; ${date}`, ip: canonical, helo };
    case 5:
      return { value: `(from ${rev === 'unknown' ? pick(rng, HOSTS) : rev} [${lit}])${fold}by mx.example.org (8.17.1/8.17.1) with SMTP id 453A; ${date}`, ip: canonical, helo: undefined };
    default:
      return { value: `from [${lit}] (${rev} [${lit}])${fold}by mx.example.org (Postfix) with ESMTP id X; ${date}`, ip: canonical, helo: `[${lit}]` };
  }
}

const NOISE = ['(', ')', '[', ']', ';', '\\', '"', '<', '>', '@', ' ', '\t', '\r\n', '\0', 'from ', 'by ', 'helo=', 'HELO ', 'IPv6:', '::', '.', '\u00ff', '\ud800', '😀'];

function mutate(value: string, rng: Rng): string {
  let s = value;
  for (let e = between(rng, 1, 4); e > 0; e--) {
    const at = Math.floor(rng() * (s.length + 1));
    const r = rng();
    if (r < 0.5) s = s.slice(0, at) + pick(rng, NOISE) + s.slice(at);
    else if (r < 0.75) s = s.slice(0, at) + s.slice(at + between(rng, 1, 8));
    else if (r < 0.85) s = s.slice(0, at) + s.slice(at, at + 12).repeat(between(rng, 1, 300)) + s.slice(at);
    else s = s.slice(0, at);
  }
  return s;
}

export function fuzzReceived(rng: Rng): boolean {
  const g = receivedOf(rng);
  const mutated = chance(rng, 0.5);
  const value = mutated ? mutate(g.value, rng) : g.value;
  const r = parseReceived(value);
  if (r.ip !== undefined) {
    const canon = normalizeIp(r.ip);
    if (canon !== r.ip) throw new Error(`IP ${JSON.stringify(r.ip)} is not canonical`);
  }
  if (r.helo !== undefined && /\s/.test(r.helo)) throw new Error(`HELO with white space: ${JSON.stringify(r.helo)}`);
  if (!mutated) {
    if (r.ip !== g.ip) throw new Error(`IP ${r.ip} instead of ${g.ip} in ${JSON.stringify(value)}`);
    if (r.helo !== g.helo) throw new Error(`HELO ${r.helo} instead of ${g.helo} in ${JSON.stringify(value)}`);
    return true;
  }
  return false;
}

function main(): void {
  const count = Number(process.argv[2] ?? 1_000_000);
  const seed = Number(process.argv[3] ?? 1);
  if (!(count > 0) || !Number.isInteger(seed)) {
    console.error('usage: node fuzz/replay.ts [inputs=1000000] [seed=1]');
    process.exit(2);
  }
  const rng = prng(seed);
  const stats = { mboxes: 0, messages: 0, errorItems: 0, roundTrips: 0, received: 0, exact: 0 };
  let crashes = 0;
  const examples: Array<{ k: number; error: string }> = [];
  const start = performance.now();
  for (let k = 0; k < count; k++) {
    const t0 = performance.now();
    try {
      if (k % 2 === 0) {
        const r = fuzzMbox(rng);
        stats.mboxes++;
        stats.messages += r.messages;
        stats.errorItems += r.errors;
        if (r.roundTrip) stats.roundTrips++;
      } else {
        stats.received++;
        if (fuzzReceived(rng)) stats.exact++;
      }
      const took = performance.now() - t0;
      if (took > 1000) throw new Error(`took ${Math.round(took)} ms`);
    } catch (err) {
      crashes++;
      if (examples.length < 5) examples.push({ k, error: (err as Error).stack ?? String(err) });
    }
  }
  const ms = Math.round(performance.now() - start);
  console.log(JSON.stringify({ inputs: count, ...stats, crashes, ms, seed }));
  if (crashes > 0) {
    for (const x of examples) console.error(JSON.stringify(x));
    process.exit(1);
  }
}


if (import.meta.main) main();
