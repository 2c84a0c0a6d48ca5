/** A seed set of milter fuzz inputs, run on every test pass (the full fuzzer is fuzz/milter.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { conversation, encodeConversation, MAX_FRAME, mutate, prng, runInput, seedInputs } from '../../../fuzz/milter.ts';

test('hostile inputs end in a clean protocol error, or a clean close', async () => {
  const seeds = seedInputs();
  assert.ok(seeds.length >= 20);
  const rng = prng(1);
  for (const s of seeds) {
    const outcome = await runInput(s.bytes, rng);
    assert.equal(outcome.end, s.expect, s.name);
    assert.ok(outcome.maxBuffered <= MAX_FRAME + 4, s.name);
  }
});

test('300 generated and mutated conversations keep the invariants (seed 2), some through the real adapter', async () => {
  const rng = prng(2);
  const ends = { ok: 0, 'decoder-error': 0, 'session-error': 0 };
  let replies = 0;
  for (let k = 0; k < 300; k++) {
    const frames = encodeConversation(conversation(rng));
    const o = await runInput(Buffer.concat(k % 3 === 0 ? frames : mutate(rng, frames)), rng, { real: k % 4 === 0 });
    ends[o.end]++;
    replies += o.replies;
  }
  assert.ok(ends.ok > 50 && ends['session-error'] > 20 && ends['decoder-error'] > 5, JSON.stringify(ends));
  assert.ok(replies > 1000);
});
