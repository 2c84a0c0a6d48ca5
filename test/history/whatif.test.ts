/**
 * The what-if against the real policy: random sessions run through src/policy/decide.ts stage by
 * stage (as the session does), their first final verdict becomes a record; then the same session
 * runs again under candidate thresholds, and the what-if's answer from the record alone must be
 * what decide.ts said. No rule is copied into this test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Facts } from '../../src/engine/facts.ts';
import type { Stage, Verdict } from '../../src/engine/verdict.ts';
import { recordFromEvent, type VerdictRecord } from '../../src/history/record.ts';
import { type Candidate, decideAgain, distributions, ruleOf, whatIf, withCandidate } from '../../src/history/whatif.ts';
import { type Config, defaultConfig, type Thresholds } from '../../src/policy/config.ts';
import { decide } from '../../src/policy/decide.ts';
import { between, chance, pick, prng } from '../../fuzz/support/prng.ts';
import { makeRecord } from './store-contract.ts';

type Rng = () => number;

/** Everything a session would learn, per stage; what each stage adds is applied by `run`. */
interface Scenario {
  ip: string;
  localIp: 'none' | 'allow' | 'block';
  ipZones: Array<{ zone: string; weight: number; status: 'listed' | 'not-listed' | 'error' }>;
  domainZones: Array<{ zone: string; weight: number; status: 'listed' | 'not-listed' | 'error' }>;
  iprev: 'pass' | 'fail' | 'temperror';
  helo: string | null;
  heloInvalid: boolean;
  id: string | null;
  identity: 'pass' | 'fail' | 'softfail' | 'none' | 'temperror';
  ratings: null | { status: 'found' | 'none' | 'temperror'; average: number; min: number; max: number; failed: number };
  localDomain: null | { list: 'allow' | 'block'; identity: 'id' | 'mailfrom' };
  mailFrom: string | null;
  spf: 'pass' | 'fail' | 'softfail' | 'none' | 'temperror';
  siq: null | { kind: 'score' | 'unknown' | 'tempfail' | 'timeout'; score: number };
  rcpt: string | null;
  message: boolean;
  dmarc: null | { result: 'pass' | 'fail'; disposition: 'none' | 'quarantine' | 'reject' };
  arc: null | { cv: 'pass' | 'fail'; sealer: string };
}

function scenario(rng: Rng): Scenario {
  const zone = (prefix: string, i: number, weights: number[]) => ({
    zone: `${prefix}${i}.example`,
    weight: pick(rng, weights),
    status: pick(rng, ['listed', 'listed', 'not-listed', 'not-listed', 'not-listed', 'error'] as const),
  });
  const helo = chance(rng, 0.8) ? pick(rng, ['mx.example.com', 'mail.example.net']) : null;
  const id = chance(rng, 0.5) ? pick(rng, ['example.com', 'example.org']) : null;
  const low = between(rng, 0, 9);
  const high = between(rng, low, 9);
  return {
    ip: `192.0.2.${between(rng, 1, 9)}`,
    localIp: chance(rng, 0.05) ? pick(rng, ['allow', 'block'] as const) : 'none',
    ipZones: chance(rng, 0.7) ? Array.from({ length: between(rng, 1, 3) }, (_, i) => zone('bl', i, [1, 1, 2, 3, -1, -2])) : [],
    domainZones: chance(rng, 0.3) ? Array.from({ length: between(rng, 1, 2) }, (_, i) => zone('dbl', i, [1, 2, -1])) : [],
    iprev: pick(rng, ['pass', 'pass', 'pass', 'fail', 'temperror'] as const),
    helo,
    heloInvalid: chance(rng, 0.1),
    id,
    identity: pick(rng, ['pass', 'pass', 'pass', 'pass', 'pass', 'fail', 'softfail', 'none', 'temperror'] as const),
    ratings: chance(rng, 0.7)
      ? {
          status: pick(rng, ['found', 'found', 'found', 'none', 'temperror'] as const),
          average: Math.round((low + rng() * (high - low)) * 100) / 100,
          min: low,
          max: high,
          failed: chance(rng, 0.2) ? 1 : 0,
        }
      : null,
    localDomain: chance(rng, 0.1) ? { list: pick(rng, ['allow', 'block'] as const), identity: pick(rng, ['id', 'mailfrom'] as const) } : null,
    mailFrom: chance(rng, 0.85) ? pick(rng, ['a@example.com', 'b@example.net', '']) : null,
    spf: pick(rng, ['pass', 'pass', 'pass', 'pass', 'fail', 'softfail', 'none', 'temperror'] as const),
    siq: chance(rng, 0.75) ? { kind: pick(rng, ['score', 'score', 'score', 'score', 'unknown', 'tempfail', 'timeout'] as const), score: between(rng, 0, 100) } : null,
    rcpt: chance(rng, 0.8) ? pick(rng, ['u@example.org', 'abuse@example.org', 'v@other.example']) : null,
    message: chance(rng, 0.75),
    dmarc: chance(rng, 0.6) ? { result: pick(rng, ['pass', 'fail'] as const), disposition: pick(rng, ['none', 'quarantine', 'reject'] as const) } : null,
    arc: chance(rng, 0.3) ? { cv: pick(rng, ['pass', 'fail'] as const), sealer: pick(rng, ['fwd.example', 'other.example']) } : null,
  };
}

function thresholds(rng: Rng, kind: 'accept' | 'reject'): Thresholds | null {
  if (chance(rng, 0.3)) return null;
  const t: Thresholds = {};
  if (chance(rng, 0.8)) t.average = between(rng, kind === 'accept' ? 4 : 0, kind === 'accept' ? 9 : 5);
  if (chance(rng, 0.4)) t.min = between(rng, 0, 9);
  if (chance(rng, 0.3)) t.max = between(rng, 0, 9);
  return t;
}

function baseConfig(rng: Rng): Config {
  const c = defaultConfig();
  c.headers = [];
  c.prescreen.threshold = between(rng, 1, 4);
  c.prescreen.allowThreshold = pick(rng, [-1, -2]);
  c.helo.rejectInvalid = chance(rng, 0.3);
  c.iprev.rejectFail = chance(rng, 0.2);
  c.spf.rejectFail = chance(rng, 0.8);
  c.identity.rejectFail = chance(rng, 0.8);
  c.siq.tagScore = chance(rng, 0.2) ? -1 : between(rng, 0, 100);
  c.siq.rejectScore = chance(rng, 0.5) ? -1 : between(rng, 0, 60);
  c.siq.tempfailOnTempfail = chance(rng, 0.7);
  c.siq.subjectTag = pick(rng, ['[SPAM]', '[SPAM]', '']);
  c.filter.subjectTag = pick(rng, ['', '', '[FILTERED]']);
  c.ratings.accept = thresholds(rng, 'accept');
  c.ratings.reject = thresholds(rng, 'reject');
  c.ratings.tempfailOnError = chance(rng, 0.7);
  if (chance(rng, 0.25)) {
    c.ratings.recipients = [{ match: ['abuse@example.org'], reject: null }, { match: ['other.example'], accept: { average: 1 } }];
  }
  c.dmarc.rejectOnPolicy = chance(rng, 0.8);
  if (chance(rng, 0.2)) c.dmarc.exempt = ['example.com'];
  if (chance(rng, 0.3)) c.arc.trustedSealers = ['fwd.example'];
  return c;
}

function candidate(rng: Rng): Candidate {
  const c: Candidate = {};
  if (chance(rng, 0.6)) c.siqTagScore = chance(rng, 0.15) ? -1 : between(rng, 0, 100);
  if (chance(rng, 0.6)) c.siqRejectScore = chance(rng, 0.3) ? -1 : between(rng, 0, 70);
  if (chance(rng, 0.5)) c.dnsblThreshold = between(rng, 1, 5);
  if (chance(rng, 0.5)) c.ratingsReject = thresholds(rng, 'reject');
  if (chance(rng, 0.5)) c.ratingsAccept = thresholds(rng, 'accept');
  return c;
}

const dnsblOf = (zones: Scenario['ipZones'], type: 'ip' | 'domain', subject: string) =>
  zones.map((z) => ({ zone: z.zone, type, weight: z.weight, subject, status: z.status, codes: z.status === 'listed' ? ['127.0.0.2'] : [] }));

function dnsblResult(results: ReturnType<typeof dnsblOf>): NonNullable<Facts['dnsbl']> {
  const listed = results.filter((r) => r.status === 'listed');
  return {
    score: listed.reduce((s, r) => s + r.weight, 0),
    listed: listed.filter((r) => r.weight >= 0).map((r) => r.zone),
    allowListed: listed.filter((r) => r.weight < 0).map((r) => r.zone),
    errors: results.filter((r) => r.status === 'error').map((r) => r.zone),
    disabled: [],
    results,
  };
}

const spfFact = (result: Scenario['spf'], domain: string, sender: string, identity: 'mailfrom' | 'helo') =>
  ({ result, identity, domain, sender, ip: '192.0.2.1', reason: `SPF ${result} for ${domain}`, lookups: 0, voidLookups: 0 }) as NonNullable<Facts['spfMailFrom']>;

interface Outcome {
  record: VerdictRecord | null;
  verdict: Verdict | null;
}

/**
 * Runs the scenario's stages through decide(), as src/engine/session.ts fills the facts; the
 * first final verdict ends it (no final verdict at all: the session ended before DATA).
 */
function run(s: Scenario, config: Config): Outcome {
  const f: Facts = { envelope: { ip: s.ip, rcpt: [] }, forgedAuthResults: [], internalErrors: [] };
  f.localList = { ip: s.localIp, ...(s.localIp !== 'none' ? { ipEntry: s.ip } : {}), domains: [] };
  const at = (stage: Stage, recipient?: string): Outcome | null => {
    const v = decide(stage, f, config, recipient !== undefined ? { recipient } : {});
    if (v.action === 'CONTINUE') return null;
    return { verdict: v, record: recordFromEvent({ stage, verdict: v, facts: f, ms: 1, ...(recipient !== undefined ? { recipient } : {}) }, 1_000) };
  };
  const localDomain = (identity: 'id' | 'mailfrom', domain: string) => {
    if (s.localDomain?.identity !== identity) return;
    f.localList!.domains.push({ list: s.localDomain.list, entry: domain, identity, domain } as NonNullable<Facts['localList']>['domains'][number]);
  };
  const ratingsFact = (domain: string): Facts['ratings'] => {
    const r = s.ratings;
    if (!r) return undefined;
    const found = r.status === 'found';
    return {
      domain,
      status: r.status,
      outcomes: [
        { provider: 'reg', status: r.status, ratings: found ? [{ service: 'S1', grade: 'A' }] : [], message: `reg: ${r.status}` },
        ...(r.failed > 0 ? [{ provider: 'down', status: 'temperror' as const, ratings: [], message: 'down: timeout' }] : []),
      ],
      ratings: found ? [{ service: 'S1', grade: 'A' }] : [],
      scores: found ? { scored: [], ignored: [], min: r.min, max: r.max, average: r.average } : { scored: [], ignored: [], min: null, max: null, average: null },
    };
  };
  const identity = (domain: string, source: 'id' | 'helo') => {
    f.identity = { domain, source, method: 'SPF1', result: s.identity, spf: spfFact(s.identity, domain, `postmaster@${domain}`, 'helo') };
    const r = ratingsFact(domain);
    if (r) f.ratings = r;
  };
  // connect
  if (s.ipZones.length > 0) f.dnsbl = dnsblResult(dnsblOf(s.ipZones, 'ip', s.ip));
  f.iprev = { result: s.iprev, ip: s.ip, ptrNames: [], forward: [], reason: `iprev ${s.iprev}` } as unknown as NonNullable<Facts['iprev']>;
  let out = at('connect');
  if (out) return out;
  if (s.helo !== null) {
    f.envelope.helo = s.helo;
    f.helo = { helo: s.helo, syntax: s.heloInvalid ? 'invalid' : 'fqdn', bareIp: false, local: false, threeStrikes: { pass: true, temperror: false } } as unknown as NonNullable<Facts['helo']>;
    f.spfHelo = spfFact('pass', s.helo, `postmaster@${s.helo}`, 'helo');
    if (s.id === null) identity(s.helo, 'helo');
    out = at('helo');
    if (out) return out;
  }
  if (s.id !== null) {
    f.envelope.id = s.id;
    localDomain('id', s.id);
    identity(s.id, 'id');
    out = at('id');
    if (out) return out;
  }
  if (s.mailFrom !== null) {
    f.envelope.mailFrom = s.mailFrom;
    const domain = s.mailFrom.split('@')[1] ?? '';
    if (domain) localDomain('mailfrom', domain);
    f.spfMailFrom = spfFact(s.spf, domain || (s.helo ?? 'unknown'), s.mailFrom || `postmaster@${s.helo ?? 'unknown'}`, 'mailfrom');
    if (s.siq) {
      const answer = s.siq.kind === 'score' || s.siq.kind === 'unknown' || s.siq.kind === 'tempfail';
      const score = s.siq.kind === 'score' ? s.siq.score : s.siq.kind === 'unknown' ? -1 : -2;
      f.siq = {
        provider: 'siq',
        status: s.siq.kind === 'score' ? 'found' : s.siq.kind === 'unknown' ? 'none' : 'temperror',
        ratings: [],
        message: `SIQ ${s.siq.kind}`,
        siq: {
          kind: s.siq.kind,
          ip: s.ip,
          domain,
          result: answer
            ? ({ status: 'answer', reply: { score, kind: s.siq.kind, ipScore: 10, domainScore: -1, relScore: 20, confidence: 90, ttl: 60, text: '' } } as never)
            : { status: 'timeout', message: 'timeout', tries: 2, elapsedMs: 2000 },
        },
      } as NonNullable<Facts['siq']>;
    }
    if (s.domainZones.length > 0) {
      const ip = s.ipZones.length > 0 ? dnsblOf(s.ipZones, 'ip', s.ip) : [];
      f.dnsbl = dnsblResult([...ip, ...dnsblOf(s.domainZones, 'domain', domain || 'example.invalid')]);
    }
    out = at('mail');
    if (out) return out;
  }
  if (s.rcpt !== null) {
    f.envelope.rcpt.push(s.rcpt);
    out = at('rcpt', s.rcpt);
    if (out) return out;
  }
  if (!s.message) return { record: null, verdict: null };
  if (s.dmarc) {
    f.dmarc = { result: s.dmarc.result, disposition: s.dmarc.disposition, fromDomain: 'example.com', reason: `dmarc ${s.dmarc.result}` } as NonNullable<Facts['dmarc']>;
  }
  if (s.arc) f.arc = { cv: s.arc.cv, instances: 1, sealers: [{ i: 1, d: s.arc.sealer, s: 'sel', cvSeen: 'none' }], reason: 'arc' } as NonNullable<Facts['arc']>;
  return at('eom')!;
}

test('the what-if decides each recorded verdict again exactly as decide.ts does, over 20,000 random sessions', () => {
  const rng = prng(20261123);
  let compared = 0;
  let changed = 0;
  let unknown = 0;
  let sessions = 0;
  const reasons = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const s = scenario(rng);
    const base = baseConfig(rng);
    const cand = candidate(rng);
    const before = run(s, base);
    if (!before.record) continue;
    sessions++;
    const record = before.record;
    // the record is self-contained: it survives JSON
    assert.deepEqual(JSON.parse(JSON.stringify(record)), record);
    const next = withCandidate(base, cand);
    const real = run(s, next);
    const predicted = decideAgain(record, next);
    const context = () => JSON.stringify({ i, scenario: s, candidate: cand, record: { stage: record.stage, action: record.action, reason: record.reason }, real: real.verdict && { stage: real.verdict.stage, action: real.verdict.action, reason: real.verdict.reason }, predicted });
    // the same thresholds change nothing
    const same = decideAgain(record, base);
    assert.equal(same.action, record.action, `unchanged thresholds, changed action: ${context()}`);
    assert.equal(same.tagged, record.subjectTagged, `unchanged thresholds, changed tag: ${context()}`);
    if (predicted.action === null) {
      // only a verdict whose own rule reads a threshold can become unknown, and only before the end
      unknown++;
      assert.ok(ruleOf(record).thresholdDependent, `unknown for a threshold-independent verdict: ${context()}`);
      assert.notEqual(record.stage, 'eom');
      continue;
    }
    compared++;
    reasons.set(predicted.reason, (reasons.get(predicted.reason) ?? 0) + 1);
    assert.ok(real.verdict, `the candidate session ended without a verdict: ${context()}`);
    assert.equal(predicted.action, real.verdict.action, `action: ${context()}`);
    assert.equal(predicted.reason, real.verdict.reason, `reason: ${context()}`);
    assert.equal(predicted.stage, real.verdict.stage, `stage: ${context()}`);
    assert.equal(predicted.tagged, Boolean(real.verdict.subjectTag), `tag: ${context()}`);
    if (predicted.action !== record.action || predicted.tagged !== record.subjectTagged) changed++;
  }
  process.stderr.write(`what-if differential: ${sessions} sessions, ${compared} compared, ${changed} changed, ${unknown} unknown; ${JSON.stringify(Object.fromEntries(reasons))}\n`);
  // the generator reaches the interesting cases, not just the easy ones
  assert.ok(sessions > 10_000, `sessions with a record: ${sessions}`);
  assert.ok(changed > 500, `changed outcomes: ${changed}`);
  assert.ok(unknown < compared / 5, `unknown ${unknown} of ${compared}`);
  for (const reason of ['dnsbl', 'siq-reject', 'reputation', 'reputable', 'dns-temperror', 'spf-fail', 'identity-spf-fail', 'dmarc-reject', 'unknown-sender', 'dns-allow', 'local-block', 'local-allow']) {
    assert.ok((reasons.get(reason) ?? 0) > 20, `reason ${reason} compared ${reasons.get(reason) ?? 0} times`);
  }
});

test('whatIf counts newly rejected and tagged messages, by sender and client, against what happened', () => {
  const config = defaultConfig();
  config.siq.tagScore = 50;
  config.siq.rejectScore = -1;
  const rec = (ip: string, from: string, score: number, time: number) => {
    const tagged = score <= 50;
    return makeRecord({ time, ip, mailFrom: from, siq: { kind: 'score', score, ipScore: null, domainScore: null, relScore: null, confidence: null }, subjectTagged: tagged });
  };
  const records = [
    rec('192.0.2.1', 'a@spam.example', 5, 1),
    rec('192.0.2.1', 'b@spam.example', 12, 2),
    rec('192.0.2.2', 'c@spam.example', 30, 3),
    rec('192.0.2.3', 'd@ok.example', 45, 4),
    rec('192.0.2.4', 'e@ok.example', 70, 5),
    rec('192.0.2.4', 'f@fine.example', 95, 6),
  ];
  const report = whatIf(records, config, { siqRejectScore: 20, siqTagScore: 80 });
  assert.equal(report.totals.records, 6);
  // 5 and 12 are now rejected; 70 is now tagged (≤ 80); 95 stays untagged
  assert.equal(report.totals.newlyRejected, 2);
  assert.equal(report.totals.noLongerTagged, 2, 'a rejected message carries no tag');
  assert.equal(report.totals.newlyTagged, 1);
  assert.equal(report.totals.changed, 3);
  assert.equal(report.rejectedBefore, 0);
  assert.equal(report.rejectedAfter, 2);
  assert.equal(report.taggedBefore, 4);
  assert.equal(report.taggedAfter, 3);
  assert.deepEqual(
    report.senders.map((g) => [g.key, g.newlyRejected, g.newlyTagged]),
    [
      ['spam.example', 2, 0],
      ['ok.example', 0, 1],
    ],
  );
  assert.deepEqual(
    report.clients.map((g) => [g.key, g.changed]),
    [
      ['192.0.2.1', 2],
      ['192.0.2.4', 1],
    ],
  );
  assert.deepEqual(report.transitions, [
    { from: 'FILTER+tag', to: 'REJECT', count: 2 },
    { from: 'FILTER', to: 'FILTER+tag', count: 1 },
  ]);
  assert.equal(report.samples.length, 3);
  assert.equal(report.samples[0]!.time, 5, 'newest first');
  assert.equal(report.current.siqRejectScore, -1);
  assert.equal(report.candidate.siqRejectScore, 20);
  // the config itself is untouched
  assert.equal(config.siq.rejectScore, -1);
});

test('distributions: SIQ scores in tens, rating averages and DNS list scores, split by action', () => {
  const records = [
    makeRecord({ action: 'REJECT', siq: { kind: 'score', score: 0, ipScore: null, domainScore: null, relScore: null, confidence: null } }),
    makeRecord({ action: 'FILTER', siq: { kind: 'score', score: 9, ipScore: null, domainScore: null, relScore: null, confidence: null } }),
    makeRecord({ action: 'FILTER', siq: { kind: 'score', score: 100, ipScore: null, domainScore: null, relScore: null, confidence: null } }),
    makeRecord({ action: 'ACCEPT', siq: null, ratings: { domain: 'x', status: 'found', average: 7.5, min: 5, max: 9, failed: 0, grades: [] } }),
    makeRecord({ action: 'ACCEPT', siq: null, ratings: { domain: 'x', status: 'found', average: 3, min: 3, max: 3, failed: 0, grades: [] } }),
    makeRecord({ action: 'REJECT', siq: null, dnsbl: { score: 3, ipScore: 3, listed: ['a', 'b'], zones: [] } }),
  ];
  const d = distributions(records);
  assert.equal(d.siq.buckets.length, 10);
  assert.equal(d.siq.buckets[0]!.label, '0–9');
  assert.deepEqual(d.siq.buckets[0]!.byAction, { REJECT: 1, FILTER: 1 });
  assert.equal(d.siq.buckets[9]!.label, '90–100');
  assert.equal(d.siq.buckets[9]!.total, 1);
  assert.equal(d.siq.missing, 3);
  assert.deepEqual(
    d.ratings.buckets.map((b) => [b.label, b.total]),
    [
      ['3–4', 1],
      ['4–5', 0],
      ['5–6', 0],
      ['6–7', 0],
      ['7–8', 1],
    ],
  );
  assert.deepEqual(
    d.dnsbl.buckets.filter((b) => b.total > 0).map((b) => [b.label, b.total]),
    [
      ['0', 5],
      ['3', 1],
    ],
  );
  assert.deepEqual(distributions([]).ratings.buckets, []);
});
