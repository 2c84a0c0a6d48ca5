/** The SIQ client over real UDP on loopback, against the scripted test server. */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { ManualClock } from '../../src/common/clock.ts';
import { MemorySiqCache, siqCacheKey } from '../../src/siq/cache.ts';
import { retrySchedule, SiqClient, type SiqClientOptions, type SiqResult, siqDomain } from '../../src/siq/client.ts';
import { encodeReply, type SiqReply } from '../../src/siq/codec.ts';
import { type SiqTestServer, startSiqServer } from '../support/siq-server.ts';

let a: SiqTestServer;
let b: SiqTestServer;

/** a port nothing listens on (ICMP port unreachable), found just before use */
async function deadPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((ok) => s.bind(0, '127.0.0.1', () => ok()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}

/** New servers for each test, so a datagram still on its way from the last test lands elsewhere. */
async function reset(): Promise<void> {
  await Promise.all([a?.close(), b?.close()]);
  [a, b] = await Promise.all([startSiqServer(), startSiqServer()]);
  for (const s of [a, b]) {
    s.script = () => ({ reply: { score: s === a ? 70 : 30, ttl: 300, confidence: 90, text: s === a ? 'from a' : 'from b' } });
  }
}

before(reset);
after(async () => {
  await Promise.all([a.close(), b.close()]);
});

function client(options: Partial<SiqClientOptions> = {}): SiqClient {
  return new SiqClient({ servers: [a.address], timeoutMs: 1000, ...options });
}

function answer(r: SiqResult): Extract<SiqResult, { status: 'answer' }> {
  assert.equal(r.status, 'answer', JSON.stringify(r));
  return r as Extract<SiqResult, { status: 'answer' }>;
}

test('asks with the domain only, IPv4-compatible, QT=0, and reads the answer', async () => {
  await reset();
  const r = answer(await client({ cache: false }).query({ ip: '::ffff:192.0.2.1', domain: '<Someone@Example.COM.>' }));
  assert.equal(r.reply.score, 70);
  assert.equal(r.reply.text, 'from a');
  assert.equal(r.server, a.address);
  assert.equal(r.cached, false);
  assert.equal(r.tries, 1);
  assert.equal(a.received.length, 1);
  const q = a.received[0]!;
  assert.equal(q.query?.domain, 'example.com');
  assert.equal(q.query?.ip, '192.0.2.1');
  assert.equal(q.query?.type, 'mail');
  assert.equal(q.raw.length, 22 + 'example.com'.length);
  assert.ok(!q.raw.includes(Buffer.from('someone', 'latin1')), 'the local part never leaves');
  assert.deepEqual(q.raw.subarray(4, 20), Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]));
});

test('random query IDs, echoed in the reply', async () => {
  await reset();
  const c = client({ cache: false });
  const ids = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const r = answer(await c.query({ ip: '192.0.2.1', domain: `d${i}.example` }));
    assert.equal(r.reply.id, a.received[i]!.query!.id);
    ids.add(r.reply.id);
  }
  assert.ok(ids.size >= 18, `20 queries drew only ${ids.size} distinct IDs`);
});

test('failover: a silent first server, the second answers', async () => {
  await reset();
  a.script = () => null;
  const r = answer(await client({ servers: [a.address, b.address], cache: false }).query({ ip: '192.0.2.1', domain: 'example.com' }));
  assert.equal(r.server, b.address);
  assert.equal(r.reply.text, 'from b');
  assert.equal(r.tries, 2);
  assert.equal(a.received.length, 1);
  assert.equal(b.received.length, 1);
  assert.equal(a.received[0]!.query!.id, b.received[0]!.query!.id, 'one query, one ID');
});

test('failover: an unreachable first server (ICMP port unreachable) is skipped at once', async () => {
  await reset();
  // a long first wait: only the ICMP error can move the client on before the deadline
  const c = client({ servers: [`127.0.0.1:${await deadPort()}`, b.address], cache: false, timeoutMs: 60_000, tryTimeoutMs: 30_000 });
  const r = answer(await c.query({ ip: '192.0.2.1', domain: 'example.com' }));
  assert.equal(r.server, b.address);
});

test('every server unreachable: a timeout result naming them, without waiting for the deadline', async () => {
  const c = client({ servers: [`127.0.0.1:${await deadPort()}`], cache: false, timeoutMs: 60_000 });
  const r = await c.query({ ip: '192.0.2.1', domain: 'example.com' });
  assert.equal(r.status, 'timeout');
  assert.match((r as { message: string }).message, /no server reachable: 127\.0\.0\.1:\d+: ECONNREFUSED/);
});

test('a late reply from the first server still counts after failing over', async () => {
  await reset();
  a.script = (q) => (q.domain === 'x.example' && a.received.length === 1 ? { delayMs: 100, reply: { score: 11, ttl: 0 } } : null);
  b.script = () => null;
  // tries at 0 (a), 50 (b), 100 (a), 150 (b), 250 (a), ...: a's first reply comes at 100
  const c = client({ servers: [a.address, b.address], cache: false, tryTimeoutMs: 50, attempts: 4, timeoutMs: 2000 });
  const r = answer(await c.query({ ip: '192.0.2.1', domain: 'x.example' }));
  assert.equal(r.server, a.address);
  assert.equal(r.reply.score, 11);
  assert.ok(b.received.length >= 1, 'the second server was asked meanwhile');
});

test('the total deadline: nobody answers, every try of the schedule is sent, then timeout', async () => {
  await reset();
  a.script = () => null;
  b.script = () => null;
  const c = client({ servers: [a.address, b.address], cache: false, timeoutMs: 300, attempts: 2 });
  const r = await c.query({ ip: '192.0.2.1', domain: 'example.com' });
  assert.equal(r.status, 'timeout');
  assert.equal((r as { tries: number }).tries, 4);
  assert.match((r as { message: string }).message, /no answer from 127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+ within 300 ms \(4 tries\)/);
  assert.equal(a.received.length, 2);
  assert.equal(b.received.length, 2);
});

test('the draft schedule fits the deadline: T, then 2^r·T/S', () => {
  assert.deepEqual(retrySchedule(1, 2, 2000), [666, 1332]);
  assert.deepEqual(retrySchedule(3, 2, 2000), [400, 400, 400, 266, 266, 266]);
  assert.deepEqual(retrySchedule(2, 4, 3000, 5000), [5000, 5000, 5000, 5000, 10000, 10000, 20000, 20000]);
  for (const [s, r] of [[1, 1], [2, 3], [4, 2], [5, 4]] as const) {
    const total = retrySchedule(s, r, 2000).reduce((x, y) => x + y, 0);
    assert.ok(total <= 2000, `${s} servers, ${r} rounds: ${total} ms`);
  }
});

test('mismatched replies are ignored, not fatal: wrong ID, malformed, wrong version, wrong source', async () => {
  await reset();
  a.script = (q) => [
    { reply: { id: q.id ^ 1, score: 1 } },
    { raw: Uint8Array.of(1, 50, 0, 0, 0, 0, 0, 9) },
    { raw: encodeReply({ id: q.id, score: 2 }).map((x, i) => (i === 0 ? 2 : x)) },
    { wrongSource: true, reply: { score: 3 } },
    { delayMs: 40, reply: { score: 77, text: 'the real one' } },
  ];
  const c = client({ cache: false });
  const r = answer(await c.query({ ip: '192.0.2.1', domain: 'example.com' }));
  assert.equal(r.reply.score, 77);
  assert.equal(r.reply.text, 'the real one');
  const ignored = c.stats().ignored;
  assert.equal(ignored.wrongId, 1);
  assert.equal(ignored.malformed, 2);
  // the wrong-source datagram never reaches us: the socket is connected to the server
  assert.equal(ignored.wrongSource, 0);
});

test('only wrong IDs and spoofed sources: no answer, a timeout', async () => {
  await reset();
  a.script = (q) => [{ reply: { id: (q.id + 1) & 0xffff, score: 99 } }, { wrongSource: true, reply: { score: 99 } }];
  const c = client({ cache: false, timeoutMs: 200, attempts: 1 });
  const r = await c.query({ ip: '192.0.2.1', domain: 'example.com' });
  assert.equal(r.status, 'timeout');
  assert.equal(c.stats().ignored.wrongId, 1);
});

test('a malformed reply is named in the timeout message', async () => {
  await reset();
  a.script = () => ({ raw: Uint8Array.of(1, 2, 3) });
  const r = await client({ cache: false, timeoutMs: 150, attempts: 1 }).query({ ip: '192.0.2.1', domain: 'example.com' });
  assert.equal(r.status, 'timeout');
  assert.match((r as { message: string }).message, /last malformed reply: reply of 3 octets/);
});

// --- cache -------------------------------------------------------------------------------------

test('cache: a score is kept for its TTL (injected clock), then asked again', async () => {
  await reset();
  const clock = new ManualClock();
  const c = client({ clock });
  const first = answer(await c.query({ ip: '192.0.2.1', domain: 'example.com' }));
  assert.equal(first.cacheTtl, 300);
  clock.advance(299_000);
  const second = answer(await c.query({ ip: '192.0.2.1', domain: 'EXAMPLE.com' }));
  assert.equal(second.cached, true);
  assert.equal(second.cacheTtl, 1);
  assert.equal(second.reply.score, 70);
  assert.equal(second.tries, 0);
  assert.equal(a.received.length, 1);
  clock.advance(1_000);
  const third = answer(await c.query({ ip: '192.0.2.1', domain: 'example.com' }));
  assert.equal(third.cached, false);
  assert.equal(a.received.length, 2);
  assert.equal(c.stats().cacheHits, 1);
});

test('cache key: server set (any order), query type, IP and domain', async () => {
  await reset();
  const clock = new ManualClock();
  const cache = new MemorySiqCache({ clock });
  const c = client({ clock, cache });
  await c.query({ ip: '192.0.2.1', domain: 'example.com' });
  await c.query({ ip: '192.0.2.2', domain: 'example.com' });
  await c.query({ ip: '192.0.2.1', domain: 'example.net' });
  await c.query({ ip: '192.0.2.1', domain: 'example.com', type: 'data' });
  assert.equal(a.received.length, 4);
  assert.equal(cache.size, 4);
  // another client on the same set, other order: shares entries; a different set does not
  const ab = new SiqClient({ servers: [a.address, b.address], clock, cache });
  const ba = new SiqClient({ servers: [b.address, a.address], clock, cache });
  answer(await ab.query({ ip: '192.0.2.1', domain: 'example.com' }));
  assert.equal(answer(await ba.query({ ip: '192.0.2.1', domain: 'example.com' })).cached, true);
  assert.notEqual(siqCacheKey([a, b], 'mail', '192.0.2.1', 'x'), siqCacheKey([a], 'mail', '192.0.2.1', 'x'));
  assert.equal(siqCacheKey([a, b], 'mail', '192.0.2.1', 'X'), siqCacheKey([b, a], 'mail', '192.0.2.1', 'x'));
});

test('never cached: TTL 0, TEMPFAIL, REDIRECT, ERROR, reserved scores, -00/-01 UNKNOWN, timeouts', async () => {
  const replies: Array<{ reply: { score: number; ttl?: number }; revision?: '00' | '01' | '02' }> = [
    { reply: { score: 80, ttl: 0 } },
    { reply: { score: -2, ttl: 300 } },
    { reply: { score: -3, ttl: 300 } },
    { reply: { score: -4, ttl: 300 } },
    { reply: { score: 101, ttl: 300 } },
    { reply: { score: -1, ttl: 300 }, revision: '01' },
    { reply: { score: -1 }, revision: '00' },
    { reply: { score: 80 }, revision: '00' },
  ];
  for (const planned of replies) {
    await reset();
    a.script = () => planned;
    const c = client();
    const r1 = answer(await c.query({ ip: '192.0.2.1', domain: 'example.com' }));
    assert.equal(r1.cacheTtl, 0, JSON.stringify(planned));
    answer(await c.query({ ip: '192.0.2.1', domain: 'example.com' }));
    assert.equal(a.received.length, 2, `asked again after ${JSON.stringify(planned)}`);
  }
  // a timeout is not remembered: the next query goes out and is answered
  await reset();
  a.script = () => null;
  const c = client({ timeoutMs: 100, attempts: 1 });
  assert.equal((await c.query({ ip: '192.0.2.1', domain: 'example.com' })).status, 'timeout');
  a.script = () => ({ reply: { score: 70, ttl: 300 } });
  assert.equal(answer(await c.query({ ip: '192.0.2.1', domain: 'example.com' })).cached, false);
});

test('cached: -02 UNKNOWN for its TTL; -00 replies for defaultTtl; TTLs raised to minTtl, capped at maxTtl', async () => {
  await reset();
  a.script = () => ({ reply: { score: -1, ttl: 60 } });
  assert.equal(answer(await client().query({ ip: '192.0.2.1', domain: 'u.example' })).cacheTtl, 60);
  a.script = () => ({ reply: { score: 50 }, revision: '00' });
  assert.equal(answer(await client({ defaultTtl: 120 }).query({ ip: '192.0.2.1', domain: 'u.example' })).cacheTtl, 120);
  a.script = () => ({ reply: { score: 50, ttl: 0x7fffffff }, revision: '01' });
  assert.equal(answer(await client({ maxTtl: 3600 }).query({ ip: '192.0.2.1', domain: 'u.example' })).cacheTtl, 3600);
  a.script = () => ({ reply: { score: 50, ttl: 5 } });
  assert.equal(answer(await client({ minTtl: 60 }).query({ ip: '192.0.2.1', domain: 'u.example' })).cacheTtl, 60);
  a.script = () => ({ reply: { score: 50, ttl: 0 } });
  assert.equal(answer(await client({ minTtl: 60 }).query({ ip: '192.0.2.1', domain: 'u.example' })).cacheTtl, 0);
});

test('a failing cache is a miss, not an error', async () => {
  await reset();
  const broken = {
    get: async (): Promise<undefined> => {
      throw new Error('redis down');
    },
    set: async (): Promise<void> => {
      throw new Error('redis down');
    },
  };
  const r = answer(await client({ cache: broken }).query({ ip: '192.0.2.1', domain: 'example.com' }));
  assert.equal(r.reply.score, 70);
  assert.equal(r.cacheTtl, 0);
});

test('memory cache: bounded, least recently used goes first, expired entries are misses', () => {
  const clock = new ManualClock();
  const cache = new MemorySiqCache({ maxEntries: 2, clock });
  const entry = (score: number, ttlMs: number) => ({
    reply: { score } as SiqReply,
    server: 's',
    storedAt: clock.now(),
    expiresAt: clock.now() + ttlMs,
  });
  cache.set('a', entry(1, 10_000));
  cache.set('b', entry(2, 10_000));
  assert.equal(cache.get('a')?.reply.score, 1); // a is now the most recent
  cache.set('c', entry(3, 1_000));
  assert.equal(cache.get('b'), undefined, 'b was evicted');
  assert.equal(cache.size, 2);
  clock.advance(1_000);
  assert.equal(cache.get('c'), undefined, 'c expired');
  assert.equal(cache.get('a')?.reply.score, 1);
  cache.set('d', entry(4, 0));
  assert.equal(cache.get('d'), undefined, 'an already expired entry is not stored');
  const s = cache.stats();
  assert.deepEqual([s.evictions, s.expired, s.hits], [1, 1, 2]);
});

// --- what is asked ------------------------------------------------------------------------------

test('null sender: skipped by default, nothing sent; asked IP-only when enabled', async () => {
  await reset();
  const skipped = await client().query({ ip: '192.0.2.1', domain: '' });
  assert.deepEqual(skipped, { status: 'skipped', reason: 'null sender (no domain to ask about)' });
  assert.equal((await client().query({ ip: '192.0.2.1', domain: '<>' })).status, 'skipped');
  assert.equal((await client().query({ ip: '192.0.2.1' })).status, 'skipped');
  assert.equal(a.received.length, 0);
  answer(await client({ queryNullSender: true }).query({ ip: '192.0.2.1', domain: '' }));
  assert.equal(a.received[0]!.raw.length, 22);
  assert.equal(a.received[0]!.query!.domain, '');
});

test('domains: IDN to A-labels; unusable ones skipped; bad IPs are errors', async () => {
  assert.equal(siqDomain('user@Bücher.Example'), 'xn--bcher-kva.example');
  assert.equal(siqDomain('<a@[192.0.2.1]>'), null);
  assert.equal(siqDomain('a'.repeat(256)), null);
  assert.equal(siqDomain('exa mple.com'), null);
  assert.equal(siqDomain('<>'), '');
  await reset();
  assert.equal((await client().query({ ip: '192.0.2.1', domain: 'x@[192.0.2.1]' })).status, 'skipped');
  const bad = await client().query({ ip: '192.0.2.300', domain: 'example.com' });
  assert.equal(bad.status, 'error');
  assert.equal(a.received.length, 0);
});

test('identical queries in flight share one datagram', async () => {
  await reset();
  a.script = () => ({ delayMs: 30, reply: { score: 42, ttl: 0 } });
  const c = client();
  const rs = await Promise.all([1, 2, 3].map(() => c.query({ ip: '192.0.2.1', domain: 'example.com' })));
  for (const r of rs) assert.equal(answer(r).reply.score, 42);
  assert.equal(a.received.length, 1);
  assert.equal(c.stats().merged, 2);
});

test('AbortSignal: an abort gives error, a timeout signal gives timeout', async () => {
  await reset();
  a.script = () => null;
  const c = client({ cache: false, timeoutMs: 5000 });
  const controller = new AbortController();
  const pending = c.query({ ip: '192.0.2.1', domain: 'example.com' }, { signal: controller.signal });
  setTimeout(() => controller.abort(new Error('stage over')), 20);
  const r = await pending;
  assert.equal(r.status, 'error');
  assert.match((r as { message: string }).message, /aborted: stage over/);
  const t = await c.query({ ip: '192.0.2.1', domain: 'example.net' }, { signal: AbortSignal.timeout(20) });
  assert.equal(t.status, 'timeout');
  c.close();
});

test('close() settles queries in flight and refuses new ones', async () => {
  await reset();
  a.script = () => null;
  const c = client({ cache: false, timeoutMs: 5000 });
  const pending = c.query({ ip: '192.0.2.1', domain: 'example.com' });
  setTimeout(() => c.close(), 20);
  assert.deepEqual(await pending, { status: 'error', message: 'SIQ client closed' });
  assert.equal((await c.query({ ip: '192.0.2.1', domain: 'example.com' })).status, 'error');
});

test('REDIRECT: followed once to the server in TEXT when enabled, never cached, not followed twice', async () => {
  await reset();
  a.script = () => ({ reply: { score: -3, ttl: 300, text: `::7f00:1 ${b.port}` } });
  b.script = () => ({ reply: { score: 64, ttl: 300, text: 'from b' } });
  const c = client({ followRedirects: true });
  const r = answer(await c.query({ ip: '192.0.2.1', domain: 'example.com' }));
  assert.equal(r.server, b.address);
  assert.equal(r.redirectedFrom, a.address);
  assert.equal(r.reply.score, 64);
  assert.equal(r.tries, 2);
  assert.equal(r.cacheTtl, 0);
  // without following: the REDIRECT itself comes back
  const plain = answer(await client().query({ ip: '192.0.2.1', domain: 'example.com' }));
  assert.equal(plain.reply.kind, 'redirect');
  assert.deepEqual(plain.reply.redirect, { host: '127.0.0.1', port: b.port });
  // a redirect to a redirect stops there
  b.script = () => ({ reply: { score: -3, text: `127.0.0.1 ${a.port}` } });
  const twice = answer(await c.query({ ip: '192.0.2.1', domain: 'example.org' }));
  assert.equal(twice.reply.kind, 'redirect');
  assert.equal(twice.server, b.address);
});

test('servers by name go through the lookup; IPv6 servers work', async () => {
  await reset();
  const looked: string[] = [];
  const named = client({
    servers: [`siq.test:${a.port}`],
    cache: false,
    lookup: async (host) => {
      looked.push(host);
      return ['127.0.0.1'];
    },
  });
  assert.equal(answer(await named.query({ ip: '192.0.2.1', domain: 'example.com' })).server, `siq.test:${a.port}`);
  assert.deepEqual(looked, ['siq.test']);
  const failing = client({
    servers: ['nowhere.test'],
    cache: false,
    lookup: async () => {
      throw new Error('ENOTFOUND');
    },
  });
  const r = await failing.query({ ip: '192.0.2.1', domain: 'example.com' });
  assert.equal(r.status, 'timeout');
  assert.match((r as { message: string }).message, /cannot look up nowhere\.test: ENOTFOUND/);
  const v6 = await startSiqServer({ host: '::1' });
  try {
    const r6 = answer(await new SiqClient({ servers: [v6.address], cache: false }).query({ ip: '2001:db8::25', domain: 'example.com' }));
    assert.equal(r6.server, v6.address);
    assert.equal(v6.received[0]!.query!.ip, '2001:db8::25');
  } finally {
    await v6.close();
  }
});

test('replies in every draft layout come through the client with their revision', async () => {
  for (const revision of ['00', '01', '02'] as const) {
    await reset();
    a.script = () => ({ revision, reply: { score: 61, ipScore: 62, ttl: 120, confidence: 63, text: `rev ${revision}` } });
    const r = answer(await client({ cache: false }).query({ ip: '192.0.2.1', domain: 'example.com' }));
    assert.equal(r.reply.revision, revision);
    assert.equal(r.reply.score, 61);
    assert.equal(r.reply.ipScore, 62);
    assert.equal(r.reply.text, `rev ${revision}`);
    assert.equal(r.reply.ttl, revision === '00' ? null : 120);
    assert.equal(r.reply.confidence, revision === '00' ? -1 : 63);
  }
});
