import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderAuthent } from '../../src/headers/authent.ts';
import { authservIdOf, isForgedAuthenticationResults, renderAuthenticationResults } from '../../src/headers/authentication-results.ts';

test('Authent: renders the seed example exactly', () => {
  const text = renderAuthent({
    ip: '192.0.2.1',
    id: 'example.com',
    method: 'SPF1',
    result: 'pass',
    ratings: [
      { service: 'S1', grade: 'A' },
      { service: 'M2', grade: 'A' },
      { service: 'H1', grade: 'B' },
    ],
  });
  assert.equal(text, '192.0.2.1 example.com SPF1 PASS ratings=S1:A,M2:A,H1:B');
});

test('Authent: strips whitespace and control characters smuggled into fields', () => {
  const text = renderAuthent({ ip: '192.0.2.1', id: 'evil.example\r\nX-Injected: yes', method: 'SPF1', result: 'fail', ratings: [] });
  assert.ok(!/[\r\n]/.test(text));
  assert.equal(text.split(' ').length, 4);
});

test('Authentication-Results: no results is "none"; long values fold at whitespace with CRLF TAB', () => {
  assert.equal(renderAuthenticationResults('mx.example.org', []), 'mx.example.org; none');
  const value = renderAuthenticationResults('mx.example.org', [
    { method: 'iprev', result: 'pass', comment: 'mail.example.com', properties: [['policy.iprev', '192.0.2.1']] },
    { method: 'spf', result: 'pass', comment: '192.0.2.1 is authorized by example.com', properties: [['smtp.mailfrom', 'someone.with.a.long.name@example.com']] },
    { method: 'spf', result: 'none', properties: [['smtp.helo', 'mail.example.com']] },
  ]);
  const lines = ('Authentication-Results: ' + value).split('\r\n');
  assert.ok(lines.length > 1);
  for (const line of lines) assert.ok(line.length <= 78, `line too long: ${line}`);
  for (const line of lines.slice(1)) assert.match(line, /^\t/);
  assert.equal(
    value.replace(/\r\n\t/g, ' '),
    'mx.example.org; iprev=pass (mail.example.com) policy.iprev=192.0.2.1; spf=pass (192.0.2.1 is authorized by example.com) smtp.mailfrom=someone.with.a.long.name@example.com; spf=none smtp.helo=mail.example.com',
  );
});

test('Authentication-Results: values that are not tokens are quoted, comments escaped', () => {
  const value = renderAuthenticationResults('mx.example.org', [
    { method: 'spf', result: 'fail', comment: 'a (nested) comment', properties: [['smtp.mailfrom', 'odd "local"@example.com']] },
  ]);
  assert.equal(value.replace(/\r\n\t/g, ' '), 'mx.example.org; spf=fail (a \\(nested\\) comment) smtp.mailfrom="odd \\"local\\"@example.com"');
});

test('authserv-id of received headers, with comments and quoting; forged ones detected case-insensitively', () => {
  assert.equal(authservIdOf(' mx.example.org; spf=pass'), 'mx.example.org');
  assert.equal(authservIdOf('(comment) mx.example.org 1; none'), 'mx.example.org');
  assert.equal(authservIdOf('"mx.example.org"; none'), 'mx.example.org');
  assert.equal(authservIdOf(''), null);
  assert.ok(isForgedAuthenticationResults('MX.Example.ORG; dkim=pass', 'mx.example.org'));
  assert.ok(!isForgedAuthenticationResults('mx.example.org.evil; dkim=pass', 'mx.example.org'));
});
