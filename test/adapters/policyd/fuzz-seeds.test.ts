/** The policy-protocol fuzzer's invariants over its seeds and a few thousand generated streams. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzOne, generate, prng, SEEDS } from '../../../fuzz/policyd.ts';

test('every seed stream satisfies the fuzzer\'s invariants and parses as intended', () => {
  const rng = prng(7);
  let requests = 0;
  for (const seed of SEEDS) {
    const r = fuzzOne(Buffer.from(seed), rng);
    requests += r.requests;
  }
  // one request per protocol state (12), a stream of three, the CRLF and UTF-8 ones, three empty
  // requests from three empty lines, and "a=b=c"
  assert.equal(requests, 12 + 3 + 1 + 1 + 3 + 1);
});

test('3,000 generated streams: no crash, and both parsed and refused ones occur', () => {
  const rng = prng(11);
  let parsed = 0;
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const r = fuzzOne(generate(rng), rng);
    parsed += r.requests;
    if (r.protocolError) refused++;
  }
  assert.ok(parsed > 1000, `only ${parsed} requests parsed`);
  assert.ok(refused > 100, `only ${refused} streams refused`);
});
