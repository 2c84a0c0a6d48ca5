import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  collectArcSets,
  hasEmptyTagSpec,
  parseAar,
  parseArcMessageSignature,
  parseArcSeal,
  parseInstanceValue,
  readTagInstance,
} from '../../../src/checks/arc/index.ts';
import { headerField } from '../../../src/checks/dkim/fields.ts';

const B = 'dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZQ==';
const seal = (i: number, cv: string, extra = '') =>
  headerField('ARC-Seal', ` i=${i}; a=rsa-sha256; cv=${cv}; d=sealer${i}.example; s=s${i};${extra} b=${B}`);
const ams = (i: number, extra = '') =>
  headerField(
    'ARC-Message-Signature',
    ` i=${i}; a=rsa-sha256; c=relaxed/relaxed; d=ams${i}.example; s=m${i}; h=from:to;${extra} bh=${B}; b=${B}`,
  );
const aar = (i: number) => headerField('ARC-Authentication-Results', ` i=${i}; mx${i}.example;\r\n spf=pass`);
const set = (i: number, cv = i === 1 ? 'none' : 'pass') => [seal(i, cv), ams(i), aar(i)];

describe('ARC-Authentication-Results', () => {
  test('i= first, then ";", then the payload; CFWS allowed around the parts', () => {
    assert.deepEqual(parseAar(' i=1; mx.example.org; spf=pass'), {
      ok: true,
      instance: 1,
      payload: 'mx.example.org; spf=pass',
      authservId: 'mx.example.org',
    });
    const p = parseAar(' (first hop)\r\n\ti = 12 (x) ;\r\n mx.example.org;\r\n  dkim=pass');
    assert.ok(p.ok);
    assert.equal(p.instance, 12);
    assert.equal(p.payload, 'mx.example.org; dkim=pass');
  });

  test('the i= must lead, be 1*2DIGIT from 1 to 50, and end with ";"', () => {
    for (const v of [
      ' mx.example.org; i=1; spf=pass',
      ' i=0; mx',
      ' i=51; mx',
      ' i=123; mx',
      ' i=; mx',
      ' i=x; mx',
      ' i=1 mx.example.org;',
      ' I=1; mx',
      ' i 1; mx',
      ' (unclosed i=1; mx',
      '',
    ]) {
      assert.equal(parseAar(v).ok, false, JSON.stringify(v));
    }
    assert.equal(parseInstanceValue('01'), 1);
    assert.equal(parseInstanceValue('50'), 50);
    assert.equal(parseInstanceValue('+1'), null);
    assert.equal(parseInstanceValue('1.0'), null);
  });
});

describe('ARC-Seal', () => {
  test('a valid seal', () => {
    const p = parseArcSeal(
      ` i=2; a=rsa-sha256; cv=Pass; d=Sealer.Example; s=sel; t=1700000000; x_new=1; b=${B}`,
    );
    assert.ok(p.ok);
    assert.equal(p.seal.instance, 2);
    assert.equal(p.seal.cv, 'pass');
    assert.equal(p.seal.domain, 'sealer.example');
    assert.equal(p.seal.selector, 'sel');
    assert.equal(p.seal.timestamp, 1_700_000_000);
    assert.equal(p.seal.keyType, 'rsa');
    assert.ok(p.seal.valueWithoutB.endsWith(' b='));
  });

  test('refused seals name their problem', () => {
    const cases: Array<[string, RegExp]> = [
      [` a=rsa-sha256; cv=none; d=x.example; s=s; b=${B}`, /missing required tag i=/],
      [` i=1; a=rsa-sha256; d=x.example; s=s; b=${B}`, /missing required tag cv=/],
      [` i=1; a=rsa-sha256; cv=none; d=x.example; s=s; h=from; b=${B}`, /h= tag/],
      [` i=1; a=rsa-sha1; cv=none; d=x.example; s=s; b=${B}`, /RFC 8301/],
      [` i=1; a=rsa-sha512; cv=none; d=x.example; s=s; b=${B}`, /unsupported algorithm/],
      [` i=1; a=rsa-sha256; cv=maybe; d=x.example; s=s; b=${B}`, /invalid cv=maybe/],
      [` i=1; a=rsa-sha256; cv=none; d=x..example; s=s; b=${B}`, /signing domain/],
      [` i=1; a=rsa-sha256; cv=none; d=x.example; s=; b=${B}`, /selector/],
      [` i=1; a=rsa-sha256; cv=none; d=x.example; s=s; t=1 2; b=${B}`, /timestamp/],
      [` i=1; a=rsa-sha256; cv=none; d=x.example; s=s; b=%%`, /not base64/],
      [` i=1; a=rsa-sha256; cv=none;; d=x.example; s=s; b=${B}`, /empty tag-spec/],
      [` i=1; a=rsa-sha256; cv=none; d=x.example; s=s; s=t; b=${B}`, /duplicate tag s=/],
      [` i=1; a=rsa-sha256; cv=none; d=x.example; S=s; b=${B}`, /missing required tag s=/],
      [` i=99; a=rsa-sha256; cv=none; d=x.example; s=s; b=${B}`, /invalid instance/],
    ];
    for (const [value, reason] of cases) {
      const p = parseArcSeal(value);
      assert.equal(p.ok, false, value);
      if (!p.ok) assert.match(p.reason, reason, value);
    }
  });
});

describe('ARC-Message-Signature', () => {
  test('parsed as a DKIM-Signature with i= as the instance and no v=', () => {
    const p = parseArcMessageSignature(ams(3).value);
    assert.ok(p.ok);
    assert.equal(p.signature.instance, 3);
    assert.equal(p.signature.domain, 'ams3.example');
    assert.deepEqual(p.signature.signedHeaders, ['from', 'to']);
  });

  test('h= may not sign ARC-Seal (RFC 8617 §4.1.2), and no empty tag-specs', () => {
    const signsSeal = parseArcMessageSignature(
      ` i=1; a=rsa-sha256; d=a.example; s=s; h=from:ARC-Seal; bh=${B}; b=${B}`,
    );
    assert.equal(signsSeal.ok, false);
    if (!signsSeal.ok) assert.match(signsSeal.reason, /ARC-Seal/);
    assert.equal(
      parseArcMessageSignature(` i=1; a=rsa-sha256;; d=a.example; s=s; h=from; bh=${B}; b=${B}`).ok,
      false,
    );
  });

  test('h= must list From (RFC 6376 §6.1.1, which RFC 8617 §4.1.2 brings along) and no empty names', () => {
    for (const h of ['', 'to:subject', 'from:to::date', 'from:']) {
      const p = parseArcMessageSignature(` i=1; a=rsa-sha256; d=a.example; s=s; h=${h}; bh=${B}; b=${B}`);
      assert.equal(p.ok, false, h);
    }
    const noFrom = parseArcMessageSignature(` i=1; a=rsa-sha256; d=a.example; s=s; h=to; bh=${B}; b=${B}`);
    assert.ok(!noFrom.ok && /From field not signed/.test(noFrom.reason));
  });

  test('empty tag-specs, but not a final ";"', () => {
    assert.equal(hasEmptyTagSpec('a=1; b=2;'), false);
    assert.equal(hasEmptyTagSpec('a=1; b=2; \r\n '), false);
    assert.equal(hasEmptyTagSpec('a=1;; b=2'), true);
    assert.equal(hasEmptyTagSpec('; a=1'), true);
    assert.equal(hasEmptyTagSpec('a=1; \r\n\t; b=2'), true);
    assert.equal(readTagInstance(' a=1; i=07; b=2'), 7);
    assert.equal(readTagInstance(' a=1; b=2'), null);
  });
});

describe('collectArcSets: structure (RFC 8617 §5.2 steps 1-3)', () => {
  const other = [headerField('From', ' a@example.com'), headerField('Subject', ' hi')];

  test('no ARC header field: none', () => {
    assert.deepEqual(collectArcSets(other), { status: 'none' });
  });

  test('sets are grouped by i= wherever their fields are', () => {
    const fields = [aar(1), ...other, ams(2), seal(1, 'none'), aar(2), ams(1), seal(2, 'pass')];
    const c = collectArcSets(fields);
    assert.equal(c.status, 'ok');
    if (c.status !== 'ok') return;
    assert.deepEqual(
      c.sets.map((s) => [s.instance, s.aar.at, s.ams.at, s.seal.at]),
      [
        [1, 0, 6, 4],
        [2, 5, 3, 7],
      ],
    );
    assert.deepEqual(c.sealers[1], {
      i: 2,
      d: 'sealer2.example',
      s: 's2',
      cvSeen: 'pass',
      amsDomain: 'ams2.example',
      amsSelector: 'm2',
      authservId: 'mx2.example',
      authResults: 'mx2.example; spf=pass',
    });
  });

  test('failures', () => {
    const cases: Array<[string, ReturnType<typeof headerField>[], RegExp, number | undefined]> = [
      ['a lone AAR', [aar(1)], /i=1 has no ARC-Message-Signature/, 1],
      ['a gap', [...set(1), ...set(3)], /i=2 is missing/, 2],
      ['no i=1', [...set(2)], /i=1 is missing/, 1],
      ['two AMS for one instance', [...set(1), ams(1)], /i=1 has 2 ARC-Message-Signature/, 1],
      ['two seals', [...set(1), seal(1, 'none')], /i=1 has 2 ARC-Seal/, 1],
      ['i=1 cv=pass', [...set(1, 'pass')], /cv=pass where none is required/, 1],
      ['i=2 cv=none', [...set(1), ...set(2, 'none')], /i=2 has cv=none where pass/, 2],
      ['an older cv=fail', [...set(1, 'fail'), ...set(2)], /i=1 has cv=fail/, 1],
      [
        'the newest cv=fail, before anything else',
        [...set(2, 'fail')],
        /newest ARC-Seal \(i=2\) has cv=fail/,
        2,
      ],
      [
        'an unreadable AAR instance',
        [...set(1), headerField('ARC-Authentication-Results', ' mx; i=1')],
        /does not start/,
        undefined,
      ],
      [
        'an AMS without i=',
        [...set(1), headerField('ARC-Message-Signature', ' a=rsa-sha256')],
        /no valid instance/,
        undefined,
      ],
      ['a seal of instance 51', [...set(1), seal(51, 'pass')], /no valid instance/, undefined],
      ['a malformed seal', [seal(1, 'none', ' h=from;'), ams(1), aar(1)], /h= tag/, 1],
    ];
    for (const [what, fields, reason, instance] of cases) {
      const c = collectArcSets(fields);
      assert.equal(c.status, 'fail', what);
      if (c.status !== 'fail') continue;
      assert.match(c.reason, reason, what);
      assert.equal(c.failedInstance, instance, what);
    }
  });

  test('50 sets are fine; the limit is the instance range', () => {
    const fields = [];
    for (let i = 1; i <= 50; i++) fields.push(...set(i));
    const c = collectArcSets(fields);
    assert.equal(c.status, 'ok');
    if (c.status === 'ok') assert.equal(c.sets.length, 50);
  });
});
