import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Canonicalization,
  canonicalizeBody,
  canonicalizeHeader,
  createBodyCanonicalizer,
  RELAXED_BUFFER_SIZE,
} from '../../../src/checks/dkim/canon.ts';
import { referenceBody } from '../../../fuzz/dkim.ts';
import { prng } from '../../../fuzz/support/prng.ts';

const body = (c: Canonicalization, s: string) =>
  canonicalizeBody(c, Buffer.from(s, 'latin1')).toString('latin1');

test('RFC 6376 §3.4.5 example: header fields', () => {
  assert.equal(canonicalizeHeader('relaxed', 'A', ' X'), 'a:X');
  assert.equal(canonicalizeHeader('relaxed', 'B ', ' Y\t\r\n\tZ  '), 'b:Y Z');
  assert.equal(canonicalizeHeader('simple', 'A', ' X'), 'A: X');
  assert.equal(canonicalizeHeader('simple', 'B ', ' Y\t\r\n\tZ  '), 'B : Y\t\r\n\tZ  ');
});

test('RFC 6376 §3.4.5 example: body', () => {
  const b = ' C \r\nD \t E\r\n\r\n\r\n';
  assert.equal(body('relaxed', b), ' C\r\nD E\r\n');
  assert.equal(body('simple', b), ' C \r\nD \t E\r\n');
});

test('relaxed header: names lower-cased (ASCII only), values unfolded and trimmed', () => {
  assert.equal(canonicalizeHeader('relaxed', 'Subject', '   '), 'subject:');
  assert.equal(
    canonicalizeHeader('relaxed', 'X-Ümlaut', ' a'),
    'x-Ümlaut:a',
    'only ASCII letters change case',
  );
  assert.equal(canonicalizeHeader('relaxed', 'To', '\r\n a,\r\n\t b '), 'to:a, b');
  assert.equal(canonicalizeHeader('relaxed', 'X', ' a\u00a0b'), 'x:a\u00a0b', 'NBSP is not WSP');
  assert.equal(
    canonicalizeHeader('simple', 'X', ' a\nb'),
    'X: a\r\nb',
    'bare LF in a folded value becomes CRLF',
  );
});

test('empty bodies: simple gives one CRLF, relaxed nothing (§3.4.3, §3.4.4)', () => {
  for (const b of ['', '\r\n', '\r\n\r\n\r\n', '\n\n']) {
    assert.equal(body('simple', b), '\r\n', JSON.stringify(b));
    assert.equal(body('relaxed', b), '', JSON.stringify(b));
  }
  assert.equal(body('simple', ' \r\n\t\r\n'), ' \r\n\t\r\n', 'white space lines are content for simple');
  assert.equal(body('relaxed', ' \r\n\t\r\n'), '', 'and empty lines for relaxed');
});

test('a missing final CRLF is added; bare LF counts as a line end; lone CR is content', () => {
  assert.equal(body('simple', 'abc'), 'abc\r\n');
  assert.equal(body('relaxed', 'abc  '), 'abc\r\n');
  assert.equal(body('simple', 'a\nb\n\n'), 'a\r\nb\r\n');
  assert.equal(body('relaxed', 'a \nb\t\n\n'), 'a\r\nb\r\n');
  assert.equal(body('simple', 'a\rb\r'), 'a\rb\r\r\n');
  assert.equal(body('relaxed', 'a \r b\r\r\n'), 'a \r b\r\r\n');
  assert.equal(body('simple', '\r\n\r\nx'), '\r\n\r\nx\r\n', 'leading empty lines stay');
});

test('streaming equals one-shot for every split of small bodies, and equals the reference', () => {
  const samples = [
    ' C \r\nD \t E\r\n\r\n\r\n',
    'a\r\n\r\n \r\n\t\r\nb  \r\n\r\n',
    'x\r\r\n\r\n\r',
    '\n\r\n\r \r\n ',
    'line\r\n  \t  indented \t \r\nlast',
    '\r',
    '\r\r\n\n\r\n',
  ];
  for (const s of samples) {
    const bytes = Buffer.from(s, 'latin1');
    for (const c of ['simple', 'relaxed'] as const) {
      const want = referenceBody(c, bytes);
      assert.equal(
        canonicalizeBody(c, bytes).toString('latin1'),
        want.toString('latin1'),
        `${c} ${JSON.stringify(s)}`,
      );
      for (let i = 0; i <= bytes.length; i++) {
        for (let j = i; j <= bytes.length; j++) {
          const parts: Buffer[] = [];
          const canon = createBodyCanonicalizer(c, (d) => parts.push(Buffer.from(d)));
          canon.update(bytes.subarray(0, i));
          canon.update(bytes.subarray(i, j));
          canon.update(bytes.subarray(j));
          canon.finish();
          const got = Buffer.concat(parts);
          assert.equal(
            got.toString('latin1'),
            want.toString('latin1'),
            `${c} ${JSON.stringify(s)} split ${i},${j}`,
          );
          assert.equal(canon.length, got.length);
        }
      }
    }
  }
});

test('random bodies in random chunks match the reference canonicalization', () => {
  const rng = prng(6376);
  const alphabet = ['a', 'b', ' ', '\t', '\r', '\n', '\r\n', '\r\n', '  ', 'é', '\u0000'];
  for (let k = 0; k < 300; k++) {
    let s = '';
    const len = Math.floor(rng() * 60);
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(rng() * alphabet.length)];
    const bytes = Buffer.from(s, 'latin1');
    for (const c of ['simple', 'relaxed'] as const) {
      const parts: Buffer[] = [];
      const canon = createBodyCanonicalizer(c, (d) => parts.push(Buffer.from(d)));
      let at = 0;
      while (at < bytes.length) {
        const n = 1 + Math.floor(rng() * 7);
        canon.update(bytes.subarray(at, at + n));
        at += n;
      }
      canon.finish();
      assert.equal(
        Buffer.concat(parts).toString('latin1'),
        referenceBody(c, bytes).toString('latin1'),
        `${c} ${JSON.stringify(s)}`,
      );
    }
  }
});

test('the relaxed output buffer is flushed, never grown, for outputs larger than it', () => {
  const big = Buffer.from(`${'word '.repeat(20_000)}\r\n`.repeat(3), 'latin1');
  let calls = 0;
  let total = 0;
  let largest = 0;
  const canon = createBodyCanonicalizer('relaxed', (d) => {
    calls++;
    total += d.length;
    largest = Math.max(largest, d.length);
  });
  canon.update(big);
  canon.finish();
  assert.equal(total, canon.length);
  assert.equal(total, referenceBody('relaxed', big).length);
  assert.ok(largest <= RELAXED_BUFFER_SIZE, 'no write larger than the shared scratch buffer');
  assert.equal(canon.bufferedBytes, 0);
  assert.ok(calls > 1);
});

test('simple canonicalization hands the input through without copying when it is CRLF-clean', () => {
  const chunk = Buffer.from('hello\r\nworld\r\n\r\n', 'latin1');
  const seen: Uint8Array[] = [];
  const canon = createBodyCanonicalizer('simple', (d) => seen.push(d));
  canon.update(chunk);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.buffer, chunk.buffer, 'a view of the input, not a copy');
  assert.equal(Buffer.from(seen[0]!).toString(), 'hello\r\nworld');
  assert.equal(canon.heldLineEnds, 2);
});

test('update after finish is an error; finish twice is harmless', () => {
  for (const c of ['simple', 'relaxed'] as const) {
    const canon = createBodyCanonicalizer(c, () => {});
    canon.update(Buffer.from('x'));
    canon.finish();
    canon.finish();
    assert.equal(canon.length, 3);
    assert.throws(() => canon.update(Buffer.from('y')));
  }
});
