/**
 * What every HistoryStore must do, as a reusable suite: `runHistoryContract('sqlite', make)`
 * registers the tests for a store made fresh (and empty) by `make` for each test. A store that
 * keeps its records across restarts passes `reopen` too (closes the store, opens it again on
 * the same data).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RECORD_VERSION, type VerdictRecord } from '../../src/history/record.ts';
import type { HistoryStore } from '../../src/history/store.ts';

/** A complete record; fields overridden as given. */
export function makeRecord(overrides: Partial<VerdictRecord> = {}): VerdictRecord {
  return {
    v: RECORD_VERSION,
    time: 1_700_000_000_000,
    ip: '192.0.2.1',
    helo: 'mx.example.com',
    id: null,
    mailFrom: 'a@example.com',
    rcpt: ['b@example.org'],
    recipient: null,
    stage: 'eom',
    action: 'FILTER',
    reply: { code: 250, xcode: '', text: 'Sender OK' },
    reason: 'unknown-sender',
    explanation: ['MAIL FROM <a@example.com>: SPF pass', 'not reputable enough to skip filtering: tagged'],
    facts: 'iprev=pass helo=pass spf=pass siq=45',
    ms: 3.5,
    subjectTagged: true,
    siq: { kind: 'score', score: 45, ipScore: 40, domainScore: 50, relScore: null, confidence: 80 },
    ratings: null,
    dnsbl: { score: 0, ipScore: 0, listed: [], zones: [{ zone: 'bl.example', type: 'ip', weight: 1, status: 'not-listed' }] },
    identity: { domain: 'mx.example.com', source: 'helo', result: 'pass' },
    localIp: 'none',
    iprev: 'pass',
    spf: 'pass',
    dkim: null,
    dmarc: null,
    arc: null,
    ...overrides,
  };
}

/** Waits until `check` holds (a live feed may deliver asynchronously), failing after `ms`. */
export async function eventually(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface ContractOptions {
  /** closes `store` and opens the same data again (stores that persist) */
  reopen?: (store: HistoryStore) => Promise<HistoryStore>;
}

export function runHistoryContract(name: string, makeStore: () => Promise<HistoryStore>, options: ContractOptions = {}): void {
  // `fn` may hand back the store it reopened: that one is closed at the end
  const withStore = async (fn: (s: HistoryStore) => Promise<unknown>) => {
    const s = await makeStore();
    let current: HistoryStore = s;
    try {
      const back = await fn(s);
      if (back && typeof (back as HistoryStore).close === 'function') current = back as HistoryStore;
    } finally {
      await current.close();
    }
  };
  const at = (t: number, extra: Partial<VerdictRecord> = {}) => makeRecord({ time: t, ip: `192.0.2.${t % 250}`, ...extra });

  describe(`HistoryStore contract: ${name}`, () => {
    test('an empty store has nothing', () =>
      withStore(async (s) => {
        assert.equal(await s.count(), 0);
        assert.deepEqual(await s.recent(10), []);
        assert.deepEqual(await s.range(0, Number.MAX_SAFE_INTEGER), []);
        assert.equal(await s.prune(Number.MAX_SAFE_INTEGER), 0);
      }));

    test('records come back as they went in, field for field', () =>
      withStore(async (s) => {
        const r = makeRecord({
          reply: { code: 550, xcode: '5.7.1', text: 'message rejected, SIQ score 5 too low' },
          action: 'REJECT',
          reason: 'siq-reject',
          explanation: ['SIQ ip 5 "quoted" \\ back', 'ünïcødé ✓'],
          ratings: { domain: 'example.com', status: 'found', average: 7.25, min: 5, max: 9, failed: 1, grades: ['S1:A', 'M2:C'] },
          dmarc: { result: 'fail', disposition: 'reject', domain: 'example.com' },
          arc: { cv: 'pass', sealer: 'forwarder.example' },
        });
        await s.append([r]);
        assert.deepEqual(await s.recent(1), [r]);
        assert.deepEqual(await s.range(r.time, r.time + 1), [r]);
      }));

    test('recent(n): the newest n, oldest first; count counts all', () =>
      withStore(async (s) => {
        await s.append([at(1000), at(2000), at(3000)]);
        await s.append([at(4000), at(5000)]);
        assert.equal(await s.count(), 5);
        assert.deepEqual(
          (await s.recent(3)).map((r) => r.time),
          [3000, 4000, 5000],
        );
        assert.deepEqual(
          (await s.recent(100)).map((r) => r.time),
          [1000, 2000, 3000, 4000, 5000],
        );
        assert.deepEqual(await s.recent(0), []);
        await assert.rejects(() => s.recent(-1), RangeError);
      }));

    test('range(from, to, limit): from inclusive, to exclusive, oldest first, the oldest `limit`', () =>
      withStore(async (s) => {
        await s.append([at(1000), at(2000), at(3000), at(4000), at(5000)]);
        assert.deepEqual(
          (await s.range(2000, 4000)).map((r) => r.time),
          [2000, 3000],
        );
        assert.deepEqual(
          (await s.range(0, 10_000, 2)).map((r) => r.time),
          [1000, 2000],
        );
        assert.deepEqual(await s.range(6000, 7000), []);
        assert.deepEqual(await s.range(3000, 3000), []);
      }));

    test('records with the same time keep the order they were appended in', () =>
      withStore(async (s) => {
        const ips = Array.from({ length: 30 }, (_, i) => `198.51.100.${i + 1}`);
        await s.append(ips.slice(0, 10).map((ip) => makeRecord({ time: 7000, ip })));
        await s.append(ips.slice(10).map((ip) => makeRecord({ time: 7000, ip })));
        assert.deepEqual(
          (await s.range(7000, 7001)).map((r) => r.ip),
          ips,
        );
        assert.deepEqual(
          (await s.recent(5)).map((r) => r.ip),
          ips.slice(-5),
        );
        assert.deepEqual(
          (await s.range(0, 10_000, 12)).map((r) => r.ip),
          ips.slice(0, 12),
        );
      }));

    test('a long range and a long recent() come whole and in order (more than one page of a paged reader)', () =>
      withStore(async (s) => {
        const n = 5_000;
        const batch: VerdictRecord[] = [];
        for (let i = 0; i < n; i++) batch.push(at(10_000 + Math.floor(i / 3)));
        await s.append(batch);
        const all = await s.range(0, Number.MAX_SAFE_INTEGER);
        assert.equal(all.length, n);
        for (let i = 1; i < all.length; i++) assert.ok(all[i]!.time >= all[i - 1]!.time, `out of order at ${i}`);
        assert.equal((await s.range(0, Number.MAX_SAFE_INTEGER, 4_321)).length, 4_321);
        const newest = await s.recent(4_321);
        assert.deepEqual(
          newest.map((r) => `${r.time} ${r.ip}`),
          all.slice(-4_321).map((r) => `${r.time} ${r.ip}`),
        );
      }));

    test('prune(before) removes the older records only and says how many', () =>
      withStore(async (s) => {
        await s.append([at(1000), at(2000), at(3000), at(4000)]);
        assert.equal(await s.prune(3000), 2);
        assert.equal(await s.count(), 2);
        assert.deepEqual(
          (await s.recent(10)).map((r) => r.time),
          [3000, 4000],
        );
        assert.equal(await s.prune(3000), 0);
      }));

    test('what a caller does with a returned record does not change the store', () =>
      withStore(async (s) => {
        await s.append([at(1000)]);
        const [r] = await s.recent(1);
        r!.action = 'DISCARD';
        r!.rcpt.push('x@example.net');
        const [again] = await s.recent(1);
        assert.equal(again!.action, 'FILTER');
        assert.deepEqual(again!.rcpt, ['b@example.org']);
      }));

    test('the live feed: every appended record, in order, to every subscriber until it unsubscribes', () =>
      withStore(async (s) => {
        const a: VerdictRecord[] = [];
        const b: VerdictRecord[] = [];
        const offA = s.subscribe((r) => a.push(r));
        const offB = s.subscribe((r) => b.push(r));
        await s.append([at(1000), at(2000)]);
        await s.append([at(3000)]);
        await eventually(() => a.length === 3 && b.length === 3, 'both subscribers get 3 records');
        assert.deepEqual(
          a.map((r) => r.time),
          [1000, 2000, 3000],
        );
        assert.deepEqual(a[0], at(1000));
        offA();
        await s.append([at(4000)]);
        await eventually(() => b.length === 4, 'the remaining subscriber gets the 4th');
        // give a late delivery to the unsubscribed listener every chance to show up
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(a.length, 3);
        offB();
      }));

    test('a listener that throws neither fails the append nor starves the other listeners', () =>
      withStore(async (s) => {
        const got: number[] = [];
        const off1 = s.subscribe(() => {
          throw new Error('listener bug');
        });
        const off2 = s.subscribe((r) => got.push(r.time));
        await s.append([at(1000), at(2000)]);
        await eventually(() => got.length === 2, 'the good listener gets both');
        assert.equal(await s.count(), 2);
        off1();
        off2();
      }));

    test('after close, calls fail clearly', async () => {
      const s = await makeStore();
      await s.close();
      await assert.rejects(() => s.append([at(1)]), /closed/);
      await assert.rejects(() => s.count(), /closed/);
    });

    if (options.reopen) {
      const reopen = options.reopen;
      test('records survive closing and opening the store again', () =>
        withStore(async (s) => {
          await s.append([at(1000), at(2000)]);
          const again = await reopen(s);
          assert.equal(await again.count(), 2);
          assert.deepEqual(
            (await again.recent(5)).map((r) => r.time),
            [1000, 2000],
          );
          return again;
        }));
    }
  });
}
