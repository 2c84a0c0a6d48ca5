/** The DKIM fuzzer's seed set (every corpus signature and key record, plus mutations) in npm test. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  corpusSeeds,
  fuzzCanon,
  fuzzKey,
  fuzzSignature,
  fuzzTagList,
  HAND_KEYS,
  HAND_SIGNATURES,
  mutate,
} from '../../../fuzz/dkim.ts';
import { prng } from '../../../fuzz/support/prng.ts';

const seeds = corpusSeeds();
const signatures = [...seeds.signatures, ...HAND_SIGNATURES];
const keys = [...seeds.keys, ...HAND_KEYS];

test('the seed set covers the corpora', () => {
  assert.ok(seeds.signatures.length >= 60, `${seeds.signatures.length} signatures`);
  assert.ok(seeds.keys.length >= 30, `${seeds.keys.length} key records`);
  assert.ok(seeds.messages.length >= 80, `${seeds.messages.length} messages`);
});

test('every seed signature and key record parses or is rejected with a reason', () => {
  let parsedSigs = 0;
  for (const s of signatures) if (fuzzSignature(s)) parsedSigs++;
  let parsedKeys = 0;
  for (const k of keys) if (fuzzKey(k)) parsedKeys++;
  for (const s of [...signatures, ...keys]) fuzzTagList(s);
  assert.ok(parsedSigs >= 20, `${parsedSigs} signatures parsed`);
  assert.ok(parsedKeys >= 20, `${parsedKeys} keys parsed`);
});

test('2,000 mutations and 500 canonicalization cases hold every invariant', () => {
  const rng = prng(8463);
  for (let i = 0; i < 1000; i++) fuzzSignature(mutate(rng, signatures));
  for (let i = 0; i < 500; i++) fuzzKey(mutate(rng, keys));
  for (let i = 0; i < 500; i++) fuzzTagList(mutate(rng, signatures));
  for (let i = 0; i < 500; i++) fuzzCanon(rng);
});
