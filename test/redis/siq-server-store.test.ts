/**
 * RedisSiqServerStore against a real redis-server: the shared SiqServerStore contract
 * (test/siq/server/store-contract.ts), then what only a shared store has to show: two store
 * objects (two processes) racing for the same e-mail or IP, concurrent report counters adding up,
 * changes seen across objects, and Redis down rejecting instead of hanging.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RedisUnavailableError } from '../../src/redis/connection.ts';
import { RedisSiqServerStore } from '../../src/redis/siq-server-store.ts';
import { SiqStoreError } from '../../src/siq/server/store.ts';
import { runStoreContract } from '../siq/server/store-contract.ts';
import { freePort, redisForTests, redisSkip } from '../support/redis.ts';

const T0 = 1_700_000_000_000;
const DAY = 86_400_000;
const skip = redisSkip();
let n = 0;

const testRedis = redisForTests({ commandTimeoutMs: 5_000, skip });
const { connection } = testRedis;

if (!skip) {
  // each store gets a fresh prefix: an empty store, as the contract wants
  runStoreContract('redis', () => new RedisSiqServerStore(connection(`contract-${n++}:`), { ownsConnection: true }));
}

describe('RedisSiqServerStore: shared by several processes', { skip }, () => {
  test('keys live under the prefix and namespace; the account hash is readable', async () => {
    const store = new RedisSiqServerStore(connection('layout:'), { ownsConnection: true });
    const a = await store.createAccount({ email: 'a@example.com', passwordHash: 'h', createdAt: T0 });
    await store.addSourceIp(a.id, '192.0.2.1');
    assert.equal(await testRedis.server.command('HGET', `layout:siqs:account:${a.id}`, 'email'), 'a@example.com');
    assert.equal(await testRedis.server.command('HGET', 'layout:siqs:ip', '192.0.2.1'), a.id);
    const keys = (await testRedis.server.command('KEYS', '*')) as string[];
    assert.ok(keys.filter((k) => k.startsWith('layout:')).every((k) => k.startsWith('layout:siqs:')), JSON.stringify(keys));
    await store.close();
  });

  test('two store objects racing for one e-mail or one IP: exactly one wins, the others get conflict', async () => {
    const one = new RedisSiqServerStore(connection('race:'), { ownsConnection: true });
    const two = new RedisSiqServerStore(connection('race:'), { ownsConnection: true });
    const attempts = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).createAccount({ email: 'Same@Example.com', passwordHash: `h${i}`, createdAt: T0 + i })),
    );
    assert.equal(attempts.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of attempts) if (r.status === 'rejected') assert.equal((r.reason as SiqStoreError).code, 'conflict');
    const a = await one.createAccount({ email: 'a@example.com', passwordHash: 'h', createdAt: T0 });
    const b = await two.createAccount({ email: 'b@example.com', passwordHash: 'h', createdAt: T0 });
    const ips = await Promise.allSettled([one.addSourceIp(a.id, '198.51.100.7'), two.addSourceIp(b.id, '::ffff:198.51.100.7')]);
    assert.equal(ips.filter((r) => r.status === 'fulfilled').length, 1);
    const owner = await two.accountIdForIp('198.51.100.7');
    assert.ok(owner === a.id || owner === b.id);
    assert.deepEqual([...(await one.listSourceIps(a.id)), ...(await one.listSourceIps(b.id))], ['198.51.100.7']);
    assert.equal((await one.listAccounts()).length, 3);
    await Promise.all([one.close(), two.close()]);
  });

  test('report counters: many concurrent additions from two objects all count (atomic decay-and-add)', async () => {
    const one = new RedisSiqServerStore(connection('counters:'), { ownsConnection: true });
    const two = new RedisSiqServerStore(connection('counters:'), { ownsConnection: true });
    const a = await one.createAccount({ email: 'a@example.com', passwordHash: 'h', createdAt: T0 });
    const H = 7 * DAY;
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? one : two).addReport(a.id, 'ip', '192.0.2.1', { accepted: 1, rejected: i % 4 === 0 ? 1 : 0 }, T0, H)),
    );
    assert.deepEqual(await two.reportCounts(a.id, 'ip', '192.0.2.1', T0, H), { accepted: 200, rejected: 50 });
    // later additions decay what is there first, whoever adds
    await one.addReport(a.id, 'ip', '192.0.2.1', { accepted: 0, rejected: 0 }, T0 + H, H);
    const halved = await two.reportCounts(a.id, 'ip', '192.0.2.1', T0 + H, H);
    assert.ok(Math.abs(halved.accepted - 100) < 1e-9 && Math.abs(halved.rejected - 25) < 1e-9, JSON.stringify(halved));
    await Promise.all([one.close(), two.close()]);
  });

  test("one object's configuration change moves the other's change counter; its watchers hear only their own", async () => {
    const one = new RedisSiqServerStore(connection('changes:'), { ownsConnection: true });
    const two = new RedisSiqServerStore(connection('changes:'), { ownsConnection: true });
    const heard: string[] = [];
    two.watch((c) => heard.push(c.what));
    const c0 = await two.changeCounter();
    const a = await one.createAccount({ email: 'a@example.com', passwordHash: 'h', createdAt: T0 });
    await one.setProfile(a.id, { base: 60 });
    assert.ok((await two.changeCounter()) >= c0 + 2);
    assert.deepEqual(await two.getProfile(a.id), { base: 60 });
    assert.deepEqual(heard, []);
    await Promise.all([one.close(), two.close()]);
  });

  test('Redis down: operations reject with RedisUnavailableError (never hang), the query log is dropped and counted', async () => {
    const redis = connection('down:', `redis://127.0.0.1:${await freePort()}`);
    const store = new RedisSiqServerStore(redis);
    await assert.rejects(store.createAccount({ email: 'a@example.com', passwordHash: 'h', createdAt: T0 }), (e: unknown) => e instanceof RedisUnavailableError);
    await assert.rejects(store.getAccount('x'), (e: unknown) => e instanceof RedisUnavailableError);
    // bad input is still refused before Redis is asked
    await assert.rejects(store.addSourceIp('x', 'not-an-ip'), (e: unknown) => e instanceof SiqStoreError && e.code === 'invalid');
    await store.appendQueryLog([{ accountId: 'x', at: T0, ip: '192.0.2.1', domain: '', score: 1, text: '' }]);
    assert.equal(redis.stats().dropped['siqs.log'], 1);
    await store.close();
    await redis.close();
  });
});
