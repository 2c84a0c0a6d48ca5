import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, beforeEach, test } from 'node:test';
import { ManualClock } from '../../src/common/clock.ts';
import { SignInGate } from '../../src/web/gate.ts';
import { html } from '../../src/web/html.ts';
import { hashPassword, TEST_PASSWORD_PARAMS, verifyPasswordOrDummy } from '../../src/web/password.ts';
import { RateLimiter } from '../../src/web/rate-limit.ts';
import { sendHtml, sendJson, WebError } from '../../src/web/respond.ts';
import { csrfFrom, listen, WebClient } from './client.ts';

const clock = new ManualClock();
const users = new Map<string, string>();
let server: Server;
let base: string;
let gate: SignInGate;
const posted: string[] = [];

before(async () => {
  users.set('jane', await hashPassword('a long enough secret', TEST_PASSWORD_PARAMS));
  gate = new SignInGate({
    clock,
    title: 'Test app',
    sessions: { idleMs: 10 * 60_000, absoluteMs: 60 * 60_000 },
    addressLimiter: new RateLimiter({ capacity: 5, windowMs: 60_000, clock }),
    isPublic: (path) => path === '/public',
    verify: async (user, password) =>
      (await verifyPasswordOrDummy(password, users.get(user))) ? `id-${user}` : null,
  });
  ({ server, base } = await listen(
    gate.handler(async (visit) => {
      const p = visit.url.pathname;
      if (p === '/')
        return sendHtml(
          visit.res,
          200,
          html`<p id="who">${visit.userId}</p><form method="post" action="/note">${visit.csrfField()}</form>`,
        );
      if (p === '/public') return sendHtml(visit.res, 200, html`<p>public ${visit.userId ?? 'nobody'}</p>`);
      if (p === '/note') {
        const form = await visit.form();
        posted.push(form.get('text') ?? '');
        return sendHtml(visit.res, 200, html`<p>saved</p>`);
      }
      if (p === '/api') return sendJson(visit.res, 200, { got: await visit.json(), user: visit.userId });
      if (p === '/boom') throw new Error('secret detail');
      throw new WebError(404, 'no such page');
    }),
  ));
});

after(() => server.close());
beforeEach(() => {
  posted.length = 0;
  clock.advance(60_000); // a full sign-in bucket for each test
});

async function signedIn(): Promise<{ c: WebClient; csrf: string }> {
  const c = new WebClient(base);
  const form = await c.get('/signin');
  const r = await c.postForm('/signin', {
    _csrf: csrfFrom(form.text),
    username: 'jane',
    password: 'a long enough secret',
  });
  assert.equal(r.status, 303, r.text);
  const home = await c.get('/');
  assert.equal(home.status, 200);
  return { c, csrf: csrfFrom(home.text) };
}

test('every answer carries the security headers', async () => {
  const r = await new WebClient(base).get('/signin');
  assert.equal(r.status, 200);
  const csp = r.headers.get('content-security-policy')!;
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.equal(r.headers.get('x-frame-options'), 'DENY');
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('referrer-policy'), 'same-origin');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('strict-transport-security'), null, 'no HSTS over plain HTTP');
  assert.match(r.text, /<label for="username">/);
  assert.match(r.text, /<label for="password">/);
});

test('without a session: pages redirect to sign-in with next, other requests get 401; public paths are served', async () => {
  const c = new WebClient(base);
  const r = await c.get('/somewhere?x=1');
  assert.equal(r.status, 303);
  assert.equal(r.location, '/signin?next=%2Fsomewhere%3Fx%3D1');
  assert.equal((await c.get('/', { accept: 'application/json' })).status, 401);
  assert.equal((await c.postForm('/note', { text: 'x' })).status, 401);
  assert.equal((await c.postJson('/api', {})).status, 401);
  const pub = await c.get('/public');
  assert.equal(pub.status, 200);
  assert.match(pub.text, /public nobody/);
});

test('wrong password and unknown user: 401 with the same message, no session', async () => {
  const c = new WebClient(base);
  const form = await c.get('/signin');
  const csrf = csrfFrom(form.text);
  const wrong = await c.postForm('/signin', { _csrf: csrf, username: 'jane', password: 'not the secret' });
  assert.equal(wrong.status, 401);
  assert.match(wrong.text, /Wrong user name or password/);
  assert.match(wrong.text, /value="jane"/, 'the name is kept, escaped');
  const nobody = await c.postForm('/signin', {
    _csrf: csrf,
    username: 'bob',
    password: 'a long enough secret',
  });
  assert.equal(nobody.status, 401);
  assert.match(nobody.text, /Wrong user name or password/);
  assert.ok(![...c.jar.keys()].includes('checkid_session'));
  assert.equal((await c.get('/')).status, 303);
});

test('sign-in needs its CSRF token (login CSRF) and a same-origin request', async () => {
  const c = new WebClient(base);
  await c.get('/signin');
  const noToken = await c.postForm('/signin', { username: 'jane', password: 'a long enough secret' });
  assert.equal(noToken.status, 403);
  assert.match(noToken.text, /expired or did not come from this site/);
  // a token from another visitor's cookie is no good either
  const other = new WebClient(base);
  const otherToken = csrfFrom((await other.get('/signin')).text);
  assert.equal(
    (await c.postForm('/signin', { _csrf: otherToken, username: 'jane', password: 'a long enough secret' }))
      .status,
    403,
  );
  const token = csrfFrom((await c.get('/signin')).text);
  const foreign = await c.postForm(
    '/signin',
    { _csrf: token, username: 'jane', password: 'a long enough secret' },
    { origin: 'http://evil.example' },
  );
  assert.equal(foreign.status, 403);
  const crossSite = await c.postForm(
    '/signin',
    { _csrf: token, username: 'jane', password: 'a long enough secret' },
    { 'sec-fetch-site': 'cross-site' },
  );
  assert.equal(crossSite.status, 403);
  const ok = await c.postForm(
    '/signin',
    { _csrf: token, username: 'jane', password: 'a long enough secret' },
    { origin: base, 'sec-fetch-site': 'same-origin' },
  );
  assert.equal(ok.status, 303);
});

test('sign-in rotates the session id, follows a local next only, and the session sees the user', async () => {
  const c = new WebClient(base);
  const { c: first } = await signedIn();
  const oldId = first.jar.get('checkid_session')!;
  // signing in again from the same browser gives a new id and ends the old one
  const token = csrfFrom((await first.get('/')).text);
  const again = await first.postForm('/signin', {
    _csrf: token,
    username: 'jane',
    password: 'a long enough secret',
    next: '/public',
  });
  assert.equal(again.status, 303);
  assert.equal(again.location, '/public');
  assert.notEqual(first.jar.get('checkid_session'), oldId);
  c.jar.set('checkid_session', oldId);
  assert.equal((await c.get('/')).status, 303, 'the old id is dead');
  const home = await first.get('/');
  assert.match(home.text, /<p id="who">id-jane<\/p>/);
  const evil = new WebClient(base);
  const t = csrfFrom((await evil.get('/signin')).text);
  const r = await evil.postForm('/signin', {
    _csrf: t,
    username: 'jane',
    password: 'a long enough secret',
    next: '//evil.example/',
  });
  assert.equal(r.location, '/');
});

test('POSTs need the session token: missing or wrong token and foreign origins are refused before the body is used', async () => {
  const { c, csrf } = await signedIn();
  assert.equal((await c.postForm('/note', { text: 'no token' })).status, 403);
  // a different last character (a fixed 'A' would be the real token whenever it ends in 'A')
  const wrong = csrf.slice(0, -1) + (csrf.endsWith('A') ? 'B' : 'A');
  assert.equal((await c.postForm('/note', { text: 'wrong', _csrf: wrong })).status, 403);
  assert.equal(
    (await c.postForm('/note', { text: 'foreign', _csrf: csrf }, { origin: 'http://evil.example' })).status,
    403,
  );
  assert.equal(
    (await c.postForm('/note', { text: 'same-site', _csrf: csrf }, { 'sec-fetch-site': 'same-site' })).status,
    403,
  );
  assert.deepEqual(posted, []);
  const ok = await c.postForm(
    '/note',
    { text: 'good', _csrf: csrf },
    { origin: base, 'sec-fetch-site': 'same-origin' },
  );
  assert.equal(ok.status, 200);
  assert.deepEqual(posted, ['good']);
  // JSON: the token rides in X-CSRF-Token
  assert.equal((await c.postJson('/api', { a: 1 })).status, 403);
  const j = await c.postJson('/api', { a: 1 }, { 'x-csrf-token': csrf });
  assert.equal(j.status, 200);
  assert.deepEqual(JSON.parse(j.text), { got: { a: 1 }, user: 'id-jane' });
  // a form posted as text/plain (what a cross-site <form enctype> can send) is refused
  assert.equal(
    (await c.request('POST', '/note', { body: `_csrf=${csrf}&text=x`, type: 'text/plain' })).status,
    415,
  );
});

test('sign-out is a POST with the token; afterwards the session is gone', async () => {
  const { c, csrf } = await signedIn();
  const id = c.jar.get('checkid_session')!;
  assert.equal((await c.get('/signout')).status, 405);
  assert.equal((await c.postForm('/signout', {})).status, 403);
  const out = await c.postForm('/signout', { _csrf: csrf });
  assert.equal(out.status, 303);
  assert.equal(out.location, '/signin');
  assert.equal(c.jar.has('checkid_session'), false, 'cookie cleared');
  const replay = new WebClient(base);
  replay.jar.set('checkid_session', id);
  assert.equal((await replay.get('/')).status, 303, 'the old cookie no longer works');
});

test('sessions expire after idling and after the absolute limit', async () => {
  const { c } = await signedIn();
  clock.advance(9 * 60_000);
  assert.equal((await c.get('/')).status, 200);
  clock.advance(11 * 60_000);
  assert.equal((await c.get('/')).status, 303, 'idle for 11 minutes');
  const { c: busy } = await signedIn();
  for (let i = 0; i < 6; i++) {
    clock.advance(9 * 60_000);
    assert.equal((await busy.get('/')).status, 200);
  }
  clock.advance(7 * 60_000);
  assert.equal((await busy.get('/')).status, 303, 'past one hour');
});

test('sign-in attempts are rate limited per client address with Retry-After', async () => {
  const c = new WebClient(base);
  const csrf = csrfFrom((await c.get('/signin')).text);
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++)
    statuses.push(
      (await c.postForm('/signin', { _csrf: csrf, username: 'jane', password: `guess ${i}` })).status,
    );
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
  const r = await c.postForm('/signin', { _csrf: csrf, username: 'jane', password: 'a long enough secret' });
  assert.equal(r.status, 429, 'even the right password waits');
  assert.equal(r.headers.get('retry-after'), '12');
  assert.match(r.text, /Too many sign-in attempts/);
  clock.advance(12_000);
  assert.equal(
    (await c.postForm('/signin', { _csrf: csrf, username: 'jane', password: 'a long enough secret' })).status,
    303,
  );
});

test('errors: WebErrors show their message; other errors a bare 500 without details', async () => {
  const { c } = await signedIn();
  const missing = await c.get('/nothing-here');
  assert.equal(missing.status, 404);
  assert.match(missing.text, /no such page/);
  const errors: unknown[] = [];
  const saved = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    const boom = await c.get('/boom');
    assert.equal(boom.status, 500);
    assert.doesNotMatch(boom.text, /secret detail/);
  } finally {
    console.error = saved;
  }
  assert.equal(errors.length, 1);
});
