import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { defaultConfig, parseConfig } from '../../src/policy/config.ts';
import { configProblems } from '../support/config.ts';

test('an empty file is the embedded defaults', () => {
  const c = parseConfig('', 'x.yaml');
  const d = defaultConfig();
  assert.deepEqual({ ...c, source: '' }, d);
});

test('the keys the issue names exist and are read', () => {
  const c = parseConfig(
    `prescreen:\n  dnsbl: [{ zone: zen.spamhaus.org }]\nratings:\n  registries: [{ zone: registry.example }]\nauthserv_id: mx.example.org\n`,
  );
  assert.equal(c.authservId, 'mx.example.org');
  assert.deepEqual(c.prescreen.dnsbl, [{ zone: 'zen.spamhaus.org', weight: 1, type: 'ip' }]);
  assert.deepEqual(c.ratings.registries, [{ zone: 'registry.example' }]);
});

test('errors name the file, the line and the key', () => {
  const p = configProblems('authserv_id: mx.example.org\nratings:\n  registries:\n    - zone: 42\n');
  assert.equal(p.length, 1);
  assert.equal(
    p[0],
    '/etc/checkid/checkid.yaml: line 4, column 7: ratings.registries[0].zone must be a string, not number 42',
  );
});

test('an unknown key is named, with a suggestion', () => {
  const p = configProblems('prescreen:\n  dnsbls: []\n');
  assert.match(p[0]!, /line 2, column 3: prescreen\.dnsbls unknown key "dnsbls" \(did you mean "dnsbl"\?\)/);
});

test('YAML syntax errors give the line', () => {
  const p = configProblems('headers: [authent\nspf:\n');
  assert.match(p[0]!, /^\/etc\/checkid\/checkid\.yaml: line \d+, column \d+: YAML syntax error/);
});

test('several problems are all reported at once', () => {
  const p = configProblems('on_error: maybe\ndeadline_ms: -5\nheaders: [authent, x-header]\n');
  assert.equal(p.length, 3);
  assert.match(p[0]!, /on_error must be one of "tempfail", "accept"/);
  assert.match(p[1]!, /deadline_ms must be at least 100/);
  assert.match(p[2]!, /headers\[1\] must be one of/);
});

test('duplicate keys are an error, not a silent override', () => {
  const p = configProblems('authserv_id: a.example\nauthserv_id: b.example\n');
  assert.match(p[0]!, /line 2/);
});

test('resolver cache false and thresholds null are accepted', () => {
  const c = parseConfig(
    'resolver:\n  servers: ["127.0.0.1:5353", "[::1]:53"]\n  cache: false\nratings:\n  accept: null\n',
  );
  assert.equal(c.resolver.cache, false);
  assert.deepEqual(c.resolver.servers, ['127.0.0.1:5353', '[::1]:53']);
  assert.equal(c.ratings.accept, null);
});

test('a hook path is resolved against the config file directory', () => {
  const c = parseConfig('hook: policy.ts\n', '/etc/checkid/checkid.yaml', '/etc/checkid');
  assert.equal(c.hook, '/etc/checkid/policy.ts');
});

test('the sample in docs/configuration.md loads as documented', () => {
  const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const block = /```yaml\n([\s\S]*?)```/.exec(doc);
  assert.ok(block, 'the page has a yaml block');
  const c = parseConfig(block[1]!, 'docs/configuration.md');
  assert.equal(c.authservId, 'mx.example.org');
  assert.equal(c.prescreen.dnsbl[0]!.zone, 'zen.spamhaus.org');
  assert.deepEqual(c.ratings.registries, [{ zone: 'registry.example' }]);
});

test('bad list entries and zone filters are reported with their line and key', () => {
  const p = configProblems(
    'prescreen:\n  block:\n    - 192.0.2.0/24\n    - 300.1.2.3\n  dnsbl:\n    - zone: bl.example\n      filter: "127.0.0.[9..2]"\n',
  );
  assert.equal(p.length, 2);
  assert.match(
    p[0]!,
    /^\/etc\/checkid\/checkid\.yaml: line 4, column 7: prescreen\.block\[1\] local block list entry "300\.1\.2\.3"/,
  );
  assert.match(p[1]!, /^\/etc\/checkid\/checkid\.yaml: line 6, column 7: prescreen\.dnsbl\[0\] /);
});

test('a zone name that is not a domain is refused at load', () => {
  const p = configProblems('prescreen:\n  dnsbl: [{ zone: "127.0.0.1" }]\n');
  assert.match(p[0]!, /prescreen\.dnsbl\[0\]\.zone "127\.0\.0\.1" is not valid \(a DNS zone name\)/);
});

test('milter.answer_at: connect, mail (the default) or end_of_message; anything else is refused with its line', () => {
  assert.equal(parseConfig('{}').milter.answerAt, 'mail');
  assert.equal(parseConfig('milter:\n  answer_at: end_of_message\n').milter.answerAt, 'end_of_message');
  assert.equal(parseConfig('milter:\n  answer_at: connect\n').milter.answerAt, 'connect');
  const p = configProblems('milter:\n  listen: inet:127.0.0.1:8891\n  answer_at: eom\n');
  assert.equal(p.length, 1);
  assert.match(
    p[0]!,
    /line 3, column 3: milter\.answer_at must be one of "connect", "mail", "end_of_message", not "eom"/,
  );
});
