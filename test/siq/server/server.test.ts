/**
 * The SIQ server end to end: our SiqClient (and raw datagrams from other loopback addresses)
 * against the real server over UDP, its checks asking a real DNS server, gateway reports over
 * HTTP with sendSiqReport.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { ManualClock } from '../../../src/common/clock.ts';
import { createResolver } from '../../../src/dns/config.ts';
import { SiqClient } from '../../../src/siq/client.ts';
import { sendSiqReport } from '../../../src/siq/report.ts';
import { defaultSiqServerConfig, type SiqServerConfig } from '../../../src/siq/server/config.ts';
import { listenSiqHttp } from '../../../src/siq/server/http.ts';
import {
  CHECK_IDS,
  type CheckId,
  DEFAULT_PROFILE,
  parseProfile,
  type SiqProfile,
} from '../../../src/siq/server/profile.ts';
import { SiqServer } from '../../../src/siq/server/server.ts';
import type { SiqAccount } from '../../../src/siq/server/store.ts';
import { MemorySiqServerStore } from '../../../src/siq/server/store-memory.ts';
import { type DnsTestServer, startDnsServer } from '../../support/dns-server.ts';
import { rawQuery, siqZone, ZONES } from './fixtures.ts';

let dns: DnsTestServer;
let resolver: ReturnType<typeof createResolver>;
let store: MemorySiqServerStore;
let server: SiqServer;
let udp: { address: string; port: number; close(): Promise<void> };
let http: { port: number; close(): Promise<void> };
let clock: ManualClock;
let config: SiqServerConfig;
let alice: SiqAccount;
let client: SiqClient;

const H = { host: '127.0.0.1', port: 0 };

/** A profile with only these checks on: base 50, pass +30, fail -30, neutral +10. */
function only(...ids: CheckId[]): SiqProfile {
  const checks = Object.fromEntries(
    CHECK_IDS.map((id) => [id, { enabled: ids.includes(id), pass: 30, fail: -30, neutral: 10 }]),
  );
  const p = parseProfile({ base: 50, ttl: 300, checks });
  assert.ok(p.ok);
  return p.profile;
}

async function ask(
  ip: string,
  domain = '',
): Promise<{
  score: number;
  text: string;
  ipScore: number;
  domainScore: number;
  relScore: number;
  confidence: number;
  ttl: number | null;
} | null> {
  const r = await client.query({ ip, domain });
  if (r.status !== 'answer') return null;
  const { score, text, ipScore, domainScore, relScore, confidence, ttl } = r.reply;
  return { score, text, ipScore, domainScore, relScore, confidence, ttl };
}

before(async () => {
  dns = await startDnsServer({ zone: siqZone() });
  resolver = createResolver({ servers: [dns.address], timeoutMs: 500, attempts: 1 });
});

after(async () => {
  await resolver.close();
  await dns.close();
});

beforeEach(async () => {
  await server?.close();
  await http?.close();
  client?.close();
  clock = new ManualClock();
  store = new MemorySiqServerStore();
  config = {
    ...defaultSiqServerConfig(),
    dnsbl: ZONES,
    reportHalfLifeDays: 1,
    rateLimit: { perSecond: 1000, burst: 1000, action: 'drop' },
  };
  server = new SiqServer({ store, resolver, config: () => config, clock, pollMs: 0 });
  udp = await server.listenUdp(H.host, 0);
  http = await listenSiqHttp(server, H.host, 0);
  alice = await store.createAccount({
    email: 'alice@example.org',
    passwordHash: 'x',
    createdAt: clock.now(),
  });
  await store.addSourceIp(alice.id, '127.0.0.1');
  client = new SiqClient({ servers: [udp.address], cache: false, timeoutMs: 600, queryNullSender: true });
});

after(async () => {
  await server.close();
  await http.close();
  client.close();
});

test('each check contributes: pass, fail and neutral move the score by the profile weights', async () => {
  const cases: Array<[CheckId, string, string, 'pass' | 'fail' | 'neutral']> = [
    ['dnsbl', '192.0.2.10', '', 'pass'],
    ['dnsbl', '198.51.100.7', '', 'fail'],
    ['dnswl', '192.0.2.10', '', 'pass'],
    ['dnswl', '198.51.100.7', '', 'neutral'],
    ['iprev', '192.0.2.10', '', 'pass'],
    ['iprev', '203.0.113.5', '', 'fail'],
    ['generic_rdns', '192.0.2.10', '', 'pass'],
    ['generic_rdns', '198.51.100.7', '', 'fail'],
    ['spf_record', '192.0.2.10', 'good.example', 'pass'],
    ['spf_record', '192.0.2.10', 'weak.example', 'neutral'],
    ['spf_record', '192.0.2.10', 'nullmx.example', 'fail'],
    ['dmarc_record', '192.0.2.10', 'good.example', 'pass'],
    ['dmarc_record', '192.0.2.10', 'weak.example', 'neutral'],
    ['dmarc_record', '192.0.2.10', 'nullmx.example', 'fail'],
    ['mx', '192.0.2.10', 'good.example', 'pass'],
    ['mx', '192.0.2.10', 'weak.example', 'neutral'],
    ['mx', '192.0.2.10', 'nullmx.example', 'fail'],
    ['mx', '192.0.2.10', 'no-such-domain.example', 'fail'],
    ['spf_pass', '192.0.2.10', 'good.example', 'pass'],
    ['spf_pass', '198.51.100.7', 'good.example', 'fail'],
    ['spf_pass', '198.51.100.7', 'neutral.example', 'neutral'],
    ['rdns_domain', '192.0.2.10', 'good.example', 'pass'],
    ['rdns_domain', '192.0.2.10', 'weak.example', 'neutral'],
  ];
  const expected = { pass: 80, fail: 20, neutral: 60 };
  for (const [check, ip, domain, outcome] of cases) {
    await store.setProfile(alice.id, only(check) as unknown as Record<string, never>);
    const r = await ask(ip, domain);
    assert.ok(r, `${check} ${ip} ${domain}: no answer`);
    assert.equal(r.score, expected[outcome], `${check} ${ip} ${domain}: ${r.text}`);
    assert.equal(r.text, `${check}=${outcome}`);
    assert.equal(r.confidence, 100);
  }
  // the account's lists
  await store.addListEntry(alice.id, 'allow', '192.0.2.0/24');
  await store.addListEntry(alice.id, 'block', '198.51.100.7');
  await store.addListEntry(alice.id, 'allow', 'good.example');
  await store.addListEntry(alice.id, 'block', '.example');
  const lists: Array<[CheckId, string, string, 'pass' | 'fail']> = [
    ['local_ip', '192.0.2.10', '', 'pass'],
    ['local_ip', '198.51.100.7', '', 'fail'],
    ['local_domain', '203.0.113.5', 'good.example', 'pass'],
    ['local_domain', '203.0.113.5', 'sub.weak.example', 'fail'],
  ];
  for (const [check, ip, domain, outcome] of lists) {
    await store.setProfile(alice.id, only(check) as unknown as Record<string, never>);
    const r = await ask(ip, domain);
    assert.equal(r?.score, expected[outcome], `${check} ${ip} ${domain}: ${r?.text}`);
    assert.equal(r?.text, `${check}=${outcome}`);
  }
  // on no list: no information, so UNKNOWN when nothing else is enabled
  assert.equal((await ask('203.0.113.5', ''))?.score, -1);
});

test('the default profile: a good sender scores high, a listed pool address low; sub-scores and TEXT', async () => {
  const good = await ask('192.0.2.10', 'good.example');
  const bad = await ask('198.51.100.7', 'nullmx.example');
  assert.ok(good && bad);
  assert.ok(good.score >= 90, JSON.stringify(good));
  assert.ok(bad.score <= 10, JSON.stringify(bad));
  assert.ok(good.ipScore > bad.ipScore && good.domainScore > bad.domainScore && good.relScore > bad.relScore);
  assert.match(good.text, /\bdnsbl=pass\b.*\biprev=pass\b.*\bspf_pass=pass\b/);
  assert.match(bad.text, /\bdnsbl=fail\b.*\bgeneric_rdns=fail\b.*\bmx=fail\b/);
  assert.equal(good.ttl, DEFAULT_PROFILE.ttl);
  // an IP-only question: domain and relationship sub-scores unknown
  const ipOnly = await ask('192.0.2.10');
  assert.ok(ipOnly);
  assert.equal(ipOnly.domainScore, -1);
  assert.equal(ipOnly.relScore, -1);
  assert.ok(ipOnly.ipScore >= 0);
});

test('unregistered sources get no reply; each account gets its own profile', async () => {
  const target = { host: '127.0.0.1', port: udp.port };
  assert.equal(await rawQuery(target, '127.0.0.2', { ip: '192.0.2.10', domain: 'good.example' }, 400), null);
  assert.equal(server.stats().unregistered, 1);
  const bob = await store.createAccount({
    email: 'bob@example.org',
    passwordHash: 'x',
    createdAt: clock.now(),
  });
  await store.addSourceIp(bob.id, '127.0.0.2');
  await store.setProfile(bob.id, {
    base: 10,
    checks: {
      ...Object.fromEntries(CHECK_IDS.map((id) => [id, { enabled: false }])),
      dnsbl: { enabled: true, pass: 7 },
    },
  });
  const fromBob = await rawQuery(target, '127.0.0.2', { ip: '192.0.2.10', domain: 'good.example' });
  assert.ok(fromBob);
  assert.equal(fromBob.score, 17);
  assert.equal(fromBob.text, 'dnsbl=pass');
  assert.equal(fromBob.revision, '02');
  const fromAlice = await ask('192.0.2.10', 'good.example');
  assert.ok(fromAlice && fromAlice.score !== 17);
  // removing the address: silence again
  await store.removeSourceIp(bob.id, '127.0.0.2');
  assert.equal(await rawQuery(target, '127.0.0.2', { ip: '192.0.2.10', domain: 'good.example' }, 400), null);
});

test('warm cache: repeats ask DNS nothing; a profile change is seen at once; remaining TTL is sent', async () => {
  await store.setProfile(alice.id, only('dnsbl', 'iprev', 'spf_pass') as unknown as Record<string, never>);
  const first = await ask('192.0.2.10', 'good.example');
  assert.ok(first);
  const queries = dns.stats.udp;
  const hits = server.stats().cacheHits;
  clock.advance(100_000);
  for (let i = 0; i < 5; i++) {
    const again = await ask('192.0.2.10', 'good.example');
    assert.deepEqual({ ...again, ttl: 0 }, { ...first, ttl: 0 });
    assert.equal(again?.ttl, 200);
  }
  assert.equal(dns.stats.udp, queries);
  assert.equal(server.stats().cacheHits, hits + 5);
  // the profile changes: the next answer uses it
  await store.setProfile(alice.id, only('dnsbl') as unknown as Record<string, never>);
  const changed = await ask('192.0.2.10', 'good.example');
  assert.equal(changed?.text, 'dnsbl=pass');
  assert.equal(changed?.ttl, 300);
  // the list changes: the block list wins over the checks
  await store.setProfile(alice.id, only('dnsbl', 'local_ip') as unknown as Record<string, never>);
  await store.addListEntry(alice.id, 'block', '192.0.2.0/24');
  const blocked = await ask('192.0.2.10', 'good.example');
  assert.equal(blocked?.score, 50 + 30 - 30);
  assert.match(blocked?.text ?? '', /local_ip=fail/);
  // past the TTL: computed again
  const computed = server.stats().computed;
  clock.advance(301_000);
  await ask('192.0.2.10', 'good.example');
  assert.equal(server.stats().computed, computed + 1);
});

test('another process changing the store is noticed through the change counter', async () => {
  await server.close();
  server = new SiqServer({ store, resolver, config: () => config, clock, pollMs: 20 });
  udp = await server.listenUdp(H.host, 0);
  client.close();
  client = new SiqClient({ servers: [udp.address], cache: false, timeoutMs: 600 });
  await store.setProfile(alice.id, only('dnsbl') as unknown as Record<string, never>);
  assert.equal((await ask('192.0.2.10', 'good.example'))?.text, 'dnsbl=pass');
  // a change the server's watcher does not hear (as from another process): only the counter moves
  const silent = Object.create(store) as MemorySiqServerStore;
  (store as unknown as { watchers: Set<unknown> }).watchers.clear();
  await silent.setProfile(alice.id, only('iprev') as unknown as Record<string, never>);
  let text = '';
  for (let i = 0; i < 50 && text !== 'iprev=pass'; i++) {
    await new Promise((r) => setTimeout(r, 20));
    text = (await ask('192.0.2.10', 'good.example'))?.text ?? '';
  }
  assert.equal(text, 'iprev=pass');
});

test('gateway reports: recorded over HTTP with the API key, scored, and fading with the half-life', async () => {
  await store.setProfile(alice.id, only('reports_ip', 'reports_domain') as unknown as Record<string, never>);
  const url = `http://127.0.0.1:${http.port}`;
  assert.equal((await ask('192.0.2.10', 'good.example'))?.score, -1, 'no reports yet: UNKNOWN');
  const sent = await sendSiqReport({
    url,
    apiKey: alice.apiKey,
    reports: [
      { ip: '192.0.2.10', domain: 'user@Good.Example', result: 'rejected', count: 4 },
      { ip: '192.0.2.10', result: 'accepted' },
    ],
  });
  assert.deepEqual(sent, { ok: true, recorded: 3, status: 200 });
  // reports are not configuration: the cached UNKNOWN stands until its TTL, then they count
  assert.equal((await ask('192.0.2.10', 'good.example'))?.score, -1);
  clock.advance(301_000);
  const r = await ask('192.0.2.10', 'good.example');
  assert.ok(r);
  assert.equal(r.text, 'reports_ip=fail reports_domain=fail');
  assert.equal(r.score, 0, 'base 50, two fails of -30, clamped at 0');
  // two half-lives later: 4 rejected → 1, under the 3-message minimum: no information
  clock.advance(2 * 86_400_000);
  const faded = await ask('192.0.2.10', 'other.example');
  assert.equal(faded?.score, -1);
  // wrong key, or a key from an unregistered address: refused, nothing recorded
  const wrong = await sendSiqReport({
    url,
    apiKey: 'ab'.repeat(32),
    reports: [{ ip: '192.0.2.10', result: 'accepted' }],
  });
  assert.equal(wrong.ok, false);
  assert.equal(!wrong.ok && wrong.status, 403);
  const bad = await sendSiqReport({
    url,
    apiKey: alice.apiKey,
    reports: [{ ip: 'not-an-ip', result: 'accepted' }],
  });
  assert.equal(!bad.ok && bad.status, 400);
  const rows = await store.listReports(alice.id, clock.now(), 86_400_000, 10);
  assert.deepEqual(rows.map((x) => x.key).sort(), ['192.0.2.10', 'good.example']);
  const down = await sendSiqReport({
    url: 'http://127.0.0.1:1',
    apiKey: alice.apiKey,
    reports: [{ ip: '192.0.2.10', result: 'accepted' }],
  });
  assert.equal(down.ok, false);
});

test('rate limit: past the burst, queries are dropped (or answered TEMPFAIL)', async () => {
  config = { ...config, rateLimit: { perSecond: 0.001, burst: 3, action: 'drop' } };
  await store.setProfile(alice.id, only('dnsbl') as unknown as Record<string, never>);
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push(await ask('192.0.2.10', 'good.example'));
  assert.deepEqual(
    answers.map((a) => a?.score ?? null),
    [80, 80, 80, null],
  );
  assert.ok(server.stats().rateLimited >= 1);
  config = { ...config, rateLimit: { perSecond: 0.001, burst: 1, action: 'tempfail' } };
  assert.equal((await ask('192.0.2.10', 'good.example'))?.score, 80);
  const limited = await client.query({ ip: '192.0.2.10', domain: 'good.example' });
  assert.equal(limited.status, 'answer');
  assert.equal(limited.status === 'answer' && limited.reply.kind, 'tempfail');
  assert.equal(limited.status === 'answer' && limited.reply.ttl, 0);
});

test('reply layouts -01 and -00 on request; malformed datagrams and bad domains', async () => {
  await store.setProfile(alice.id, only('dnsbl') as unknown as Record<string, never>);
  config = { ...config, replyLayout: '01' };
  const r1 = await client.query({ ip: '192.0.2.10', domain: 'good.example' });
  assert.equal(r1.status === 'answer' && r1.reply.revision, '01');
  assert.equal(r1.status === 'answer' && r1.reply.score, 80);
  config = { ...config, replyLayout: '00' };
  const r0 = await client.query({ ip: '192.0.2.10', domain: 'good.example' });
  assert.equal(r0.status === 'answer' && r0.reply.revision, '00');
  assert.equal(r0.status === 'answer' && r0.reply.ttl, null);
  config = { ...config, replyLayout: '02' };
  const target = { host: '127.0.0.1', port: udp.port };
  // a non-ASCII octet in QD (our encoder refuses to write one)
  const errorReply = await rawQuery(target, '127.0.0.1', {
    ip: '192.0.2.10',
    domain: 'badx.example',
    patch: (b) => (b[25] = 0xe9),
  });
  assert.equal(errorReply?.kind, 'error');
  assert.equal(errorReply?.ttl, 0);
  const before = server.stats().malformed;
  const dgram = await import('node:dgram');
  const s = dgram.createSocket('udp4');
  await new Promise<void>((ok) =>
    s.send(Buffer.from('hello, not a SIQ query at all'), udp.port, '127.0.0.1', () => ok()),
  );
  s.close();
  for (let i = 0; i < 50 && server.stats().malformed === before; i++)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(server.stats().malformed, before + 1);
});

test('the draft HTTP form: GET, HEAD and POST /siq/protocol-1', async () => {
  await store.setProfile(alice.id, only('dnsbl', 'spf_pass') as unknown as Record<string, never>);
  const base = `http://127.0.0.1:${http.port}/siq/protocol-1`;
  const get = await fetch(`${base}?ip=::192.0.2.10&qt=0&qd=good.example`);
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('siq-score'), '100');
  assert.equal(get.headers.get('siq-comment'), 'dnsbl=pass spf_pass=pass');
  assert.equal(get.headers.get('siq-ttl'), '300');
  assert.equal(get.headers.get('siq-relationship-score'), '80');
  assert.match(await get.text(), /^SIQ-Score: 100$/m);
  const head = await fetch(`${base}?ip=198.51.100.7&qd=good.example`, { method: 'HEAD' });
  assert.equal(head.headers.get('siq-score'), '0');
  const post = await fetch(base, {
    method: 'POST',
    body: new URLSearchParams({ ip: '192.0.2.10', qd: 'good.example' }),
  });
  assert.equal(post.headers.get('siq-score'), '100');
  await store.setProfile(alice.id, only('reports_ip') as unknown as Record<string, never>);
  assert.equal((await fetch(`${base}?ip=192.0.2.10`)).status, 404, 'UNKNOWN is 404');
  assert.equal((await fetch(`${base}?ip=nonsense`)).status, 400);
  assert.equal((await fetch(`http://127.0.0.1:${http.port}/elsewhere`)).status, 404);
  await store.removeSourceIp(alice.id, '127.0.0.1');
  assert.equal((await fetch(`${base}?ip=192.0.2.10`)).status, 403);
});

test('explain and preview: facts once, scores for any profile', async () => {
  const { facts, score } = await server.explain(alice.id, '192.0.2.10', 'good.example');
  assert.equal(facts.checks.dnsbl?.outcome, 'pass');
  assert.equal(facts.checks.spf_pass?.outcome, 'pass');
  assert.ok(score.score >= 90);
  const { scoreQuery } = await import('../../../src/siq/server/score.ts');
  assert.equal(scoreQuery(only('dnsbl'), facts).score, 80);
  assert.equal(scoreQuery(only('spf_record', 'mx'), facts).score, 100);
  assert.equal(server.stats().answered, 0, 'explain answers no one');
});
