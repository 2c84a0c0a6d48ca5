import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ManualClock } from '../../src/common/clock.ts';
import { SiqClient, type SiqResult } from '../../src/siq/client.ts';
import { decodeReply, encodeReply, type ReplyInput } from '../../src/siq/codec.ts';
import { SiqRatingProvider, safeText } from '../../src/siq/provider.ts';
import { type SiqTestServer, startSiqServer } from '../support/siq-server.ts';

let server: SiqTestServer;
before(async () => {
  server = await startSiqServer();
});
after(async () => {
  await server.close();
});

function answerOf(input: Partial<ReplyInput>, extra: Partial<Extract<SiqResult, { status: 'answer' }>> = {}): SiqResult {
  return {
    status: 'answer',
    reply: decodeReply(encodeReply({ id: 1, score: 50, ...input })),
    server: '192.0.2.53:6262',
    cached: false,
    cacheTtl: 0,
    tries: 1,
    elapsedMs: 3,
    ...extra,
  };
}

const provider = new SiqRatingProvider({ servers: ['192.0.2.53'] });

test('a score becomes SIQ:<score> plus the sub-scores the server gave', () => {
  const o = provider.outcome('192.0.2.1', 'example.com', answerOf({ score: 73, ipScore: 80, domainScore: -1, relScore: 0, ttl: 300, confidence: 90, text: 'stability=1.' }));
  assert.equal(o.status, 'found');
  assert.deepEqual(o.ratings, [
    { service: 'SIQ', grade: '73' },
    { service: 'SIQIP', grade: '80' },
    { service: 'SIQREL', grade: '0' },
  ]);
  assert.equal(o.provider, 'siq:192.0.2.53:6262');
  assert.equal(o.siq.kind, 'score');
  assert.equal(o.message, "SIQ 192.0.2.53:6262: 192.0.2.1 example.com score 73 (ip 80, domain -, rel 0, confidence 90, ttl 300, -02) 'stability=1.'");
  const bare = new SiqRatingProvider({ servers: ['192.0.2.53'] }, { subScores: false, service: 'OI', name: 'outbound' });
  const b = bare.outcome('192.0.2.1', 'example.com', answerOf({ score: 0, ipScore: 10 }));
  assert.deepEqual(b.ratings, [{ service: 'OI', grade: '0' }]);
  assert.equal(b.provider, 'outbound');
  assert.throws(() => new SiqRatingProvider({ servers: ['192.0.2.53'] }, { service: 'S-Q' }), /service code/);
});

test('the statuses: UNKNOWN none, TEMPFAIL temperror, REDIRECT none, ERROR permerror', () => {
  const cases: Array<[number, string, string, RegExp]> = [
    [-1, 'none', 'unknown', /UNKNOWN \(-1\)/],
    [-2, 'temperror', 'tempfail', /TEMPFAIL \(-2\) 'try later'/],
    [-3, 'none', 'redirect', /REDIRECT \(-3\) not followed/],
    [-4, 'permerror', 'error', /ERROR \(-4\)/],
    [-7, 'permerror', 'error', /reserved score -7/],
    [120, 'permerror', 'error', /reserved score 120/],
  ];
  for (const [score, status, kind, message] of cases) {
    const o = provider.outcome('192.0.2.1', 'example.com', answerOf({ score, text: score === -2 ? 'try later' : '' }));
    assert.equal(o.status, status, `score ${score}`);
    assert.equal(o.siq.kind, kind);
    assert.deepEqual(o.ratings, []);
    assert.match(o.message, message);
  }
});

test('timeout temperror, skipped none, failures temperror; the details stay in siq', () => {
  const t = provider.outcome('192.0.2.1', 'example.com', { status: 'timeout', message: 'SIQ: no answer from 192.0.2.53:6262 within 2000 ms (2 tries)', tries: 2, elapsedMs: 2000 });
  assert.equal(t.status, 'temperror');
  assert.equal(t.siq.kind, 'timeout');
  assert.match(t.message, /no answer/);
  const s = provider.outcome('192.0.2.1', '', { status: 'skipped', reason: 'null sender (no domain to ask about)' });
  assert.equal(s.status, 'none');
  assert.equal(s.siq.kind, 'skipped');
  assert.equal(s.message, 'SIQ not asked about 192.0.2.1: null sender (no domain to ask about)');
  const e = provider.outcome('192.0.2.1', 'example.com', { status: 'error', message: 'aborted: x' });
  assert.equal(e.status, 'temperror');
  assert.equal(e.siq.kind, 'failed');
});

test('server TEXT is made safe for messages: no CR/LF or control characters, bounded', () => {
  const o = provider.outcome('192.0.2.1', 'example.com', answerOf({ score: 10, text: 'a\r\nX-Evil: 1\x00\x7f\xffb' }));
  assert.ok(!/[\r\n\x00\x7f\xff]/.test(o.message), o.message);
  assert.match(o.message, /'a X-Evil: 1 b'$/);
  assert.equal(safeText('x'.repeat(300)).length, 203);
  // the raw text stays available to the policy
  assert.equal((o.siq.result as Extract<SiqResult, { status: 'answer' }>).reply.text, 'a\r\nX-Evil: 1\x00\x7f\xffb');
});

test('rate() over the wire asks about the MAIL FROM domain, skips the null sender', async () => {
  server.script = () => ({ reply: { score: 88, ipScore: 90, ttl: 60, text: 'good' } });
  server.received.length = 0;
  const p = new SiqRatingProvider(new SiqClient({ servers: [server.address], clock: new ManualClock() }));
  const o = await p.rate({ ip: '192.0.2.1', domain: 'helo.example', mailFromDomain: 'Sender.Example' });
  assert.equal(o.status, 'found');
  assert.deepEqual(o.ratings, [
    { service: 'SIQ', grade: '88' },
    { service: 'SIQIP', grade: '90' },
  ]);
  assert.equal(server.received[0]!.query!.domain, 'sender.example');
  // null sender: nothing asked
  const n = await p.rate({ ip: '192.0.2.1', domain: 'helo.example', mailFromDomain: '' });
  assert.equal(n.status, 'none');
  assert.equal(n.siq.kind, 'skipped');
  assert.equal(server.received.length, 1);
  // no MAIL FROM field at all: the identity domain is asked about
  await p.rate({ ip: '192.0.2.1', domain: 'id.example' });
  assert.equal(server.received[1]!.query!.domain, 'id.example');
  // the second identical question comes from the cache
  const again = await p.rate({ ip: '192.0.2.1', domain: 'x', mailFromDomain: 'sender.example' });
  assert.equal(again.status, 'found');
  assert.match(again.message, /\(cached\)/);
  assert.equal(server.received.length, 2);
});

test('rate(): TEMPFAIL and timeout are both temperror, told apart by siq.kind', async () => {
  server.script = () => ({ reply: { score: -2, text: 'busy' } });
  const p = new SiqRatingProvider({ servers: [server.address], timeoutMs: 100, attempts: 1 });
  const tf = await p.rate({ ip: '192.0.2.1', domain: 'example.com' });
  assert.equal(tf.status, 'temperror');
  assert.equal(tf.siq.kind, 'tempfail');
  server.script = () => null;
  const to = await p.rate({ ip: '192.0.2.1', domain: 'example.com' });
  assert.equal(to.status, 'temperror');
  assert.equal(to.siq.kind, 'timeout');
});

test('rate() honours the caller signal (the engine stage deadline)', async () => {
  server.script = () => null;
  const p = new SiqRatingProvider({ servers: [server.address], timeoutMs: 5000 });
  const o = await p.rate({ ip: '192.0.2.1', domain: 'example.com' }, { signal: AbortSignal.timeout(30) });
  assert.equal(o.status, 'temperror');
  assert.equal(o.siq.kind, 'timeout');
  p.client.close();
});
