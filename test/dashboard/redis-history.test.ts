/**
 * dashboard.history.db: redis — two real `checkid serve` daemons on one real redis-server: a
 * verdict made by daemon A is in daemon B's dashboard history and on its live stream.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../../src/policy/config.ts';
import { type Daemon, startDaemon } from '../support/daemon.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { seedZone, tempDir } from '../support/fixtures.ts';
import { type RedisTestServer, redisSkip, startRedisServer } from '../support/redis.ts';

test('dashboard.history.db: redis without redis.url is a configuration error on its line', () => {
  assert.throws(
    () => parseConfig('dashboard:\n  history:\n    db: redis\n', 'checkid.yaml'),
    (err: ConfigError) => err instanceof ConfigError && /checkid.yaml: line 3, column 5: dashboard.history.db is redis, but redis.url is not set/.test(err.problems[0]!),
  );
  assert.equal(parseConfig('redis:\n  url: redis://127.0.0.1:6379\ndashboard:\n  history:\n    db: redis\n').dashboard.history.db, 'redis');
});

const start = (config: string, dns: DnsTestServer) => startDaemon(['serve', '--config', config, '--resolver', dns.address]);

async function stop(d: Daemon | undefined): Promise<void> {
  if (!d || d.child.exitCode !== null) return;
  assert.equal(await d.stop(), 0);
}

describe('a history shared through Redis', { skip: redisSkip() }, () => {
  let redis: RedisTestServer;
  let dns: DnsTestServer;
  before(async () => {
    redis = await startRedisServer();
    dns = await startDnsServer({ zone: seedZone() });
  });
  after(async () => {
    await dns?.close();
    await redis?.stop();
  });

  test("daemon B's dashboard lists and streams daemon A's verdicts", async () => {
    const dir = tempDir('checkid-dash-redis-');
    const config = (name: string) => {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(
        file,
        `authserv_id: ${name}.receiver.example\nstate_dir: ${dir}/${name}\nredis:\n  url: ${redis.url}\n  prefix: 'dashtest:'\n  command_timeout_ms: 5000\nhttp:\n  listen: 127.0.0.1:0\nmilter:\n  listen: ''\ndashboard:\n  listen: 127.0.0.1:0\n  history:\n    db: redis\n`,
      );
      return file;
    };
    let a: Daemon | undefined;
    let b: Daemon | undefined;
    try {
      a = await start(config('a'), dns);
      b = await start(config('b'), dns);
      const stream = await fetch(`http://${b.listening.dashboard}/api/stream`);
      const reader = stream.body!.getReader();
      // example.net does not authorize 192.0.2.1: REJECT at ID, on daemon A
      const v = (await (await fetch(`http://${a.listening.http}/v1/check`, { method: 'POST', body: JSON.stringify({ ip: '192.0.2.1', id: 'example.net' }) })).json()) as { action: string };
      assert.equal(v.action, 'REJECT');
      let text = '';
      const until = Date.now() + 10_000;
      while (!text.includes('event: verdict') && Date.now() < until) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      await reader.cancel();
      const data = /^data: (.*)$/m.exec(text.slice(text.indexOf('event: verdict')))?.[1];
      assert.ok(data, `B's stream got no verdict: ${text}`);
      const live = JSON.parse(data) as { ip: string; id: string; action: string; reason: string };
      assert.deepEqual([live.ip, live.id, live.action, live.reason], ['192.0.2.1', 'example.net', 'REJECT', 'identity-spf-fail']);
      const recent = (await (await fetch(`http://${b.listening.dashboard}/api/recent`)).json()) as { records: Array<{ id: string; action: string }> };
      assert.deepEqual(
        recent.records.map((r) => [r.id, r.action]),
        [['example.net', 'REJECT']],
      );
      const state = (await (await fetch(`http://${b.listening.dashboard}/api/state`)).json()) as { history: { store: string; count: number } };
      assert.match(state.history.store, /dashtest:history/);
      assert.equal(state.history.count, 1);
    } finally {
      await stop(a);
      await stop(b);
    }
  });
});
