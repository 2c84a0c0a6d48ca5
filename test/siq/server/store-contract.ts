/**
 * The SiqServerStore contract (src/siq/server/store.ts), run against any implementation:
 *
 *   runStoreContract('memory', () => new MemorySiqServerStore());
 *
 * `makeStore` must give an empty store each time (a Redis one: flush its prefix first); each
 * test closes the store it made. Everything goes through the interface only.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  QUERY_LOG_KEEP,
  type SiqServerStore,
  type SiqStoreChange,
  SiqStoreError,
} from '../../../src/siq/server/store.ts';

const T0 = 1_700_000_000_000;
const DAY = 86_400_000;

function isStoreError(code: SiqStoreError['code']): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof SiqStoreError, `expected a SiqStoreError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

/** JSON round trip: the value is plain JSON (no Dates, Buffers, class instances). */
function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

export function runStoreContract(
  name: string,
  makeStore: () => SiqServerStore | Promise<SiqServerStore>,
): void {
  const withStore = (title: string, fn: (store: SiqServerStore) => Promise<void>) =>
    test(title, async () => {
      const store = await makeStore();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    });

  describe(`SiqServerStore contract: ${name}`, () => {
    withStore('accounts: create, read by id and e-mail, list oldest first, plain JSON', async (store) => {
      const a = await store.createAccount({
        email: 'Alice@Example.COM',
        passwordHash: 'scrypt$abc',
        createdAt: T0 + 10,
      });
      const b = await store.createAccount({
        email: 'bob@example.net',
        passwordHash: 'h2',
        createdAt: T0,
        apiKey: 'ab'.repeat(16),
      });
      assert.equal(a.email, 'alice@example.com');
      assert.equal(a.passwordHash, 'scrypt$abc');
      assert.equal(a.createdAt, T0 + 10);
      assert.match(a.apiKey, /^[0-9a-f]{32,}$/);
      assert.equal(b.apiKey, 'ab'.repeat(16));
      assert.notEqual(a.id, b.id);
      assert.deepEqual(plain(a), a);
      assert.deepEqual(await store.getAccount(a.id), a);
      assert.deepEqual(await store.getAccountByEmail('ALICE@example.com'), a);
      assert.equal(await store.getAccountByEmail('nobody@example.com'), null);
      assert.equal(await store.getAccount('no-such-id'), null);
      const all = await store.listAccounts();
      assert.deepEqual(
        all.map((x) => x.email),
        ['bob@example.net', 'alice@example.com'],
      );
      assert.deepEqual(plain(all), all);
    });

    withStore('accounts: duplicate e-mail or key is a conflict, bad input invalid', async (store) => {
      const a = await store.createAccount({ email: 'a@example.com', passwordHash: 'x', createdAt: T0 });
      await assert.rejects(
        store.createAccount({ email: 'A@EXAMPLE.com', passwordHash: 'y', createdAt: T0 }),
        isStoreError('conflict'),
      );
      await assert.rejects(
        store.createAccount({ email: 'b@example.com', passwordHash: 'y', createdAt: T0, apiKey: a.apiKey }),
        isStoreError('conflict'),
      );
      await assert.rejects(
        store.createAccount({ email: 'not an address', passwordHash: 'y', createdAt: T0 }),
        isStoreError('invalid'),
      );
      await assert.rejects(
        store.createAccount({ email: 'c@example.com', passwordHash: 'y', createdAt: T0, apiKey: 'short' }),
        isStoreError('invalid'),
      );
      assert.equal((await store.listAccounts()).length, 1);
    });

    withStore('accounts: update fields, conflicts, unknown id', async (store) => {
      const a = await store.createAccount({ email: 'a@example.com', passwordHash: 'x', createdAt: T0 });
      const b = await store.createAccount({ email: 'b@example.com', passwordHash: 'x', createdAt: T0 });
      const key = 'cd'.repeat(20);
      const u = await store.updateAccount(a.id, {
        email: 'New@Example.com',
        passwordHash: 'p2',
        apiKey: key,
      });
      assert.deepEqual(u, { ...a, email: 'new@example.com', passwordHash: 'p2', apiKey: key });
      assert.deepEqual(await store.getAccount(a.id), u);
      assert.equal(await store.getAccountByEmail('a@example.com'), null);
      assert.equal((await store.getAccountByEmail('new@example.com'))?.id, a.id);
      await assert.rejects(store.updateAccount(b.id, { email: 'new@example.com' }), isStoreError('conflict'));
      await assert.rejects(store.updateAccount(b.id, { apiKey: key }), isStoreError('conflict'));
      assert.equal((await store.getAccount(b.id))?.email, 'b@example.com');
      // the old e-mail is free again
      await store.updateAccount(b.id, { email: 'a@example.com' });
      assert.equal(await store.updateAccount('no-such-id', { passwordHash: 'z' }), null);
      // no change of fields that were not given
      assert.deepEqual(await store.updateAccount(a.id, {}), u);
    });

    withStore('source IPs: normalised, unique across accounts, lookup, removal', async (store) => {
      const a = await store.createAccount({ email: 'a@example.com', passwordHash: 'x', createdAt: T0 });
      const b = await store.createAccount({ email: 'b@example.com', passwordHash: 'x', createdAt: T0 });
      await store.addSourceIp(a.id, '192.0.2.1');
      await store.addSourceIp(a.id, '2001:DB8:0:0::1');
      await store.addSourceIp(a.id, '::ffff:198.51.100.7');
      await store.addSourceIp(a.id, '192.0.2.1'); // idempotent
      assert.deepEqual(await store.listSourceIps(a.id), ['192.0.2.1', '198.51.100.7', '2001:db8::1'].sort());
      assert.equal(await store.accountIdForIp('192.0.2.1'), a.id);
      assert.equal(await store.accountIdForIp('2001:db8::1'), a.id);
      assert.equal(await store.accountIdForIp('198.51.100.7'), a.id);
      assert.equal(await store.accountIdForIp('192.0.2.2'), null);
      await assert.rejects(store.addSourceIp(b.id, '192.0.2.1'), isStoreError('conflict'));
      await assert.rejects(store.addSourceIp(b.id, 'not-an-ip'), isStoreError('invalid'));
      await assert.rejects(store.addSourceIp('no-such-id', '192.0.2.9'), isStoreError('not-found'));
      await assert.rejects(store.accountIdForIp('999.1.1.1'), isStoreError('invalid'));
      assert.equal(await store.removeSourceIp(b.id, '192.0.2.1'), false);
      assert.equal(await store.removeSourceIp(a.id, '192.0.2.1'), true);
      assert.equal(await store.removeSourceIp(a.id, '192.0.2.1'), false);
      assert.equal(await store.accountIdForIp('192.0.2.1'), null);
      await store.addSourceIp(b.id, '192.0.2.1');
      assert.equal(await store.accountIdForIp('192.0.2.1'), b.id);
      assert.deepEqual(await store.listSourceIps('no-such-id'), []);
    });

    withStore('profiles: JSON object round trip, replace, unknown account', async (store) => {
      const a = await store.createAccount({ email: 'a@example.com', passwordHash: 'x', createdAt: T0 });
      assert.equal(await store.getProfile(a.id), null);
      const p = {
        base: 50,
        checks: { dnsbl: { enabled: true, pass: 10, fail: -40 } },
        note: 'ünï',
        list: [1, 'two', null, false],
      };
      await store.setProfile(a.id, p);
      assert.deepEqual(await store.getProfile(a.id), p);
      // the stored copy is not the caller's object
      p.base = 1;
      assert.equal((await store.getProfile(a.id))?.base, 50);
      await store.setProfile(a.id, { base: 70 });
      assert.deepEqual(await store.getProfile(a.id), { base: 70 });
      await assert.rejects(store.setProfile('no-such-id', { base: 1 }), isStoreError('not-found'));
      assert.equal(await store.getProfile('no-such-id'), null);
    });

    withStore('lists: add in order, move between lists, remove, idempotent', async (store) => {
      const a = await store.createAccount({ email: 'a@example.com', passwordHash: 'x', createdAt: T0 });
      const b = await store.createAccount({ email: 'b@example.com', passwordHash: 'x', createdAt: T0 });
      assert.deepEqual(await store.getLists(a.id), { allow: [], block: [] });
      await store.addListEntry(a.id, 'allow', '192.0.2.0/24');
      await store.addListEntry(a.id, 'allow', ' partner.example ');
      await store.addListEntry(a.id, 'block', '.spam.example');
      await store.addListEntry(a.id, 'allow', '192.0.2.0/24');
      assert.deepEqual(await store.getLists(a.id), {
        allow: ['192.0.2.0/24', 'partner.example'],
        block: ['.spam.example'],
      });
      await store.addListEntry(a.id, 'block', 'partner.example');
      assert.deepEqual(await store.getLists(a.id), {
        allow: ['192.0.2.0/24'],
        block: ['.spam.example', 'partner.example'],
      });
      assert.deepEqual(await store.getLists(b.id), { allow: [], block: [] });
      assert.equal(await store.removeListEntry(a.id, 'allow', 'partner.example'), false);
      assert.equal(await store.removeListEntry(a.id, 'block', 'partner.example'), true);
      assert.deepEqual(await store.getLists(a.id), { allow: ['192.0.2.0/24'], block: ['.spam.example'] });
      await assert.rejects(store.addListEntry(a.id, 'allow', ''), isStoreError('invalid'));
      await assert.rejects(
        store.addListEntry(a.id, 'maybe' as 'allow', 'x.example'),
        isStoreError('invalid'),
      );
      await assert.rejects(store.addListEntry('no-such-id', 'allow', 'x.example'), isStoreError('not-found'));
    });

    withStore(
      'query log: newest first, limited, per account, bounded, unknown accounts dropped',
      async (store) => {
        const a = await store.createAccount({ email: 'a@example.com', passwordHash: 'x', createdAt: T0 });
        const b = await store.createAccount({ email: 'b@example.com', passwordHash: 'x', createdAt: T0 });
        // each call a fresh object: what is read back is compared with what was written, not with itself
        const entry = (
          accountId: string,
          at: number,
          ip: string,
          domain: string,
          score: number,
          text: string,
        ) => ({
          accountId,
          at,
          ip,
          domain,
          score,
          text,
        });
        const a1 = () => entry(a.id, T0 + 1, '192.0.2.1', 'one.example', 80, 'dnsbl=pass');
        const b2 = () => entry(b.id, T0 + 2, '192.0.2.2', '', -1, '');
        const a4 = () => entry(a.id, T0 + 4, '2001:db8::1', 'two.example', 10, 'spf=fail');
        await store.appendQueryLog([
          a1(),
          b2(),
          entry('no-such-id', T0 + 3, '192.0.2.3', 'x.example', 1, ''),
          a4(),
        ]);
        const recent = await store.recentQueries(a.id, 10);
        assert.deepEqual(recent, [a4(), a1()]);
        assert.deepEqual(plain(recent), recent);
        assert.equal((await store.recentQueries(a.id, 1))[0]?.domain, 'two.example');
        assert.deepEqual(await store.recentQueries(b.id, 5), [b2()]);
        assert.deepEqual(await store.recentQueries('no-such-id', 5), []);
        assert.deepEqual(await store.recentQueries(a.id, 0), []);

        // bounded: after many batches the newest QUERY_LOG_KEEP are still there, in order
        const total = QUERY_LOG_KEEP * 3;
        for (let start = 0; start < total; start += 500) {
          const batch = [];
          for (let i = start; i < start + 500; i++)
            batch.push({
              accountId: b.id,
              at: T0 + 10 + i,
              ip: '192.0.2.9',
              domain: `d${i}.example`,
              score: i % 101,
              text: '',
            });
          await store.appendQueryLog(batch);
        }
        const kept = await store.recentQueries(b.id, QUERY_LOG_KEEP);
        assert.equal(kept.length, QUERY_LOG_KEEP);
        assert.equal(kept[0]!.domain, `d${total - 1}.example`);
        assert.equal(kept[QUERY_LOG_KEEP - 1]!.domain, `d${total - QUERY_LOG_KEEP}.example`);
        const everything = await store.recentQueries(b.id, total + 10);
        assert.ok(
          everything.length >= QUERY_LOG_KEEP && everything.length <= total + 1,
          `${everything.length} kept`,
        );
        // the other account's log is untouched
        assert.equal((await store.recentQueries(a.id, 10)).length, 2);
      },
    );

    withStore('reports: added, decayed by the half-life, per kind and key, listed', async (store) => {
      const a = await store.createAccount({ email: 'a@example.com', passwordHash: 'x', createdAt: T0 });
      const b = await store.createAccount({ email: 'b@example.com', passwordHash: 'x', createdAt: T0 });
      const H = 7 * DAY;
      assert.deepEqual(await store.reportCounts(a.id, 'ip', '192.0.2.1', T0, H), {
        accepted: 0,
        rejected: 0,
      });
      await store.addReport(a.id, 'ip', '192.0.2.1', { accepted: 8, rejected: 0 }, T0, H);
      await store.addReport(a.id, 'ip', '::ffff:192.0.2.1', { accepted: 0, rejected: 4 }, T0, H);
      await store.addReport(a.id, 'domain', 'Sender.Example.', { accepted: 1, rejected: 3 }, T0 + DAY, H);
      assert.deepEqual(await store.reportCounts(a.id, 'ip', '192.0.2.1', T0, H), {
        accepted: 8,
        rejected: 4,
      });
      // one half-life later: halved
      const later = await store.reportCounts(a.id, 'ip', '192.0.2.1', T0 + H, H);
      assert.ok(
        Math.abs(later.accepted - 4) < 1e-9 && Math.abs(later.rejected - 2) < 1e-9,
        JSON.stringify(later),
      );
      // three half-lives: an eighth
      const much = await store.reportCounts(a.id, 'ip', '192.0.2.1', T0 + 3 * H, H);
      assert.ok(
        Math.abs(much.accepted - 1) < 1e-9 && Math.abs(much.rejected - 0.5) < 1e-9,
        JSON.stringify(much),
      );
      // adding later decays the old counts first
      await store.addReport(a.id, 'ip', '192.0.2.1', { accepted: 2, rejected: 0 }, T0 + H, H);
      const after = await store.reportCounts(a.id, 'ip', '192.0.2.1', T0 + H, H);
      assert.ok(
        Math.abs(after.accepted - 6) < 1e-9 && Math.abs(after.rejected - 2) < 1e-9,
        JSON.stringify(after),
      );
      // a read at an earlier time does not grow the counts
      const before = await store.reportCounts(a.id, 'ip', '192.0.2.1', T0, H);
      assert.ok(Math.abs(before.accepted - 6) < 1e-9, JSON.stringify(before));
      // kinds, keys and accounts are separate; domains in lower case without the dot
      assert.deepEqual(await store.reportCounts(a.id, 'domain', 'sender.example', T0 + DAY, H), {
        accepted: 1,
        rejected: 3,
      });
      assert.deepEqual(await store.reportCounts(a.id, 'domain', '192.0.2.1', T0 + DAY, H), {
        accepted: 0,
        rejected: 0,
      });
      assert.deepEqual(await store.reportCounts(b.id, 'ip', '192.0.2.1', T0, H), {
        accepted: 0,
        rejected: 0,
      });
      // long gone: zero
      assert.deepEqual(await store.reportCounts(a.id, 'domain', 'sender.example', T0 + 400 * H, H), {
        accepted: 0,
        rejected: 0,
      });
      const rows = await store.listReports(a.id, T0 + H, H, 10);
      assert.deepEqual(
        rows.map((r) => [r.kind, r.key, r.updatedAt]),
        [
          ['ip', '192.0.2.1', T0 + H],
          ['domain', 'sender.example', T0 + DAY],
        ],
      );
      assert.ok(Math.abs(rows[0]!.accepted - 6) < 1e-9);
      assert.ok(Math.abs(rows[1]!.rejected - 3 * 2 ** (-6 / 7)) < 1e-9, JSON.stringify(rows[1]));
      assert.deepEqual(plain(rows), rows);
      assert.equal((await store.listReports(a.id, T0, H, 1)).length, 1);
      assert.deepEqual(await store.listReports(b.id, T0, H, 10), []);
      await assert.rejects(
        store.addReport(a.id, 'ip', 'nope', { accepted: 1, rejected: 0 }, T0, H),
        isStoreError('invalid'),
      );
      await assert.rejects(
        store.addReport(a.id, 'ip', '192.0.2.1', { accepted: -1, rejected: 0 }, T0, H),
        isStoreError('invalid'),
      );
      await assert.rejects(
        store.addReport(a.id, 'ip', '192.0.2.1', { accepted: 1, rejected: 0 }, T0, 0),
        isStoreError('invalid'),
      );
      await assert.rejects(
        store.addReport('no-such-id', 'ip', '192.0.2.1', { accepted: 1, rejected: 0 }, T0, H),
        isStoreError('not-found'),
      );
    });

    withStore('deleting an account deletes what it owns', async (store) => {
      const a = await store.createAccount({ email: 'a@example.com', passwordHash: 'x', createdAt: T0 });
      await store.addSourceIp(a.id, '192.0.2.1');
      await store.setProfile(a.id, { base: 10 });
      await store.addListEntry(a.id, 'block', 'x.example');
      await store.appendQueryLog([
        { accountId: a.id, at: T0, ip: '192.0.2.5', domain: 'x.example', score: 3, text: '' },
      ]);
      await store.addReport(a.id, 'domain', 'x.example', { accepted: 0, rejected: 1 }, T0, DAY);
      assert.equal(await store.deleteAccount(a.id), true);
      assert.equal(await store.deleteAccount(a.id), false);
      assert.equal(await store.getAccount(a.id), null);
      assert.equal(await store.getAccountByEmail('a@example.com'), null);
      assert.equal(await store.accountIdForIp('192.0.2.1'), null);
      assert.equal(await store.getProfile(a.id), null);
      assert.deepEqual(await store.getLists(a.id), { allow: [], block: [] });
      assert.deepEqual(await store.recentQueries(a.id, 10), []);
      assert.deepEqual(await store.listReports(a.id, T0, DAY, 10), []);
      // e-mail, key and IP are free again
      const again = await store.createAccount({
        email: 'a@example.com',
        passwordHash: 'y',
        createdAt: T0,
        apiKey: a.apiKey,
      });
      await store.addSourceIp(again.id, '192.0.2.1');
      assert.equal(await store.accountIdForIp('192.0.2.1'), again.id);
    });

    withStore('changes: counter grows and watchers hear configuration changes only', async (store) => {
      const seen: SiqStoreChange[] = [];
      const stop = store.watch((c) => seen.push(c));
      const c0 = await store.changeCounter();
      const a = await store.createAccount({ email: 'a@example.com', passwordHash: 'x', createdAt: T0 });
      await store.addSourceIp(a.id, '192.0.2.1');
      await store.setProfile(a.id, { base: 1 });
      await store.addListEntry(a.id, 'allow', 'x.example');
      await store.removeListEntry(a.id, 'allow', 'x.example');
      await store.removeSourceIp(a.id, '192.0.2.1');
      await store.updateAccount(a.id, { passwordHash: 'y' });
      const c1 = await store.changeCounter();
      assert.ok(c1 >= c0 + 7, `${c0} -> ${c1}`);
      assert.deepEqual(
        seen.map((c) => c.what),
        ['account', 'ips', 'profile', 'lists', 'lists', 'ips', 'account'],
      );
      assert.ok(seen.every((c) => c.accountId === a.id));
      // logs and reports are not configuration
      await store.appendQueryLog([
        { accountId: a.id, at: T0, ip: '192.0.2.5', domain: '', score: 3, text: '' },
      ]);
      await store.addReport(a.id, 'ip', '192.0.2.5', { accepted: 1, rejected: 0 }, T0, DAY);
      assert.equal(await store.changeCounter(), c1);
      // a failing watcher does not fail the change; an unsubscribed one hears nothing
      const stopBad = store.watch(() => {
        throw new Error('watcher failed');
      });
      stop();
      await store.setProfile(a.id, { base: 2 });
      stopBad();
      assert.equal(seen.length, 7);
      assert.ok((await store.changeCounter()) > c1);
      await store.deleteAccount(a.id);
    });
  });
}
