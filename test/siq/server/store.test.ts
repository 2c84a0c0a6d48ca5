/** The SiqServerStore contract against the memory and SQLite stores, and SQLite's file handling. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { MemorySiqServerStore } from '../../../src/siq/server/store-memory.ts';
import { SQLITE_SCHEMA_VERSION, SqliteSiqServerStore } from '../../../src/siq/server/store-sqlite.ts';
import { runStoreContract } from './store-contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'checkid-siq-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

runStoreContract('memory', () => new MemorySiqServerStore());
runStoreContract('sqlite in memory', () => new SqliteSiqServerStore());
runStoreContract('sqlite file', () => new SqliteSiqServerStore({ path: join(dir, `contract-${n++}.db`) }));

test('sqlite: data survives a reopen; WAL; schema version recorded', async () => {
  const path = join(dir, 'reopen.db');
  const s1 = new SqliteSiqServerStore({ path });
  const a = await s1.createAccount({ email: 'a@example.com', passwordHash: 'h', createdAt: 1 });
  await s1.addSourceIp(a.id, '192.0.2.1');
  await s1.setProfile(a.id, { base: 42 });
  await s1.close();
  const s2 = new SqliteSiqServerStore({ path });
  assert.deepEqual(await s2.getAccount(a.id), a);
  assert.equal(await s2.accountIdForIp('192.0.2.1'), a.id);
  assert.deepEqual(await s2.getProfile(a.id), { base: 42 });
  await s2.close();
  const raw = new DatabaseSync(path);
  assert.equal((raw.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
  assert.equal(
    (raw.prepare('PRAGMA user_version').get() as { user_version: number }).user_version,
    SQLITE_SCHEMA_VERSION,
  );
  raw.close();
});

test('sqlite: two store objects on one file see each other (change counter moves)', async () => {
  const path = join(dir, 'shared.db');
  const writer = new SqliteSiqServerStore({ path });
  const reader = new SqliteSiqServerStore({ path });
  const c0 = await reader.changeCounter();
  const a = await writer.createAccount({ email: 'a@example.com', passwordHash: 'h', createdAt: 1 });
  await writer.setProfile(a.id, { base: 7 });
  assert.ok((await reader.changeCounter()) >= c0 + 2);
  assert.deepEqual(await reader.getProfile(a.id), { base: 7 });
  await Promise.all([writer.close(), reader.close()]);
});

test('sqlite: a database from a newer schema is refused with a clear error', () => {
  const path = join(dir, 'newer.db');
  const raw = new DatabaseSync(path);
  raw.exec(`PRAGMA user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
  raw.close();
  assert.throws(
    () => new SqliteSiqServerStore({ path }),
    /schema version 2 is newer than this checkid knows/,
  );
});

test('sqlite: an unopenable path names the file', () => {
  assert.throws(
    () => new SqliteSiqServerStore({ path: join(dir, 'no', 'such', 'dir', 'x.db') }),
    /x\.db: cannot open/,
  );
});
