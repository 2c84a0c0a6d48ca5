/**
 * The shared DNS second level against a real redis-server: two resolvers (stub + memory cache,
 * as createResolver builds them) over the test DNS server share answers and negative answers;
 * failures are not shared; TTLs are clamped and handed on as what is left; Redis down only costs
 * queries.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/common/clock.ts';
import { createResolver, type ManagedResolver } from '../../src/dns/config.ts';
import type { DnsResult, RecordType, Resolver } from '../../src/dns/types.ts';
import type { RedisConnection } from '../../src/redis/connection.ts';
import { RedisDnsCache } from '../../src/redis/dns-cache.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { freePort, redisForTests, redisSkip } from '../support/redis.ts';

describe('RedisDnsCache with a real redis-server', { skip: redisSkip() }, () => {
  const testRedis = redisForTests({ commandTimeoutMs: 2_000 });
  const connect = testRedis.connection;
  let dns: DnsTestServer;
  const closing: Array<() => Promise<unknown>> = [];
  before(async () => {
    dns = await startDnsServer({
      zone: {
        'shared.example': [{ A: '192.0.2.10' }, { TXT: 'v=spf1 -all' }],
        'refused.example': [{ A: '192.0.2.11' }],
      },
      refused: ['refused.example'],
    });
  });
  after(async () => {
    for (const c of closing) await c();
    await dns?.close();
  });

  /** a daemon's resolver: stub → Redis second level → memory cache */
  function daemon(redis: RedisConnection): { resolver: ManagedResolver; layer: () => RedisDnsCache } {
    let layer: RedisDnsCache | undefined;
    const resolver = createResolver({
      servers: [dns.address],
      timeoutMs: 1000,
      attempts: 1,
      secondLevel: (stub) => {
        layer = new RedisDnsCache(stub, redis);
        return layer;
      },
    });
    closing.push(() => resolver.close());
    return { resolver, layer: () => layer! };
  }

  test('an answer one daemon looked up serves the other: the DNS server is asked once', async () => {
    const a = daemon(connect('dns1:'));
    const b = daemon(connect('dns1:'));
    dns.resetStats();
    const first = await a.resolver.query('Shared.Example.', 'A');
    assert.equal(first.status, 'ok');
    await a.layer().settled();
    const second = await b.resolver.query('shared.example', 'A');
    assert.equal(second.status, 'ok');
    assert.deepEqual(second.status === 'ok' && second.records, ['192.0.2.10']);
    assert.equal(dns.count('shared.example', 'A'), 1);
    assert.equal(b.layer().stats().hits, 1);
    assert.equal(await testRedis.server.command('EXISTS', 'dns1:dns:shared.example/A'), 1);
  });

  test('NXDOMAIN and NODATA are shared too; REFUSED is not', async () => {
    const a = daemon(connect('dns2:'));
    const b = daemon(connect('dns2:'));
    dns.resetStats();
    assert.equal((await a.resolver.query('nothing.shared.example', 'A')).status, 'nxdomain');
    assert.equal((await a.resolver.query('shared.example', 'MX')).status, 'nodata');
    assert.equal((await a.resolver.query('refused.example', 'A')).status, 'refused');
    await a.layer().settled();
    assert.equal((await b.resolver.query('nothing.shared.example', 'A')).status, 'nxdomain');
    assert.equal((await b.resolver.query('shared.example', 'MX')).status, 'nodata');
    assert.equal((await b.resolver.query('refused.example', 'A')).status, 'refused');
    assert.equal(dns.count('nothing.shared.example', 'A'), 1);
    assert.equal(dns.count('shared.example', 'MX'), 1);
    assert.equal(dns.count('refused.example', 'A'), 2, 'a failure is asked again');
  });

  test('TTLs: clamped when stored (PX), handed on as what is left', async () => {
    const clock = new ManualClock(Date.now());
    const answers = new Map<string, DnsResult<RecordType>>([
      ['long.example/A', { status: 'ok', records: ['192.0.2.1'], ttl: 86_400, authenticated: true }],
      ['neg.example/A', { status: 'nxdomain', ttl: 86_400 }],
      ['zero.example/A', { status: 'ok', records: ['192.0.2.2'], ttl: 0, authenticated: false }],
    ]);
    let asked = 0;
    const inner: Resolver = {
      query: async <T extends RecordType>(name: string, type: T) => {
        asked++;
        return answers.get(`${name}/${type}`) as DnsResult<T>;
      },
    };
    const layer = new RedisDnsCache(inner, connect('dns3:'), { maxTtl: 600, negativeMaxTtl: 120, clock });
    assert.deepEqual(await layer.query('long.example', 'A'), answers.get('long.example/A'), 'the first answer is passed on as it came');
    await layer.query('neg.example', 'A');
    await layer.query('zero.example', 'A');
    await layer.settled();
    const pttl = Number(await testRedis.server.command('PTTL', 'dns3:dns:long.example/A'));
    assert.ok(pttl > 0 && pttl <= 600_000, `PTTL ${pttl}`);
    const negative = Number(await testRedis.server.command('PTTL', 'dns3:dns:neg.example/A'));
    assert.ok(negative > 0 && negative <= 120_000, `PTTL ${negative}`);
    assert.equal(await testRedis.server.command('EXISTS', 'dns3:dns:zero.example/A'), 0, 'TTL 0 is not shared');
    clock.advance(100_500);
    assert.deepEqual(await layer.query('long.example', 'A'), { status: 'ok', records: ['192.0.2.1'], ttl: 499, authenticated: true });
    assert.deepEqual(await layer.query('neg.example', 'A'), { status: 'nxdomain', ttl: 19 });
    assert.equal(asked, 3);
    clock.advance(20_000);
    await layer.query('neg.example', 'A');
    assert.equal(asked, 4, 'past its expiry (by the clock) the entry is a miss');
  });

  test('a corrupt entry is a miss and the answer is looked up again', async () => {
    const a = daemon(connect('dns4:'));
    await testRedis.server.command('SET', 'dns4:dns:shared.example/TXT', '{"r":{"status":"ok","ttl":5},"x":99999999999999}');
    dns.resetStats();
    const r = await a.resolver.query('shared.example', 'TXT');
    assert.deepEqual(r.status === 'ok' && r.records, [['v=spf1 -all']]);
    assert.equal(dns.count('shared.example', 'TXT'), 1);
    assert.equal(a.layer().stats().corrupt, 1);
  });

  test('Redis down: lookups are answered by the DNS server, writes dropped and counted', async () => {
    const redis = connect('dns5:', `redis://127.0.0.1:${await freePort()}`);
    const a = daemon(redis);
    const r = await a.resolver.query('shared.example', 'A');
    assert.equal(r.status, 'ok');
    await a.layer().settled();
    assert.equal(redis.stats().dropped['dns.set'], 1);
  });
});
