/**
 * The shared Redis connection against a real redis-server: lazy connect, prefixed keys, the
 * fallbacks when Redis is down, killed, or hung (SIGSTOP), recovery when it returns, pub/sub
 * across connections, metrics, and the per-process sharing.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { LogLevel } from '../../src/engine/engine.ts';
import { RedisConnection, RedisUnavailableError, releaseSharedRedis, sharedRedis } from '../../src/redis/connection.ts';
import { defaultRedisConfig } from '../../src/redis/config.ts';
import { registerRedisMetrics } from '../../src/redis/metrics.ts';
import { Registry } from '../../src/telemetry/prometheus.ts';
import { freePort, type RedisTestServer, redisSkip, startRedisServer } from '../support/redis.ts';

/** Polls `done` every 20 ms, up to `tries` times (no timing is asserted: a generous bound only). */
async function until(done: () => boolean | Promise<boolean>, what: string, tries = 500): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`gave up waiting: ${what}`);
}

/** GET in another database: SELECT then the command on one connection (plain RESP). */
async function redisCommandIn(server: RedisTestServer, db: number, ...args: string[]): Promise<unknown> {
  const socket = net.connect(server.port, '127.0.0.1');
  await once(socket, 'connect');
  const enc = (a: string[]) => `*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`;
  socket.write(enc(['AUTH', 'pa ss']) + enc(['SELECT', String(db)]) + enc(args));
  let text = '';
  for await (const chunk of socket) {
    text += (chunk as Buffer).toString();
    const m = /^\+OK\r\n\+OK\r\n(?:\$\d+\r\n(.*)\r\n|\$-1\r\n)/.exec(text);
    if (m) {
      socket.destroy();
      return m[1] ?? null;
    }
  }
  return null;
}

function logs() {
  const lines: Array<{ level: LogLevel; message: string; fields?: Record<string, unknown> }> = [];
  return { lines, log: (level: LogLevel, message: string, fields?: Record<string, unknown>) => lines.push({ level, message, ...(fields ? { fields } : {}) }) };
}

describe('RedisConnection with a real redis-server', { skip: redisSkip() }, () => {
  let server: RedisTestServer;
  /** every connection made, closed at the end even when a test failed half-way */
  const made: RedisConnection[] = [];
  before(async () => {
    server = await startRedisServer();
  });
  after(async () => {
    await Promise.all(made.map((c) => c.close()));
    await server?.stop();
  });

  const connect = (extra: Partial<ConstructorParameters<typeof RedisConnection>[0]> = {}) => {
    const c = new RedisConnection({ ...defaultRedisConfig(), url: server.url, prefix: 'test:', commandTimeoutMs: 2_000, ...extra });
    made.push(c);
    return c;
  };

  test('connects at first use, prefixes keys, counts operations', async () => {
    const redis = connect({ prefix: 'conn1:' });
    assert.equal(redis.state, 'idle');
    await redis.run('t.set', (c) => c.set(redis.key('a', 'b'), 'value'));
    assert.equal(redis.state, 'ready');
    assert.equal(await server.command('GET', 'conn1:a:b'), 'value');
    assert.equal(await redis.run('t.get', (c) => c.get(redis.key('a', 'b'))), 'value');
    const s = redis.stats();
    assert.deepEqual(s.ops['t.set'], { ok: 1, timeout: 0, unavailable: 0, error: 0 });
    assert.equal(s.connects, 1);
    await redis.close();
    assert.equal(redis.state, 'closed');
    await assert.rejects(redis.run('t.get', (c) => c.get('x')), (e: unknown) => e instanceof RedisUnavailableError && e.reason === 'unavailable');
  });

  test('a command Redis refuses is an error, counted, and attempt() returns the fallback', async () => {
    const redis = connect();
    await redis.run('t.set', (c) => c.set(redis.key('str'), 'x'));
    await assert.rejects(redis.run('t.bad', (c) => c.hGet(redis.key('str'), 'f')), (e: unknown) => e instanceof RedisUnavailableError && e.reason === 'error' && /WRONGTYPE/.test(e.message));
    assert.equal(await redis.attempt('t.bad', (c) => c.hGet(redis.key('str'), 'f'), 'fallback'), 'fallback');
    assert.equal(redis.stats().ops['t.bad']!.error, 2);
    await redis.close();
  });

  test('no Redis at all: every operation falls back, writes are counted as dropped, one warning is logged', async () => {
    const port = await freePort();
    const { lines, log } = logs();
    const redis = new RedisConnection({ ...defaultRedisConfig(), url: `redis://127.0.0.1:${port}`, log, commandTimeoutMs: 5_000 });
    made.push(redis);
    assert.equal(await redis.attempt('t.get', (c) => c.get('k'), 'miss'), 'miss');
    for (let i = 0; i < 20; i++) {
      assert.equal(await redis.attempt('t.set', async (c) => (await c.set('k', 'v')) === 'OK', false, { write: true }), false);
    }
    const s = redis.stats();
    assert.equal(s.state, 'down');
    assert.equal(s.ops['t.get']!.unavailable, 1);
    assert.equal(s.dropped['t.set'], 20);
    assert.ok(s.connectionErrors >= 1);
    const warnings = lines.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0]!.fields?.redis, `redis://127.0.0.1:${port}`);
    await redis.close();
  });

  test('Redis killed mid-run: operations fall back; when it returns the connection recovers by itself', async () => {
    const { lines, log } = logs();
    const redis = connect({ log, commandTimeoutMs: 1_000 });
    await redis.run('t.set', (c) => c.set(redis.key('k'), 'before'));
    await server.kill();
    await until(() => redis.state === 'down', 'the client to notice the crash');
    assert.equal(await redis.attempt('t.get', (c) => c.get(redis.key('k')), 'fallback'), 'fallback');
    assert.equal(await redis.attempt('t.set', (c) => c.set(redis.key('k'), 'during'), null, { write: true }), null);
    assert.equal(redis.stats().dropped['t.set'], 1);
    await server.restart();
    await until(() => redis.state === 'ready', 'the reconnect');
    // the restarted server is empty (no persistence): a fresh write and read work again
    await redis.run('t.set', (c) => c.set(redis.key('k'), 'after'));
    assert.equal(await redis.run('t.get', (c) => c.get(redis.key('k'))), 'after');
    assert.ok(redis.stats().connects >= 2);
    assert.ok(lines.some((l) => l.message === 'Redis is back'));
    await redis.close();
  });

  test('a hung Redis (SIGSTOP): operations time out, the breaker then fails them at once, and all is well after SIGCONT', async () => {
    const redis = connect({ commandTimeoutMs: 200 });
    await redis.run('t.set', (c) => c.set(redis.key('h'), '1'));
    server.pause();
    try {
      await assert.rejects(redis.run('t.get', (c) => c.get(redis.key('h'))), (e: unknown) => e instanceof RedisUnavailableError && e.reason === 'timeout');
      // right after a timeout the breaker is open: no new command is sent to the hung server
      assert.equal(await redis.attempt('t.get', (c) => c.get(redis.key('h')), 'fallback'), 'fallback');
      const s = redis.stats();
      assert.equal(s.ops['t.get']!.timeout, 1);
      assert.ok(s.breakerOpened >= 1);
    } finally {
      server.resume();
    }
    await until(async () => (await redis.attempt('t.get', (c) => c.get(redis.key('h')), null)) === '1', 'Redis to answer again');
    await redis.close();
  });

  test('pub/sub: a message published on one connection reaches a subscriber on another, with the prefix on the channel', async () => {
    const a = connect({ prefix: 'ps:' });
    const b = connect({ prefix: 'ps:' });
    const other = connect({ prefix: 'other:' });
    const got: string[] = [];
    const foreign: string[] = [];
    const stop = b.subscribe('feed', (m) => got.push(m));
    other.subscribe('feed', (m) => foreign.push(m));
    // the subscription is made in the background: publish until it is there
    await until(async () => {
      await a.publish('feed', 'hello');
      return got.length > 0;
    }, 'the subscription');
    assert.equal(got[0], 'hello');
    assert.deepEqual(foreign, []);
    await stop();
    await Promise.all([a.close(), b.close(), other.close()]);
  });

  test('the subscription survives a Redis restart', async () => {
    const a = connect({ prefix: 'ps2:' });
    const b = connect({ prefix: 'ps2:' });
    const got: string[] = [];
    b.subscribe('feed', (m) => got.push(m));
    await until(async () => {
      await a.publish('feed', 'one');
      return got.includes('one');
    }, 'the first subscription');
    await server.kill();
    await server.restart();
    await until(async () => {
      await a.publish('feed', 'two');
      return got.includes('two');
    }, 'the subscription after the restart');
    await Promise.all([a.close(), b.close()]);
  });

  test('metrics: up, operations by result, dropped writes', async () => {
    const redis = connect({ prefix: 'm:' });
    const registry = new Registry();
    registerRedisMetrics(registry, redis);
    await redis.run('siq.get', (c) => c.get(redis.key('nothing')));
    const text = registry.render();
    assert.match(text, /^checkid_redis_up 1$/m);
    assert.match(text, /^checkid_redis_operations_total\{op="siq\.get",result="ok"\} 1$/m);
    await redis.close();
    await redis.attempt('siq.set', (c) => c.set('x', 'y'), null, { write: true });
    const after = registry.render();
    assert.match(after, /^checkid_redis_up 0$/m);
    assert.match(after, /^checkid_redis_writes_dropped_total\{op="siq\.set"\} 1$/m);
  });

  test('a Unix socket URL with a database, and a password-protected server: right password works, a wrong one falls back', async () => {
    const secured = await startRedisServer({ unixSocket: true, password: 'pa ss' });
    try {
      const viaSocket = new RedisConnection({ ...defaultRedisConfig(), url: `unix://${secured.socket}?db=3&password=pa%20ss`, prefix: 'sock:', commandTimeoutMs: 2_000 });
      made.push(viaSocket);
      await viaSocket.run('t.set', (c) => c.set(viaSocket.key('k'), 'over the socket'));
      const inDb3 = await redisCommandIn(secured, 3, 'GET', 'sock:k');
      assert.equal(inDb3, 'over the socket');
      await viaSocket.close();

      const { lines, log } = logs();
      const wrong = new RedisConnection({ ...defaultRedisConfig(), url: `redis://:wrong@127.0.0.1:${secured.port}`, log, commandTimeoutMs: 2_000 });
      made.push(wrong);
      assert.equal(await wrong.attempt('t.get', (c) => c.get('k'), 'fallback'), 'fallback');
      assert.notEqual(wrong.state, 'ready');
      assert.ok(lines.some((l) => l.level === 'warn' && /WRONGPASS|invalid|auth/i.test(String(l.fields?.error))), JSON.stringify(lines));
      assert.ok(lines.every((l) => !JSON.stringify(l).includes('wrong@')), 'the password is never logged');
      await wrong.close();
    } finally {
      await secured.stop();
    }
  });

  test('sharedRedis: one connection per process for the same settings, closed by the last user', async () => {
    const config = { ...defaultRedisConfig(), url: server.url, prefix: 'shared:', connectTimeoutMs: 5_000, commandTimeoutMs: 5_000 };
    const one = sharedRedis(config);
    const two = sharedRedis(config);
    assert.equal(one, two);
    assert.notEqual(sharedRedis({ ...config, prefix: 'else:' }), one);
    await one.run('t.ping', (c) => c.ping());
    await releaseSharedRedis(one);
    assert.equal(two.state, 'ready');
    await releaseSharedRedis(two);
    assert.equal(two.state, 'closed');
    await releaseSharedRedis(sharedRedis({ ...config, prefix: 'else:' }));
    await releaseSharedRedis(sharedRedis({ ...config, prefix: 'else:' }));
  });
});
