import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isSpfRecord, isTopLabel, parseDomainSpec, parseIp6, parseRecord, selectRecord } from '../../../src/checks/spf/parse.ts';

function ok(text: string) {
  const r = parseRecord(text);
  if (!r.ok) assert.fail(`'${text}' should parse: ${r.error.message}`);
  return r.record;
}

function bad(text: string) {
  const r = parseRecord(text);
  if (r.ok) assert.fail(`'${text}' should be rejected`);
  return r.error;
}

describe('record selection (§4.5)', () => {
  test('no v=spf1 record is none', () => {
    assert.deepEqual(selectRecord([]), { kind: 'none' });
    assert.deepEqual(selectRecord([['google-site-verification=x'], ['v=spf10 -all'], ['spf1 -all']]), { kind: 'none' });
  });

  test('exactly one record is selected; the version is case-insensitive', () => {
    assert.deepEqual(selectRecord([['other'], ['V=SpF1 -all']]), { kind: 'record', text: 'V=SpF1 -all' });
    assert.deepEqual(selectRecord([['v=spf1']]), { kind: 'record', text: 'v=spf1' });
  });

  test('character-strings are joined with nothing between them', () => {
    assert.deepEqual(selectRecord([['v=spf1 ip4:', '192.0.2.5 -all']]), {
      kind: 'record',
      text: 'v=spf1 ip4:192.0.2.5 -all',
    });
    // "v=spf1" + "mx" is "v=spf1mx": not a version section
    assert.deepEqual(selectRecord([['v=spf1', 'mx']]), { kind: 'none' });
  });

  test('several records, even identical, are reported as multiple', () => {
    assert.deepEqual(selectRecord([['v=spf1 -all'], ['v=spf1 -all']]), { kind: 'multiple', count: 2 });
  });

  test('the version section ends at a space or the end of the record', () => {
    assert.equal(isSpfRecord('v=spf1'), true);
    assert.equal(isSpfRecord('v=spf1 '), true);
    assert.equal(isSpfRecord('v=spf1\t-all'), false);
    assert.equal(isSpfRecord(' v=spf1'), false);
    assert.equal(isSpfRecord('v=spf'), false);
  });
});

describe('mechanisms', () => {
  test('every kind with qualifiers, case-insensitive names, dual CIDR', () => {
    const r = ok(
      'v=spf1 +all -INCLUDE:_spf.example.net ~a ?a:mail.example.com/24//64 mx/30 mx:%{d}//48 ptr ptr:example.org ' +
        'ip4:192.0.2.0/24 IP6:2001:db8::/32 exists:%{i}.bl.example.net',
    );
    const kinds = r.mechanisms.map((m) => `${m.qualifier}${m.kind}`);
    assert.deepEqual(kinds, ['+all', '-include', '~a', '?a', '+mx', '+mx', '+ptr', '+ptr', '+ip4', '+ip6', '+exists']);
    const a = r.mechanisms[3]!;
    assert.ok(a.kind === 'a');
    assert.equal(a.domain?.text, 'mail.example.com');
    assert.equal(a.cidr4, 24);
    assert.equal(a.cidr6, 64);
    const mx = r.mechanisms[4]!;
    assert.ok(mx.kind === 'mx');
    assert.equal(mx.domain, null);
    assert.equal(mx.cidr4, 30);
    assert.equal(mx.cidr6, 128);
    const mx2 = r.mechanisms[5]!;
    assert.ok(mx2.kind === 'mx');
    assert.equal(mx2.cidr4, 32);
    assert.equal(mx2.cidr6, 48);
    const ip4 = r.mechanisms[8]!;
    assert.ok(ip4.kind === 'ip4');
    assert.equal(ip4.network, 0xc0000200);
    assert.equal(ip4.prefix, 24);
    const ip6 = r.mechanisms[9]!;
    assert.ok(ip6.kind === 'ip6');
    assert.equal(ip6.prefix, 32);
    assert.deepEqual([...ip6.network.slice(0, 4)], [0x20, 0x01, 0x0d, 0xb8]);
    assert.equal(r.mechanisms[1]!.text, '-INCLUDE:_spf.example.net');
  });

  test('ip4 network bits outside the prefix are masked', () => {
    const m = ok('v=spf1 ip4:192.0.2.77/24').mechanisms[0]!;
    assert.ok(m.kind === 'ip4');
    assert.equal(m.network, 0xc0000200);
  });

  test('a domain-spec may hold any visible character but "%" and still end in a top label', () => {
    const m = ok('v=spf1 a:foo:bar/baz.example.com').mechanisms[0]!;
    assert.ok(m.kind === 'a');
    assert.equal(m.domain?.text, 'foo:bar/baz.example.com');
    assert.equal(m.cidr4, 32);
    ok('v=spf1 a:foo.example.xn--zckzah -all');
    ok('v=spf1 include:example.com.');
  });

  test('spaces: several between terms and trailing are fine', () => {
    assert.equal(ok('v=spf1 a  -all   ').mechanisms.length, 2);
  });

  const rejected: [string, RegExp][] = [
    ['v=spf1 ip4:1.2.3.4 -all moo', /unknown mechanism 'moo'/],
    ['v=spf1 -all.', /"all" takes no argument/],
    ['v=spf1 -all:foobar', /all" takes no argument/],
    ['v=spf1 -all/8', /all" takes no argument/],
    ['v=spf1 a/33', /invalid IPv4 CIDR length/],
    ['v=spf1 a//129', /invalid IPv6 CIDR length/],
    ['v=spf1 a/24/64', /invalid IPv4 CIDR length '\/64'|unexpected/],
    ['v=spf1 ip4:1.2.3.4/032', /invalid IPv4 CIDR length/],
    ['v=spf1 ip4:1.2.3.4//32', /invalid IPv4 CIDR length/],
    ['v=spf1 ip4:1.2.3', /not an IPv4 network/],
    ['v=spf1 ip4:1.2.3.4:8080', /not an IPv4 network/],
    ['v=spf1 ip4:01.2.3.4', /not an IPv4 network/],
    ['v=spf1 ip4', /needs ":"/],
    ['v=spf1 ip6', /needs ":"/],
    ['v=spf1 ip6::CAFE::BABE', /not an IPv6 network/],
    ['v=spf1 ip6:::1.1.1.1//33', /invalid IPv6 CIDR length/],
    ['v=spf1 ptr/0', /unexpected/],
    ['v=spf1 ptr:', /empty/],
    ['v=spf1 a:', /empty/],
    ['v=spf1 include', /needs ":"/],
    ['v=spf1 include:ip5.example.com/24', /not a valid top-level label/],
    ['v=spf1 exists:mail.example.com/24', /not a valid top-level label/],
    ['v=spf1 a:foo-bar', /does not end in a macro/],
    ['v=spf1 a:museum', /does not end in a macro/],
    ['v=spf1 a:museum.', /does not end in a macro/],
    ['v=spf1 a:111.222.33.44', /all-numeric/],
    ['v=spf1 a:example.-com', /not a valid top-level label/],
    ['v=spf1 a:example.com:8080', /not a valid top-level label/],
    ['v=spf1 a:%(ir).example.com', /'%\(' at offset 0 is not a macro/],
    ['v=spf1 a:%{a}.example.com', /unknown macro letter 'a'/],
    ['v=spf1 exists:foo%.sbl.example.com', /is not a macro/],
    ['v=spf1 redirect:t2.example.com', /unknown mechanism 'redirect'/],
    ['v=spf1 =all', /neither a mechanism nor a modifier/],
    ['v=spf1 1up=foo', /unknown mechanism '1up'/],
    ['v=spf1 moo.cow/far_out=man:dog/cat', /unknown mechanism 'moo'/],
    ['v=spf1 exp=', /exp: the domain-spec is empty/],
    ['v=spf1 exp=-all', /exp: .*does not end in a macro/],
    ['v=spf1 exp=%{r}.example.com', /allowed only in explanation text/],
    ['v=spf1 redirect=', /redirect: the domain-spec is empty/],
    ['v=spf1 -all foo=%abc', /modifier 'foo'.*not a macro/],
    ['v=spf1 exp=a.example.com exp=b.example.com', /"exp" appears more than once/],
    ['v=spf1 redirect=a.example.com -all Redirect=a.example.com', /"redirect" appears more than once/],
  ];
  for (const [text, message] of rejected) {
    test(`rejects ${JSON.stringify(text)}`, () => {
      assert.match(bad(text).message, message);
    });
  }

  test('the error names the offending term', () => {
    assert.equal(bad('v=spf1 a mx bogus:x -all').term, 'bogus:x');
    assert.equal(bad('v=spf1 a:foo-bar -all').term, 'a:foo-bar');
  });

  test('non-ASCII and control characters are errors anywhere, naming the term', () => {
    const e1 = bad('v=spf1 a:\u00ef\u00bb\u00bfgarbage.example.net -all');
    assert.match(e1.message, /non-ASCII character U\+00EF/);
    assert.equal(e1.term, 'a:\u00ef\u00bb\u00bfgarbage.example.net');
    assert.match(bad('v=spf1 a:ctrl.example.com\rptr -all').message, /control character U\+000D/);
    assert.match(bad('v=spf1 ip4:192.0.2.5\n include:x.example.com ~all').message, /control character U\+000A/);
    assert.match(bad('v=spf1 a:foo.example.com\0').message, /control character U\+0000/);
    assert.match(bad('v=spf1 \u0080a:example.net -all').message, /non-ASCII/);
  });
});

describe('modifiers (§6)', () => {
  test('redirect and exp are kept as domain-specs, unknown modifiers as name/value', () => {
    const r = ok('v=spf1 moo.cow-far_out=man:dog/cat default=pass ip4:1.2.3.4 exp=explain.%{d} redirect=_spf.%{d2}');
    assert.equal(r.redirect?.text, '_spf.%{d2}');
    assert.equal(r.exp?.text, 'explain.%{d}');
    assert.deepEqual(r.modifiers, [
      { name: 'moo.cow-far_out', value: 'man:dog/cat' },
      { name: 'default', value: 'pass' },
    ]);
    assert.equal(r.mechanisms.length, 1);
  });

  test('modifier names are case-insensitive, so EXP= twice is a duplicate', () => {
    assert.match(bad('v=spf1 EXP=a.example.com exp=b.example.com').message, /more than once/);
  });

  test('an unknown modifier may use any macro letter; its value is not expanded', () => {
    ok('v=spf1 note=%{c}%{r}%{t} -all');
  });
});

describe('helpers', () => {
  test('top labels: letters required unless a dash form; no leading or trailing dash', () => {
    for (const l of ['com', 'xn--zckzah', 'a1', '1a', '123-456', 'c-o-m']) assert.equal(isTopLabel(l), true, l);
    for (const l of ['', '123', '-com', 'com-', 'co_m', 'co m']) assert.equal(isTopLabel(l), false, l);
  });

  test('a domain-spec may end in a macro', () => {
    const spec = parseDomainSpec('%{d}');
    assert.ok(typeof spec !== 'string');
    assert.equal(spec.endsWithMacro, true);
    assert.equal(typeof parseDomainSpec('foo.%{d}x'), 'string');
  });

  test('IPv6 text forms', () => {
    assert.deepEqual([...parseIp6('::')!], new Array(16).fill(0));
    assert.deepEqual([...parseIp6('::ffff:1.2.3.4')!.slice(10)], [0xff, 0xff, 1, 2, 3, 4]);
    assert.equal(parseIp6('1:2:3:4:5:6:7:8')![15], 8);
    for (const t of ['1::2::3', ':::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', '12345::', '1.2.3.4', 'g::1']) {
      assert.equal(parseIp6(t), null, t);
    }
  });
});
