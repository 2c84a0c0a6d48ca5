import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createHttpAdapter } from '../../src/adapters/http/server.ts';
import { createResolver } from '../../src/dns/config.ts';
import { Engine, type Logger, staticPolicy } from '../../src/engine/engine.ts';
import type { CheckEvent, VerdictEvent } from '../../src/engine/observer.ts';
import { defaultConfig, loadConfigFile } from '../../src/policy/config.ts';
import { trackSocket } from '../../src/telemetry/connections.ts';
import { Telemetry } from '../../src/telemetry/telemetry.ts';
import { startDnsServer } from '../support/dns-server.ts';
import { FIXTURES, seedZone } from '../support/fixtures.ts';
import { MemoryResolver } from '../support/zone.ts';

/** One HTTP/1.1 GET on an open keep-alive socket; resolves with the body. */
async function rawGet(socket: net.Socket, path: string): Promise<string> {
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n`);
  let buf = '';
  for (;;) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    buf += chunk.toString('utf8');
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) continue;
    const length = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1]);
    if (Buffer.byteLength(buf.slice(end + 4)) >= length) return buf.slice(end + 4);
  }
}

/** The sample lines of one metric family (no HELP/TYPE), in order. */
function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

test('the observer sees every stage and every check; verdicts and check results become counters', async () => {
  const telemetry = new Telemetry({ version: '9.9.9' });
  const stages: VerdictEvent[] = [];
  const checks: CheckEvent[] = [];
  const resolver = new MemoryResolver(seedZone());
  const config = defaultConfig();
  config.authservId = 'mx.receiver.example';
  const engine = new Engine({
    resolver,
    policy: staticPolicy(config, resolver),
    observer: {
      verdict: (e) => {
        stages.push({ ...e, facts: structuredClone(e.facts) });
        telemetry.observer.verdict?.(e);
      },
      check: (e) => {
        checks.push(e);
        telemetry.observer.check?.(e);
      },
    },
  });
  const r = await engine.checkID({ ip: '192.0.2.1', helo: 'mx.example.com', mailFrom: 'a@example.com', rcpt: ['b@example.org'], headers: 'From: a@example.com\r\n', body: 'x\r\n' });
  assert.equal(r.action, 'FILTER');
  assert.deepEqual(
    stages.map((s) => [s.stage, s.verdict.action, s.recipient ?? '']),
    [
      ['connect', 'CONTINUE', ''],
      ['helo', 'CONTINUE', ''],
      ['mail', 'CONTINUE', ''],
      ['rcpt', 'CONTINUE', 'b@example.org'],
      ['eom', 'FILTER', ''],
    ],
  );
  // the facts handed over are the session's at that moment: SPF for MAIL FROM is known from the mail stage on
  assert.equal(stages[1]!.facts.spfMailFrom, undefined);
  assert.equal(stages[2]!.facts.spfMailFrom?.result, 'pass');
  assert.ok(stages.every((s) => typeof s.ms === 'number' && s.ms >= 0));
  // the HELO identity's SPF1 result is SPF-HELO's, reused: no second 'identity' check
  assert.deepEqual(
    checks.map((c) => `${c.name}=${c.result}`),
    ['iprev=pass', 'spf_helo=pass', 'helo=pass', 'spf=pass', 'dkim=none', 'arc=none', 'dmarc=none'],
  );
  // every check carries its own time, the end-of-message ones included
  assert.ok(checks.every((c) => typeof c.ms === 'number' && c.ms >= 0));

  const text = telemetry.metrics();
  assert.deepEqual(samples(text, 'checkid_build_info'), ['checkid_build_info{version="9.9.9"} 1']);
  assert.deepEqual(samples(text, 'checkid_verdicts_total'), ['checkid_verdicts_total{stage="eom",action="FILTER",reason="unknown-sender"} 1']);
  assert.deepEqual(samples(text, 'checkid_check_results_total'), [
    'checkid_check_results_total{check="iprev",result="pass"} 1',
    'checkid_check_results_total{check="spf_helo",result="pass"} 1',
    'checkid_check_results_total{check="helo",result="pass"} 1',
    'checkid_check_results_total{check="spf",result="pass"} 1',
    'checkid_check_results_total{check="dkim",result="none"} 1',
    'checkid_check_results_total{check="arc",result="none"} 1',
    'checkid_check_results_total{check="dmarc",result="none"} 1',
  ]);
  // one stage histogram per stage, each counted once; every check has its own latency histogram
  assert.deepEqual(samples(text, 'checkid_stage_duration_seconds_count'), ['connect', 'helo', 'mail', 'rcpt', 'eom'].map((s) => `checkid_stage_duration_seconds_count{stage="${s}"} 1`));
  assert.deepEqual(
    samples(text, 'checkid_check_duration_seconds_count').map((l) => l.replace(/ \d+$/, '')),
    ['iprev', 'spf_helo', 'helo', 'spf', 'dkim', 'arc', 'dmarc'].map((c) => `checkid_check_duration_seconds_count{check="${c}"}`),
  );
  assert.ok(samples(text, 'checkid_check_duration_seconds_bucket').some((l) => l === 'checkid_check_duration_seconds_bucket{check="iprev",le="+Inf"} 1'));
});

test('SIQ answers are counted by kind', () => {
  const telemetry = new Telemetry();
  telemetry.observer.check?.({ name: 'siq', result: 'score', ms: 3 });
  telemetry.observer.check?.({ name: 'siq', result: 'timeout', ms: 2000 });
  telemetry.observer.check?.({ name: 'siq', result: 'score', ms: 1 });
  assert.deepEqual(samples(telemetry.metrics(), 'checkid_siq_answers_total'), ['checkid_siq_answers_total{kind="score"} 2', 'checkid_siq_answers_total{kind="timeout"} 1']);
});

test('an observer that throws is logged and changes no verdict', async () => {
  const logged: string[] = [];
  const log: Logger = (level, message) => logged.push(`${level}: ${message}`);
  const resolver = new MemoryResolver(seedZone());
  const config = loadConfigFile(`${FIXTURES}seed-authent.yaml`);
  const engine = new Engine({
    resolver,
    log,
    policy: staticPolicy(config, resolver),
    observer: {
      verdict: () => {
        throw new Error('observer bug');
      },
      check: () => {
        throw new Error('observer bug');
      },
    },
  });
  const r = await engine.checkID({ ip: '192.0.2.1', id: 'example.net' });
  assert.equal(r.action, 'REJECT');
  assert.equal(r.reply.code, 550);
  assert.ok(logged.length >= 2);
  assert.ok(logged.every((l) => l === 'error: engine observer failed'));
});

test('DNS metrics come from the resolver statistics: lookups, queries sent, cache hits and misses', async () => {
  const dns = await startDnsServer({ zone: { 'a.example': [{ A: '192.0.2.7' }] } });
  const resolver = createResolver({ servers: [dns.address], attempts: 1, timeoutMs: 1000 });
  try {
    const telemetry = new Telemetry();
    telemetry.watchResolver(() => resolver.stats());
    await resolver.query('a.example', 'A');
    await resolver.query('a.example', 'A');
    await resolver.query('b.example', 'A');
    const text = telemetry.metrics();
    assert.deepEqual(samples(text, 'checkid_dns_lookups_total'), ['checkid_dns_lookups_total 3']);
    assert.deepEqual(samples(text, 'checkid_dns_queries_sent_total'), ['checkid_dns_queries_sent_total{transport="udp"} 2', 'checkid_dns_queries_sent_total{transport="tcp"} 0']);
    assert.deepEqual(samples(text, 'checkid_dns_cache_hits_total'), ['checkid_dns_cache_hits_total 1']);
    assert.deepEqual(samples(text, 'checkid_dns_cache_misses_total'), ['checkid_dns_cache_misses_total 2']);
    // the NXDOMAIN for b.example is cached too (RFC 2308)
    assert.deepEqual(samples(text, 'checkid_dns_cache_entries'), ['checkid_dns_cache_entries 2']);
    assert.deepEqual(samples(text, 'checkid_dns_timeouts_total'), ['checkid_dns_timeouts_total 0']);
  } finally {
    await resolver.close();
    await dns.close();
  }
});

test('connections: active and total per listener; closing twice counts once', () => {
  const telemetry = new Telemetry();
  const a = telemetry.connections.opened('milter');
  const b = telemetry.connections.opened('milter');
  telemetry.connections.opened('policy');
  a();
  a();
  const text = telemetry.metrics();
  assert.deepEqual(samples(text, 'checkid_connections_active'), ['checkid_connections_active{listener="milter"} 1', 'checkid_connections_active{listener="policy"} 1']);
  assert.deepEqual(samples(text, 'checkid_connections_total'), ['checkid_connections_total{listener="milter"} 2', 'checkid_connections_total{listener="policy"} 1']);
  b();
  assert.deepEqual(samples(telemetry.metrics(), 'checkid_connections_active'), ['checkid_connections_active{listener="milter"} 0', 'checkid_connections_active{listener="policy"} 1']);
  // without a tracker, trackSocket does nothing
  trackSocket(undefined, 'x', { once: () => assert.fail('no tracker, no listener') });
});

test('HTTP API: GET /metrics serves the exposition text and counts its own connection; no metrics option, no route', async () => {
  const telemetry = new Telemetry({ version: '1.2.3' });
  const resolver = new MemoryResolver(seedZone());
  const config = loadConfigFile(`${FIXTURES}seed-authent.yaml`);
  const engine = new Engine({ resolver, policy: staticPolicy(config, resolver), observer: telemetry.observer });
  const server = createHttpAdapter({ engine, metrics: () => telemetry.metrics(), connections: telemetry.connections });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const bare = createHttpAdapter({ engine });
  bare.listen(0, '127.0.0.1');
  await once(bare, 'listening');
  try {
    const check = await fetch(`${base}/v1/check`, { method: 'POST', body: JSON.stringify({ ip: '192.0.2.1', id: 'example.net' }) });
    assert.equal(((await check.json()) as { action: string }).action, 'REJECT');
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    assert.deepEqual(samples(text, 'checkid_verdicts_total'), ['checkid_verdicts_total{stage="id",action="REJECT",reason="identity-spf-fail"} 1']);
    assert.deepEqual(samples(text, 'checkid_build_info'), ['checkid_build_info{version="1.2.3"} 1']);
    assert.ok(text.endsWith('\n'));
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: '' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.text();
    const none = await fetch(`http://127.0.0.1:${(bare.address() as AddressInfo).port}/metrics`);
    assert.equal(none.status, 404);
    await none.text();
    // two keep-alive connections of our own: both open while the second one asks
    server.closeAllConnections();
    const port = (server.address() as AddressInfo).port;
    const one = net.connect(port, '127.0.0.1');
    const two = net.connect(port, '127.0.0.1');
    await Promise.all([once(one, 'connect'), once(two, 'connect')]);
    let active = '';
    for (let i = 0; i < 100 && active !== 'checkid_connections_active{listener="http"} 2'; i++) {
      active = samples(await rawGet(two, '/metrics'), 'checkid_connections_active')[0] ?? '';
    }
    assert.equal(active, 'checkid_connections_active{listener="http"} 2');
    one.destroy();
    for (let i = 0; i < 100 && active !== 'checkid_connections_active{listener="http"} 1'; i++) {
      active = samples(await rawGet(two, '/metrics'), 'checkid_connections_active')[0] ?? '';
    }
    assert.equal(active, 'checkid_connections_active{listener="http"} 1');
    assert.match(samples(await rawGet(two, '/metrics'), 'checkid_connections_total')[0] ?? '', /^checkid_connections_total\{listener="http"\} [3-9]$/);
    two.destroy();
  } finally {
    server.closeAllConnections();
    bare.closeAllConnections();
    server.close();
    bare.close();
  }
});
