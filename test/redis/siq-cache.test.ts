/**
 * The Redis SIQ cache against a real redis-server and the scripted SIQ server: the cache
 * contract (round trip, expiry by the clock and by Redis's PX, prefix isolation), the client's
 * rules on what is cached, two clients sharing one answer, corrupt entries, Redis down.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/common/clock.ts';
import { RedisSiqCache, readSiqEntry, TieredSiqCache } from '../../src/redis/siq-cache.ts';
import { MemorySiqCache, type SiqCacheEntry, siqCacheKey } from '../../src/siq/cache.ts';
import { SiqClient, type SiqResult } from '../../src/siq/client.ts';
import { freePort, redisForTests, redisSkip } from '../support/redis.ts';
import { type SiqTestServer, siqReply, startSiqServer } from '../support/siq-server.ts';

function answer(r: SiqResult): Extract<SiqResult, { status: 'answer' }> {
  assert.equal(r.status, 'answer', JSON.stringify(r));
  return r as Extract<SiqResult, { status: 'answer' }>;
}

async function until(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`gave up waiting: ${what}`);
}

describe('RedisSiqCache with a real redis-server', { skip: redisSkip() }, () => {
  const testRedis = redisForTests({ commandTimeoutMs: 2_000 });
  const connect = testRedis.connection;
  let siq: SiqTestServer;
  before(async () => {
    siq = await startSiqServer();
  });
  after(async () => {
    await siq?.close();
  });

  test('contract: a miss, then the stored entry back exactly, under <prefix>siq:<key> with PX from expiresAt', async () => {
    const clock = new ManualClock(Date.now());
    const cache = new RedisSiqCache(connect('c1:'), { clock });
    const key = siqCacheKey([{ host: '192.0.2.53', port: 6262 }], 'mail', '192.0.2.1', 'Example.COM');
    assert.equal(await cache.get(key), undefined);
    const entry: SiqCacheEntry = { reply: siqReply(73, { extraId: '0a0b0c0d', extra: 'ff' }), server: '192.0.2.53:6262', storedAt: clock.now(), expiresAt: clock.now() + 120_000 };
    await cache.set(key, entry);
    assert.deepEqual(await cache.get(key), entry);
    const redisKey = `c1:siq:${key}`;
    assert.equal(cache.keyOf(key), redisKey);
    const pttl = Number(await testRedis.server.command('PTTL', redisKey));
    assert.ok(pttl > 0 && pttl <= 120_000, `PTTL ${pttl}`);
    assert.deepEqual(JSON.parse(String(await testRedis.server.command('GET', redisKey))), entry);
    assert.deepEqual(cache.stats(), { hits: 1, misses: 1, corrupt: 0, inserts: 1 });
  });

  test('expiry: past expiresAt (by the injected clock) it is a miss; an entry already expired is not written', async () => {
    const clock = new ManualClock(Date.now());
    const cache = new RedisSiqCache(connect('c2:'), { clock });
    await cache.set('k', { reply: siqReply(10), server: 's:1', storedAt: clock.now(), expiresAt: clock.now() + 60_000 });
    clock.advance(59_999);
    assert.equal((await cache.get('k'))?.reply.score, 10);
    clock.advance(1);
    assert.equal(await cache.get('k'), undefined);
    await cache.set('gone', { reply: siqReply(10), server: 's:1', storedAt: clock.now(), expiresAt: clock.now() });
    assert.equal(await testRedis.server.command('EXISTS', 'c2:siq:gone'), 0);
  });

  test('expiry: Redis drops the key itself when the TTL runs out', async () => {
    const cache = new RedisSiqCache(connect('c3:'));
    const now = Date.now();
    await cache.set('short', { reply: siqReply(10), server: 's:1', storedAt: now, expiresAt: now + 30 });
    await until(async () => (await testRedis.server.command('EXISTS', 'c3:siq:short')) === 0, 'Redis to expire the key');
    assert.equal(await cache.get('short'), undefined);
  });

  test('prefix isolation: two prefixes on one Redis do not see each other', async () => {
    const a = new RedisSiqCache(connect('site-a:'));
    const b = new RedisSiqCache(connect('site-b:'));
    const now = Date.now();
    await a.set('same-key', { reply: siqReply(1), server: 'a:1', storedAt: now, expiresAt: now + 60_000 });
    await b.set('same-key', { reply: siqReply(99), server: 'b:1', storedAt: now, expiresAt: now + 60_000 });
    assert.equal((await a.get('same-key'))?.reply.score, 1);
    assert.equal((await b.get('same-key'))?.reply.score, 99);
    assert.deepEqual(await testRedis.server.command('KEYS', 'site-a:*'), ['site-a:siq:same-key']);
  });

  test('corrupt or foreign values are misses, counted, never thrown', async () => {
    const cache = new RedisSiqCache(connect('c4:'));
    await testRedis.server.command('SET', 'c4:siq:junk', 'not json');
    await testRedis.server.command('SET', 'c4:siq:foreign', '{"reply":{"score":"high"},"server":"x","storedAt":1,"expiresAt":99999999999999}');
    await testRedis.server.command('SET', 'c4:siq:huge', `"${'x'.repeat(20_000)}"`);
    for (const k of ['junk', 'foreign', 'huge']) assert.equal(await cache.get(k), undefined, k);
    assert.equal(cache.stats().corrupt, 3);
    assert.equal(readSiqEntry('[]'), null);
    assert.equal(readSiqEntry('{"reply":{"score":1,"kind":"maybe"},"server":"x","storedAt":1,"expiresAt":2}'), null);
  });

  test('two SIQ clients on the same Redis: the second is answered from the shared cache, the server sees one query', async () => {
    siq.script = () => ({ reply: { score: 73, ipScore: 80, ttl: 300, confidence: 90, text: 'shared' } });
    const before = siq.received.length;
    const redis = connect('share:');
    // two daemons: each its own client and memory cache, the same Redis behind
    const one = new SiqClient({ servers: [siq.address], cache: new TieredSiqCache(new MemorySiqCache(), new RedisSiqCache(redis)) });
    const two = new SiqClient({ servers: [siq.address], cache: new TieredSiqCache(new MemorySiqCache(), new RedisSiqCache(connect('share:'))) });
    const first = answer(await one.query({ ip: '192.0.2.1', domain: 'shared.example' }));
    assert.equal(first.cached, false);
    assert.equal(first.cacheTtl, 300);
    const second = answer(await two.query({ ip: '192.0.2.1', domain: 'shared.example' }));
    assert.equal(second.cached, true);
    assert.equal(second.reply.score, 73);
    assert.equal(second.reply.text, 'shared');
    assert.equal(second.server, siq.address);
    assert.equal(siq.received.length - before, 1);
    one.close();
    two.close();
  });

  test("the client's rules decide: TEMPFAIL, TTL 0 and TTL-less -00 replies are never stored; UNKNOWN -02 is", async () => {
    const redis = connect('rules:');
    const client = new SiqClient({ servers: [siq.address], cache: new RedisSiqCache(redis) });
    const cases: Array<[string, () => ReturnType<typeof siq.script>, boolean]> = [
      ['tempfail.example', () => ({ reply: { score: -2, ttl: 300 } }), false],
      ['zero.example', () => ({ reply: { score: 40, ttl: 0 } }), false],
      ['old.example', () => ({ reply: { score: 40 }, revision: '00' }), false],
      ['error.example', () => ({ reply: { score: -4, ttl: 300 } }), false],
      ['unknown.example', () => ({ reply: { score: -1, ttl: 300 } }), true],
    ];
    for (const [domain, script, stored] of cases) {
      siq.script = script;
      answer(await client.query({ ip: '192.0.2.9', domain }));
      const key = siqCacheKey(client.servers, 'mail', '192.0.2.9', domain);
      assert.equal(await testRedis.server.command('EXISTS', `rules:siq:${key}`), stored ? 1 : 0, domain);
    }
    client.close();
  });

  test('Redis down: the query is still answered, not cached, and the drop is counted', async () => {
    const redis = connect('down:', `redis://127.0.0.1:${await freePort()}`);
    siq.script = () => ({ reply: { score: 55, ttl: 300 } });
    const client = new SiqClient({ servers: [siq.address], cache: new RedisSiqCache(redis) });
    const r = answer(await client.query({ ip: '192.0.2.1', domain: 'down.example' }));
    assert.equal(r.reply.score, 55);
    assert.equal(r.cached, false);
    assert.equal(r.cacheTtl, 0, 'the answer was not stored');
    assert.equal(redis.stats().dropped['siq.set'], 1);
    assert.equal(redis.stats().ops['siq.get']!.unavailable, 1);
    client.close();
  });

  test('tiered: a local hit never asks Redis; a local miss that Redis answers is kept locally', async () => {
    const redis = connect('tier:');
    const shared = new RedisSiqCache(redis);
    const now = Date.now();
    await shared.set('k', { reply: siqReply(42), server: 's:1', storedAt: now, expiresAt: now + 60_000 });
    const local = new MemorySiqCache();
    const tiered = new TieredSiqCache(local, shared);
    assert.equal((await tiered.get('k'))?.reply.score, 42);
    assert.equal(local.size, 1);
    const gets = redis.stats().ops['siq.get']!.ok;
    assert.equal((await tiered.get('k'))?.reply.score, 42);
    assert.equal(redis.stats().ops['siq.get']!.ok, gets, 'the second get stayed local');
  });
});
