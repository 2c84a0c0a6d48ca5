/**
 * Fuzzes the SIQ reply parser (and the query parser on the same bytes). Every input must either
 * decode or throw SiqDecodeError; a decoded reply must keep the codec's promises (field ranges,
 * TEXT of TEXT-LENGTH octets, a TTL exactly when the layout has one) and survive re-encoding in
 * its layout. Inputs: mutations of valid replies in each draft layout, aimed at the length octets
 * the layout detection reads, and random datagrams; from a seeded PRNG so a run can be repeated.
 *
 *   node fuzz/siq.ts [inputs=1000000] [--seed N]
 *
 * Prints JSON {inputs, ok, rejected, crashes, roundTrips, layouts, ms, ...}; exits 1 on any crash.
 */
import {
  decodeQuery,
  decodeReply,
  detectLayout,
  encodeQuery,
  encodeReply,
  fromHex,
  type ReplyInput,
  SiqDecodeError,
  type SiqReply,
  type SiqRevision,
  scoreKind,
} from '../src/siq/codec.ts';
import { prng } from './support/prng.ts';

export { prng };

const REVISIONS: SiqRevision[] = ['00', '01', '02'];

const INPUTS: ReplyInput[] = [
  { id: 0x1234, score: 73, ipScore: 80, domainScore: -1, relScore: 5, ttl: 300, confidence: 90, text: 'stability=1.' },
  { id: 0, score: -1, text: '' },
  { id: 0xffff, score: -2, ttl: 0, text: 'busy, try later' },
  { id: 77, score: -3, text: '::c000:201 6262' },
  { id: 78, score: -3, text: 'siq.example.net 6264' },
  { id: 5, score: -4, ttl: 65535, confidence: -1, text: 'lookup failed' },
  { id: 6, score: 100, ttl: 2, confidence: 100, text: 'x'.repeat(200), extra: Uint8Array.of(1, 2, 3, 4, 5) },
  { id: 7, score: 0, ttl: 1, extraId: Uint8Array.of(0xde, 0xad, 0xbe, 0xef), extra: Uint8Array.of(9) },
];

/** valid replies in every layout, plus the raw -00 "Outbound Index" shape */
export const SEEDS: Uint8Array[] = [
  ...INPUTS.flatMap((input) => REVISIONS.map((revision) => encodeReply(input, revision))),
  Uint8Array.of(1, 50, 0, 1, 0xff, 0xff, 0xff, 0),
  encodeQuery({ id: 9, type: 'mail', ip: '192.0.2.1', domain: 'example.com' }),
];

const interesting = [0, 1, 2, 4, 7, 8, 11, 12, 13, 14, 0x7f, 0x80, 0x9c, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 100, 101];

export function mutate(input: Uint8Array, random: () => number): Uint8Array {
  const int = (n: number): number => Math.floor(random() * n);
  let b = Uint8Array.from(input);
  const rounds = 1 + int(3);
  for (let r = 0; r < rounds; r++) {
    const at = b.length > 0 ? int(b.length) : 0;
    switch (int(9)) {
      case 0:
        if (b.length) b[at] = b[at]! ^ (1 << int(8));
        break;
      case 1:
        if (b.length) b[at] = int(256);
        break;
      case 2:
        if (b.length) b[at] = interesting[int(interesting.length)]!;
        break;
      case 3: {
        // a length octet (TEXT-LENGTH, EXTRA-LENGTH at 11 or 13) near a layout boundary
        const field = [7, 11, 13][int(3)]!;
        if (field < b.length) b[field] = Math.max(0, Math.min(255, b.length - [8, 12, 14][int(3)]! + int(9) - 4));
        break;
      }
      case 4:
        b = b.slice(0, int(b.length + 1));
        break;
      case 5: {
        const n = 1 + int(6);
        const out = new Uint8Array(b.length + n);
        out.set(b);
        for (let i = b.length; i < out.length; i++) out[i] = int(2) ? 0 : int(256);
        b = out;
        break;
      }
      case 6: {
        const n = Math.min(1 + int(4), b.length - at);
        const out = new Uint8Array(b.length - n);
        out.set(b.subarray(0, at));
        out.set(b.subarray(at + n), at);
        b = out;
        break;
      }
      case 7:
        if (b.length > 0) b[0] = int(4) === 0 ? int(3) : 1; // VERSION
        break;
      default: {
        // splice with another seed
        const other = SEEDS[int(SEEDS.length)]!;
        const cut = int(other.length);
        const out = new Uint8Array(at + other.length - cut);
        out.set(b.subarray(0, at));
        out.set(other.subarray(cut), at);
        b = out;
      }
    }
  }
  return b;
}

export function randomDatagram(random: () => number): Uint8Array {
  const int = (n: number): number => Math.floor(random() * n);
  const len = int(4) === 0 ? int(530) : int(40);
  const b = Uint8Array.from({ length: len }, () => (int(3) === 0 ? interesting[int(interesting.length)]! : int(256)));
  if (len > 0 && int(4) !== 0) b[0] = 1;
  if (len > 7 && int(2) === 0) b[7] = Math.max(0, len - [8, 12, 14][int(3)]!) & 0xff;
  return b;
}

class Broken extends Error {}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Broken(what);
}

function checkReply(r: SiqReply, input: Uint8Array): void {
  check(r.revision === detectLayout(input), 'revision differs from detectLayout');
  check(Number.isInteger(r.score) && r.score >= -128 && r.score <= 127, `score ${r.score}`);
  check(r.kind === scoreKind(r.score), `kind ${r.kind} for ${r.score}`);
  for (const v of [r.ipScore, r.domainScore, r.relScore, r.confidence]) check(Number.isInteger(v) && v >= -1 && v <= 100, `sub-score ${v}`);
  check(r.id >= 0 && r.id <= 0xffff, 'id');
  check(r.text.length === input[7], 'TEXT length');
  check(r.revision === '00' ? r.ttl === null : Number.isInteger(r.ttl) && r.ttl! >= 0, `ttl ${r.ttl}`);
  check(r.kind === 'redirect' || r.redirect === null, 'redirect without REDIRECT');
  check(r.extraId === null || r.extraId.length === 8, 'EXTRA-ID length');
  check(r.extra.length % 2 === 0, 'EXTRA hex');
}

/** Re-encodes a decoded reply in its layout; null when the bytes now read as another layout. */
function roundTrip(r: SiqReply): boolean | null {
  const again = encodeReply(
    {
      id: r.id,
      score: r.score,
      ipScore: r.ipScore,
      domainScore: r.domainScore,
      relScore: r.relScore,
      ttl: r.ttl ?? 0,
      confidence: r.confidence,
      text: r.text,
      extra: fromHex(r.extra),
      ...(r.extraId ? { extraId: fromHex(r.extraId) } : {}),
    },
    r.revision,
  );
  if (detectLayout(again) !== r.revision) return null; // the -01/-02 overlap: not the codec's fault
  const back = decodeReply(again);
  for (const k of ['id', 'score', 'kind', 'ipScore', 'domainScore', 'relScore', 'ttl', 'confidence', 'text', 'extra', 'extraId'] as const) {
    check(back[k] === r[k], `round trip changed ${k}: ${String(r[k])} -> ${String(back[k])}`);
  }
  check(JSON.stringify(back.redirect) === JSON.stringify(r.redirect), 'round trip changed redirect');
  return true;
}

export type FuzzVerdict = 'ok' | 'rejected';

/** One input: 'ok' (decoded, invariants held), 'rejected' (SiqDecodeError); throws on a crash. */
export function fuzzOne(input: Uint8Array, counters?: { roundTrips: number; ambiguous: number; layouts: Record<string, number> }): FuzzVerdict {
  try {
    decodeQuery(input);
  } catch (err) {
    if (!(err instanceof SiqDecodeError)) throw err;
  }
  let reply: SiqReply;
  try {
    reply = decodeReply(input);
  } catch (err) {
    if (err instanceof SiqDecodeError) return 'rejected';
    throw err;
  }
  checkReply(reply, input);
  const rt = roundTrip(reply);
  if (counters) {
    counters.layouts[reply.revision] = (counters.layouts[reply.revision] ?? 0) + 1;
    if (rt) counters.roundTrips++;
    else counters.ambiguous++;
  }
  return 'ok';
}

function main(): void {
  const argv = process.argv.slice(2);
  const seedAt = argv.indexOf('--seed');
  const seed = seedAt >= 0 ? Number(argv[seedAt + 1]) >>> 0 : 0x51c;
  const positional = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--seed');
  const total = positional[0] ? Number(positional[0]) : 1_000_000;
  if (!(total > 0)) throw new Error('usage: node fuzz/siq.ts [inputs] [--seed N]');
  const random = prng(seed);
  const counters = { roundTrips: 0, ambiguous: 0, layouts: {} as Record<string, number> };
  let ok = 0;
  let rejected = 0;
  let crashes = 0;
  const samples: { error: string; hex: string }[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const input =
      i < SEEDS.length ? SEEDS[i]! : random() < 0.2 ? randomDatagram(random) : mutate(SEEDS[Math.floor(random() * SEEDS.length)]!, random);
    try {
      if (fuzzOne(input, counters) === 'ok') ok++;
      else rejected++;
    } catch (err) {
      crashes++;
      if (samples.length < 5) samples.push({ error: String((err as Error)?.stack ?? err), hex: Buffer.from(input).toString('hex') });
    }
  }
  const ms = Math.round(performance.now() - start);
  process.stdout.write(
    `${JSON.stringify({
      fuzz: 'siq',
      seed,
      inputs: total,
      ok,
      rejected,
      crashes,
      roundTrips: counters.roundTrips,
      ambiguousLayout: counters.ambiguous,
      layouts: counters.layouts,
      ms,
      ...(samples.length ? { samples } : {}),
    })}\n`,
  );
  process.exit(crashes > 0 ? 1 : 0);
}

if (import.meta.main) main();
