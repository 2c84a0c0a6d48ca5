/** The `redis:` config section and the Redis URL reader. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/policy/config.ts';
import { parseRedisUrl } from '../../src/redis/config.ts';
import { configProblems } from '../support/config.ts';

test('URLs: redis://, rediss:// as written (password hidden in display), unix sockets with db and credentials', () => {
  assert.deepEqual(parseRedisUrl('redis://127.0.0.1:6379'), { url: 'redis://127.0.0.1:6379', display: 'redis://127.0.0.1:6379' });
  assert.deepEqual(parseRedisUrl('rediss://app:s3cret@redis.example:6380/2'), {
    url: 'rediss://app:s3cret@redis.example:6380/2',
    display: 'rediss://app:***@redis.example:6380/2',
  });
  assert.deepEqual(parseRedisUrl('unix:///run/redis/redis.sock'), { path: '/run/redis/redis.sock', display: 'unix:///run/redis/redis.sock' });
  assert.deepEqual(parseRedisUrl('unix:/run/redis.sock?db=3&password=pw'), {
    path: '/run/redis.sock',
    database: 3,
    password: 'pw',
    display: 'unix:///run/redis.sock?db=3&password=***',
  });
});

test('URLs: every bad form is refused with a message naming the problem', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['127.0.0.1:6379', /not a Redis URL scheme|not a URL/],
    ['http://127.0.0.1:6379', /http: is not a Redis URL scheme/],
    ['redis://', /not a URL|no host/],
    ['redis://127.0.0.1:6379/x', /database must be a number/],
    ['redis://127.0.0.1:6379/?db=2', /query strings/],
    ['unix:relative.sock', /absolute path/],
    ['unix:///run/r.sock?timeout=5', /unknown parameter "timeout"/],
    ['unix:///run/r.sock?db=-1', /database must be a number/],
  ];
  for (const [url, message] of cases) assert.throws(() => parseRedisUrl(url), message, url);
});

test('the section: defaults, every key read, an empty file has Redis off and both caches in memory', () => {
  const d = parseConfig('');
  assert.deepEqual(d.redis, { url: '', prefix: 'checkid:', connectTimeoutMs: 2000, commandTimeoutMs: 250 });
  assert.equal(d.siq.cache.backend, 'memory');
  assert.equal(d.resolver.cache === false ? 'off' : d.resolver.cache.backend, 'memory');
  const c = parseConfig(
    'redis:\n  url: redis://10.0.0.5:6379/1\n  prefix: "mx-fleet:"\n  connect_timeout_ms: 500\n  command_timeout_ms: 100\nsiq:\n  cache:\n    backend: redis\nresolver:\n  cache:\n    backend: redis\n    max_ttl: 600\n',
  );
  assert.deepEqual(c.redis, { url: 'redis://10.0.0.5:6379/1', prefix: 'mx-fleet:', connectTimeoutMs: 500, commandTimeoutMs: 100 });
  assert.equal(c.siq.cache.backend, 'redis');
  assert.deepEqual(c.resolver.cache, { minTtl: 0, maxTtl: 600, negativeMaxTtl: 3600, maxEntries: 100_000, backend: 'redis' });
});

test('errors name the line and key: a bad URL, a bad prefix, an unknown backend, backend redis without a URL', () => {
  assert.match(configProblems('redis:\n  url: http://x\n')[0]!, /^\/etc\/checkid\/checkid\.yaml: line 2, column 3: redis\.url "http:\/\/x" is not valid \(.*redis:\/\//);
  assert.match(configProblems('redis:\n  prefix: "a b"\n')[0]!, /redis\.prefix "a b" is not valid/);
  assert.match(configProblems('siq:\n  cache:\n    backend: memcached\n')[0]!, /line 3, column 5: siq\.cache\.backend must be one of "memory", "redis"/);
  const missing = configProblems('siq:\n  cache:\n    backend: redis\nresolver:\n  cache:\n    backend: redis\n');
  assert.equal(missing.length, 2);
  assert.match(missing[0]!, /line 3, column 5: siq\.cache\.backend is redis but redis\.url is empty/);
  assert.match(missing[1]!, /line 6, column 5: resolver\.cache\.backend is redis but redis\.url is empty/);
  assert.match(configProblems('redis:\n  command_timeout_ms: 0\n')[0]!, /redis\.command_timeout_ms must be at least 1/);
});
