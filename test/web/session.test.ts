import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { ManualClock } from '../../src/common/clock.ts';
import { MemorySessionStore, SessionManager } from '../../src/web/session.ts';

/** A response stand-in that only collects headers (the manager only sets cookies). */
function fakeRes(): ServerResponse & { cookies(): string[] } {
  const headers = new Map<string, unknown>();
  return {
    getHeader: (n: string) => headers.get(n),
    setHeader: (n: string, v: unknown) => headers.set(n, v),
    cookies: () => (headers.get('set-cookie') as string[]) ?? [],
  } as unknown as ServerResponse & { cookies(): string[] };
}

function reqWith(cookie: string): IncomingMessage {
  return { headers: { cookie } } as IncomingMessage;
}

function cookiePair(setCookie: string): string {
  return setCookie.split(';')[0]!;
}

test('a session: 256-bit random id in an HttpOnly SameSite=Strict cookie, stored under its hash', async () => {
  const store = new MemorySessionStore();
  const m = new SessionManager({ store, clock: new ManualClock() });
  const res = fakeRes();
  const s = await m.create(res, 'u1');
  assert.match(s.id, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(Buffer.from(s.id, 'base64url').length, 32);
  assert.match(s.csrf, /^[A-Za-z0-9_-]{43}$/);
  const [cookie] = res.cookies();
  assert.match(
    cookie!,
    /^checkid_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict$/,
  );
  const loaded = await m.load(reqWith(cookiePair(cookie!)));
  assert.equal(loaded?.userId, 'u1');
  assert.equal(loaded?.csrf, s.csrf);
  assert.equal(store.size, 1);
  assert.equal(store.get(s.id), undefined, 'the raw id is not a key of the store');
});

test('over TLS: a Secure __Host- cookie', async () => {
  const m = new SessionManager({ secure: true });
  const res = fakeRes();
  await m.create(res, 'u1');
  assert.match(
    res.cookies()[0]!,
    /^__Host-checkid_session=.*; Path=\/; .*HttpOnly; SameSite=Strict; Secure$/,
  );
});

test('idle expiry: each request restarts the idle timer; silence ends the session', async () => {
  const clock = new ManualClock();
  const m = new SessionManager({ clock, idleMs: 10 * 60_000, absoluteMs: 3_600_000 });
  const res = fakeRes();
  await m.create(res, 'u1');
  const req = reqWith(cookiePair(res.cookies()[0]!));
  clock.advance(9 * 60_000);
  assert.ok(await m.load(req));
  clock.advance(9 * 60_000);
  assert.ok(await m.load(req), 'touched 9 minutes ago');
  clock.advance(10 * 60_000);
  assert.equal(await m.load(req), null);
  clock.advance(-20 * 60_000);
  assert.equal(await m.load(req), null, 'an expired session was deleted, not merely hidden');
});

test('absolute expiry ends a busy session too', async () => {
  const clock = new ManualClock();
  const m = new SessionManager({ clock, idleMs: 10 * 60_000, absoluteMs: 30 * 60_000 });
  const res = fakeRes();
  await m.create(res, 'u1');
  const req = reqWith(cookiePair(res.cookies()[0]!));
  for (let i = 0; i < 5; i++) {
    clock.advance(5 * 60_000);
    assert.ok(await m.load(req), `after ${(i + 1) * 5} minutes`);
  }
  clock.advance(5 * 60_000);
  assert.equal(await m.load(req), null);
});

test('rotate ends the old session; destroy clears the cookie; destroyUser ends them all', async () => {
  const m = new SessionManager();
  const r1 = fakeRes();
  const a = await m.create(r1, 'u1');
  const reqA = reqWith(`checkid_session=${a.id}`);
  const r2 = fakeRes();
  const b = await m.rotate(r2, a, 'u1');
  assert.notEqual(a.id, b.id);
  assert.notEqual(a.csrf, b.csrf);
  assert.equal(await m.load(reqA), null);
  const reqB = reqWith(`checkid_session=${b.id}`);
  assert.ok(await m.load(reqB));
  const r3 = fakeRes();
  await m.destroy(r3, b);
  assert.match(r3.cookies()[0]!, /^checkid_session=; Path=\/; Max-Age=0;/);
  assert.equal(await m.load(reqB), null);
  const c = await m.create(fakeRes(), 'u2');
  const d = await m.create(fakeRes(), 'u2');
  const e = await m.create(fakeRes(), 'u3');
  await m.destroyUser('u2');
  assert.equal(await m.load(reqWith(`checkid_session=${c.id}`)), null);
  assert.equal(await m.load(reqWith(`checkid_session=${d.id}`)), null);
  assert.ok(await m.load(reqWith(`checkid_session=${e.id}`)));
});

test('made-up, malformed and oversized cookies find no session', async () => {
  const m = new SessionManager();
  await m.create(fakeRes(), 'u1');
  for (const c of [
    'checkid_session=',
    'checkid_session=abc',
    `checkid_session=${'A'.repeat(43)}`,
    `checkid_session=${'x'.repeat(9000)}`,
    'other=1',
  ]) {
    assert.equal(await m.load(reqWith(c)), null, c.slice(0, 40));
  }
});

test('the memory store is bounded: the least recently used session goes first', () => {
  const store = new MemorySessionStore(2);
  const r = (u: string) => ({ userId: u, csrf: 'x', createdAt: 0, lastSeenAt: 0 });
  store.set('a', r('a'));
  store.set('b', r('b'));
  store.get('a');
  store.set('c', r('c'));
  assert.equal(store.size, 2);
  assert.equal(store.get('b'), undefined);
  assert.ok(store.get('a'));
  assert.ok(store.get('c'));
});
