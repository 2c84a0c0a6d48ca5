import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileFilter, FilterSyntaxError } from '../../../src/checks/dnsbl/index.ts';

describe('DNSBL reply filter', () => {
  it('matches a single address exactly', () => {
    const f = compileFilter('127.0.0.2');
    assert.equal(f.matches('127.0.0.2'), true);
    assert.equal(f.matches('127.0.0.3'), false);
    assert.equal(f.source, '127.0.0.2');
  });

  it('matches a bracketed range and list of values', () => {
    const f = compileFilter('127.0.0.[2..11]');
    assert.equal(f.matches('127.0.0.2'), true);
    assert.equal(f.matches('127.0.0.11'), true);
    assert.equal(f.matches('127.0.0.1'), false);
    assert.equal(f.matches('127.0.0.12'), false);
    const g = compileFilter('127.0.[2..15].[0;3]');
    assert.equal(g.matches('127.0.15.3'), true);
    assert.equal(g.matches('127.0.15.1'), false);
    assert.equal(g.matches('127.0.1.0'), false);
  });

  it('accepts a-b ranges and mixed values inside brackets', () => {
    const f = compileFilter('127.0.0.[2-4;10]');
    assert.deepEqual(
      [1, 2, 3, 4, 5, 10].map((n) => f.matches(`127.0.0.${n}`)),
      [false, true, true, true, false, true],
    );
  });

  it('treats top-level ";" as alternative patterns', () => {
    const f = compileFilter('127.0.0.2;127.0.1.[2..3]');
    assert.equal(f.matches('127.0.0.2'), true);
    assert.equal(f.matches('127.0.1.3'), true);
    assert.equal(f.matches('127.0.0.3'), false);
  });

  it('never matches non-IPv4 text', () => {
    const f = compileFilter('127.0.0.[0..255]');
    assert.equal(f.matches('::1'), false);
    assert.equal(f.matches('junk'), false);
  });

  for (const bad of ['', '127.0.0', '127.0.0.256', '127.0.0.[5..2]', '127.0.0.[2', '127.0.0.2]', '127.0.0.[]', 'a.b.c.d', '127.0.0.2;']) {
    it(`rejects ${JSON.stringify(bad)} with an error naming the pattern`, () => {
      assert.throws(
        () => compileFilter(bad),
        (e: unknown) => e instanceof FilterSyntaxError && e.message.includes(`"${bad}"`),
      );
    });
  }
});
