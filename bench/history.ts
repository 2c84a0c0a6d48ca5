/**
 * The verdict history's cost, each against a baseline in the same run:
 *  - full checkID sessions per second with the history recorder (SQLite store) against none
 *    (alternating, best of three rounds each);
 *  - SQLite appends per second (batches as the recorder makes them) and a recent() read;
 *  - the what-if over the newest 50,000 records, against merely JSON-parsing those records.
 *
 *   node bench/history.ts [--n 20000] [--records 50000]
 *
 * Prints one JSON object.
 */
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Engine, staticPolicy } from '../src/engine/engine.ts';
import { HistoryRecorder } from '../src/history/recorder.ts';
import type { VerdictRecord } from '../src/history/record.ts';
import { MemoryHistoryStore, SqliteHistoryStore } from '../src/history/store.ts';
import { distributions, whatIf } from '../src/history/whatif.ts';
import { defaultConfig } from '../src/policy/config.ts';
import { seedZone } from '../test/support/fixtures.ts';
import { Zone } from '../test/support/zone.ts';
import { numberArg } from './support/args.ts';
import { measure } from './support/dns-process.ts';
import { ZoneResolver } from './support/zone-resolver.ts';

const N = numberArg('n', 20_000);
const RECORDS = numberArg('records', 50_000);
const dir = mkdtempSync(join(tmpdir(), 'checkid-bench-history-'));

try {
  const resolver = new ZoneResolver(new Zone(seedZone()));
  const config = defaultConfig();
  config.ratings.registries = [{ zone: 'registry.example' }];
  const policy = staticPolicy(config, resolver);
  const input = { ip: '192.0.2.1', helo: 'mx.example.com', mailFrom: 'a@example.com', rcpt: ['b@example.org'], headers: 'From: a@example.com\r\nSubject: x\r\n', body: 'x\r\n' };

  const plain = new Engine({ resolver, policy });
  const store = new SqliteHistoryStore({ path: join(dir, 'engine.db') });
  const recorder = new HistoryRecorder({ store, maxQueue: 1_000_000 });
  const recording = new Engine({ resolver, policy, observer: recorder.observer });
  for (const e of [plain, recording]) for (let i = 0; i < 200; i++) await e.checkID(input); // warm up
  // alternate the two, three rounds each, and keep each one's best: the machine may be busy
  type Run = Awaited<ReturnType<typeof measure>>;
  let without: Run | null = null;
  let withHistory: Run | null = null;
  for (let round = 0; round < 3; round++) {
    const a = await measure(N, 16, () => plain.checkID(input));
    // the records are written after the verdicts: the time until they are all stored counts
    const started = performance.now();
    await measure(N, 16, () => recording.checkID(input));
    await recorder.flush();
    const elapsed = performance.now() - started;
    const b: Run = { ops: N, ms: Math.round(elapsed), perSecond: Math.round(N / (elapsed / 1000)) };
    if (!without || a.perSecond > without.perSecond) without = a;
    if (!withHistory || b.perSecond > withHistory.perSecond) withHistory = b;
  }
  await recorder.flush();
  const recorded = await store.count();

  // appends as the recorder makes them, and reading the newest RECORDS back
  const sample = (await store.recent(1))[0]!;
  const records: VerdictRecord[] = [];
  for (let i = 0; i < RECORDS; i++) {
    const score = (i * 37) % 101;
    records.push({ ...sample, time: 1_800_000_000_000 + i, ip: `192.0.2.${i % 200}`, mailFrom: `u@d${i % 500}.example`, siq: { kind: 'score', score, ipScore: null, domainScore: null, relScore: null, confidence: null }, subjectTagged: score <= 50 });
  }
  const big = new SqliteHistoryStore({ path: join(dir, 'big.db') });
  const t0 = performance.now();
  for (let i = 0; i < records.length; i += 500) await big.append(records.slice(i, i + 500));
  const appendMs = performance.now() - t0;
  const t1 = performance.now();
  const back = await big.recent(RECORDS);
  const recentMs = performance.now() - t1;
  const memory = new MemoryHistoryStore({ capacity: RECORDS });
  const t2 = performance.now();
  for (let i = 0; i < records.length; i += 500) await memory.append(records.slice(i, i + 500));
  const memoryAppendMs = performance.now() - t2;

  // the what-if against the baseline of only parsing the same records
  const texts = back.map((r) => JSON.stringify(r));
  const t3 = performance.now();
  let parsed = 0;
  for (const t of texts) parsed += (JSON.parse(t) as VerdictRecord).time > 0 ? 1 : 0;
  const parseMs = performance.now() - t3;
  const t4 = performance.now();
  const report = whatIf(back, config, { siqRejectScore: 30, siqTagScore: 70 });
  const whatIfMs = performance.now() - t4;
  const t5 = performance.now();
  distributions(back);
  const distMs = performance.now() - t5;
  await big.close();
  await store.close();

  const ms = (n: number) => Math.round(n * 10) / 10;
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'history',
        node: process.version,
        n: N,
        checkID_full_session_16_in_flight: without,
        checkID_full_session_with_sqlite_history: withHistory,
        ratio_with_history: +(withHistory!.perSecond / without!.perSecond).toFixed(2),
        recorded,
        records: RECORDS,
        sqlite_append_per_second: Math.round(RECORDS / (appendMs / 1000)),
        memory_append_per_second: Math.round(RECORDS / (memoryAppendMs / 1000)),
        sqlite_recent_all_ms: ms(recentMs),
        json_parse_all_ms: ms(parseMs),
        whatif_ms: ms(whatIfMs),
        distributions_ms: ms(distMs),
        ratio_whatif_to_json_parse: +(whatIfMs / parseMs).toFixed(2),
        whatif_newly_rejected: report.totals.newlyRejected,
        parsed,
      },
      null,
      2,
    )}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
