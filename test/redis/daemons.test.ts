/**
 * Two real `checkid serve` processes sharing one real redis-server: a SIQ answer fetched by
 * daemon A is served to daemon B from the shared cache (the scripted SIQ server gets one query);
 * with Redis killed, both still give verdicts; when Redis returns they share again. Also DNS:
 * B's lookup of a name A already resolved does not reach the DNS server.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Daemon as CheckidDaemon, startDaemon as startCheckid } from '../support/daemon.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { seedZone, tempDir } from '../support/fixtures.ts';
import { type RedisTestServer, redisSkip, startRedisServer } from '../support/redis.ts';
import { type SiqTestServer, startSiqServer } from '../support/siq-server.ts';

interface Daemon {
  name: string;
  http: string;
  proc: CheckidDaemon;
}

async function startDaemon(name: string, config: string, resolver: string): Promise<Daemon> {
  const proc = await startCheckid(['serve', '--config', config, '--resolver', resolver]);
  return { name, http: proc.listening.http!, proc };
}

async function stopDaemon(d: Daemon | undefined): Promise<void> {
  if (!d || d.proc.child.exitCode !== null) return;
  const code = await d.proc.stop();
  assert.equal(code, 0, `${d.name} exit: ${d.proc.output()}`);
}

interface CheckResponse {
  action: string;
  headers: Array<{ label: string; text: string }>;
  explanation: string[] | string;
}

async function check(d: Daemon, domain: string): Promise<CheckResponse> {
  const res = await fetch(`http://${d.http}/v1/check`, {
    method: 'POST',
    body: JSON.stringify({ ip: '192.0.2.1', helo: 'mx.example.com', mail_from: `someone@${domain}`, rcpt: ['postmaster@receiver.example'], headers: 'Subject: hello\r\n', body: 'hi\r\n' }),
  });
  assert.equal(res.status, 200, `${d.name}: ${await res.clone().text()}`);
  return (await res.json()) as CheckResponse;
}

const siqReport = (r: CheckResponse) => r.headers.find((h) => h.label === 'SIQ-Report:')?.text.replace(/\r\n\t/g, ' ');

async function metric(d: Daemon, name: string): Promise<number | null> {
  const text = await (await fetch(`http://${d.http}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

describe('two checkid daemons sharing Redis', { skip: redisSkip(), timeout: 120_000 }, () => {
  let redis: RedisTestServer;
  let siq: SiqTestServer;
  let dns: DnsTestServer;
  let a: Daemon | undefined;
  let b: Daemon | undefined;
  const queriesFor = (domain: string) => siq.received.filter((q) => q.query?.domain === domain).length;

  before(async () => {
    redis = await startRedisServer();
    siq = await startSiqServer({
      script: (q) => ({ reply: { score: 77, ipScore: 70, domainScore: 80, relScore: -1, ttl: 600, confidence: 90, text: `about ${q.domain}` } }),
    });
    dns = await startDnsServer({ zone: { ...seedZone(), 'lookup.shared.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }] } });
    const dir = tempDir('checkid-redis-daemons-');
    const config = join(dir, 'checkid.yaml');
    writeFileSync(
      config,
      [
        'authserv_id: mx.receiver.example',
        'deadline_ms: 10000',
        'resolver:',
        '  timeout_ms: 500',
        '  attempts: 1',
        '  cache:',
        '    backend: redis',
        'prescreen:',
        '  self_test_interval_s: 0',
        'siq:',
        `  servers: ["${siq.address}"]`,
        '  timeout_ms: 2000',
        '  cache:',
        '    backend: redis',
        'redis:',
        `  url: ${redis.url}`,
        '  prefix: "fleet-test:"',
        '  command_timeout_ms: 1000',
        "milter:\n  listen: ''",
        'http:\n  listen: 127.0.0.1:0',
        // the dashboard keeps its history in the state directory, not (yet) in Redis: off here
        "dashboard:\n  listen: ''",
        `state_dir: ${dir}`,
        '',
      ].join('\n'),
    );
    [a, b] = await Promise.all([startDaemon('A', config, dns.address), startDaemon('B', config, dns.address)]);
  });

  after(async () => {
    await Promise.all([stopDaemon(a), stopDaemon(b)]);
    await siq?.close();
    await dns?.close();
    await redis?.stop();
  });

  test('a SIQ answer daemon A fetched is served to daemon B from Redis: one query at the SIQ server', async () => {
    const fromA = await check(a!, 'one.shared.example');
    assert.match(siqReport(fromA) ?? '', /score=77 text='about one\.shared\.example'/);
    assert.equal(queriesFor('one.shared.example'), 1);
    const fromB = await check(b!, 'one.shared.example');
    assert.equal(siqReport(fromB), siqReport(fromA));
    assert.equal(queriesFor('one.shared.example'), 1, 'B did not ask the SIQ server');
    const keys = (await redis.command('KEYS', 'fleet-test:siq:*')) as string[];
    assert.ok(keys.some((k) => k.endsWith('|mail|192.0.2.1|one.shared.example')), JSON.stringify(keys));
  });

  test('a DNS answer daemon A looked up is served to daemon B from Redis', async () => {
    dns.resetStats();
    await check(a!, 'lookup.shared.example');
    const afterA = dns.count('lookup.shared.example', 'TXT');
    assert.ok(afterA >= 1);
    // A writes to Redis without holding up its verdict: wait until the entry is there
    for (let i = 0; i < 250 && (await redis.command('EXISTS', 'fleet-test:dns:lookup.shared.example/TXT')) !== 1; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await check(b!, 'lookup.shared.example');
    assert.equal(dns.count('lookup.shared.example', 'TXT'), afterA, 'B did not ask the DNS server');
  });

  test('Redis killed mid-run: both daemons still give verdicts; when it returns they share again', async () => {
    await redis.kill();
    for (const d of [a!, b!]) {
      for (let i = 0; i < 250 && (await metric(d, 'checkid_redis_up')) !== 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await metric(d, 'checkid_redis_up'), 0, `${d.name} noticed the outage`);
    }
    const outageA = await check(a!, 'outage.shared.example');
    const outageB = await check(b!, 'outage.shared.example');
    assert.match(siqReport(outageA) ?? '', /score=77/);
    assert.match(siqReport(outageB) ?? '', /score=77/);
    // without the shared cache each daemon asked for itself
    assert.equal(queriesFor('outage.shared.example'), 2);

    await redis.restart();
    for (const d of [a!, b!]) {
      for (let i = 0; i < 500 && (await metric(d, 'checkid_redis_up')) !== 1; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await metric(d, 'checkid_redis_up'), 1, `${d.name} reconnected`);
    }
    await check(a!, 'back.shared.example');
    await check(b!, 'back.shared.example');
    assert.equal(queriesFor('back.shared.example'), 1, 'shared again after Redis came back');
    const text = await (await fetch(`http://${a!.http}/metrics`)).text();
    assert.match(text, /^checkid_redis_operations_total\{op="siq\.get",result="unavailable"\} [1-9]\d*$/m);
  });
});
