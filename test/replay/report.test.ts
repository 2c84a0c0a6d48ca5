/**
 * The report: report.json streamed and complete, report.html self-contained with its charts, and
 * the threshold what-if checked against a real second replay under the changed threshold.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Engine, staticPolicy } from '../../src/engine/engine.ts';
import { type Config, loadConfigFile } from '../../src/policy/config.ts';
import { ReplayReport } from '../../src/replay/report.ts';
import { runReplay } from '../../src/replay/runner.ts';
import type { SourceItem } from '../../src/replay/sources.ts';
import { seedZone, tempDir } from '../support/fixtures.ts';
import { type SiqTestServer, startSiqServer } from '../support/siq-server.ts';
import { MemoryResolver } from '../support/zone.ts';
import { replayConfigYaml } from './fixtures.ts';

const SCORES: Record<string, number> = { 'example.com': 80, 'example.net': 20, 'example.org': 35 };

let siq: SiqTestServer;
before(async () => {
  siq = await startSiqServer({ script: (q) => ({ reply: { score: SCORES[q.domain] ?? 50, ipScore: -1, domainScore: -1, relScore: -1, ttl: 300, confidence: 90, text: '' } }) });
});
after(async () => {
  await siq.close();
});

const zone = { ...seedZone(), '1.2.0.192.bl.example': [{ A: '127.0.0.2' }], 'mail2.example.com': [{ A: '192.0.2.2' }] };

function config(mutate?: (c: Config) => void): Config {
  const dir = tempDir('checkid-report-');
  const path = join(dir, 'checkid.yaml');
  writeFileSync(path, replayConfigYaml(siq.address, 50));
  const c = loadConfigFile(path);
  mutate?.(c);
  return c;
}

function eml(ip: string, helo: string, from: string, n: number, extra = ''): string {
  return `Return-Path: <${from}>
X-Original-To: bob@example.org
Received: from ${helo} (${helo} [${ip}])
\tby mx.receiver.example (Postfix) with ESMTP id 4VtQ9k0Xyz${n}
\tfor <bob@example.org>; Mon,  3 Jun 2024 10:00:00 +0200 (CEST)
Message-ID: <m${n}${extra}@example.com>
From: ${from}
Subject: message ${n}

body
`;
}

const MESSAGES = [
  eml('192.0.2.1', 'mx.example.com', 'a@example.com', 1),
  eml('192.0.2.2', 'mail2.example.com', 'b@example.com', 2),
  eml('198.51.100.9', 'mail.example.net', 'n@example.net', 3),
  'this is not a message\n\nat all\n',
  eml('203.0.113.5', 'mail.example.org', 'o@example.org', 5),
  eml('192.0.2.1', 'mx.example.com', 'x@example.net', 6, '<script>alert(1)</script>'),
  'Subject: no hop\n\nb\n',
  eml('203.0.113.6', 'mail.example.org', 'p@example.org', 8),
];

async function replay(c: Config, dir: string, sample?: number): Promise<ReplayReport> {
  const resolver = new MemoryResolver(zone);
  const engine = new Engine({ resolver, policy: staticPolicy(c, resolver) });
  const report = new ReplayReport(dir, { inputs: ['fixture'], config: null, resolver: [], jobs: 3, hop: {}, mboxFormat: 'mboxrd', envelopeFile: null, ...(sample ? { sample } : {}) });
  await report.open();
  async function* items(): AsyncGenerator<SourceItem> {
    let seq = 0;
    for (const m of MESSAGES) yield { seq: ++seq, file: 'archive.mbox', kind: 'mbox', offset: seq * 1000, index: seq, raw: Buffer.from(m, 'latin1') };
  }
  await runReplay(engine, items(), { jobs: 3 }, (entry) => report.add(entry));
  await report.finish(c);
  return report;
}

test('report.json: every message in order, totals, distributions, the what-if rows', async () => {
  const report = await replay(config(), tempDir('checkid-report-'));
  const json = JSON.parse(readFileSync(report.jsonPath, 'utf8'));
  assert.equal(json.report, 'checkid replay');
  assert.match(json.note, /DNS as it answers now/);
  assert.deepEqual(json.messages.map((m: { n: number }) => m.n), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(json.messages.map((m: { status: string }) => m.status), ['checked', 'checked', 'checked', 'error', 'checked', 'checked', 'skipped', 'checked']);
  assert.equal(json.messages[5].verdict.action, 'REJECT');
  assert.equal(json.messages[5].verdict.reason, 'spf-fail');
  // SIQ scores as the server gave them, by MAIL FROM domain (asked at MAIL, with SPF)
  assert.deepEqual(json.messages.filter((m: { verdict?: unknown }) => m.verdict).map((m: { verdict: { siq: { score: number } | null } }) => m.verdict.siq?.score ?? null), [80, 80, 20, 35, 20, 35]);
  const t = json.totals;
  assert.equal(t.messages, 8);
  assert.equal(t.checked, 6);
  assert.equal(t.errors, 1);
  assert.equal(t.skipped, 1);
  assert.deepEqual(t.skippedBy, { 'no-received': 1 });
  assert.equal(Object.values(t.actions as Record<string, number>).reduce((a, b) => a + b, 0), 6);
  const siqBuckets = json.distributions.siq.buckets as Array<{ label: string; total: number }>;
  assert.equal(siqBuckets.find((b) => b.label === '80–89')!.total, 2);
  assert.equal(siqBuckets.find((b) => b.label === '30–39')!.total, 2);
  assert.equal(siqBuckets.find((b) => b.label === '20–29')!.total, 2);
  assert.equal(json.distributions.siq.missing, 0);
  const thresholds = new Set(json.whatIf.map((r: { threshold: string }) => r.threshold));
  assert.ok(thresholds.has('siq.reject_score') && thresholds.has('siq.tag_score') && thresholds.has('prescreen.threshold'));
  assert.equal(json.whatIf.filter((r: { current: boolean; threshold: string }) => r.current && r.threshold === 'siq.tag_score').length, 1);
});

test('the what-if predicts what a replay under the changed threshold really decides', async () => {
  const report = await replay(config(), tempDir('checkid-report-'));
  const rows = JSON.parse(readFileSync(report.jsonPath, 'utf8')).whatIf as Array<{ threshold: string; value: string; rejected: number; tagged: number; unknown: number; changed: number }>;
  const tries: Array<[string, string, (c: Config) => void]> = [
    ['siq.reject_score', '30', (c) => (c.siq.rejectScore = 30)],
    ['siq.reject_score', '40', (c) => (c.siq.rejectScore = 40)],
    ['siq.tag_score', '20', (c) => (c.siq.tagScore = 20)],
    ['prescreen.threshold', '1', (c) => (c.prescreen.threshold = 1)],
  ];
  for (const [threshold, value, mutate] of tries) {
    const row = rows.find((r) => r.threshold === threshold && r.value === value)!;
    assert.ok(row, `${threshold}=${value}`);
    assert.equal(row.unknown, 0);
    const again = await replay(config(mutate), tempDir('checkid-report-'));
    const actual = JSON.parse(readFileSync(again.jsonPath, 'utf8'));
    const tagged = actual.messages.filter((m: { verdict?: { subjectTagged: boolean } }) => m.verdict?.subjectTagged).length;
    assert.equal(row.rejected, actual.totals.actions.REJECT ?? 0, `${threshold}=${value}: rejected`);
    assert.equal(row.tagged, tagged, `${threshold}=${value}: tagged`);
  }
  // the rows change something: reject at 40 takes the two example.org senders and example.net
  assert.ok(rows.find((r) => r.threshold === 'siq.reject_score' && r.value === '40')!.changed >= 3);
});

test('report.html: self-contained, the charts and tables, outside text escaped', async () => {
  const report = await replay(config(), tempDir('checkid-report-'));
  const html = readFileSync(report.htmlPath, 'utf8');
  for (const id of ['chart-actions', 'chart-reasons', 'chart-siq', 'chart-dnsbl']) assert.match(html, new RegExp(`<svg [^>]*id="${id}"`), id);
  assert.match(html, /<table class="whatif">/);
  assert.match(html, /siq\.reject_score/);
  assert.match(html, /DNS as it answers now/);
  // the refused message's hostile Message-ID is listed, as text
  assert.ok(html.includes('m6&lt;script&gt;alert(1)&lt;/script&gt;@example.com'), 'escaped');
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /\b(src|href)=["']?(https?:)?\/\//i, 'no external resource');
  assert.doesNotMatch(html, /<link /i);
  // the broken message and the skipped one are listed with their place in the file
  assert.match(html, /archive\.mbox:4000 \(#4\)/);
  assert.match(html, /not a message: header line 1/);
  assert.match(html, /archive\.mbox:7000 \(#7\)/);
});

test('past --sample, the charts and what-if use a uniform sample; the totals still count every message', async () => {
  const report = await replay(config(), tempDir('checkid-report-'), 4);
  const json = JSON.parse(readFileSync(report.jsonPath, 'utf8'));
  assert.equal(json.totals.checked, 6);
  assert.equal(json.sampled, 4);
  const inCharts = (json.distributions.siq.buckets as Array<{ total: number }>).reduce((s, b) => s + b.total, 0) + json.distributions.siq.missing;
  assert.equal(inCharts, 4);
  assert.match(readFileSync(report.htmlPath, 'utf8'), /a uniform random sample of 4 of the 6 checked messages/);
});
