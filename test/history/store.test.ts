/** The memory and SQLite history stores: the shared contract, then what each does on its own. */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { MemoryHistoryStore, SqliteHistoryStore } from '../../src/history/store.ts';
import { tempDir } from '../support/fixtures.ts';
import { makeRecord, runHistoryContract } from './store-contract.ts';

runHistoryContract('memory', async () => new MemoryHistoryStore({ capacity: 100_000 }));

const dir = tempDir('checkid-history-');
let n = 0;
const paths = new WeakMap<object, string>();
runHistoryContract(
  'sqlite',
  async () => {
    const path = join(dir, `h${n++}.db`);
    // a small page size, so the contract's long read crosses many pages
    const s = new SqliteHistoryStore({ path, pageSize: 700 });
    paths.set(s, path);
    return s;
  },
  {
    reopen: async (s) => {
      const path = paths.get(s)!;
      await s.close();
      return new SqliteHistoryStore({ path });
    },
  },
);

test('memory store: a ring buffer keeps the newest `capacity` records', async () => {
  const s = new MemoryHistoryStore({ capacity: 3 });
  for (let t = 1; t <= 5; t++) await s.append([makeRecord({ time: t * 1000 })]);
  assert.equal(await s.count(), 3);
  assert.deepEqual(
    (await s.recent(10)).map((r) => r.time),
    [3000, 4000, 5000],
  );
  assert.equal(await s.prune(4000), 1);
  await s.append([makeRecord({ time: 6000 }), makeRecord({ time: 7000 })]);
  assert.deepEqual(
    (await s.range(0, 10_000)).map((r) => r.time),
    [5000, 6000, 7000],
  );
  assert.throws(() => new MemoryHistoryStore({ capacity: 0 }), /capacity/);
});

test('sqlite store: WAL journal, the file and its directory are made, retention prunes old records at open', async () => {
  const path = join(dir, 'sub', 'dir', 'history.db');
  const now = Date.UTC(2026, 10, 23);
  const s = new SqliteHistoryStore({ path, retentionDays: 7, now: () => now });
  await s.append([makeRecord({ time: now - 10 * 86_400_000 }), makeRecord({ time: now - 6 * 86_400_000 }), makeRecord({ time: now })]);
  assert.equal(await s.count(), 3);
  await s.close();
  assert.ok(existsSync(path));
  const reopened = new SqliteHistoryStore({ path, retentionDays: 7, now: () => now });
  assert.equal(await reopened.count(), 2, 'the record older than 7 days is gone');
  await reopened.close();
  const raw = new DatabaseSync(path);
  assert.equal((raw.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
  raw.close();
});

test('sqlite store: a damaged row is skipped and reported, the others still read', async () => {
  const path = join(dir, 'damaged.db');
  const s = new SqliteHistoryStore({ path });
  await s.append([makeRecord({ time: 1000 }), makeRecord({ time: 3000 })]);
  await s.close();
  const raw = new DatabaseSync(path);
  raw.prepare('INSERT INTO verdicts (time, record) VALUES (?, ?)').run(2000, '{"not": "a record"');
  raw.prepare('INSERT INTO verdicts (time, record) VALUES (?, ?)').run(2500, JSON.stringify({ ...makeRecord(), v: 99 }));
  raw.close();
  const bad: string[] = [];
  const again = new SqliteHistoryStore({ path, onBadRow: (_seq, error) => bad.push(error) });
  assert.deepEqual(
    (await again.range(0, 10_000)).map((r) => r.time),
    [1000, 3000],
  );
  assert.equal(bad.length, 2);
  assert.match(bad[0]!, /not JSON/);
  assert.match(bad[1]!, /unknown record version 99/);
  await again.close();
});

test('sqlite store: a file that is not a database is refused with its name', () => {
  const path = join(dir, 'not-a-db.db');
  writeFileSync(path, 'this is not sqlite, just text that is long enough to have a header '.repeat(20));
  assert.throws(() => new SqliteHistoryStore({ path }), (err: Error) => err.message.startsWith(`${path}: `) && /not a database/.test(err.message));
});
