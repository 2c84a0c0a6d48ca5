/** Verdict records: what is copied from a verdict event, and reading stored records back. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Facts } from '../../src/engine/facts.ts';
import type { VerdictEvent } from '../../src/engine/observer.ts';
import { parseRecord, RECORD_VERSION, RecordError, recordFromEvent, senderOf } from '../../src/history/record.ts';
import { factsSummary } from '../../src/telemetry/maillog.ts';
import { makeRecord } from './store-contract.ts';

function event(): VerdictEvent {
  const facts = {
    envelope: { ip: '192.0.2.9', helo: 'mx.sender.example', mailFrom: 'A@Sender.Example', rcpt: ['x@r.example', 'y@r.example'] },
    localList: { ip: 'none', domains: [] },
    dnsbl: {
      score: 3,
      listed: ['bl.example', 'dbl.example'],
      allowListed: [],
      errors: ['wl.example'],
      disabled: [],
      results: [
        { zone: 'bl.example', type: 'ip', weight: 1, subject: '192.0.2.9', status: 'listed', codes: ['127.0.0.2'] },
        { zone: 'wl.example', type: 'ip', weight: -2, subject: '192.0.2.9', status: 'error', codes: [] },
        { zone: 'dbl.example', type: 'domain', weight: 2, subject: 'sender.example', status: 'listed', codes: ['127.0.1.2'] },
      ],
    },
    siq: {
      provider: 'siq',
      status: 'found',
      ratings: [],
      message: 'SIQ 12',
      siq: { kind: 'score', ip: '192.0.2.9', domain: 'sender.example', result: { status: 'answer', reply: { score: 12, kind: 'score', ipScore: 20, domainScore: -1, relScore: 101, confidence: 70 } } },
    },
    ratings: {
      domain: 'sender.example',
      status: 'found',
      outcomes: [
        { provider: 'a', status: 'found', ratings: [], message: '' },
        { provider: 'b', status: 'temperror', ratings: [], message: 'timeout' },
      ],
      ratings: [{ service: 'S1', grade: 'B' }],
      scores: { scored: [], ignored: [], min: 7, max: 7, average: 7 },
    },
    identity: { domain: 'mx.sender.example', source: 'helo', method: 'SPF1', result: 'pass', spf: {} },
    spfMailFrom: { result: 'softfail' },
    dkim: [{ result: 'fail' }, { result: 'pass' }],
    dmarc: { result: 'fail', disposition: 'quarantine', fromDomain: 'sender.example' },
    arc: { cv: 'pass', sealers: [{ d: 'Old.Example' }, { d: 'Fwd.Example' }] },
    forgedAuthResults: [],
    internalErrors: [],
  } as unknown as Facts;
  return {
    stage: 'eom',
    verdict: { action: 'FILTER', reply: { code: 250, xcode: '', text: 'Sender OK' }, headers: [], removeHeaders: [], stage: 'eom', reason: 'unknown-sender', explanation: ['SIQ 12', 'tagged'], subjectTag: '[SPAM]' },
    facts,
    ms: 12.345,
  };
}

test('recordFromEvent copies the numbers the what-if needs, and nothing live', () => {
  const e = event();
  const r = recordFromEvent(e, 42);
  assert.equal(r.v, RECORD_VERSION);
  assert.equal(r.time, 42);
  assert.deepEqual(r.siq, { kind: 'score', score: 12, ipScore: 20, domainScore: null, relScore: null, confidence: 70 });
  assert.deepEqual(r.dnsbl, {
    score: 3,
    ipScore: 1,
    listed: ['bl.example', 'dbl.example'],
    zones: [
      { zone: 'bl.example', type: 'ip', weight: 1, status: 'listed' },
      { zone: 'wl.example', type: 'ip', weight: -2, status: 'error' },
      { zone: 'dbl.example', type: 'domain', weight: 2, status: 'listed' },
    ],
  });
  assert.deepEqual(r.ratings, { domain: 'sender.example', status: 'found', average: 7, min: 7, max: 7, failed: 1, grades: ['S1:B'] });
  assert.equal(r.dkim, 'pass', 'one signature passed');
  assert.deepEqual(r.dmarc, { result: 'fail', disposition: 'quarantine', domain: 'sender.example' });
  assert.deepEqual(r.arc, { cv: 'pass', sealer: 'fwd.example' }, 'the newest sealer, lower case');
  assert.equal(r.subjectTagged, true);
  assert.equal(r.ms, 12.3);
  assert.deepEqual(r.rcpt, ['x@r.example', 'y@r.example']);
  assert.equal(r.facts, factsSummary(e.facts));
  // the session goes on changing its facts: the record does not follow
  e.facts.envelope.rcpt.push('z@r.example');
  e.verdict.explanation.push('later');
  assert.deepEqual(r.rcpt, ['x@r.example', 'y@r.example']);
  assert.deepEqual(r.explanation, ['SIQ 12', 'tagged']);
  // a RCPT-stage verdict is about its own recipient
  assert.deepEqual(recordFromEvent({ ...event(), recipient: 'y@r.example' }).rcpt, ['y@r.example']);
  assert.deepEqual(parseRecord(JSON.stringify(r)), r);
});

test('senderOf: the MAIL FROM domain, else the ID, the identity, the HELO name', () => {
  assert.equal(senderOf(makeRecord({ mailFrom: 'a@Example.COM', id: 'id.example' })), 'example.com');
  assert.equal(senderOf(makeRecord({ mailFrom: '', id: 'ID.example' })), 'id.example');
  assert.equal(senderOf(makeRecord({ mailFrom: null, id: null, identity: { domain: 'helo.example', source: 'helo', result: 'pass' } })), 'helo.example');
  assert.equal(senderOf(makeRecord({ mailFrom: null, id: null, identity: null, helo: 'HELO.example' })), 'helo.example');
  assert.equal(senderOf(makeRecord({ mailFrom: '', id: null, identity: null, helo: null })), '<>');
  assert.equal(senderOf(makeRecord({ mailFrom: null, id: null, identity: null, helo: null })), '-');
});

test('parseRecord: clear errors for what is not a record', () => {
  const bad: Array<[string, RegExp]> = [
    ['{"v":1', /not JSON/],
    ['[1,2]', /not a JSON object/],
    ['null', /not a JSON object/],
    [JSON.stringify({ ...makeRecord(), v: 2 }), /unknown record version 2/],
    [JSON.stringify({ ...makeRecord(), time: 'yesterday' }), /"time" is not a number/],
    [JSON.stringify({ ...makeRecord(), action: 'EXPLODE' }), /bad "action" "EXPLODE"/],
    [JSON.stringify({ ...makeRecord(), stage: 'rset' }), /bad "stage" "rset"/],
    [JSON.stringify({ ...makeRecord(), rcpt: 'a@b' }), /"rcpt" and "explanation" must be lists/],
  ];
  for (const [text, message] of bad) assert.throws(() => parseRecord(text), (err: Error) => err instanceof RecordError && message.test(err.message), text);
});
