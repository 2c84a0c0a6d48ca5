/** The HTTP API fuzzer's invariants over its seeds, a few thousand generated bodies and a few nasty ones. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpError, parseCheckRequest } from '../../../src/adapters/http/server.ts';
import { fuzzOne, generate, prng, SEEDS } from '../../../fuzz/http-api.ts';

const refusal = (text: string) => {
  try {
    return parseCheckRequest(text);
  } catch (err) {
    assert.ok(err instanceof HttpError);
    return { status: err.status, message: err.message };
  }
};

test('every seed body satisfies the fuzzer\'s invariants and is accepted or refused as intended', () => {
  const rng = prng(7);
  // the three plain bodies, the duplicate-key one and the surrogate one are accepted; the rest refused
  assert.deepEqual(
    SEEDS.map((s) => fuzzOne(Buffer.from(s), rng).accepted),
    [true, true, true, true, true, false, false, false, false, false, false, false, false, false, false],
  );
});

test('3,000 generated bodies: no crash, and both accepted and refused ones occur', () => {
  const rng = prng(11);
  let accepted = 0;
  for (let i = 0; i < 3000; i++) if (fuzzOne(generate(rng), rng).accepted) accepted++;
  assert.ok(accepted > 300, `only ${accepted} bodies accepted`);
  assert.ok(3000 - accepted > 300, `only ${3000 - accepted} bodies refused`);
});

test('nasty bodies: their exact outcome', () => {
  // duplicate keys: the last wins; "__proto__" is a plain member, not the prototype; mail_from null falls back to mailFrom
  assert.deepEqual(refusal(SEEDS[3]!), { ip: '192.0.2.2', mailFrom: 'a@example.com', rcpt: [] });
  // a lone surrogate and NUL are kept as sent; empty id and null fields are absent
  assert.deepEqual(refusal('{"ip":"\\ud800\\u0000","rcpt":null,"headers":null,"id":"","helo":null}'), { ip: '\ud800\u0000', rcpt: [] });
  assert.deepEqual(refusal(`${'['.repeat(100_000)}${']'.repeat(100_000)}`), { status: 400, message: 'body must be a JSON object' });
  assert.deepEqual(refusal(''), { status: 400, message: 'body is not JSON: Unexpected end of JSON input' });
  assert.deepEqual(refusal('{"ip":"192.0.2.1","rcpt":["a",1]}'), { status: 400, message: '"rcpt" must be a list of strings' });
  assert.deepEqual(refusal('{"ip":"192.0.2.1","headers":[["a","b","c"]]}'), { status: 400, message: '"headers" must be the raw header block or a list of [name, value] pairs' });
  assert.deepEqual(refusal('{"ip":1}'), { status: 400, message: '"ip" must be a string' });
  assert.deepEqual(refusal('{"ip":"192.0.2.1","mailFrom":{}}'), { status: 400, message: '"mail_from" must be a string' });
  const long = refusal(`{"ip":"${'x'.repeat(1_000_000)}`) as { message: string };
  assert.ok(long.message.startsWith('body is not JSON: ') && long.message.length < 200, long.message);
});
