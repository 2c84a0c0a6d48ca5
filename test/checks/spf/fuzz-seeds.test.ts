/** A seed set of fuzz inputs, run on every test pass (the full fuzzer is fuzz/spf-parse.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRecord } from '../../../src/checks/spf/parse.ts';
import { fuzzOne, generate, HAND_SEEDS, mutate, random, suiteSeeds } from '../../../fuzz/spf-parse.ts';

const seeds = [...suiteSeeds(), ...HAND_SEEDS];

test('every suite record and hand seed parses or is rejected cleanly', () => {
  assert.ok(seeds.length > 150, `only ${seeds.length} seeds`);
  const rng = random(7);
  const outcomes = { parsed: 0, rejected: 0 };
  for (const s of seeds) outcomes[fuzzOne(s, rng)]++;
  assert.ok(outcomes.parsed > 100 && outcomes.rejected > 50, JSON.stringify(outcomes));
});

test('2,000 mutated and generated inputs keep the invariants (seed 1)', () => {
  const rng = random(1);
  const outcomes = { parsed: 0, rejected: 0 };
  for (let k = 0; k < 2000; k++) {
    const input = k % 2 === 0 ? mutate(rng, seeds) : generate(rng);
    outcomes[fuzzOne(input, rng)]++;
  }
  assert.ok(outcomes.parsed > 100 && outcomes.rejected > 100, JSON.stringify(outcomes));
});

test('hostile inputs that once were or could be slow or crashing', () => {
  const rng = random(3);
  const inputs = [
    `v=spf1 ${'a '.repeat(30_000)}-all`,
    `v=spf1 a:${'1'.repeat(60_000)}x`,
    `v=spf1 a:${'a'.repeat(30_000)}-${'b'.repeat(30_000)}-`,
    `v=spf1 a:${'/1'.repeat(20_000)}`,
    `v=spf1 exists:${'%{'.repeat(20_000)}`,
    `v=spf1 exists:${'%{d}'.repeat(20_000)}`,
    `v=spf1 exists:%{d${'9'.repeat(5_000)}}.example.com`,
    `v=spf1 ip6:${'1:'.repeat(5_000)}:1`,
    'v=spf1 a:\ud800.example.com',
    `${'%{L}'.repeat(1000)}`,
  ];
  for (const input of inputs) fuzzOne(input, rng);
  assert.equal(parseRecord(inputs[0]!).ok, true);
  assert.equal(parseRecord(inputs[5]!).ok, true);
  assert.equal(parseRecord(inputs[1]!).ok, false);
});
