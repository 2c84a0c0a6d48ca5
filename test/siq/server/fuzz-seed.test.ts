/** The SIQ server fuzzer's seeds and a slice of its mutations, on every `npm test`. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fuzzDatagram,
  fuzzProfile,
  fuzzReportBody,
  harness,
  mutateQuery,
  PROFILE_SEEDS,
  prng,
  QUERY_SEEDS,
  REPORT_SEEDS,
} from '../../../fuzz/siq-server.ts';
import { siqZone } from './fixtures.ts';

test('every seed query gets a reply from a registered source and silence from another', async () => {
  const h = await harness(siqZone());
  try {
    for (const q of QUERY_SEEDS) {
      assert.equal(await fuzzDatagram(h.server, q, true), 'reply');
      assert.equal(await fuzzDatagram(h.server, q, false), 'silent');
    }
  } finally {
    await h.close();
  }
});

test('seed report bodies and profiles: the valid ones parse, the broken ones are refused', () => {
  assert.deepEqual(
    REPORT_SEEDS.map((b) => fuzzReportBody(b)),
    ['ok', 'ok', 'ok', 'ok', 'rejected', 'rejected'],
  );
  assert.deepEqual(
    PROFILE_SEEDS.map((p) => fuzzProfile(p)),
    ['ok', 'ok', 'rejected', 'rejected', 'ok', 'ok'],
  );
});

test('5,000 seeded query mutations: a valid reply or silence, never a crash', async () => {
  const h = await harness(siqZone());
  const random = prng(11);
  const counts = { reply: 0, silent: 0 };
  try {
    for (let i = 0; i < 5000; i++) {
      const msg = mutateQuery(QUERY_SEEDS[i % QUERY_SEEDS.length]!, random);
      counts[await fuzzDatagram(h.server, msg, i % 7 !== 0)]++;
    }
  } finally {
    await h.close();
  }
  assert.ok(counts.reply > 1000, `replies ${counts.reply}`);
  assert.ok(counts.silent > 500, `silent ${counts.silent}`);
});
