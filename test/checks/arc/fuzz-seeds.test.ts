/** The ARC fuzzer's seed set (every ARC field of the ValiMail suite, plus mutations) in npm test. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  arcSeeds,
  fuzzAar,
  fuzzAarPrefix,
  fuzzAms,
  fuzzArcMessage,
  fuzzChain,
  fuzzSeal,
  mutateArc,
} from '../../../fuzz/arc.ts';
import { prng } from '../../../fuzz/support/prng.ts';

const seeds = arcSeeds();

test('the seed set covers the suite', () => {
  assert.equal(seeds.messages.length, 175);
  assert.ok(seeds.seal.length >= 100, `${seeds.seal.length} seals`);
  assert.ok(seeds.ams.length >= 60, `${seeds.ams.length} AMS`);
  assert.ok(seeds.aar.length >= 10, `${seeds.aar.length} AAR`);
});

test('every seed field parses or is rejected with a reason', () => {
  const parsed = { aar: 0, seal: 0, ams: 0 };
  for (const v of seeds.aar) if (fuzzAar(v)) parsed.aar++;
  for (const v of seeds.seal) if (fuzzSeal(v)) parsed.seal++;
  for (const v of seeds.ams) if (fuzzAms(v)) parsed.ams++;
  assert.ok(parsed.aar >= 10 && parsed.seal >= 60 && parsed.ams >= 40, JSON.stringify(parsed));
});

test('3,000 mutations, 1,000 AAR prefixes, 1,000 chains and 30 messages hold every invariant', async () => {
  const rng = prng(8617);
  for (let i = 0; i < 1000; i++) fuzzAar(mutateArc(rng, seeds.aar));
  for (let i = 0; i < 1000; i++) fuzzSeal(mutateArc(rng, seeds.seal));
  for (let i = 0; i < 1000; i++) fuzzAms(mutateArc(rng, seeds.ams));
  for (let i = 0; i < 1000; i++) fuzzAarPrefix(rng);
  const chains: Record<string, number> = {};
  for (let i = 0; i < 1000; i++) {
    const c = fuzzChain(rng, seeds);
    chains[c.status] = (chains[c.status] ?? 0) + 1;
  }
  assert.ok(
    (chains['ok'] ?? 0) > 50 && (chains['fail'] ?? 0) > 200 && (chains['none'] ?? 0) > 20,
    JSON.stringify(chains),
  );
  for (let i = 0; i < 30; i++) await fuzzArcMessage(rng, seeds);
});
