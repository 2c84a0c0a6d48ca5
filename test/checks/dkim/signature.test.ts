import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkSignatureTimes,
  decodeDkimQuotedPrintable,
  parseCanonicalization,
  parseDkimSignature,
  parseSignatureTags,
} from '../../../src/checks/dkim/signature.ts';

const BASE = {
  v: '1',
  a: 'rsa-sha256',
  c: 'relaxed/relaxed',
  d: 'Example.COM',
  s: 'sel',
  h: 'From : To:subject',
  bh: 'AAAA',
  b: 'AAAA\r\n BBBB',
} as Record<string, string>;

function value(over: Record<string, string | null> = {}): string {
  const tags = { ...BASE, ...over };
  return ` ${Object.entries(tags)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}=${v}`)
    .join('; ')}`;
}

function reason(over: Record<string, string | null>): string {
  const r = parseDkimSignature(value(over));
  assert.equal(r.ok, false, JSON.stringify(over));
  return r.ok ? '' : r.reason;
}

test('a valid signature: fields normalised, b= removed for hashing', () => {
  const r = parseDkimSignature(value({ l: '42', t: '100', x: '200', i: 'joe@Sub.Example.com' }));
  assert.ok(r.ok);
  const s = r.signature;
  assert.equal(s.domain, 'example.com');
  assert.equal(s.selector, 'sel');
  assert.deepEqual(s.signedHeaders, ['from', 'to', 'subject']);
  assert.equal(s.headerCanon, 'relaxed');
  assert.equal(s.bodyCanon, 'relaxed');
  assert.equal(s.keyType, 'rsa');
  assert.equal(s.hash, 'sha256');
  assert.equal(s.b, 'AAAABBBB');
  assert.equal(s.bodyLength, 42);
  assert.equal(s.timestamp, 100);
  assert.equal(s.expiration, 200);
  assert.equal(s.auid, 'joe@Sub.Example.com');
  assert.equal(s.auidDomain, 'sub.example.com');
  assert.ok(s.valueWithoutB.includes('; b=; l=42'), s.valueWithoutB);
  assert.ok(s.valueWithoutB.includes('bh=AAAA'));
});

test('defaults: c=simple/simple, i=@d; one-name c= means simple body (RFC 6376 §3.5)', () => {
  const r = parseDkimSignature(value({ c: null }));
  assert.ok(r.ok);
  assert.equal(r.signature.headerCanon, 'simple');
  assert.equal(r.signature.bodyCanon, 'simple');
  assert.equal(r.signature.auid, '@example.com');
  assert.deepEqual(parseCanonicalization('relaxed'), { header: 'relaxed', body: 'simple' });
  assert.deepEqual(parseCanonicalization('Simple/Relaxed'), { header: 'simple', body: 'relaxed' });
  assert.equal(parseCanonicalization('relaxed/'), null);
  assert.equal(parseCanonicalization('nofws'), null);
});

test('every required tag is required (RFC 6376 §3.5, §6.1.1)', () => {
  for (const t of ['v', 'a', 'b', 'bh', 'd', 'h', 's']) {
    assert.match(reason({ [t]: null }), new RegExp(`missing required tag ${t}=`));
  }
});

test('semantic checks of §6.1.1', () => {
  assert.match(reason({ v: '2' }), /incompatible version/);
  assert.match(reason({ a: 'rsa-sha512' }), /unsupported algorithm/);
  assert.match(reason({ c: 'fancy/simple' }), /unsupported canonicalization/);
  assert.match(reason({ h: 'to:subject' }), /From field not signed/);
  assert.match(reason({ h: 'from::to' }), /invalid signed header list/);
  assert.match(reason({ i: 'joe@example.org' }), /domain mismatch/);
  assert.match(
    reason({ i: 'joe@notexample.com' }),
    /domain mismatch/,
    'a suffix that is not a label boundary',
  );
  assert.match(reason({ i: 'no-at-sign' }), /invalid identity/);
  assert.match(reason({ d: 'com.' }), /invalid signing domain/);
  assert.match(reason({ d: 'localhost' }), /invalid signing domain/);
  assert.match(reason({ s: 'bad selector' }), /invalid selector/);
  assert.match(reason({ l: '-1' }), /invalid body length/);
  assert.match(reason({ t: '12a' }), /invalid timestamp/);
  assert.match(reason({ x: '1234567890123' }), /invalid expiration/, 'more than 12 digits');
  assert.match(reason({ t: '200', x: '100' }), /before the timestamp/);
  assert.match(reason({ q: 'http' }), /unsupported query method/);
  assert.match(reason({ bh: '!!' }), /bh= is not base64/);
  assert.match(reason({ b: '' }), /b= is not base64/);
  assert.match(reason({ v: '1; v=1' }), /duplicate tag v=/);
});

test('accepted variants: q= lists, unknown tags, a= in any case, rsa-sha1 parses (the verifier refuses it)', () => {
  const variants: Array<Record<string, string>> = [
    { q: 'foo/bar:dns/txt' },
    { q: 'dns' },
    { z: 'From:a|To:b', foo: 'bar' },
    { a: 'RSA-SHA256' },
    { a: 'ed25519-sha256' },
  ];
  for (const over of variants) {
    const r = parseDkimSignature(value(over));
    assert.ok(r.ok, JSON.stringify(over));
  }
  const sha1 = parseDkimSignature(value({ a: 'rsa-sha1' }));
  assert.ok(sha1.ok);
  assert.equal(sha1.signature.hash, 'sha1');
});

test('a failed parse still reports what it could read (for header.d/s/b)', () => {
  const r = parseDkimSignature(value({ v: '9' }));
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.domain, 'example.com');
  assert.equal(r.selector, 'sel');
  assert.equal(r.b, 'AAAABBBB');
  assert.equal(r.algorithm, 'rsa-sha256');
});

test('pre-RFC versions only with the draftVersions option', () => {
  const noV = value({ v: null });
  assert.equal(parseDkimSignature(noV).ok, false);
  assert.equal(parseDkimSignature(noV, { draftVersions: true }).ok, true);
  assert.equal(parseDkimSignature(value({ v: '0.5' }), { draftVersions: true }).ok, true);
  assert.equal(parseDkimSignature(value({ v: '5' }), { draftVersions: true }).ok, false);
});

test('dkim-quoted-printable i= (RFC 6376 §2.11)', () => {
  assert.equal(decodeDkimQuotedPrintable('jo=40e@ex\r\n ample.com'), 'jo@e@example.com');
  assert.equal(decodeDkimQuotedPrintable('=4A=4f'), 'JO');
  assert.equal(decodeDkimQuotedPrintable('bad=zz'), null);
  const r = parseDkimSignature(value({ i: '=40example.com' }));
  assert.ok(r.ok);
  assert.equal(r.signature.auid, '@example.com');
});

test('ARC-Message-Signature form: i= is the instance, no v=, From not required', () => {
  const ams = ' i=2; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=arc; h=to:subject; bh=AAAA; b=AAAA';
  const r = parseSignatureTags(ams, 'ams');
  assert.ok(r.ok);
  assert.equal(r.signature.instance, 2);
  assert.equal(r.signature.auid, '');
  const bad = parseSignatureTags(ams.replace('i=2', 'i=51'), 'ams');
  assert.equal(bad.ok, false);
});

test('times: expired, future (only when asked), x= equal to now still valid', () => {
  const r = parseDkimSignature(value({ t: '1000', x: '2000' }));
  assert.ok(r.ok);
  const s = r.signature;
  assert.equal(checkSignatureTimes(s, 1500, Infinity), null);
  assert.equal(checkSignatureTimes(s, 2000, Infinity), null);
  assert.match(checkSignatureTimes(s, 2001, Infinity) ?? '', /expired/);
  assert.equal(checkSignatureTimes(s, 100, Infinity), null, 'a future t= is accepted by default');
  assert.match(checkSignatureTimes(s, 100, 300) ?? '', /in the future/);
  assert.equal(checkSignatureTimes(s, 800, 300), null, 'within the allowed skew');
});
