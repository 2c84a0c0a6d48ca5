/**
 * SiqReporter (src/siq/reporter.ts): which verdicts become gateway reports, one per message,
 * merging, batches, the bounded queue, failures, key files, reloads; the `siq.report:` config;
 * and a reporter sending to a real SiqServer over HTTP.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { emptyFacts, type Facts } from '../../src/engine/facts.ts';
import type { Action, Verdict } from '../../src/engine/verdict.ts';
import { parseConfig } from '../../src/policy/config.ts';
import type { SiqReportOptions, SiqReportResult } from '../../src/siq/report.ts';
import { defaultSiqReportConfig, reportResultOf, type SiqReportConfig, SiqReporter } from '../../src/siq/reporter.ts';
import { defaultSiqServerConfig } from '../../src/siq/server/config.ts';
import { listenSiqHttp } from '../../src/siq/server/http.ts';
import { SiqServer } from '../../src/siq/server/server.ts';
import { MemorySiqServerStore } from '../../src/siq/server/store-memory.ts';
import { createResolver } from '../../src/dns/config.ts';
import { tempDir } from '../support/fixtures.ts';
import { configProblems } from '../support/config.ts';

const KEY = 'a1'.repeat(32);

function verdict(action: Action, stage: Verdict['stage'] = 'eom'): Verdict {
  return { action, reply: { code: 250, xcode: '', text: 'x' }, headers: [], removeHeaders: [], stage, reason: 'test', explanation: [] };
}

function facts(ip: string, mailFrom?: string): Facts {
  const f = emptyFacts(ip);
  if (mailFrom !== undefined) f.envelope.mailFrom = mailFrom;
  return f;
}

/** A sender that records each request and answers as told (default: all recorded). */
function recorder(answer?: (o: SiqReportOptions) => Promise<SiqReportResult> | SiqReportResult) {
  const requests: SiqReportOptions[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const send = async (o: SiqReportOptions): Promise<SiqReportResult> => {
    requests.push(o);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      if (answer) return await answer(o);
      return { ok: true, recorded: o.reports.length, status: 200 };
    } finally {
      inFlight--;
    }
  };
  return {
    send,
    requests,
    get maxInFlight() {
      return maxInFlight;
    },
    /** every report sent, flattened */
    get items() {
      return requests.flatMap((r) => r.reports);
    },
  };
}

function settings(extra: Partial<SiqReportConfig> = {}): SiqReportConfig {
  return { ...defaultSiqReportConfig(), url: 'http://siq.test:6263/siq/report', apiKey: KEY, batchMs: 0, ...extra };
}

test('ACCEPT and FILTER are reported accepted, REJECT rejected; TEMPFAIL, DISCARD and CONTINUE not at all', async () => {
  assert.equal(reportResultOf('ACCEPT'), 'accepted');
  assert.equal(reportResultOf('FILTER'), 'accepted');
  assert.equal(reportResultOf('REJECT'), 'rejected');
  for (const a of ['TEMPFAIL', 'DISCARD', 'CONTINUE']) assert.equal(reportResultOf(a), null);
  const r = recorder();
  const reporter = new SiqReporter({ settings: () => settings(), send: r.send });
  const actions: Action[] = ['ACCEPT', 'FILTER', 'REJECT', 'TEMPFAIL', 'DISCARD', 'CONTINUE'];
  actions.forEach((action, i) => {
    reporter.observer.verdict!({ stage: 'eom', verdict: verdict(action), facts: facts(`192.0.2.${i + 1}`, `a@d${i}.example`), ms: 1 });
  });
  await reporter.flush();
  assert.deepEqual(
    r.items.map((i) => [i.ip, i.domain, i.result, i.count]),
    [
      ['192.0.2.1', 'd0.example', 'accepted', 1],
      ['192.0.2.2', 'd1.example', 'accepted', 1],
      ['192.0.2.3', 'd2.example', 'rejected', 1],
    ],
  );
  assert.equal(r.requests[0]!.apiKey, KEY);
  assert.equal(r.requests[0]!.url, 'http://siq.test:6263/siq/report');
  assert.deepEqual(reporter.stats().queued, { accepted: 2, rejected: 1 });
  await reporter.close();
});

test('one report per message: its recipients and end-of-message verdicts count once; the next message counts again', async () => {
  const r = recorder();
  const reporter = new SiqReporter({ settings: () => settings({ batchMs: 5_000 }), send: r.send });
  const f = facts('198.51.100.4', 'list@news.example');
  f.envelope.rcpt.push('a@dest.example');
  reporter.observer.verdict!({ stage: 'rcpt', verdict: verdict('REJECT', 'rcpt'), facts: f, recipient: 'a@dest.example', ms: 1 });
  f.envelope.rcpt.push('b@dest.example');
  reporter.observer.verdict!({ stage: 'rcpt', verdict: verdict('ACCEPT', 'rcpt'), facts: f, recipient: 'b@dest.example', ms: 1 });
  reporter.observer.verdict!({ stage: 'eom', verdict: verdict('ACCEPT'), facts: f, ms: 1 });
  // the session starts the next message on the same connection (resetMessage: a new recipient list)
  f.envelope.rcpt = [];
  f.envelope.mailFrom = 'other@news.example';
  reporter.observer.verdict!({ stage: 'mail', verdict: verdict('REJECT', 'mail'), facts: f, ms: 1 });
  await reporter.flush();
  assert.deepEqual(
    r.items.map((i) => [i.ip, i.domain, i.result, i.count]),
    [['198.51.100.4', 'news.example', 'rejected', 2]],
    'the first final verdict of each message; identical reports merged into one item',
  );
  await reporter.close();
});

test('what is reported of the sender: the MAIL FROM domain as SIQ sends it, the IP alone for <> and before MAIL FROM', async () => {
  const r = recorder();
  const reporter = new SiqReporter({ settings: () => settings({ batchMs: 5_000 }), send: r.send });
  const cases: Array<[string, string | undefined]> = [
    ['192.0.2.1', 'Bounce@Sub.Example.'],
    ['192.0.2.2', ''],
    ['192.0.2.3', undefined],
    ['192.0.2.4', 'user@bücher.example'],
    ['192.0.2.5', 'user@[192.0.2.99]'],
    ['::ffff:192.0.2.6', 'a@six.example'],
    ['2001:DB8::1', 'a@v6.example'],
  ];
  for (const [ip, from] of cases) reporter.observer.verdict!({ stage: 'connect', verdict: verdict('REJECT', 'connect'), facts: facts(ip, from), ms: 1 });
  await reporter.flush();
  assert.deepEqual(
    r.items.map((i) => [i.ip, i.domain]),
    [
      ['192.0.2.1', 'sub.example'],
      ['192.0.2.2', undefined],
      ['192.0.2.3', undefined],
      ['192.0.2.4', 'xn--bcher-kva.example'],
      ['192.0.2.5', undefined],
      ['192.0.2.6', 'six.example'],
      ['2001:db8::1', 'v6.example'],
    ],
  );
  // nothing the server could use: not queued
  assert.equal(reporter.add({ ip: 'not-an-ip', domain: 'user@[192.0.2.1]', result: 'rejected' }), false);
  await reporter.close();
});

test('batches: at most max_batch items, one request at a time, the rest after it', async () => {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const r = recorder(async (o) => {
    await gate;
    return { ok: true, recorded: o.reports.length, status: 200 };
  });
  const reporter = new SiqReporter({ settings: () => settings({ maxBatch: 3, batchMs: 10_000 }), send: r.send });
  for (let i = 1; i <= 7; i++) reporter.add({ ip: `192.0.2.${i}`, result: 'accepted' });
  // the third item filled a batch: its request left at once, without waiting for batch_ms
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(r.requests.length, 1);
  assert.equal(r.requests[0]!.reports.length, 3);
  assert.equal(reporter.stats().pending, 7);
  release();
  await reporter.flush();
  assert.deepEqual(
    r.requests.map((q) => q.reports.length),
    [3, 3, 1],
  );
  assert.equal(r.maxInFlight, 1);
  assert.equal(reporter.stats().sent, 7);
  assert.equal(reporter.stats().pending, 0);
  await reporter.close();
});

test('batch_ms: reports wait for company, then leave together', async () => {
  const r = recorder();
  const reporter = new SiqReporter({ settings: () => settings({ batchMs: 30 }), send: r.send });
  reporter.add({ ip: '192.0.2.1', result: 'accepted' });
  reporter.add({ ip: '192.0.2.2', result: 'rejected' });
  assert.equal(r.requests.length, 0, 'nothing sent before batch_ms');
  for (let i = 0; i < 100 && r.requests.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(r.requests.length, 1);
  assert.equal(r.requests[0]!.reports.length, 2);
  await reporter.close();
});

test('a request body stays under the server limit of 64 KiB, whatever max_batch says', async () => {
  const r = recorder();
  const reporter = new SiqReporter({ settings: () => settings({ maxBatch: 1000, batchMs: 10_000 }), send: r.send });
  const label = 'x'.repeat(60);
  for (let i = 0; i < 600; i++) reporter.add({ ip: '192.0.2.1', domain: `${i}.${label}.${label}.${label}.example`, result: 'rejected' });
  await reporter.flush();
  assert.ok(r.requests.length >= 2);
  for (const q of r.requests) assert.ok(JSON.stringify({ reports: q.reports }).length < 64 * 1024);
  assert.equal(r.items.length, 600);
  await reporter.close();
});

test('a full queue drops new reports and counts them; identical ones still merge', async () => {
  const r = recorder();
  const reporter = new SiqReporter({ settings: () => settings({ maxQueue: 2, maxBatch: 100, batchMs: 10_000 }), send: r.send });
  assert.equal(reporter.add({ ip: '192.0.2.1', result: 'accepted' }), true);
  assert.equal(reporter.add({ ip: '192.0.2.2', result: 'accepted' }), true);
  assert.equal(reporter.add({ ip: '192.0.2.3', result: 'accepted' }), false);
  assert.equal(reporter.add({ ip: '192.0.2.1', result: 'accepted' }), true, 'merged into a waiting item: no room needed');
  assert.deepEqual(reporter.stats().dropped, { queueFull: 1, sendFailed: 0 });
  await reporter.flush();
  assert.deepEqual(
    r.items.map((i) => [i.ip, i.count]),
    [
      ['192.0.2.1', 2],
      ['192.0.2.2', 1],
    ],
  );
  await reporter.close();
});

test('an item stops merging at the server limit of 10000 messages', async () => {
  const r = recorder();
  const reporter = new SiqReporter({ settings: () => settings({ batchMs: 10_000, maxBatch: 100 }), send: r.send });
  for (let i = 0; i < 10_003; i++) reporter.add({ ip: '192.0.2.1', domain: 'big.example', result: 'rejected' });
  await reporter.flush();
  assert.deepEqual(
    r.items.map((i) => i.count),
    [10_000, 3],
  );
  assert.equal(reporter.stats().sent, 10_003);
  await reporter.close();
});

test('a failed request: its reports are dropped and counted, the warning comes once per interval, verdicts go on', async () => {
  const warnings: Array<[string, Record<string, unknown> | undefined]> = [];
  let fail = true;
  const r = recorder(() => (fail ? { ok: false, error: 'SIQ report: HTTP 403: forbidden', status: 403 } : { ok: true, recorded: 1, status: 200 }));
  const reporter = new SiqReporter({
    settings: () => settings(),
    send: r.send,
    log: (level, message, fields) => {
      if (level === 'warn') warnings.push([message, fields]);
    },
  });
  reporter.add({ ip: '192.0.2.1', result: 'rejected' });
  await reporter.flush();
  reporter.add({ ip: '192.0.2.2', result: 'rejected' });
  await reporter.flush();
  assert.deepEqual(reporter.stats().dropped, { queueFull: 0, sendFailed: 2 });
  assert.deepEqual(reporter.stats().requests, { ok: 0, failed: 2 });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]![0], /SIQ reports dropped/);
  assert.equal(warnings[0]![1]?.error, 'SIQ report: HTTP 403: forbidden');
  fail = false;
  reporter.add({ ip: '192.0.2.3', result: 'accepted' });
  await reporter.flush();
  assert.equal(reporter.stats().sent, 1);
  // a sender that throws is a failed request too, not an exception out of the observer
  const throwing = new SiqReporter({ settings: () => settings(), send: () => Promise.reject(new Error('boom')) });
  throwing.observer.verdict!({ stage: 'eom', verdict: verdict('REJECT'), facts: facts('192.0.2.9', 'a@b.example'), ms: 1 });
  await throwing.flush();
  assert.equal(throwing.stats().dropped.sendFailed, 1);
  await reporter.close();
  await throwing.close();
});

test('settings are read live: no url, nothing queued; a reload that clears the url discards what waits', async () => {
  let current = settings({ url: '', batchMs: 10_000 });
  const r = recorder();
  const reporter = new SiqReporter({ settings: () => current, send: r.send });
  reporter.observer.verdict!({ stage: 'eom', verdict: verdict('ACCEPT'), facts: facts('192.0.2.1', 'a@b.example'), ms: 1 });
  assert.equal(reporter.stats().pending, 0);
  current = settings({ batchMs: 10_000 });
  reporter.observer.verdict!({ stage: 'eom', verdict: verdict('ACCEPT'), facts: facts('192.0.2.2', 'a@b.example'), ms: 1 });
  assert.equal(reporter.stats().pending, 1);
  current = settings({ url: '', batchMs: 10_000 });
  await reporter.flush();
  assert.equal(r.requests.length, 0);
  assert.equal(reporter.stats().pending, 0);
  await reporter.close();
  // closed: no more reports
  current = settings();
  reporter.observer.verdict!({ stage: 'eom', verdict: verdict('ACCEPT'), facts: facts('192.0.2.3', 'a@b.example'), ms: 1 });
  assert.equal(reporter.stats().pending, 0);
});

test('api_key_file is read for each batch, so a new key in the file needs no reload', async () => {
  const dir = tempDir('checkid-siq-key-');
  const file = join(dir, 'siq.key');
  writeFileSync(file, `${KEY}\n`);
  const r = recorder();
  const reporter = new SiqReporter({ settings: () => settings({ apiKey: '', apiKeyFile: file }), send: r.send });
  reporter.add({ ip: '192.0.2.1', result: 'accepted' });
  await reporter.flush();
  writeFileSync(file, `${'b2'.repeat(32)}\n# rotated\n`);
  reporter.add({ ip: '192.0.2.2', result: 'accepted' });
  await reporter.flush();
  assert.deepEqual(
    r.requests.map((q) => q.apiKey),
    [KEY, 'b2'.repeat(32)],
  );
  await reporter.close();
});

test('siq.report in the config: defaults, paths relative to the file, and the problems named with their line', () => {
  const dir = tempDir('checkid-siq-report-config-');
  writeFileSync(join(dir, 'good.key'), `${KEY}\n`);
  writeFileSync(join(dir, 'bad.key'), 'not a key\n');
  const c = parseConfig('siq:\n  report:\n    url: http://siq.example.net:6263\n    api_key_file: good.key\n    batch_ms: 250\n', join(dir, 'checkid.yaml'), dir);
  assert.deepEqual(c.siq.report, {
    url: 'http://siq.example.net:6263',
    apiKey: '',
    apiKeyFile: join(dir, 'good.key'),
    batchMs: 250,
    maxBatch: 500,
    maxQueue: 10_000,
    timeoutMs: 2000,
  });
  assert.equal(parseConfig('').siq.report.url, '', 'off by default');
  const problems = (text: string) => configProblems(text, join(dir, 'checkid.yaml'), dir);
  assert.match(problems('siq:\n  report:\n    url: http://siq.example.net\n')[0]!, /line 3, column 5: siq\.report\.url is set but there is no API key/);
  assert.match(problems(`siq:\n  report:\n    url: http://siq.example.net\n    api_key: ${KEY}\n    api_key_file: good.key\n`)[0]!, /siq\.report\.api_key_file and api_key are both set/);
  assert.match(problems('siq:\n  report:\n    url: http://siq.example.net\n    api_key_file: missing.key\n')[0]!, /line 4, column 5: siq\.report\.api_key_file cannot read .*missing\.key: ENOENT/);
  assert.match(problems('siq:\n  report:\n    url: http://siq.example.net\n    api_key_file: bad.key\n')[0]!, /bad\.key does not start with an API key/);
  assert.match(problems('siq:\n  report:\n    url: siq.example.net:6263\n    api_key: x\n').join('\n'), /siq\.report\.url .*http:\/\/ or https:\/\//);
  assert.match(problems('siq:\n  report:\n    url: http://siq.example.net\n    api_key: ABC\n').join('\n'), /siq\.report\.api_key .*lower-case hex/);
  assert.match(problems('siq:\n  report:\n    max_batch: 5000\n').join('\n'), /siq\.report\.max_batch must be at most 1000/);
});

test('with a real SIQ server: the reporter posts over HTTP and the account counts the messages', async () => {
  const store = new MemorySiqServerStore();
  const resolver = createResolver({ servers: ['127.0.0.1:9'], timeoutMs: 100, attempts: 1 });
  const server = new SiqServer({ store, resolver, config: () => defaultSiqServerConfig(), pollMs: 0 });
  const http = await listenSiqHttp(server, '127.0.0.1', 0);
  const account = await store.createAccount({ email: 'gw@example.org', passwordHash: '', createdAt: Date.now() });
  await store.addSourceIp(account.id, '127.0.0.1');
  const reporter = new SiqReporter({ settings: () => settings({ url: `http://127.0.0.1:${http.port}`, apiKey: account.apiKey }) });
  try {
    for (let i = 0; i < 3; i++) reporter.observer.verdict!({ stage: 'mail', verdict: verdict('REJECT', 'mail'), facts: facts('203.0.113.5', 'x@Spam.Example'), ms: 1 });
    reporter.observer.verdict!({ stage: 'eom', verdict: verdict('FILTER'), facts: facts('203.0.113.5', 'y@spam.example'), ms: 1 });
    await reporter.flush();
    assert.equal(reporter.stats().sent, 4);
    const halfLife = 7 * 86_400_000;
    const ip = await store.reportCounts(account.id, 'ip', '203.0.113.5', Date.now(), halfLife);
    const domain = await store.reportCounts(account.id, 'domain', 'spam.example', Date.now(), halfLife);
    assert.equal(Math.round(ip.rejected), 3);
    assert.equal(Math.round(ip.accepted), 1);
    assert.equal(Math.round(domain.rejected), 3);
    assert.equal(Math.round(domain.accepted), 1);
    // a wrong key: refused by the server, counted as dropped
    const wrong = new SiqReporter({ settings: () => settings({ url: `http://127.0.0.1:${http.port}`, apiKey: 'cd'.repeat(32) }) });
    wrong.add({ ip: '203.0.113.5', result: 'accepted' });
    await wrong.close();
    assert.deepEqual(wrong.stats().dropped, { queueFull: 0, sendFailed: 1 });
  } finally {
    await reporter.close();
    await http.close();
    await server.close();
    await resolver.close();
  }
});
