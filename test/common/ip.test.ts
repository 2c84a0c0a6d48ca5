import assert from 'node:assert/strict';
import { isIPv4 } from 'node:net';
import { test } from 'node:test';
import { formatIp, inCidr, normalizeIp, parseCidr, parseIp, reverseLabels, reverseName, sameIp } from '../../src/common/ip.ts';

test('IPv4 parsing agrees with node:net on valid and invalid forms', () => {
  const cases = ['0.0.0.0', '255.255.255.255', '192.0.2.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '1.2.3.', '', ' 1.2.3.4', 'a.b.c.d', '1.2.3.04', '1.2.3.4/24'];
  for (const c of cases) assert.equal(parseIp(c)?.family === 4, isIPv4(c), c);
});

test('IPv6: canonical RFC 5952 text, IPv4-mapped folded to IPv4', () => {
  assert.equal(normalizeIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(normalizeIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(normalizeIp('::'), '::');
  assert.equal(normalizeIp('::1'), '::1');
  assert.equal(normalizeIp('1:0:0:0:0:0:0:0'), '1::');
  assert.equal(normalizeIp('2001:db8:1:1:1:1:1:1'), '2001:db8:1:1:1:1:1:1');
  assert.equal(normalizeIp('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(parseIp('::ffff:192.0.2.1')?.family, 4);
  assert.equal(normalizeIp('64:ff9b::192.0.2.1'), '64:ff9b::c000:201');
  assert.equal(normalizeIp('not an ip'), null);
  assert.equal(normalizeIp('2001:db8::1::2'), null);
});

test('CIDR matching for both families, prefix edges, family mismatch', () => {
  const ip = parseIp('192.0.2.130')!;
  assert.ok(inCidr(ip, parseCidr('192.0.2.0/24')!));
  assert.ok(inCidr(ip, parseCidr('192.0.2.128/25')!));
  assert.ok(!inCidr(ip, parseCidr('192.0.2.0/25')!));
  assert.ok(inCidr(ip, parseCidr('0.0.0.0/0')!));
  assert.ok(inCidr(ip, parseCidr('192.0.2.130')!));
  assert.ok(!inCidr(ip, parseCidr('2001:db8::/32')!));
  assert.ok(inCidr(parseIp('2001:db8:ffff::1')!, parseCidr('2001:db8::/32')!));
  assert.ok(!inCidr(parseIp('2001:db9::1')!, parseCidr('2001:db8::/32')!));
  assert.equal(parseCidr('192.0.2.0/33'), null);
  assert.equal(parseCidr('192.0.2.0/x'), null);
  assert.equal(parseCidr('2001:db8::/129'), null);
  // an IPv4-mapped network is an IPv4 network with the prefix shifted by 96
  assert.deepEqual(parseCidr('::ffff:192.0.2.0/120')?.prefix, 24);
});

test('reverse names for PTR and RFC 5782 lookups', () => {
  assert.equal(reverseLabels(parseIp('192.0.2.1')!), '1.2.0.192');
  assert.equal(reverseName(parseIp('192.0.2.1')!), '1.2.0.192.in-addr.arpa');
  assert.equal(
    reverseName(parseIp('2001:db8::1')!),
    '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
  );
  assert.ok(sameIp(parseIp('::ffff:10.0.0.1')!, parseIp('10.0.0.1')!));
  assert.equal(formatIp(parseIp('10.0.0.1')!), '10.0.0.1');
});
