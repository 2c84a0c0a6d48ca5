import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHECK_IDS, DEFAULT_PROFILE } from '../../../src/siq/server/profile.ts';
import { defaultSiqServerConfig } from '../../../src/siq/server/config.ts';
import { MemorySiqServerStore } from '../../../src/siq/server/store-memory.ts';
import { createSiqWebApp, listenSiqWeb, profileFromForm } from '../../../src/siq/server/web/app.ts';
import {
  listEntryProblem,
  previewDomainProblem,
  sourceIpProblem,
} from '../../../src/siq/server/web/validate.ts';

test('source IPs: one unicast IPv4 or IPv6 address, normalised', () => {
  assert.deepEqual(sourceIpProblem(' 192.0.2.1 '), { ip: '192.0.2.1' });
  assert.deepEqual(sourceIpProblem('2001:DB8:0::1'), { ip: '2001:db8::1' });
  assert.deepEqual(sourceIpProblem('[2001:db8::1]'), { ip: '2001:db8::1' });
  assert.deepEqual(sourceIpProblem('::ffff:192.0.2.1'), { ip: '192.0.2.1' });
  assert.deepEqual(sourceIpProblem('127.0.0.1'), { ip: '127.0.0.1' });
  for (const bad of [
    '',
    '192.0.2',
    '192.0.2.01',
    '192.0.2.1:25',
    '192.0.2.0/24',
    '0.0.0.0',
    '::',
    '255.255.255.255',
    '239.1.1.1',
    'ff05::2',
    'fe80::1%eth0',
    'x'.repeat(500),
  ]) {
    assert.ok('error' in sourceIpProblem(bad), bad);
  }
});

test('list entries: the lists parser decides; canonical forms come back', () => {
  assert.deepEqual(listEntryProblem('192.0.2.1'), { entry: '192.0.2.1' });
  assert.deepEqual(listEntryProblem('198.51.100.0/24'), { entry: '198.51.100.0/24' });
  assert.deepEqual(listEntryProblem('2001:DB8::/32'), { entry: '2001:db8::/32' });
  assert.deepEqual(listEntryProblem('Example.COM.'), { entry: 'example.com' });
  assert.deepEqual(listEntryProblem('.Example.com'), { entry: '.example.com' });
  assert.deepEqual(listEntryProblem('*.example.com'), { entry: '.example.com' });
  assert.match(
    (listEntryProblem('198.51.100.1/24') as { error: string }).error,
    /bits set beyond the prefix length/,
  );
  for (const bad of [
    '',
    'exa mple.com',
    'example.com # comment',
    'localhost',
    '192.0.2.1/33',
    '-bad-.example',
    'a'.repeat(300),
  ]) {
    assert.ok('error' in listEntryProblem(bad), bad);
  }
});

test('preview domains: optional, an address is cut to its domain', () => {
  assert.deepEqual(previewDomainProblem(''), { domain: '' });
  assert.deepEqual(previewDomainProblem('Sender.Example.'), { domain: 'sender.example' });
  assert.deepEqual(previewDomainProblem('jane@Sender.Example'), { domain: 'sender.example' });
  assert.ok('error' in previewDomainProblem('not a domain'));
});

test('the profile form: checkboxes, numbers, per-field problems by field name', () => {
  const form = new URLSearchParams({
    base: '45',
    ttl: '600',
    'checks.dnsbl.enabled': 'on',
    'checks.dnsbl.fail': '-80',
  });
  const r = profileFromForm(form, DEFAULT_PROFILE);
  assert.ok(r.ok);
  assert.equal(r.profile.base, 45);
  assert.equal(r.profile.ttl, 600);
  assert.equal(r.profile.checks.dnsbl.enabled, true);
  assert.equal(r.profile.checks.dnsbl.fail, -80);
  assert.equal(
    r.profile.checks.dnsbl.pass,
    DEFAULT_PROFILE.checks.dnsbl.pass,
    'absent numbers keep the base value',
  );
  for (const id of CHECK_IDS)
    if (id !== 'dnsbl') assert.equal(r.profile.checks[id].enabled, false, `${id}: an unticked box is off`);
  const bad = profileFromForm(
    new URLSearchParams({ base: '101', 'checks.mx.pass': '1.5', 'checks.iprev.fail': 'abc', ttl: '' }),
    DEFAULT_PROFILE,
  );
  assert.equal(bad.ok, false);
  if (!bad.ok) {
    const byField = Object.fromEntries(bad.problems.map((p) => [p.path.join('.'), p.message]));
    assert.match(byField.base!, /0\.\.100, not 101/);
    assert.match(byField['checks.mx.pass']!, /whole number/);
    assert.match(byField['checks.iprev.fail']!, /whole number, not "abc"/);
    assert.match(byField.ttl!, /whole number/);
  }
});

test('listenSiqWeb: the pages on their own port, with request time limits', async () => {
  const store = new MemorySiqServerStore();
  const app = createSiqWebApp({
    store,
    facts: async () => ({ ip: '', domain: '', checks: {} }),
    defaultProfile: defaultSiqServerConfig().defaultProfile,
  });
  const l = await listenSiqWeb(app, '127.0.0.1', 0);
  try {
    assert.match(l.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(l.server.headersTimeout, 10_000);
    const r = await fetch(`http://${l.address}/signin`);
    assert.equal(r.status, 200);
    assert.match(await r.text(), /Sign in to the SIQ server/);
  } finally {
    await l.close();
    await store.close();
  }
});
