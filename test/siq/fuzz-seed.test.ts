/** The SIQ reply fuzzer's seed set and a slice of its mutations, on every `npm test`. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzOne, mutate, prng, randomDatagram, SEEDS } from '../../fuzz/siq.ts';

test('SIQ fuzz seeds decode, keep the codec invariants and round-trip', () => {
  const counters = { roundTrips: 0, ambiguous: 0, layouts: {} as Record<string, number> };
  // the last seed is a query: 22+ octets that read as some reply layout or are rejected
  for (const seed of SEEDS.slice(0, -1)) assert.equal(fuzzOne(seed, counters), 'ok');
  assert.deepEqual(counters.layouts, { '00': 9, '01': 8, '02': 8 });
  assert.equal(counters.ambiguous, 0);
});

test('20,000 seeded mutations and random datagrams: decoded or SiqDecodeError, never a crash', () => {
  const random = prng(7);
  const counts = { ok: 0, rejected: 0 };
  for (let i = 0; i < 20_000; i++) {
    const input = i % 5 === 0 ? randomDatagram(random) : mutate(SEEDS[i % SEEDS.length]!, random);
    counts[fuzzOne(input)]++;
  }
  assert.ok(counts.ok > 2000, `decoded ${counts.ok}`);
  assert.ok(counts.rejected > 2000, `rejected ${counts.rejected}`);
});
