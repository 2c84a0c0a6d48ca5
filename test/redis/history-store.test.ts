/**
 * RedisHistoryStore against a real redis-server: the shared HistoryStore contract
 * (test/history/store-contract.ts, with reopen: the data is in Redis), then what a shared store
 * adds: daemon A's verdicts (records, and an engine's through the HistoryRecorder) seen by
 * daemon B, stored and live; the size cap, retention, and
 * Redis down (appends dropped and counted, live feed kept; reads reject).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Engine, staticPolicy } from '../../src/engine/engine.ts';
import type { VerdictRecord } from '../../src/history/record.ts';
import { HistoryRecorder } from '../../src/history/recorder.ts';
import { loadConfigFile } from '../../src/policy/config.ts';
import { RedisUnavailableError } from '../../src/redis/connection.ts';
import { RedisHistoryStore } from '../../src/redis/history-store.ts';
import { eventually, makeRecord, runHistoryContract } from '../history/store-contract.ts';
import { FIXTURES, seedZone } from '../support/fixtures.ts';
import { freePort, redisForTests, redisSkip } from '../support/redis.ts';
import { MemoryResolver } from '../support/zone.ts';

const skip = redisSkip();
let n = 0;

const testRedis = redisForTests({ commandTimeoutMs: 5_000, skip });
const { connection } = testRedis;

if (!skip) {
  const prefixes = new WeakMap<object, string>();
  runHistoryContract(
    'redis',
    async () => {
      const prefix = `hc-${n++}:`;
      // a small page size, so the contract's long read crosses many pages
      const s = new RedisHistoryStore(connection(prefix), { ownsConnection: true, pageSize: 700 });
      prefixes.set(s, prefix);
      return s;
    },
    {
      reopen: async (s) => {
        await s.close();
        return new RedisHistoryStore(connection(prefixes.get(s)!), { ownsConnection: true });
      },
    },
  );
}

describe('RedisHistoryStore shared by two daemons', { skip }, () => {
  test("daemon B lists daemon A's verdicts and follows them live; neither gets its own twice", async () => {
    const a = new RedisHistoryStore(connection('fleet:'), { ownsConnection: true });
    const b = new RedisHistoryStore(connection('fleet:'), { ownsConnection: true });
    const liveA: VerdictRecord[] = [];
    const liveB: VerdictRecord[] = [];
    a.subscribe((r) => liveA.push(r));
    b.subscribe((r) => liveB.push(r));
    // B's subscription is made in the background: append until B hears one
    let t = 1_700_000_000_000;
    for (let i = 0; i < 500 && liveB.length === 0; i++) {
      await a.append([makeRecord({ time: t++, ip: '192.0.2.10' })]);
      await new Promise((r) => setTimeout(r, 20));
    }
    const warm = liveB.length;
    await a.append([makeRecord({ time: t, ip: '192.0.2.11', action: 'REJECT' }), makeRecord({ time: t, ip: '192.0.2.12' })]);
    await b.append([makeRecord({ time: t + 1, ip: '198.51.100.1' })]);
    await eventually(() => liveB.length === warm + 3, "B hears A's two and its own one");
    assert.deepEqual(
      liveB.slice(warm).map((r) => r.ip),
      ['192.0.2.11', '192.0.2.12', '198.51.100.1'],
    );
    await eventually(() => liveA.some((r) => r.ip === '198.51.100.1'), "A hears B's");
    assert.equal(liveA.filter((r) => r.ip === '192.0.2.11').length, 1, 'A hears its own record once');
    const seenByB = await b.recent(3);
    assert.deepEqual(
      seenByB.map((r) => [r.ip, r.action]),
      [
        ['192.0.2.11', 'REJECT'],
        ['192.0.2.12', 'FILTER'],
        ['198.51.100.1', 'FILTER'],
      ],
    );
    assert.equal(await a.count(), await b.count());
    await Promise.all([a.close(), b.close()]);
  });

  test("verdicts an engine decided on daemon A (through the HistoryRecorder) are followed live and listed on daemon B", async () => {
    const a = new RedisHistoryStore(connection('engines:'), { ownsConnection: true });
    const b = new RedisHistoryStore(connection('engines:'), { ownsConnection: true });
    const live: VerdictRecord[] = [];
    b.subscribe((r) => live.push(r));
    // the seed examples: example.com is accepted, example.net refused at ID
    const resolver = new MemoryResolver(seedZone());
    const config = loadConfigFile(`${FIXTURES}seed-authent.yaml`);
    const recorder = new HistoryRecorder({ store: a });
    const engine = new Engine({ resolver, policy: staticPolicy(config, resolver), observer: recorder.observer });
    try {
      // B's subscription is made in the background: decide verdicts until B hears one
      for (let i = 0; i < 250 && live.length === 0; i++) {
        assert.equal((await engine.checkID({ ip: '192.0.2.1', id: 'example.com' })).action, 'ACCEPT');
        await recorder.flush();
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(live.length > 0, 'B heard a verdict decided on A');
      const heard = live.length;
      await engine.checkID({ ip: '192.0.2.1', id: 'example.net' });
      await recorder.flush();
      await eventually(() => live.length === heard + 1, "B hears A's REJECT");
      assert.deepEqual([live.at(-1)!.action, live.at(-1)!.id, live.at(-1)!.stage], ['REJECT', 'example.net', 'id']);
      assert.deepEqual(await b.recent(1), [live.at(-1)]);
      assert.equal(await b.count(), live.length);
    } finally {
      await recorder.close();
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('maxRecords: the oldest go first', async () => {
    const s = new RedisHistoryStore(connection('capped:'), { ownsConnection: true, maxRecords: 5 });
    for (let i = 0; i < 4; i++) await s.append([makeRecord({ time: 1000 * (i + 1) }), makeRecord({ time: 1000 * (i + 1) + 1 })]);
    assert.equal(await s.count(), 5);
    assert.deepEqual(
      (await s.recent(10)).map((r) => r.time),
      [2001, 3000, 3001, 4000, 4001],
    );
    assert.equal(Number(await testRedis.server.command('HLEN', 'capped:history:rec')), 5);
    await s.close();
  });

  test('retentionDays: records older than the retention go when the store opens', async () => {
    const now = 1_800_000_000_000;
    const day = 86_400_000;
    const writer = new RedisHistoryStore(connection('retained:'), { ownsConnection: true });
    await writer.append([makeRecord({ time: now - 10 * day }), makeRecord({ time: now - 2 * day }), makeRecord({ time: now })]);
    await writer.close();
    const s = new RedisHistoryStore(connection('retained:'), { ownsConnection: true, retentionDays: 7, now: () => now });
    // the prune at open runs in the background
    for (let i = 0; i < 250 && (await s.count()) !== 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      (await s.recent(10)).map((r) => r.time),
      [now - 2 * day, now],
    );
    await s.close();
  });

  test('a damaged stored value is skipped and reported, the rest is read', async () => {
    const bad: string[] = [];
    const s = new RedisHistoryStore(connection('damaged:'), { ownsConnection: true, onBadRecord: (m) => bad.push(m) });
    await s.append([makeRecord({ time: 1000 }), makeRecord({ time: 2000 })]);
    await testRedis.server.command('HSET', 'damaged:history:rec', '0000000000000001', '{"v":99}');
    assert.deepEqual(
      (await s.recent(10)).map((r) => r.time),
      [2000],
    );
    assert.deepEqual(bad, ['0000000000000001']);
    await s.close();
  });

  test('Redis down: append resolves (dropped, counted) and still reaches local listeners; reads reject', async () => {
    const redis = connection('down:', `redis://127.0.0.1:${await freePort()}`);
    const s = new RedisHistoryStore(redis);
    const live: VerdictRecord[] = [];
    s.subscribe((r) => live.push(r));
    await s.append([makeRecord({ time: 1000 })]);
    assert.equal(live.length, 1);
    assert.equal(redis.stats().dropped['history.append'], 1);
    await assert.rejects(s.recent(5), (e: unknown) => e instanceof RedisUnavailableError);
    await s.close();
    await redis.close();
  });
});
