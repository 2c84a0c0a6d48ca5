import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzOne, mutate, prng, SAMPLE } from '../../fuzz/config.ts';

test('config loader: the full sample loads', () => {
  assert.equal(fuzzOne(SAMPLE), 'loaded');
});

test('config loader: 2,000 seeded mutations load or fail with file:line errors, never crash', () => {
  const rand = prng(42);
  const counts = { loaded: 0, rejected: 0 };
  for (let i = 0; i < 2000; i++) counts[fuzzOne(mutate(SAMPLE, rand))]++;
  assert.ok(counts.rejected > 100, `expected many rejections, got ${counts.rejected}`);
  assert.ok(counts.loaded > 0, 'some mutations are still valid');
});
