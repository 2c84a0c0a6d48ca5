import assert from 'node:assert/strict';
import { test } from 'node:test';
import { domainOfAddress, isFqdn, localPartOfAddress, normalizeDomain, stripBrackets } from '../../src/common/domain.ts';

test('isFqdn: LDH labels, two or more, not all-numeric TLD, length limits', () => {
  for (const ok of ['example.com', 'mx-1.example.co.uk', 'xn--bcher-kva.example', 'a.b', 'example.com.']) assert.ok(isFqdn(ok), ok);
  for (const bad of ['', 'localhost', '-a.example', 'a-.example', 'a..b', '192.0.2.1', 'ex ample.com', 'under_score.example', `${'a'.repeat(64)}.example`, `${'a.'.repeat(127)}com`]) {
    assert.ok(!isFqdn(bad), bad);
  }
});

test('addresses: brackets, domain, local part, null sender', () => {
  assert.equal(stripBrackets(' <a@Example.COM> '), 'a@Example.COM');
  assert.equal(domainOfAddress('<a@Example.COM.>'), 'example.com');
  assert.equal(domainOfAddress('<>'), '');
  assert.equal(domainOfAddress('"odd@local"@example.org'), 'example.org');
  assert.equal(localPartOfAddress('"odd@local"@example.org'), '"odd@local"');
  assert.equal(localPartOfAddress('postmaster'), '');
  assert.equal(normalizeDomain('Example.COM.'), 'example.com');
});
