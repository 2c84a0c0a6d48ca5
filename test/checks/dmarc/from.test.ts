import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  extractAuthorDomains,
  fromFieldValues,
  normalizeAuthorDomain,
  parseAddressList,
  salvageDomains,
} from '../../../src/checks/dmarc/index.ts';

function mailboxes(value: string) {
  const r = parseAddressList(value);
  assert.ok(r.ok, `${JSON.stringify(value)}: ${r.ok ? '' : r.error}`);
  return r.mailboxes;
}

function domainsOf(value: string): string[] {
  return mailboxes(value).map((m) => m.domain);
}

describe('From parsing: RFC 5322 §3.4 forms', () => {
  it('reads a bare addr-spec and a name-addr', () => {
    assert.deepEqual(mailboxes('user@example.com'), [
      { displayName: '', localPart: 'user', domain: 'example.com', group: undefined },
    ]);
    assert.deepEqual(mailboxes('Jane Doe <jane@example.com>'), [
      { displayName: 'Jane Doe', localPart: 'jane', domain: 'example.com', group: undefined },
    ]);
  });

  it('reads quoted display names with commas, "@" and "<" inside', () => {
    const m = mailboxes('"Doe, Jane <boss@bank.example>" <jane@example.com>');
    assert.equal(m.length, 1);
    assert.equal(m[0]!.displayName, 'Doe, Jane <boss@bank.example>');
    assert.equal(m[0]!.domain, 'example.com');
  });

  it('skips comments anywhere, nested and with escapes', () => {
    assert.deepEqual(domainsOf('jane(the (real) one)@(left)example.com(right \\) paren)'), ['example.com']);
    assert.deepEqual(domainsOf('(lead) Jane (x) <jane@example.com> (trail)'), ['example.com']);
  });

  it('accepts CFWS around the "@" and folding (obsolete syntax, RFC 5322 §4.4)', () => {
    assert.deepEqual(domainsOf('Marc <marc@ marcbradshaw.net>'), ['marcbradshaw.net']);
    assert.deepEqual(domainsOf('Marc\r\n <marc\r\n\t@example.com>'), ['example.com']);
    assert.deepEqual(domainsOf('first . last @ example . com'), ['example.com']);
  });

  it('reads quoted local parts and dotted local parts', () => {
    const [m] = mailboxes('"john..doe smith"@example.com');
    assert.equal(m!.localPart, 'john..doe smith');
    assert.equal(mailboxes('a.b.c@example.com')[0]!.localPart, 'a.b.c');
  });

  it('reads several mailboxes and empty list members', () => {
    assert.deepEqual(domainsOf('a@one.example, B <b@two.example>'), ['one.example', 'two.example']);
    assert.deepEqual(domainsOf(', a@one.example,, b@two.example ,'), ['one.example', 'two.example']);
  });

  it('reads groups (RFC 6854) and marks their members', () => {
    const m = mailboxes('Team: a@one.example, Bob <b@two.example>;, c@three.example');
    assert.deepEqual(
      m.map((x) => [x.domain, x.group]),
      [
        ['one.example', 'Team'],
        ['two.example', 'Team'],
        ['three.example', undefined],
      ],
    );
    assert.deepEqual(mailboxes('Undisclosed recipients:;'), []);
    assert.deepEqual(mailboxes(''), []);
  });

  it('skips an obsolete source route', () => {
    assert.deepEqual(domainsOf('<@relay.example,@other.example:user@example.com>'), ['example.com']);
  });

  it('keeps domain literals as written', () => {
    assert.deepEqual(domainsOf('user@[192.0.2.1]'), ['[192.0.2.1]']);
  });

  it('accepts UTF-8 in names, local parts and domains (RFC 6532)', () => {
    const [m] = mailboxes('Jürgen <jürgen@bücher.example>');
    assert.equal(m!.displayName, 'Jürgen');
    assert.equal(m!.domain, 'bücher.example');
  });

  it('reads encoded-word display names as plain words', () => {
    assert.deepEqual(domainsOf('=?UTF-8?Q?J=C3=BCrgen?= <j@example.com>'), ['example.com']);
  });
});

describe('From parsing: errors', () => {
  for (const [value, why] of [
    ['Jane Doe', 'a display name alone'],
    ['<jane@example.com', 'unclosed angle'],
    ['jane@example.com>', 'stray ">"'],
    ['"Jane <jane@example.com>', 'unterminated quote'],
    ['jane@example.com (comment', 'unterminated comment'],
    ['jane@', 'no domain'],
    ['@example.com', 'no local part'],
    ['jane@example..com', 'empty label'],
    ['jane@example.com.', 'trailing dot'],
    ['jane.@example.com', 'local part ending in a dot'],
    ['jane@example.com jim@example.org', 'no comma'],
    ['evil@attacker.example <jane@bank.example>', 'addr-spec used as a display name'],
    ['Team: a@one.example', 'unterminated group'],
    ['A: B: c@d.example;;', 'nested group'],
    ['user@[1.2.3.4', 'unterminated literal'],
    ['jane\\@example.com', 'backslash outside quotes'],
  ] as const) {
    it(`rejects ${why}: ${JSON.stringify(value)}`, () => {
      const r = parseAddressList(value);
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.ok(r.error.length > 0);
        assert.ok(r.at >= 0 && r.at <= value.length);
      }
    });
  }
});

describe('Author Domain normalisation', () => {
  it('lower-cases, drops a trailing dot and converts U-labels to A-labels (§5.3.1)', () => {
    assert.equal(normalizeAuthorDomain('Example.COM'), 'example.com');
    assert.equal(normalizeAuthorDomain('example.com.'), 'example.com');
    assert.equal(normalizeAuthorDomain('bücher.example'), 'xn--bcher-kva.example');
    assert.equal(normalizeAuthorDomain('食狮.公司.cn'), 'xn--85x722f.xn--55qx5d.cn');
    assert.equal(normalizeAuthorDomain('XN--BCHER-KVA.example'), 'xn--bcher-kva.example');
  });

  it('refuses literals and names that cannot be DNS domains', () => {
    for (const d of [
      '[192.0.2.1]',
      '',
      'a..b',
      '-a.example',
      'a-.example',
      'a!b.example',
      `${'a'.repeat(64)}.example`,
      `${'a.'.repeat(127)}aa`,
    ]) {
      assert.equal(normalizeAuthorDomain(d), null, d);
    }
  });
});

describe('Author Domain extraction (§5.3.1, §11.5)', () => {
  it('one From field with one mailbox gives one domain and no problem', () => {
    const r = extractAuthorDomains(['Jane <jane@Example.COM>']);
    assert.deepEqual(r.domains, ['example.com']);
    assert.deepEqual(r.problems, []);
    assert.equal(r.fields, 1);
  });

  it('several mailboxes of one domain are one Author Domain', () => {
    const r = extractAuthorDomains(['a@example.com, b@EXAMPLE.com']);
    assert.deepEqual(r.domains, ['example.com']);
    assert.deepEqual(r.problems, []);
    assert.equal(r.mailboxes.length, 2);
  });

  it('reports an absent From field', () => {
    const r = extractAuthorDomains([]);
    assert.deepEqual(r.problems, ['absent']);
    assert.deepEqual(r.domains, []);
  });

  it('reports several From fields and several domains', () => {
    const r = extractAuthorDomains(['a@one.example', 'b@two.example, c@one.example']);
    assert.deepEqual(r.problems, ['multiple-fields', 'multiple-domains']);
    assert.deepEqual(r.domains, ['one.example', 'two.example']);
  });

  it('reports a syntax error with the offset and salvages domains for logs', () => {
    const r = extractAuthorDomains(['Attacker <ceo@bank.example']);
    assert.deepEqual(r.problems, ['syntax']);
    assert.match(r.detail ?? '', /offset/);
    assert.deepEqual(r.salvaged, ['bank.example']);
  });

  it('reports a From field without a mailbox', () => {
    assert.deepEqual(extractAuthorDomains(['Undisclosed recipients:;']).problems, ['no-address']);
    assert.deepEqual(extractAuthorDomains([' ']).problems, ['no-address']);
  });

  it('reports a domain literal as an unusable domain', () => {
    const r = extractAuthorDomains(['user@[192.0.2.1]']);
    assert.deepEqual(r.problems, ['invalid-domain']);
    assert.deepEqual(r.domains, []);
    const mixed = extractAuthorDomains(['user@[192.0.2.1], other@example.com']);
    assert.deepEqual(mixed.problems, ['invalid-domain']);
    assert.deepEqual(mixed.domains, ['example.com']);
  });

  it('salvageDomains finds each distinct domain after an "@"', () => {
    assert.deepEqual(salvageDomains('"x" <a@One.example>, junk <b@ two.example> <c@one.example'), [
      'one.example',
      'two.example',
    ]);
    assert.deepEqual(salvageDomains('no address at all'), []);
  });

  it('fromFieldValues picks From fields by name, ignoring case and blanks before the colon', () => {
    const headers: Array<[string, string]> = [
      ['Subject', 'x'],
      ['FROM', ' a@one.example'],
      ['From ', ' b@two.example'],
      ['Sender', 'c@three.example'],
    ];
    assert.deepEqual(fromFieldValues(headers), [' a@one.example', ' b@two.example']);
  });
});
