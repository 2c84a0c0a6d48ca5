/** The history recorder: final verdicts only, never in the verdict's way, bounded when the store is slow. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine, type Logger, staticPolicy } from '../../src/engine/engine.ts';
import type { VerdictEvent } from '../../src/engine/observer.ts';
import { emptyFacts } from '../../src/engine/facts.ts';
import { HistoryRecorder } from '../../src/history/recorder.ts';
import type { VerdictRecord } from '../../src/history/record.ts';
import { type HistoryStore, MemoryHistoryStore } from '../../src/history/store.ts';
import { defaultConfig } from '../../src/policy/config.ts';
import { Registry } from '../../src/telemetry/prometheus.ts';
import { seedZone } from '../support/fixtures.ts';
import { MemoryResolver } from '../support/zone.ts';

test('each final verdict of a real engine becomes one record, with its facts and explanation', async () => {
  const store = new MemoryHistoryStore();
  const recorder = new HistoryRecorder({ store, now: () => 1_234_567 });
  const resolver = new MemoryResolver(seedZone());
  const config = defaultConfig();
  config.ratings.registries = [{ zone: 'registry.example' }];
  const engine = new Engine({ resolver, policy: staticPolicy(config, resolver), observer: recorder.observer });
  // example.com: authorized, rated S1:A M2:A H1:B → reputable (ACCEPT at ID)
  const ok = await engine.checkID({ ip: '192.0.2.1', id: 'example.com' });
  assert.equal(ok.action, 'ACCEPT');
  // example.net does not authorize 192.0.2.1 → REJECT at ID
  const bad = await engine.checkID({ ip: '192.0.2.1', id: 'example.net' });
  assert.equal(bad.action, 'REJECT');
  // no ID, a whole message: FILTER at the end (four CONTINUE stages before it are not recorded)
  const eom = await engine.checkID({ ip: '192.0.2.1', helo: 'mx.example.com', mailFrom: 'a@example.com', rcpt: ['b@example.org'], headers: 'From: a@example.com\r\n', body: 'x\r\n' });
  assert.equal(eom.action, 'FILTER');
  await recorder.flush();
  const records = await store.recent(10);
  assert.deepEqual(
    records.map((r) => [r.stage, r.action, r.reason]),
    [
      ['id', 'ACCEPT', 'reputable'],
      ['id', 'REJECT', 'identity-spf-fail'],
      ['eom', 'FILTER', 'unknown-sender'],
    ],
  );
  const [reputable, rejected, filtered] = records as [VerdictRecord, VerdictRecord, VerdictRecord];
  assert.equal(reputable.time, 1_234_567);
  assert.equal(reputable.id, 'example.com');
  assert.deepEqual(reputable.identity, { domain: 'example.com', source: 'id', result: 'pass' });
  assert.equal(reputable.ratings?.status, 'found');
  assert.deepEqual(reputable.ratings?.grades, ['S1:A', 'M2:A', 'H1:B']);
  assert.equal(reputable.ratings?.max, 9);
  assert.ok(reputable.explanation.some((e) => e.includes('reputable')));
  assert.equal(rejected.reply.code, 550);
  assert.match(rejected.facts, /id=fail/);
  assert.equal(filtered.mailFrom, 'a@example.com');
  assert.deepEqual(filtered.rcpt, ['b@example.org']);
  assert.equal(filtered.spf, 'pass');
  assert.equal(filtered.dkim, 'none');
  assert.deepEqual(recorder.stats(), { written: 3, dropped: 0, failed: 0, queued: 0 });
});

/** A store whose appends wait until released: the "slow disk". */
class SlowStore extends MemoryHistoryStore {
  gate: Promise<void>;
  release!: () => void;
  appends = 0;
  fail = false;
  constructor() {
    super();
    this.gate = new Promise((r) => {
      this.release = r;
    });
  }
  override async append(records: readonly VerdictRecord[]): Promise<void> {
    this.appends++;
    await this.gate;
    if (this.fail) throw new Error('disk full');
    return super.append(records);
  }
}

const event = (action: 'ACCEPT' | 'CONTINUE', ip = '192.0.2.7'): VerdictEvent => ({
  stage: 'connect',
  verdict: { action, reply: { code: 250, xcode: '', text: 'OK' }, headers: [], removeHeaders: [], stage: 'connect', reason: 'test', explanation: [] },
  facts: emptyFacts(ip),
  ms: 1,
});

test('a slow store: the observer returns at once, the queue is bounded, drops are counted and reported once', async () => {
  const store = new SlowStore();
  const logs: Array<[string, string, Record<string, unknown> | undefined]> = [];
  const log: Logger = (level, message, fields) => logs.push([level, message, fields]);
  const recorder = new HistoryRecorder({ store, maxQueue: 5, batch: 2, log });
  const registry = new Registry();
  recorder.registerMetrics(registry);
  recorder.observer.verdict!(event('ACCEPT', '192.0.2.1'));
  // the writer takes the first record and waits on the store
  await new Promise((r) => setImmediate(r));
  for (let i = 2; i <= 20; i++) recorder.observer.verdict!(event('ACCEPT', `192.0.2.${i}`));
  recorder.observer.verdict!(event('CONTINUE'));
  const s = recorder.stats();
  assert.equal(s.queued, 5, 'the queue holds at most maxQueue');
  assert.equal(s.dropped, 14, '19 more verdicts, 5 queued, 14 dropped');
  assert.equal(logs.filter((l) => l[1].includes('dropped')).length, 1, 'one warning, not one per drop');
  store.release();
  await recorder.flush();
  assert.equal(await store.count(), 6);
  assert.deepEqual(
    (await store.recent(10)).map((r) => r.ip),
    ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5', '192.0.2.6'],
  );
  assert.match(registry.render(), /checkid_history_records_total\{outcome="dropped"\} 14\n/);
  assert.match(registry.render(), /checkid_history_records_total\{outcome="written"\} 6\n/);
});

test('a failing store: records counted as failed, a warning logged, the verdicts untouched', async () => {
  const store = new SlowStore();
  store.fail = true;
  store.release();
  const logs: string[] = [];
  const recorder = new HistoryRecorder({ store, batch: 3, log: (_l, m) => logs.push(m) });
  for (let i = 0; i < 7; i++) recorder.observer.verdict!(event('ACCEPT'));
  await recorder.flush();
  assert.deepEqual(recorder.stats(), { written: 0, dropped: 0, failed: 7, queued: 0 });
  assert.deepEqual(logs, ['history store failed: verdict records lost']);
  // after close nothing more is taken
  await recorder.close();
  recorder.observer.verdict!(event('ACCEPT'));
  assert.equal(recorder.stats().queued, 0);
});

test('a store that throws synchronously is handled like one that rejects', async () => {
  const broken = {
    name: 'broken',
    append: () => {
      throw new Error('boom');
    },
  } as unknown as HistoryStore;
  const recorder = new HistoryRecorder({ store: broken });
  recorder.observer.verdict!(event('ACCEPT'));
  await recorder.flush();
  assert.equal(recorder.stats().failed, 1);
});
