/**
 * Differential testing against mailauth 7.1.0 (strict mode) as the oracle: 300 generated messages
 * sealed by 1 to 4 mailauth sealers, changed by forwarders between hops, partly mangled. Every cv
 * must equal mailauth's (classifyArc() in differential.ts lists documented exceptions: none so
 * far). `node fuzz/arc.ts N --differential M` runs many more.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prng } from '../../../fuzz/support/prng.ts';
import { classifyArc, generateArcCase, makeArcKeys, verifyArcBoth } from './differential.ts';

const CASES = 300;

test(`${CASES} sealed, forwarded and mangled messages: our cv equals mailauth's`, async (t) => {
  const keys = makeArcKeys();
  const counts: Record<string, number> = {};
  const undocumented: string[] = [];
  for (let seed = 1; seed <= CASES; seed++) {
    const c = await generateArcCase(seed, prng(seed), keys);
    const v = await verifyArcBoth(c);
    const cls = classifyArc(v);
    const key =
      cls === 'agree' ? `agree:${v.ours.cv}${v.ours.temperror ? '+temperror' : ''}` : (cls ?? 'undocumented');
    counts[key] = (counts[key] ?? 0) + 1;
    if (cls === null) {
      undocumented.push(
        `seed ${seed} ${c.notes.join('; ')}: ours ${v.ours.cv} (${v.ours.reason}), mailauth ${v.theirs.result} (${v.theirs.comment})`,
      );
    }
  }
  t.diagnostic(JSON.stringify(counts));
  assert.deepEqual(undocumented, []);
  // the generator must reach every verdict, not only passes
  assert.ok((counts['agree:pass'] ?? 0) > 100);
  assert.ok((counts['agree:fail'] ?? 0) > 60);
  assert.ok((counts['agree:fail+temperror'] ?? 0) > 0);
  assert.ok((counts['agree:none'] ?? 0) > 0);
});
