import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  expandMacroString,
  type MacroContext,
  type MacroValues,
  parseMacroString,
  truncateDomain,
  urlEscape,
} from '../../../src/checks/spf/macro.ts';

function expand(text: string, values: MacroValues, context: MacroContext = 'domain'): string {
  const parsed = parseMacroString(text, context);
  if (!parsed.ok) assert.fail(`'${text}': ${parsed.error}`);
  return expandMacroString(parsed.value, values);
}

function error(text: string, context: MacroContext = 'domain'): string {
  const parsed = parseMacroString(text, context);
  if (parsed.ok) assert.fail(`'${text}' should be rejected`);
  return parsed.error;
}

// RFC 7208 §7.4: sender strong-bad@email.example.com, client 192.0.2.3 or 2001:db8::cb01,
// validated PTR name mx.example.org.
const v4: MacroValues = {
  s: 'strong-bad@email.example.com',
  l: 'strong-bad',
  o: 'email.example.com',
  d: 'email.example.com',
  i: '192.0.2.3',
  p: 'mx.example.org',
  h: 'mail.example.com',
  c: '192.0.2.3',
  r: 'receiver.example.net',
  t: '1700000000',
  v: 'in-addr',
};
const v6: MacroValues = {
  ...v4,
  i: '2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1',
  c: '2001:db8::cb01',
  v: 'ip6',
};

describe('RFC 7208 §7.4 examples', () => {
  const table: [string, string][] = [
    ['%{s}', 'strong-bad@email.example.com'],
    ['%{o}', 'email.example.com'],
    ['%{d}', 'email.example.com'],
    ['%{d4}', 'email.example.com'],
    ['%{d3}', 'email.example.com'],
    ['%{d2}', 'example.com'],
    ['%{d1}', 'com'],
    ['%{dr}', 'com.example.email'],
    ['%{d2r}', 'example.email'],
    ['%{l}', 'strong-bad'],
    ['%{l-}', 'strong.bad'],
    ['%{lr}', 'strong-bad'],
    ['%{lr-}', 'bad.strong'],
    ['%{l1r-}', 'strong'],
    ['%{ir}.%{v}._spf.%{d2}', '3.2.0.192.in-addr._spf.example.com'],
    ['%{lr-}.lp._spf.%{d2}', 'bad.strong.lp._spf.example.com'],
    ['%{lr-}.lp.%{ir}.%{v}._spf.%{d2}', 'bad.strong.lp.3.2.0.192.in-addr._spf.example.com'],
    ['%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}', '3.2.0.192.in-addr.strong.lp._spf.example.com'],
    ['%{d2}.trusted-domains.example.net', 'example.com.trusted-domains.example.net'],
  ];
  for (const [macro, want] of table) {
    test(macro, () => assert.equal(expand(macro, v4), want));
  }
  test('%{ir}.%{v}._spf.%{d2} for an IPv6 client', () => {
    assert.equal(
      expand('%{ir}.%{v}._spf.%{d2}', v6),
      '1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com',
    );
  });
});

describe('expansion rules (§7.1–§7.3)', () => {
  test('%%, %_ and %- are a percent, a space and a URL-encoded space', () => {
    assert.equal(expand('macro%%percent%_%_space%-url-space.example.com', v4), 'macro%percent  space%20url-space.example.com');
  });

  test('upper-case letters expand the same, then URL-escape outside the unreserved set', () => {
    const values = { ...v4, l: '~jack&jill=up-a_b3.c' };
    assert.equal(expand('%{L}', values), '~jack%26jill%3Dup-a_b3.c');
    assert.equal(expand('%{l}', values), '~jack&jill=up-a_b3.c');
    assert.equal(expand('%{D2}', v4), 'example.com');
    assert.equal(urlEscape("a b!*'()é"), 'a%20b%21%2A%27%28%29%C3%A9');
  });

  test('several delimiters split at once; digits beyond the parts keep them all', () => {
    const values = { ...v4, l: 'foo-bar+zip+quux' };
    assert.equal(expand('%{l2r+-}', values), 'bar.foo');
    assert.equal(expand('%{l+-}', values), 'foo.bar.zip.quux');
    assert.equal(expand('%{d999999999999}', v4), 'email.example.com');
    assert.equal(expand('%{d2R}', v4), 'example.email', 'the r transformer is case-insensitive');
  });

  test('c, r and t are for explanation text only, which may also hold spaces', () => {
    assert.equal(expand('%{c} via %{r} at %{t}', v4, 'explain'), '192.0.2.3 via receiver.example.net at 1700000000');
    assert.equal(expand('%{c} is %{c}', v6, 'explain'), '2001:db8::cb01 is 2001:db8::cb01');
    assert.match(error('%{c}.example.com'), /allowed only in explanation/);
    assert.match(error('%{r}.example.com'), /allowed only in explanation/);
    assert.match(error('%{t}.example.com'), /allowed only in explanation/);
    assert.match(error('a b.example.com'), /invalid character ' '|U\+0020/);
  });

  test('%{p} is flagged so the caller can resolve it first', () => {
    const parsed = parseMacroString('%{p}.example.com', 'domain');
    assert.ok(parsed.ok && parsed.value.usesP);
    assert.equal(expand('connect from %{p}', v4, 'explain'), 'connect from mx.example.org');
  });

  test('syntax errors', () => {
    assert.match(error('%{d0}'), /nonzero/);
    assert.match(error('%{x}'), /unknown macro letter 'x'/);
    assert.match(error('%{}'), /no macro letter/);
    assert.match(error('%{d'), /unterminated/);
    assert.match(error('%{d2r!}'), /invalid delimiter/);
    assert.match(error('%{dr2}'), /invalid delimiter/);
    assert.match(error('100%'), /at the end/);
    assert.match(error('%(ir)'), /not a macro/);
    assert.match(error('The %{x}-files.', 'explain'), /unknown macro letter/);
  });
});

describe('truncation (§7.3)', () => {
  test('labels go from the left until the name fits in 253 characters', () => {
    const o = 'somewhat.long.exp.example.com';
    const long = `foobar.${`${o}.`.repeat(8)}example.com`;
    assert.equal(long.length, 258);
    const cut = truncateDomain(long);
    assert.equal(cut, `${`${o}.`.repeat(8)}example.com`);
    assert.ok(cut.length <= 253);
  });

  test('one trailing dot is dropped; short names are kept', () => {
    assert.equal(truncateDomain('example.com.'), 'example.com');
    assert.equal(truncateDomain('example.com'), 'example.com');
  });
});
