/** Profiles, the pure score, the generic-name heuristic, token buckets and the server's domain rule. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIp } from '../../../src/common/ip.ts';
import { siqServerProblems } from '../../../src/siq/server/config.ts';
import { genericRdns } from '../../../src/siq/server/facts.ts';
import {
  CHECK_IDS,
  DEFAULT_PROFILE,
  formatProfileProblem,
  parseProfile,
  profileToJson,
  type SiqProfile,
} from '../../../src/siq/server/profile.ts';
import { TokenBuckets } from '../../../src/siq/server/ratelimit.ts';
import { preview, type SiqFacts, scoreQuery, summary } from '../../../src/siq/server/score.ts';
import { serverDomain } from '../../../src/siq/server/server.ts';

function profile(json: unknown): SiqProfile {
  const p = parseProfile(json);
  assert.ok(p.ok, JSON.stringify(p));
  return p.profile;
}

/** only the given checks on, with their weights */
function weights(base: number, w: Record<string, [number, number, number]>, ttl = 120): SiqProfile {
  const checks: Record<string, unknown> = {};
  for (const id of CHECK_IDS)
    checks[id] = w[id]
      ? { enabled: true, pass: w[id][0], fail: w[id][1], neutral: w[id][2] }
      : { enabled: false };
  return profile({ base, ttl, checks });
}

test('parseProfile: defaults fill gaps; every problem named by its key path; round trip through JSON', () => {
  const p = profile({ base: 40, checks: { dnsbl: { fail: -70 } } });
  assert.equal(p.base, 40);
  assert.equal(p.ttl, DEFAULT_PROFILE.ttl);
  assert.deepEqual(p.checks.dnsbl, { ...DEFAULT_PROFILE.checks.dnsbl, fail: -70 });
  assert.deepEqual(p.checks.iprev, DEFAULT_PROFILE.checks.iprev);
  assert.deepEqual(parseProfile(profileToJson(p)), { ok: true, profile: p });
  // a base profile (the server's default) under an account's
  const over = parseProfile({ checks: { iprev: { enabled: false } } }, p);
  assert.ok(over.ok);
  assert.equal(over.profile.base, 40);
  assert.equal(over.profile.checks.dnsbl.fail, -70);
  assert.equal(over.profile.checks.iprev.enabled, false);

  const bad = parseProfile({
    base: 120,
    ttl: 1.5,
    color: 'red',
    checks: { dnsbl: { fail: -300, enabled: 'yes', weight: 1 }, spam: {} },
  });
  assert.equal(bad.ok, false);
  const messages = bad.ok ? [] : bad.problems.map(formatProfileProblem);
  assert.deepEqual(messages, [
    'color unknown key "color"; known keys: base, ttl, checks',
    'base must be 0..100, not 120',
    'ttl must be a whole number, not 1.5',
    'checks.dnsbl.fail must be -100..100, not -300',
    'checks.dnsbl.enabled must be true or false, not "yes"',
    'checks.dnsbl.weight unknown key "weight"; known keys: enabled, pass, fail, neutral',
    `checks.spam unknown check "spam"; known checks: ${CHECK_IDS.join(', ')}`,
  ]);
  assert.equal(parseProfile([1, 2]).ok, false);
  assert.equal(parseProfile(null).ok, true);
});

test('scoreQuery: base plus deltas, clamped; sub-scores per group; confidence; unknown; TTL on DNS trouble', () => {
  const p = weights(50, {
    dnsbl: [10, -40, 0],
    iprev: [5, -20, 0],
    spf_record: [5, -10, -2],
    spf_pass: [20, -30, -5],
    local_ip: [100, -100, 0],
  });
  const facts: SiqFacts = {
    ip: '192.0.2.1',
    domain: 'example.com',
    checks: {
      dnsbl: { outcome: 'fail', detail: 'listed' },
      iprev: { outcome: 'pass', detail: 'ok' },
      spf_record: { outcome: 'neutral', detail: 'weak' },
      spf_pass: { outcome: 'none', detail: 'DNS', error: true },
      local_ip: { outcome: 'none', detail: 'on no list' },
    },
  };
  const s = scoreQuery(p, facts);
  assert.equal(s.score, 50 - 40 + 5 - 2);
  assert.equal(s.ipScore, 50 - 40 + 5);
  assert.equal(s.domainScore, 48);
  assert.equal(s.relScore, -1, 'the only relationship check did not answer');
  // asked: dnsbl, iprev, spf_record, spf_pass (local lists are overrides); answered: 3
  assert.equal(s.confidence, 75);
  assert.equal(s.ttl, 60, 'DNS trouble caps the TTL');
  assert.equal(s.text, 'dnsbl=fail iprev=pass spf_record=neutral');
  assert.deepEqual(
    s.contributions.map((c) => [c.check, c.delta]),
    [
      ['local_ip', 0],
      ['dnsbl', -40],
      ['iprev', 5],
      ['spf_record', -2],
      ['spf_pass', 0],
    ],
  );
  // the block list wins: clamped at 0
  const blocked = scoreQuery(p, {
    ...facts,
    checks: { ...facts.checks, local_ip: { outcome: 'fail', detail: 'blocked' } },
  });
  assert.equal(blocked.score, 0);
  assert.equal(blocked.confidence, 75, 'lists do not count for confidence');
  // an IP-only question: domain checks do not count against confidence
  const ipOnly = scoreQuery(p, {
    ip: '192.0.2.1',
    domain: '',
    checks: { dnsbl: { outcome: 'pass', detail: '' }, iprev: { outcome: 'pass', detail: '' } },
  });
  assert.equal(ipOnly.score, 65);
  assert.equal(ipOnly.confidence, 100);
  assert.equal(ipOnly.ttl, 120);
  assert.deepEqual([ipOnly.domainScore, ipOnly.relScore], [-1, -1]);
  // nothing answered: UNKNOWN
  const none = scoreQuery(p, { ip: '192.0.2.1', domain: 'x.example', checks: {} });
  assert.deepEqual([none.score, none.ipScore, none.confidence, none.text], [-1, -1, -1, '']);
  // a disabled check's fact is ignored; preview is the same function
  assert.equal(preview(weights(50, { iprev: [5, -20, 0] }), facts).score, 55);
});

test('summary: TEXT stays within 255 octets, cut between items', () => {
  const many = Array.from({ length: 40 }, () => ({
    check: 'reports_domain' as const,
    outcome: 'neutral' as const,
    delta: 0,
    detail: '',
  }));
  const t = summary(many);
  assert.ok(t.length <= 255);
  assert.match(t, /^(reports_domain=neutral ?)+$/);
  assert.ok(!t.endsWith(' '));
});

test('genericRdns: pool names (iprev heuristic plus more words), server names pass', () => {
  const v4 = parseIp('198.51.100.7')!;
  assert.match(genericRdns('7-100-51-198.dyn.isp.example', v4) ?? '', /embeds the address/);
  assert.match(genericRdns('dsl-pool-7.isp.example', v4) ?? '', /dsl|pool/);
  assert.match(genericRdns('static-77.isp.example', v4) ?? '', /"static" next to digits/);
  assert.match(genericRdns('host42.isp.example', v4) ?? '', /"host" next to digits/);
  assert.match(genericRdns('c51100007.isp.example', v4) ?? '', /mostly digits/);
  assert.equal(genericRdns('mail.example.com', v4), null);
  assert.equal(genericRdns('mx1.mail.example.com', v4), null);
  assert.equal(genericRdns('static.example.com', v4), null, 'the word alone, no digits');
  assert.equal(genericRdns('example.com', v4), null);
});

test('token buckets: burst, refill, bounded keys', () => {
  let now = 0;
  const b = new TokenBuckets({ perSecond: 2, burst: 3, maxKeys: 2, now: () => now });
  assert.deepEqual([b.take('a'), b.take('a'), b.take('a'), b.take('a')], [true, true, true, false]);
  now += 499;
  assert.equal(b.take('a'), false);
  now += 2;
  assert.equal(b.take('a'), true, 'one token after half a second');
  assert.equal(b.take('b'), true);
  assert.equal(b.take('c'), true);
  assert.equal(b.size, 2, 'the oldest bucket was dropped');
  assert.throws(() => new TokenBuckets({ perSecond: 0, burst: 1 }), /per_second/);
});

test('serverDomain: lower case, no trailing dot, the part after "@"; non-ASCII refused', () => {
  assert.equal(serverDomain('Mail.Example.COM.'), 'mail.example.com');
  assert.equal(serverDomain('user@example.com'), 'example.com');
  assert.equal(serverDomain(''), '');
  assert.equal(serverDomain('ex\u00e4mple.com'), null);
  assert.equal(serverDomain('a b.example'), null);
  assert.equal(serverDomain('x'.repeat(254)), null);
});

test('siq_server problems the schema cannot see: zone names and filters', () => {
  assert.deepEqual(siqServerProblems({ dnsbl: [{ zone: 'ok.example' }, { zone: 'bad zone' }] }), [
    { path: ['dnsbl', 1], message: '"bad zone" is not a valid zone name' },
  ]);
  assert.deepEqual(siqServerProblems(undefined), []);
});
