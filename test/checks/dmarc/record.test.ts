import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  effectiveRecord,
  isDmarcRecord,
  isValidReportingUri,
  parseDmarcRecord,
  selectDmarcRecord,
} from '../../../src/checks/dmarc/index.ts';

function parse(text: string) {
  const r = parseDmarcRecord(text);
  assert.ok(r.ok, `expected ${JSON.stringify(text)} to parse`);
  return r.record;
}

describe('DMARC record: the v=DMARC1 tag', () => {
  it('accepts v=DMARC1 first, with blanks around "=" and before the first ";"', () => {
    for (const text of [
      'v=DMARC1',
      'v=DMARC1;',
      'v = DMARC1 ; p=none',
      '  v=DMARC1;p=none',
      'V=DMARC1; p=none',
      'v=DMARC1\t;\tp=none',
    ]) {
      assert.equal(isDmarcRecord(text), true, text);
    }
  });

  it('rejects a record whose first tag is not v=DMARC1 (RFC 9989 §4.7 "v")', () => {
    for (const text of [
      'p=none; v=DMARC1',
      'v=dmarc1; p=none',
      'v=DMARC2; p=none',
      'v=DMARC1p=none',
      'v=DMARC10',
      'v=spf1 -all',
      '',
      'DMARC1',
      ';v=DMARC1',
    ]) {
      const r = parseDmarcRecord(text);
      assert.equal(r.ok, false, text);
      if (!r.ok) assert.match(r.error, /v=DMARC1/);
    }
  });
});

describe('DMARC record: tags', () => {
  it('reads every registered tag', () => {
    const r = parse(
      'v=DMARC1; p=reject; sp=quarantine; np=none; adkim=s; aspf=s; pct=20; t=y; psd=n; ' +
        'rua=mailto:a@example.com, mailto:b@example.net!10m; ruf=mailto:f@example.com; fo=1:d; rf=afrf; ri=3600',
    );
    assert.equal(r.p, 'reject');
    assert.equal(r.sp, 'quarantine');
    assert.equal(r.np, 'none');
    assert.equal(r.adkim, 's');
    assert.equal(r.aspf, 's');
    assert.equal(r.pct, 20);
    assert.equal(r.t, true);
    assert.equal(r.psd, 'n');
    assert.deepEqual(r.rua, ['mailto:a@example.com', 'mailto:b@example.net!10m']);
    assert.deepEqual(r.ruf, ['mailto:f@example.com']);
    assert.equal(r.fo, '1:d');
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      r.tags.map(([k]) => k),
      ['v', 'p', 'sp', 'np', 'adkim', 'aspf', 'pct', 't', 'psd', 'rua', 'ruf', 'fo', 'rf', 'ri'],
    );
  });

  it('has the defaults of §4.7 for absent tags', () => {
    const r = parse('v=DMARC1');
    assert.equal(r.p, null);
    assert.equal(r.sp, null);
    assert.equal(r.np, null);
    assert.equal(r.adkim, 'r');
    assert.equal(r.aspf, 'r');
    assert.equal(r.pct, 100);
    assert.equal(r.t, false);
    assert.equal(r.psd, 'u');
    assert.deepEqual(r.rua, []);
    assert.equal(r.fo, null);
  });

  it('matches tag names and keyword values without case (RFC 5234 §2.3)', () => {
    const r = parse('v=DMARC1; P=Reject; SP=QUARANTINE; ADKIM=S; Psd=Y; T=Y');
    assert.equal(r.p, 'reject');
    assert.equal(r.sp, 'quarantine');
    assert.equal(r.adkim, 's');
    assert.equal(r.psd, 'y');
    assert.equal(r.t, true);
  });

  it('drops invalid values in favour of the defaults, and says so (§4.8)', () => {
    const r = parse('v=DMARC1; p=block; sp=; np=maybe; adkim=x; aspf=relaxed; pct=101; t=yes; psd=maybe');
    assert.equal(r.p, null);
    assert.equal(r.pInvalid, true);
    assert.equal(r.np, null);
    assert.equal(r.npInvalid, true);
    assert.equal(r.sp, null);
    assert.equal(r.spInvalid, true);
    assert.equal(r.adkim, 'r');
    assert.equal(r.aspf, 'r');
    assert.equal(r.pct, 100);
    assert.equal(r.t, false);
    assert.equal(r.psd, 'u');
    assert.equal(r.problems.length, 8);
  });

  it('rejects pct values that are not integers from 0 to 100', () => {
    for (const pct of ['-1', '1.5', '1000', '50%', 'abc']) {
      const r = parse(`v=DMARC1; p=reject; pct=${pct}`);
      assert.equal(r.pct, 100, pct);
      assert.equal(r.problems.length, 1, pct);
    }
    assert.equal(parse('v=DMARC1; pct=0').pct, 0);
    assert.equal(parse('v=DMARC1; pct=007').pct, 7);
  });

  it('ignores unknown tags, pieces without "=", empty pieces, and repeated tags (first wins)', () => {
    const r = parse('v=DMARC1;; p=none; foo=bar; garbage; p=reject; 1x=2;');
    assert.equal(r.p, 'none');
    assert.deepEqual(
      r.tags.map(([k]) => k),
      ['v', 'p', 'foo'],
    );
    assert.equal(r.problems.length, 3);
    assert.ok(r.problems.some((p) => p.includes('garbage')));
    assert.ok(r.problems.some((p) => p.includes('again')));
  });

  it('keeps the record text as published', () => {
    const text = 'v=DMARC1; p=none; rua=mailto:x@example.com';
    assert.equal(parse(text).text, text);
  });
});

describe('DMARC record: reporting URIs and the p=none substitution (§4.10.1)', () => {
  it('validates URIs loosely (scheme ":" rest, obsolete !size allowed)', () => {
    assert.equal(isValidReportingUri('mailto:dmarc@example.com'), true);
    assert.equal(isValidReportingUri('mailto:dmarc@example.com!10m'), true);
    assert.equal(isValidReportingUri('https://example.com/report'), true);
    assert.equal(isValidReportingUri('dmarc@example.com'), false);
    assert.equal(isValidReportingUri('mailto:'), false);
    assert.equal(isValidReportingUri('mailto:a b@example.com'), false);
  });

  it('a record without a valid p= counts as p=none when rua= has a valid URI', () => {
    for (const text of [
      'v=DMARC1; rua=mailto:r@example.com',
      'v=DMARC1; p=bogus; rua=junk, mailto:r@example.com',
    ]) {
      const eff = effectiveRecord(parse(text));
      assert.ok(eff, text);
      assert.equal(eff.p, 'none');
    }
  });

  it('an invalid sp= or np= also falls back to p=none with a valid rua=, else nothing applies', () => {
    const withRua = effectiveRecord(parse('v=DMARC1; p=reject; sp=bad; np=reject; rua=mailto:r@example.com'));
    assert.ok(withRua);
    assert.equal(withRua.p, 'none');
    assert.equal(withRua.sp, null);
    assert.equal(withRua.np, null);
    assert.equal(effectiveRecord(parse('v=DMARC1; p=reject; np=bad')), null);
    assert.equal(effectiveRecord(parse('v=DMARC1')), null);
    assert.equal(effectiveRecord(parse('v=DMARC1; rua=not-a-uri')), null);
  });

  it('a record with a valid p= is applied as it is', () => {
    const rec = parse('v=DMARC1; p=quarantine');
    assert.equal(effectiveRecord(rec), rec);
  });
});

describe('DMARC record: choosing among TXT records (§4.10 step 2)', () => {
  it('joins character-strings and ignores non-DMARC TXT records', () => {
    const r = selectDmarcRecord([
      ['v=spf1 -all'],
      ['v=DMARC1; ', 'p=reject'],
      ['google-site-verification=x'],
    ]);
    assert.ok(r.record);
    assert.equal(r.record.p, 'reject');
    assert.equal(r.record.text, 'v=DMARC1; p=reject');
  });

  it('discards every record when there are several', () => {
    const r = selectDmarcRecord([['v=DMARC1; p=reject'], ['v=DMARC1; p=none']]);
    assert.equal(r.record, null);
    assert.equal('count' in r && r.count, 2);
  });

  it('finds none among unrelated or empty records', () => {
    const r = selectDmarcRecord([[''], ['v=DMARC2; p=reject']]);
    assert.equal(r.record, null);
  });
});
