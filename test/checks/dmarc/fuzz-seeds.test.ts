/** A seed set of fuzz inputs, run on every test pass (the full fuzzer is fuzz/dmarc.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FROM_SEEDS,
  fuzzCheck,
  fuzzFrom,
  fuzzRecord,
  generateFrom,
  generateRecord,
  mutate,
  RECORD_SEEDS,
  random,
  suiteSeeds,
} from '../../../fuzz/dmarc.ts';
import { parseAddressList, parseDmarcRecord } from '../../../src/checks/dmarc/index.ts';

const suite = suiteSeeds();
const records = [...RECORD_SEEDS, ...suite.records];
const froms = [...FROM_SEEDS, ...suite.from];

test('every seed record and From field parses or is rejected cleanly', () => {
  assert.ok(suite.records.length >= 3 && suite.from.length >= 15, JSON.stringify(suite));
  const r = { parsed: 0, rejected: 0 };
  for (const s of records) r[fuzzRecord(s)]++;
  assert.ok(r.parsed >= 10 && r.rejected >= 3, JSON.stringify(r));
  const f = { parsed: 0, rejected: 0 };
  for (const s of froms) f[fuzzFrom(s)]++;
  assert.ok(f.parsed >= 25 && f.rejected >= 3, JSON.stringify(f));
});

test('5,000 mutated and generated inputs keep the invariants (seed 1)', async () => {
  const rng = random(1);
  const r = { parsed: 0, rejected: 0 };
  const f = { parsed: 0, rejected: 0 };
  for (let k = 0; k < 5000; k++) {
    const record =
      k % 2 === 0 ? mutate(rng, records, ['; ', 'p=', 'reject', '=', 'v=DMARC1']) : generateRecord(rng);
    const from = k % 2 === 0 ? mutate(rng, froms, ['<', '>', '"', '(', '@', ',']) : generateFrom(rng);
    r[fuzzRecord(record)]++;
    f[fuzzFrom(from)]++;
    if (k % 50 === 0) await fuzzCheck(record, from, rng);
  }
  assert.ok(r.parsed > 500 && r.rejected > 500, JSON.stringify(r));
  assert.ok(f.parsed > 500 && f.rejected > 500, JSON.stringify(f));
});

test('hostile inputs stay fast and clean', () => {
  const hostile = [
    `v=DMARC1; ${'p=none; '.repeat(20_000)}`,
    `v=DMARC1; rua=${'mailto:a@b.example,'.repeat(10_000)}`,
    `v=DMARC1;${';'.repeat(50_000)}`,
    `v=DMARC1; p=${'x'.repeat(100_000)}`,
  ];
  for (const s of hostile) fuzzRecord(s);
  assert.equal(parseDmarcRecord(hostile[0]!).ok, true);
  const from = [
    `${'('.repeat(50_000)}`,
    `${'a@b.example, '.repeat(10_000)}`,
    `"${'\\"'.repeat(20_000)}" <a@b.example>`,
    `${'@'.repeat(50_000)}`,
    `Group: ${'a@b.example, '.repeat(5_000)};`,
    `a@${'b.'.repeat(30_000)}example`,
  ];
  for (const s of from) fuzzFrom(s);
  const many = parseAddressList(from[1]!);
  assert.ok(many.ok && many.mailboxes.length === 10_000);
});
