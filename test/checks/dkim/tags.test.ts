import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeBase64,
  parseTagList,
  splitColonList,
  stripFws,
  withoutTagValue,
} from '../../../src/checks/dkim/tags.ts';

function tags(text: string): Record<string, string> {
  const r = parseTagList(text);
  assert.ok(r.ok, r.ok ? '' : r.error);
  return Object.fromEntries([...r.tags].map(([k, v]) => [k, v.value]));
}

test('tag-list: values trimmed of folding white space, inner white space kept', () => {
  assert.deepEqual(tags(' v=1; a = rsa-sha256 ;\r\n\tb=ab\r\n cd ;'), {
    v: '1',
    a: 'rsa-sha256',
    b: 'ab\r\n cd',
  });
  assert.deepEqual(tags('k=rsa'), { k: 'rsa' });
  assert.deepEqual(tags(''), {});
  assert.deepEqual(tags('n=; p='), { n: '', p: '' });
});

test('tag-list: names are case-sensitive, ALPHA *ALNUMPUNC (RFC 6376 §3.2)', () => {
  assert.deepEqual(tags('V=1; v=2; x_1=y'), { V: '1', v: '2', x_1: 'y' });
  for (const bad of ['1a=b', '_a=b', 'a b=c', 'a-b=c', '=x']) {
    const r = parseTagList(bad);
    assert.equal(r.ok, false, bad);
  }
});

test('tag-list: duplicate tags and tags without "=" invalidate the list', () => {
  const dup = parseTagList('a=1; b=2; a=3');
  assert.equal(dup.ok, false);
  assert.match(dup.ok ? '' : dup.error, /duplicate tag a=/);
  assert.deepEqual(
    dup.list.map((t) => [t.name, t.value]),
    [
      ['a', '1'],
      ['b', '2'],
    ],
    'the well-formed tags are kept for diagnostics, the first of duplicates',
  );
  const noEq = parseTagList('k=rsa; t; p=abc');
  assert.equal(noEq.ok, false);
  assert.match(noEq.ok ? '' : noEq.error, /without "="/);
});

test('tag-list: empty tag-specs are tolerated, control characters are not', () => {
  assert.deepEqual(tags('a=1;; b=2; ;'), { a: '1', b: '2' });
  assert.equal(parseTagList('a=x\u0000y').ok, false);
  assert.equal(parseTagList('a=x\u007fy').ok, false);
  assert.deepEqual(tags('n=Grüße'), { n: 'Grüße' }, 'octets above 0x7e are accepted');
});

test('withoutTagValue removes the b= value and its white space, nothing else', () => {
  const text = ' v=1; b=abc\r\n def ; bh=xyz; d=example.com';
  const r = parseTagList(text);
  assert.ok(r.ok);
  assert.equal(withoutTagValue(text, r.tags.get('b')!), ' v=1; b=; bh=xyz; d=example.com');
  const last = ' v=1; b=abc\r\n def';
  const r2 = parseTagList(last);
  assert.ok(r2.ok);
  assert.equal(withoutTagValue(last, r2.tags.get('b')!), ' v=1; b=');
});

test('base64 per RFC 6376 §2.4: FWS anywhere, optional padding, nothing else', () => {
  assert.deepEqual(decodeBase64('aGVs\r\n bG8='), Buffer.from('hello'));
  assert.deepEqual(decodeBase64('aGVsbG8'), Buffer.from('hello'), 'padding may be missing');
  assert.deepEqual(decodeBase64(''), Buffer.alloc(0));
  assert.equal(decodeBase64('aGV*bG8='), null);
  assert.equal(decodeBase64('a'), null, 'one character is not a whole octet');
  assert.equal(decodeBase64('aGVsbG8==='), null);
  assert.equal(decodeBase64('aG=Vs'), null, 'padding only at the end');
});

test('colon lists and FWS stripping', () => {
  assert.deepEqual(splitColonList('from : to:\r\n subject'), ['from', 'to', 'subject']);
  assert.deepEqual(splitColonList('a::b'), ['a', '', 'b']);
  assert.equal(stripFws(' a \tb\r\n c'), 'abc');
});
