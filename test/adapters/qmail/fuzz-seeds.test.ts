/** The qmail envelope fuzzer's invariants over its seeds, a few thousand generated envelopes and the inputs it found. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EnvelopeError, encodeEnvelope, parseEnvelope } from '../../../src/adapters/qmail/envelope.ts';
import { fuzzOne, generate, prng, SEEDS } from '../../../fuzz/qmail.ts';

const outcome = (input: string) => {
  try {
    return parseEnvelope(Buffer.from(input, 'latin1'));
  } catch (err) {
    assert.ok(err instanceof EnvelopeError);
    return { exitCode: err.exitCode, message: err.message };
  }
};

test('every seed envelope satisfies the fuzzer\'s invariants, with the outcome qmail-queue(8) gives', () => {
  const rng = prng(7);
  assert.deepEqual(
    SEEDS.map((s) => fuzzOne(s, rng)),
    [
      { recipients: 2 },
      { recipients: 1 },
      { recipients: 1 },
      { recipients: 1 },
      { recipients: 2 },
      ...[54, 91, 91, 54, 54, 91, 54, 54, 91, 91, 91, 91, 91].map((exitCode) => ({ exitCode })),
    ],
  );
});

test('3,000 generated envelopes: no crash; envelopes, read errors and format errors all occur', () => {
  const rng = prng(11);
  const kinds = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const r = fuzzOne(generate(rng), rng);
    const kind = 'recipients' in r ? 'envelope' : String(r.exitCode);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  for (const kind of ['envelope', '54', '91']) assert.ok((kinds.get(kind) ?? 0) > 300, `only ${kinds.get(kind) ?? 0} of ${kind}`);
});

test('found by the fuzzer: 8-bit addresses are read for the checks with U+FFFD (the wrapper passes their bytes on: wrapper.test.ts)', () => {
  const input = Buffer.from('Fj\xfcrgen@b\xfccher.example\0Tb@example.org\0T\xe9t\xe9@example.org\0\0', 'latin1');
  const envelope = parseEnvelope(input);
  assert.deepEqual(envelope, { sender: 'j\ufffdrgen@b\ufffdcher.example', recipients: ['b@example.org', '\ufffdt\ufffd@example.org'] });
  // re-encoding would lose the bytes, which is why the wrapper never does it
  assert.ok(!encodeEnvelope(envelope).equals(input));
  fuzzOne(input, prng(1));
});

test('bad envelopes: qmail-queue\'s exit codes and clear messages', () => {
  assert.deepEqual(outcome(''), { exitCode: 54, message: 'empty envelope' });
  assert.deepEqual(outcome('F'), { exitCode: 54, message: 'envelope ends before its final NUL' });
  assert.deepEqual(outcome('\0'), { exitCode: 91, message: 'envelope does not start with F<sender>' });
  assert.deepEqual(outcome('Fa@b\0Tc@d\0\0\0'), { exitCode: 91, message: 'data after the final NUL of the envelope' });
  assert.deepEqual(outcome(`Fa@b\0X${'y'.repeat(10_000)}\0\0`), { exitCode: 91, message: `envelope field "X${'y'.repeat(39)}" is not T<recipient>` });
  assert.deepEqual(outcome('F\0T\0\0'), { sender: '', recipients: [''] });
});
