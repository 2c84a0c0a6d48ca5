/** The readsocket fuzzer's invariants over its seeds, a few thousand generated requests and the inputs it found. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeReadsocketResponse, parseReadsocketRequest, ReadsocketProtocolError } from '../../../src/adapters/exim/protocol.ts';
import { encodeRequest, fuzzOne, generate, prng, SEEDS } from '../../../fuzz/exim.ts';

test('every seed request satisfies the fuzzer\'s invariants and parses or is refused as intended', () => {
  const rng = prng(7);
  const parsed = SEEDS.map((s) => fuzzOne(Buffer.from(s), rng).parsed);
  // one request per stage and six hand-written ones parse; "not base64!", a junk line and nothing are refused
  assert.deepEqual(parsed, [...Array(12).fill(true), false, false, false]);
});

test('3,000 generated requests: no crash, and both parsed and refused ones occur', () => {
  const rng = prng(11);
  let parsed = 0;
  for (let i = 0; i < 3000; i++) if (fuzzOne(generate(rng), rng).parsed) parsed++;
  assert.ok(parsed > 1000, `only ${parsed} requests parsed`);
  assert.ok(3000 - parsed > 300, `only ${3000 - parsed} requests refused`);
});

test('found by the fuzzer: a long white-space run in headers= is refused at once (the base64 check was quadratic)', () => {
  const input = `stage=data\nip=192.0.2.1\nheaders=A${' '.repeat(1_000_000)}!\n`;
  assert.throws(() => parseReadsocketRequest(input), { name: 'ReadsocketProtocolError', message: 'headers must be base64, as Exim\'s base64 operator gives it' });
  fuzzOne(Buffer.from(input), prng(1));
});

test('found by the fuzzer: the unknown-stage error quotes 60 characters of the stage, not all of it', () => {
  assert.throws(() => parseReadsocketRequest(`stage=${'x'.repeat(100_000)}\nip=192.0.2.1\n`), (err: unknown) => {
    assert.ok(err instanceof ReadsocketProtocolError);
    assert.equal(err.message, `stage must be one of connect, helo, mail, rcpt, data, quit; got "${'x'.repeat(60)}"`);
    return true;
  });
});

test('found by the fuzzer: <> come off an address holding a CR or U+2028, and the request writes back to itself', () => {
  const req = parseReadsocketRequest('stage=rcpt\nip=192.0.2.1\nsender=<x\u2028y@example.com>\nrecipient=<a\rb@example.org>\nrecipients=<c\u2029d@example.org>, <>\n');
  assert.deepEqual(req, { stage: 'rcpt', ip: '192.0.2.1', sender: 'x\u2028y@example.com', recipient: 'a\rb@example.org', recipients: ['c\u2029d@example.org'] });
  assert.deepEqual(parseReadsocketRequest(encodeRequest(req)), req);
});

test('edge values the round trip must keep: an empty header block, an empty recipient list, a bracketed sender', () => {
  const req = parseReadsocketRequest('stage=data\nip=192.0.2.1\nheaders=A\nrecipients= , <> ,\nsender=<<a@example.com>>\n');
  assert.deepEqual(req, { stage: 'data', ip: '192.0.2.1', sender: '<a@example.com>', recipients: [], headers: '' });
  assert.deepEqual(parseReadsocketRequest(encodeRequest(req)), req);
});

test('a response line is read pair by pair up to the first text that is not a pair', () => {
  assert.deepEqual([...decodeReadsocketResponse('action="REJECT" message="550 no reason="x"')], [
    ['action', 'REJECT'],
    ['message', '550 no reason='],
  ]);
});
