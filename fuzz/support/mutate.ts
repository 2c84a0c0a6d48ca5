/**
 * Mutations of tag=value texts (DKIM-Signature, key records, ARC fields) and whole messages, for
 * the DKIM and ARC fuzzers: characters and tokens inserted, runs deleted or repeated, a splice
 * from another seed, the tag specs shuffled, a base64 character flipped, the text cut short.
 */
import { pick } from './prng.ts';

const ALPHABET = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  ...';=:/@.+-_ ',
  '; ',
  '=',
  '\r\n ',
  '\r\n',
  '\n',
  '\t',
  '\u0000',
  '\u007f',
  '\u00ff',
  '=4',
  '==',
  'v=1; ',
  'b=',
  'bh=',
  'h=from:',
  'l=99999999999999999999',
  't=999999999999; ',
  'x=0; ',
  'k=ed25519; ',
  'p=',
];

/** One of `seeds` with one to five random edits. */
export function mutate(rng: () => number, seeds: readonly string[]): string {
  let s = pick(rng, seeds);
  const edits = 1 + Math.floor(rng() * rng() * 5);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rng() * (s.length + 1));
    const r = rng();
    if (r < 0.35) s = s.slice(0, at) + pick(rng, ALPHABET) + s.slice(at);
    else if (r < 0.55) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rng() * 6));
    else if (r < 0.65) s = s.slice(0, at) + pick(rng, seeds).slice(Math.floor(rng() * 40));
    else if (r < 0.72) {
      const len = Math.floor(rng() * 20);
      s = s.slice(0, at) + s.slice(at, at + len).repeat(1 + Math.floor(rng() * 20)) + s.slice(at + len);
    } else if (r < 0.82) {
      const parts = s.split(';');
      parts.sort(() => rng() - 0.5);
      s = parts.join(';');
    } else if (r < 0.9) {
      // flip one character of a base64 value
      const i = Math.floor(rng() * s.length);
      s = s.slice(0, i) + pick(rng, [...'AZaz09+/=']) + s.slice(i + 1);
    } else s = s.slice(0, at);
  }
  return s;
}
