/** SIQ through the engine: milter-siq's behaviour by default (tag, SIQ-Report, 451 on TEMPFAIL). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Engine, staticPolicy } from '../../src/engine/engine.ts';
import { type Config, defaultConfig } from '../../src/policy/config.ts';
import { seedZone } from '../support/fixtures.ts';
import { type SiqTestServer, startSiqServer } from '../support/siq-server.ts';
import { MemoryResolver } from '../support/zone.ts';

let siq: SiqTestServer;
const scores: Record<string, number> = { 'example.com': 80, 'example.org': 12, 'temp.example': -2 };

before(async () => {
  siq = await startSiqServer({
    script: (q) => ({ reply: { score: scores[q.domain] ?? -1, ipScore: 50, domainScore: 40, relScore: 30, ttl: 60, confidence: 90, text: `about ${q.domain}` } }),
  });
});
after(() => siq.close());

function setup(mutate?: (c: Config) => void) {
  const resolver = new MemoryResolver({
    ...seedZone(),
    'example.org': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 ?all' }],
    'temp.example': [{ TXT: 'v=spf1 ?all' }],
  });
  const config = defaultConfig();
  config.authservId = 'mx.receiver.example';
  config.siq.servers = [siq.address];
  mutate?.(config);
  const policy = staticPolicy(config, resolver);
  return { engine: new Engine({ resolver, policy }), close: () => policy.current().prepared.siq?.client.close() };
}

const unfold = (text: string | undefined) => text?.replace(/\r\n\t/g, ' ');
const message = { rcpt: ['b@example.net'], headers: 'Subject: hello\r\n', body: 'hi\r\n' };

test('a good SIQ score: SIQ-Report pass=YES, the score among the ratings, no subject tag', async () => {
  const { engine, close } = setup();
  const r = await engine.checkID({ ip: '192.0.2.1', helo: 'mx.example.com', mailFrom: 'a@example.com', ...message });
  close();
  assert.equal(r.action, 'FILTER');
  assert.equal(r.verdict.subjectTag, undefined);
  const report = r.headers.find((h) => h.label === 'SIQ-Report:');
  assert.equal(unfold(report?.text), "pass=YES ip=192.0.2.1 dn=example.com score=80 text='about example.com'");
  const authent = r.headers.find((h) => h.label === 'Authent:');
  assert.equal(authent?.text, '192.0.2.1 mx.example.com SPF1 PASS ratings=SIQ:80,SIQIP:50,SIQDN:40,SIQREL:30');
  // the query carried the MAIL FROM domain, never the local part
  assert.equal(siq.received.at(-1)?.query?.domain, 'example.com');
});

test('a score at or below the tag threshold tags the subject once and reports pass=NO', async () => {
  const { engine, close } = setup();
  const r = await engine.checkID({ ip: '192.0.2.1', helo: 'mx.example.com', mailFrom: 'a@example.org', ...message });
  close();
  assert.equal(r.action, 'FILTER');
  assert.equal(r.verdict.subjectTag, '[SPAM]');
  assert.match(unfold(r.headers.find((h) => h.label === 'SIQ-Report:')?.text)!, /^pass=NO ip=192\.0\.2\.1 dn=example\.org score=12/);
});

test('the reject threshold rejects only once the operator turns it on', async () => {
  const { engine, close } = setup((c) => {
    c.siq.rejectScore = 20;
  });
  const r = await engine.checkID({ ip: '192.0.2.1', helo: 'mx.example.com', mailFrom: 'a@example.org', ...message });
  close();
  assert.equal(r.action, 'REJECT');
  assert.deepEqual(r.reply, { code: 550, xcode: '5.7.1', text: 'message rejected, SIQ score 12 too low' });
});

test('TEMPFAIL from the server → 451; an unknown sender is UNKNOWN and changes nothing', async () => {
  const { engine, close } = setup();
  const temp = await engine.checkID({ ip: '192.0.2.1', mailFrom: 'a@temp.example', ...message });
  const unknown = await engine.checkID({ ip: '192.0.2.1', helo: 'mx.example.com', mailFrom: 'a@unknown.example', ...message });
  close();
  assert.equal(temp.action, 'TEMPFAIL');
  assert.equal(temp.reply.code, 451);
  assert.equal(unknown.action, 'FILTER');
  assert.match(unfold(unknown.headers.find((h) => h.label === 'SIQ-Report:')?.text)!, /^pass=UNKNOWN .* score=-1 text='UNKNOWN'$/);
});
