/**
 * Differential testing against mailauth 7.1.0 (strict mode) as the oracle: 300 generated,
 * mailauth-signed, partly mangled messages. Every verdict must equal mailauth's, or fall in a
 * documented class (see classify() in differential.ts for each class and its RFC section).
 * `node fuzz/dkim.ts N --differential M` runs many more.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prng } from '../../../fuzz/support/prng.ts';
import { classify, generateCase, makeKeys, pairResults, verifyBoth } from './differential.ts';

const CASES = 300;

test(`${CASES} random messages: our verdicts equal mailauth's or are documented`, async (t) => {
  const keys = makeKeys();
  const counts: Record<string, number> = {};
  const undocumented: string[] = [];
  for (let seed = 1; seed <= CASES; seed++) {
    const c = await generateCase(seed, prng(seed), keys);
    for (const p of pairResults(await verifyBoth(c))) {
      assert.ok(p.theirs, `seed ${seed}: mailauth gave no result for signature ${p.ours.b}`);
      const cls = classify(p.ours, p.theirs);
      const key = cls === 'agree' ? `agree:${p.ours.result}` : (cls ?? 'undocumented');
      counts[key] = (counts[key] ?? 0) + 1;
      if (cls === null) {
        undocumented.push(
          `seed ${seed} ${c.notes.join('; ')}: ours ${p.ours.result} (${p.ours.reason}), mailauth ${p.theirs.result} (${p.theirs.comment})`,
        );
      }
    }
  }
  t.diagnostic(JSON.stringify(counts));
  assert.deepEqual(undocumented, []);
  // the generator must reach the interesting verdicts, not only passes
  for (const r of ['pass', 'fail', 'neutral', 'policy', 'temperror'])
    assert.ok((counts[`agree:${r}`] ?? 0) > 0, `no agreed ${r}`);
  assert.ok((counts['agree:pass'] ?? 0) > 150);
  assert.ok((counts['agree:fail'] ?? 0) > 30);
});
