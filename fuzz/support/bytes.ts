/**
 * Structure- and byte-level mutations for the fuzzers of wire formats made of separated fields
 * (the readsocket request's lines, qmail's NUL-ended envelope fields, a JSON text): fields
 * dropped, repeated, swapped, emptied or blown up, tokens inserted; then bytes overwritten, cut
 * out or repeated, invalid UTF-8 and NULs inserted, the input cut short, or random bytes.
 */
import { between, chance, pick } from './prng.ts';

type Rng = () => number;

/** Byte sequences that are not UTF-8 (a lone continuation byte, a cut sequence, an overlong, a surrogate). */
const BAD_UTF8 = [[0xff], [0x80], [0xc3], [0xe2, 0x82], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]];
const CONTROLS = ['\0', '\r', '\n', '\r\n', '\t', '\x7f', '\u2028', '\u0085'];

/**
 * Edits a list of fields in place, one to five times: drop, repeat, swap, empty one, add an empty
 * one, insert a run of one character (at its end or inside; rarely up to `huge` characters), or
 * insert one of `pieces` or a control character.
 */
export function editFields(rng: Rng, fields: string[], pieces: readonly string[], huge = 20_000): void {
  const edits = 1 + Math.floor(rng() * rng() * 5);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rng() * fields.length);
    const r = rng();
    if (r < 0.12) fields.splice(at, 1);
    else if (r < 0.24) fields.splice(at, 0, fields[Math.floor(rng() * fields.length)] ?? '');
    else if (r < 0.34) {
      const other = Math.floor(rng() * fields.length);
      [fields[at], fields[other]] = [fields[other] ?? '', fields[at] ?? ''];
    } else if (r < 0.4) fields[at] = '';
    else if (r < 0.46) fields.splice(at, 0, '');
    else if (r < 0.56) {
      const filler = pick(rng, ['x', ' ', 'A', '=', ',', '<', '\t', '\u00e9', '\ud83d\ude00']);
      const field = fields[at] ?? '';
      const pos = chance(rng, 0.5) ? field.length : Math.floor(rng() * (field.length + 1));
      fields[at] = field.slice(0, pos) + filler.repeat(chance(rng, 0.05) ? between(rng, 1000, huge) : between(rng, 1, 300)) + field.slice(pos);
    } else {
      const field = fields[at] ?? '';
      const pos = Math.floor(rng() * (field.length + 1));
      fields[at] = field.slice(0, pos) + pick(rng, [...pieces, ...CONTROLS]) + field.slice(pos);
    }
  }
}

/** A copy of `bytes` with one to four byte-level edits. */
export function damageBytes(rng: Rng, bytes: Buffer): Buffer {
  let b = Buffer.from(bytes);
  const edits = between(rng, 1, 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rng() * (b.length + 1));
    const r = rng();
    if (r < 0.3 && b.length > 0) b[Math.min(at, b.length - 1)] = Math.floor(rng() * 256);
    else if (r < 0.5) b = Buffer.concat([b.subarray(0, at), Buffer.from(pick(rng, BAD_UTF8)), b.subarray(at)]);
    else if (r < 0.6) b = Buffer.concat([b.subarray(0, at), Buffer.from([0]), b.subarray(at)]);
    else if (r < 0.75) b = Buffer.concat([b.subarray(0, at), b.subarray(at + between(rng, 1, 8))]);
    else if (r < 0.85) {
      const len = between(rng, 1, 16);
      b = Buffer.concat([b.subarray(0, at), ...Array<Buffer>(between(rng, 2, 10)).fill(b.subarray(at, at + len)), b.subarray(at + len)]);
    } else b = b.subarray(0, at);
  }
  return b;
}

/** Up to `max` random bytes. */
export function randomBytes(rng: Rng, max: number): Buffer {
  return Buffer.from(Array.from({ length: Math.floor(rng() * (max + 1)) }, () => Math.floor(rng() * 256)));
}

/** `bytes` unchanged, damaged (probability `damage`) or replaced by random bytes (probability `random`). */
export function maybeDamage(rng: Rng, bytes: Buffer, damage = 0.2, random = 0.03): Buffer {
  if (chance(rng, random)) return randomBytes(rng, 200);
  return chance(rng, damage) ? damageBytes(rng, bytes) : bytes;
}
