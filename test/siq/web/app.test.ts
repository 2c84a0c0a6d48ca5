/**
 * The SIQ postmaster pages over real HTTP: every route's auth and CSRF requirements, sign-up,
 * sign-in, source IPs (validation, duplicates across accounts), the API key, lists, the profile
 * with its preview against the real checks on a real test DNS server, recent queries, the
 * account page, session expiry.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CHECK_IDS, DEFAULT_PROFILE, type SiqProfile } from '../../../src/siq/server/profile.ts';
import { verifyPassword } from '../../../src/web/password.ts';
import { csrfFrom, WebClient } from '../../web/client.ts';
import { type Fixture, startFixture } from './fixture.ts';

let f: Fixture;
before(async () => {
  f = await startFixture({ trustedProxies: ['127.0.0.1'] });
});
after(() => f.close());

const PASSWORD = 'violet staple 42 ferry';
let accounts = 0;

/** A browser at `address`: the app trusts 127.0.0.1 as a proxy, so X-Forwarded-For names the client. */
function client(address: string): WebClient {
  const c = new WebClient(f.base);
  c.headers['x-forwarded-for'] = address;
  return c;
}

/** A new account, signed in, with the CSRF token of its session. */
async function newAccount(
  email = `pm${++accounts}@sender.example`,
): Promise<{ c: WebClient; csrf: string; email: string; id: string }> {
  const c = client(`198.18.0.${accounts}`); // each account signs up from its own address
  const form = await c.get('/signup');
  const r = await c.postForm('/signup', {
    _csrf: csrfFrom(form.text),
    email,
    password: PASSWORD,
    password2: PASSWORD,
  });
  assert.equal(r.status, 303, r.text);
  assert.equal(r.location, '/ips?done=welcome');
  const page = await c.get('/');
  assert.equal(page.status, 200);
  const account = await f.store.getAccountByEmail(email);
  return { c, csrf: csrfFrom(page.text), email, id: account!.id };
}

/** The profile form as a browser posts it. */
function profileFields(
  p: SiqProfile,
  csrf: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const out: Record<string, string> = { _csrf: csrf, base: String(p.base), ttl: String(p.ttl) };
  for (const id of CHECK_IDS) {
    const c = p.checks[id];
    if (c.enabled) out[`checks.${id}.enabled`] = 'on';
    out[`checks.${id}.pass`] = String(c.pass);
    out[`checks.${id}.fail`] = String(c.fail);
    out[`checks.${id}.neutral`] = String(c.neutral);
  }
  return { ...out, ...extra };
}

const GET_PAGES = ['/', '/ips', '/key', '/profile', '/lists', '/queries', '/account'];
const POSTS = [
  '/ips',
  '/ips/remove',
  '/key/regenerate',
  '/profile',
  '/profile/reset',
  '/profile/preview',
  '/lists/add',
  '/lists/remove',
  '/account/password',
  '/account/delete',
  '/signout',
];

test('every page needs a session: pages redirect to sign-in, POSTs are 401 (or 403 without a token)', async () => {
  const c = client('198.18.5.1');
  for (const path of GET_PAGES) {
    const r = await c.get(path);
    assert.equal(r.status, 303, path);
    assert.equal(r.location, `/signin?next=${encodeURIComponent(path)}`);
  }
  for (const path of POSTS) {
    const r = await c.postForm(path, { ip: '192.0.2.1' });
    assert.ok(r.status === 401 || r.status === 403, `${path}: ${r.status}`);
  }
  // public: sign-up, sign-in, the static files, health
  assert.equal((await c.get('/signup')).status, 200);
  assert.equal((await c.get('/signin')).status, 200);
  assert.equal((await c.get('/static/siq.js')).status, 200);
  assert.equal((await c.get('/healthz')).status, 200);
});

test('every state-changing route refuses a POST without the CSRF token, or from another origin, and changes nothing', async () => {
  const { c, csrf, id } = await newAccount();
  await c.postForm('/ips', { _csrf: csrf, ip: '198.51.100.1' });
  const before = JSON.stringify([
    await f.store.getAccount(id),
    await f.store.listSourceIps(id),
    await f.store.getLists(id),
    await f.store.getProfile(id),
  ]);
  for (const path of POSTS) {
    const fields = {
      ip: '198.51.100.1',
      entry: 'bad.example',
      list: 'block',
      current: PASSWORD,
      password: 'x'.repeat(20),
      password2: 'x'.repeat(20),
    };
    const noToken = await c.postForm(path, fields);
    assert.equal(noToken.status, 403, `${path} without a token`);
    const wrong = await c.postForm(path, { ...fields, _csrf: 'A'.repeat(43) });
    assert.equal(wrong.status, 403, `${path} with a wrong token`);
    const foreign = await c.postForm(
      path,
      { ...fields, _csrf: csrf },
      { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(foreign.status, 403, `${path} from another site`);
  }
  const after = JSON.stringify([
    await f.store.getAccount(id),
    await f.store.listSourceIps(id),
    await f.store.getLists(id),
    await f.store.getProfile(id),
  ]);
  assert.equal(after, before);
  assert.equal((await c.get('/')).status, 200, 'still signed in');
});

test('sign-up: the strength minimum, matching passwords, a valid address, one account per address, its own CSRF token', async () => {
  const c = client('198.18.1.1');
  const csrf = csrfFrom((await c.get('/signup')).text);
  const tryIt = (email: string, password: string, password2 = password, token = csrf) =>
    c.postForm('/signup', { _csrf: token, email, password, password2 });
  let r = await tryIt('new@sender.example', 'short1!');
  assert.equal(r.status, 400);
  assert.match(r.text, /at least 12 characters/);
  r = await tryIt('new@sender.example', 'Password12345');
  assert.match(r.text, /well-known/);
  r = await tryIt('new@sender.example', PASSWORD, `${PASSWORD}x`);
  assert.match(r.text, /The two passwords differ/);
  r = await tryIt('not-an-address', PASSWORD);
  assert.match(r.text, /valid e-mail address/);
  r = await tryIt('<script>@x.example', PASSWORD);
  assert.equal(r.status, 400);
  assert.doesNotMatch(r.text, /<script>@/, 'the address is escaped when shown again');
  assert.match(r.text, /&lt;script&gt;@x\.example/);
  assert.equal((await tryIt('new@sender.example', PASSWORD, PASSWORD, '')).status, 403);
  r = await tryIt('New@Sender.Example', PASSWORD);
  assert.equal(r.status, 303);
  const stored = await f.store.getAccountByEmail('new@sender.example');
  assert.ok(stored);
  assert.match(stored.passwordHash, /^\$argon2id\$v=19\$/);
  assert.ok(await verifyPassword(PASSWORD, stored.passwordHash));
  const again = client('198.18.1.2');
  const t = csrfFrom((await again.get('/signup')).text);
  r = await again.postForm('/signup', {
    _csrf: t,
    email: 'new@sender.example',
    password: PASSWORD,
    password2: PASSWORD,
  });
  assert.equal(r.status, 409);
  assert.match(r.text, /An account for this address exists/);
});

test('sign-up is rate limited per client address (behind a trusted proxy: the forwarded address)', async () => {
  const c = client('198.18.2.1');
  const csrf = csrfFrom((await c.get('/signup')).text);
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const email = `burst${i}@sender.example`;
    statuses.push(
      (await c.postForm('/signup', { _csrf: csrf, email, password: PASSWORD, password2: PASSWORD })).status,
    );
  }
  assert.deepEqual(statuses, [303, 303, 303, 303, 303, 429]);
  const elsewhere = client('198.18.2.2');
  const t = csrfFrom((await elsewhere.get('/signup')).text);
  assert.equal(
    (
      await elsewhere.postForm('/signup', {
        _csrf: t,
        email: 'burst9@sender.example',
        password: PASSWORD,
        password2: PASSWORD,
      })
    ).status,
    303,
  );
});

test('sign-in: wrong password 401, right password in, sign-out ends it', async () => {
  const { email } = await newAccount();
  const c = client('198.18.3.1');
  const csrf = csrfFrom((await c.get('/signin')).text);
  const wrong = await c.postForm('/signin', {
    _csrf: csrf,
    username: email,
    password: 'not my password at all',
  });
  assert.equal(wrong.status, 401);
  assert.match(wrong.text, /Wrong user name or password/);
  const ok = await c.postForm('/signin', { _csrf: csrf, username: email.toUpperCase(), password: PASSWORD });
  assert.equal(ok.status, 303);
  const home = await c.get('/');
  assert.match(home.text, new RegExp(`Signed in as <strong>${email}</strong>`));
  const out = await c.postForm('/signout', { _csrf: csrfFrom(home.text) });
  assert.equal(out.status, 303);
  assert.equal((await c.get('/')).status, 303);
});

test('sessions end after 30 idle minutes', async () => {
  const { c } = await newAccount();
  f.clock.advance(29 * 60_000);
  assert.equal((await c.get('/ips')).status, 200);
  f.clock.advance(30 * 60_000);
  const r = await c.get('/ips');
  assert.equal(r.status, 303);
  assert.equal(r.location, '/signin?next=%2Fips');
});

test('source IPs: IPv4 and IPv6 validated and normalised, duplicates refused across accounts, removal', async () => {
  const a = await newAccount();
  const b = await newAccount();
  const add = (who: typeof a, ip: string) => who.c.postForm('/ips', { _csrf: who.csrf, ip });
  for (const [bad, why] of [
    ['', /Enter the IP address/],
    ['192.0.2.300', /not an IPv4 or IPv6 address/],
    ['mail.example.com', /not an IPv4 or IPv6 address/],
    ['192.0.2.0/24', /is a network/],
    ['0.0.0.0', /unspecified/],
    ['::', /unspecified/],
    ['224.0.0.1', /not a unicast/],
    ['ff02::1', /multicast/],
  ] as const) {
    const r = await add(a, bad);
    assert.equal(r.status, 400, bad);
    assert.match(r.text, why, bad);
    assert.match(r.text, /aria-invalid="true"/);
  }
  assert.equal((await add(a, '203.0.113.9')).location, '/ips?done=ip-added');
  assert.equal((await add(a, '2001:DB8:0:0::25')).status, 303);
  assert.equal((await add(a, '[2001:db8::26]')).status, 303);
  assert.equal((await add(a, '::ffff:203.0.113.10')).status, 303);
  assert.deepEqual(await f.store.listSourceIps(a.id), [
    '2001:db8::25',
    '2001:db8::26',
    '203.0.113.10',
    '203.0.113.9',
  ]);
  assert.equal((await add(a, '203.0.113.9')).location, '/ips?done=ip-known');
  const page = await a.c.get('/ips');
  assert.match(page.text, /<code>2001:db8::25<\/code>/);
  const taken = await add(b, '2001:db8::25');
  assert.equal(taken.status, 409);
  assert.match(taken.text, /2001:db8::25 is registered to another account/);
  assert.equal((await add(b, '203.0.113.10')).status, 409);
  assert.deepEqual(await f.store.listSourceIps(b.id), []);
  const gone = await a.c.postForm('/ips/remove', { _csrf: a.csrf, ip: '2001:db8::25' });
  assert.equal(gone.location, '/ips?done=ip-removed');
  assert.equal((await a.c.postForm('/ips/remove', { _csrf: a.csrf, ip: '2001:db8::25' })).status, 404);
  assert.equal((await add(b, '2001:db8::25')).status, 303, 'free again');
  assert.equal(
    (await b.c.postForm('/ips/remove', { _csrf: b.csrf, ip: '203.0.113.9' })).status,
    404,
    "another account's IP cannot be removed",
  );
  assert.ok((await f.store.listSourceIps(a.id)).includes('203.0.113.9'));
});

test('source IPs: at most maxIps per account', async () => {
  const small = await startFixture({ maxIps: 2 });
  try {
    const c = new WebClient(small.base);
    const form = await c.get('/signup');
    await c.postForm('/signup', {
      _csrf: csrfFrom(form.text),
      email: 'few@sender.example',
      password: PASSWORD,
      password2: PASSWORD,
    });
    const csrf = csrfFrom((await c.get('/ips')).text);
    assert.equal((await c.postForm('/ips', { _csrf: csrf, ip: '192.0.2.1' })).status, 303);
    assert.equal((await c.postForm('/ips', { _csrf: csrf, ip: '192.0.2.2' })).status, 303);
    const r = await c.postForm('/ips', { _csrf: csrf, ip: '192.0.2.3' });
    assert.equal(r.status, 400);
    assert.match(r.text, /at most 2 addresses/);
  } finally {
    await small.close();
  }
});

test('API key: shown to its owner only, regenerated on request', async () => {
  const a = await newAccount();
  const b = await newAccount();
  const key = (await f.store.getAccount(a.id))!.apiKey;
  const page = await a.c.get('/key');
  assert.match(page.text, new RegExp(`value="${key}"`));
  assert.match(page.text, /<label for="api-key">/);
  assert.doesNotMatch((await b.c.get('/key')).text, new RegExp(key));
  const r = await a.c.postForm('/key/regenerate', { _csrf: a.csrf });
  assert.equal(r.location, '/key?done=key-new');
  const fresh = (await f.store.getAccount(a.id))!.apiKey;
  assert.notEqual(fresh, key);
  assert.match(fresh, /^[0-9a-f]{64}$/);
  const after = await a.c.get('/key?done=key-new');
  assert.match(after.text, new RegExp(`value="${fresh}"`));
  assert.match(after.text, /the old one no longer works/);
});

test('lists: entries checked by the lists parser and canonicalised, moved between lists, removed', async () => {
  const a = await newAccount();
  const add = (entry: string, list = 'block') => a.c.postForm('/lists/add', { _csrf: a.csrf, entry, list });
  for (const [bad, why] of [
    ['198.51.100.7/24', /bits set beyond the prefix/],
    ['not a domain', /not an IP address, network, domain/],
    ['localhost', /not an IP address, CIDR block, domain/],
    ['', /Enter an IP address/],
  ] as const) {
    const r = await add(bad);
    assert.equal(r.status, 400, bad);
    assert.match(r.text, why, bad);
  }
  assert.equal((await add('x.example', 'grey')).status, 400);
  for (const e of ['198.51.100.0/24', '2001:DB8::/32', 'Spam.Example.', '*.bad.example', '192.0.2.66'])
    assert.equal((await add(e)).status, 303, e);
  assert.equal((await add('friend.example', 'allow')).status, 303);
  assert.deepEqual(await f.store.getLists(a.id), {
    allow: ['friend.example'],
    block: ['198.51.100.0/24', '2001:db8::/32', 'spam.example', '.bad.example', '192.0.2.66'],
  });
  // the same entry on the other list moves
  assert.equal((await add('spam.example', 'allow')).status, 303);
  const lists = await f.store.getLists(a.id);
  assert.deepEqual(lists.allow, ['friend.example', 'spam.example']);
  assert.ok(!lists.block.includes('spam.example'));
  const page = await a.c.get('/lists');
  assert.match(page.text, /<table id="allow-list"/);
  assert.match(page.text, /aria-label="Remove \.bad\.example from the block list"/);
  assert.equal(
    (await a.c.postForm('/lists/remove', { _csrf: a.csrf, list: 'block', entry: '.bad.example' })).location,
    '/lists?done=list-removed',
  );
  assert.equal(
    (await a.c.postForm('/lists/remove', { _csrf: a.csrf, list: 'block', entry: '.bad.example' })).status,
    404,
  );
});

test('profile: the preview scores the edited values against the real checks, before saving', async () => {
  const a = await newAccount();
  const page = await a.c.get('/profile');
  assert.equal(page.status, 200);
  for (const id of CHECK_IDS)
    assert.match(
      page.text,
      new RegExp(`<label class="visually-hidden" for="checks-${id}-pass">${id}: points on pass</label>`),
    );
  const preview = async (p: SiqProfile, ip: string, domain: string) => {
    const r = await a.c.postForm(
      '/profile/preview',
      profileFields(p, a.csrf, { preview_ip: ip, preview_domain: domain }),
      { accept: 'application/json' },
    );
    assert.equal(r.status, 200, r.text);
    return JSON.parse(r.text);
  };
  const good = await preview(DEFAULT_PROFILE, '192.0.2.10', 'sender.example');
  const byCheck = Object.fromEntries(
    good.result.contributions.map((c: { check: string; outcome: string }) => [c.check, c.outcome]),
  );
  assert.equal(byCheck.dnsbl, 'pass');
  assert.equal(byCheck.iprev, 'pass');
  assert.equal(byCheck.spf_pass, 'pass');
  assert.equal(byCheck.dmarc_record, 'pass');
  assert.equal(byCheck.mx, 'pass');
  assert.equal(byCheck.rdns_domain, 'pass');
  const sum = good.result.contributions.reduce((s: number, c: { delta: number }) => s + c.delta, 0);
  assert.equal(good.result.score, Math.max(0, Math.min(100, DEFAULT_PROFILE.base + sum)));
  assert.ok(good.result.score > DEFAULT_PROFILE.base);

  const listed = await preview(DEFAULT_PROFILE, '192.0.2.66', '');
  const dnsbl = listed.result.contributions.find((c: { check: string }) => c.check === 'dnsbl');
  assert.equal(dnsbl.outcome, 'fail');
  assert.equal(dnsbl.delta, DEFAULT_PROFILE.checks.dnsbl.fail);
  // heavier block-list weight: the score drops by the difference
  const harsh = structuredClone(DEFAULT_PROFILE);
  harsh.checks.dnsbl.fail = -90;
  const harsher = await preview(harsh, '192.0.2.66', '');
  assert.equal(
    harsher.result.score,
    Math.max(0, listed.result.score - (90 + DEFAULT_PROFILE.checks.dnsbl.fail)),
  );
  // switching the check off removes it from the breakdown
  const off = structuredClone(DEFAULT_PROFILE);
  off.checks.dnsbl.enabled = false;
  const without = await preview(off, '192.0.2.66', '');
  assert.ok(!without.result.contributions.some((c: { check: string }) => c.check === 'dnsbl'));
  assert.ok(without.result.score > listed.result.score);
  // bad values: no score, the problem per field
  const bad = await preview({ ...DEFAULT_PROFILE, base: 500 }, '192.0.2.10', '');
  assert.equal(bad.result, null);
  assert.match(bad.problems.base, /0\.\.100/);
  const badIp = await preview(DEFAULT_PROFILE, 'nonsense', '');
  assert.match(badIp.message, /not an IPv4 or IPv6 address/);
  const badDomain = await preview(DEFAULT_PROFILE, '192.0.2.10', 'not_a domain');
  assert.match(badDomain.message, /not a domain name/);
  // nothing was saved by previewing
  assert.equal(await f.store.getProfile(a.id), null);
});

test('profile: the no-JavaScript preview renders the page; save stores the whole profile; bad values are not saved; reset', async () => {
  const a = await newAccount();
  const edited = structuredClone(DEFAULT_PROFILE);
  edited.base = 40;
  edited.checks.generic_rdns.enabled = false;
  edited.checks.dnsbl.fail = -70;
  const page = await a.c.postForm(
    '/profile/preview',
    profileFields(edited, a.csrf, { preview_ip: '192.0.2.66', preview_domain: '' }),
  );
  assert.equal(page.status, 200);
  assert.match(page.text, /Preview only: the profile is not saved yet/);
  assert.match(page.text, /<output id="preview-score" class="score"[^>]*>(\d+)<\/output>/);
  assert.match(page.text, /<td>dnsbl<\/td><td>fail<\/td><td class="num">-70<\/td>/);
  assert.match(page.text, /id="base" name="base" type="number"[^>]* value="40"/);
  assert.doesNotMatch(
    page.text,
    /id="checks-generic_rdns-enabled" name="checks.generic_rdns.enabled" checked/,
  );

  const refused = await a.c.postForm('/profile', profileFields(edited, a.csrf, { 'checks.mx.pass': 'lots' }));
  assert.equal(refused.status, 400);
  assert.match(refused.text, /The profile is not saved/);
  assert.match(
    refused.text,
    /id="checks-mx-pass"[^>]*aria-invalid="true" aria-describedby="checks-mx-pass-error"/,
  );
  assert.match(refused.text, /must be a whole number, not &quot;lots&quot;/);
  assert.equal(await f.store.getProfile(a.id), null);

  const saved = await a.c.postForm(
    '/profile',
    profileFields(edited, a.csrf, { preview_ip: '192.0.2.66', preview_domain: '' }),
  );
  assert.equal(saved.status, 303);
  assert.equal(saved.location, '/profile?done=saved&ip=192.0.2.66&domain=');
  const stored = (await f.store.getProfile(a.id)) as unknown as SiqProfile;
  assert.equal(stored.base, 40);
  assert.equal(stored.checks.generic_rdns.enabled, false);
  assert.equal(stored.checks.dnsbl.fail, -70);
  const shown = await a.c.get(saved.location!);
  assert.match(shown.text, /The profile is saved/);
  assert.match(shown.text, /192\.0\.2\.66 would score/);
  assert.match(shown.text, /id="base" name="base" type="number"[^>]* value="40"/);

  assert.equal((await a.c.postForm('/profile/reset', { _csrf: a.csrf })).location, '/profile?done=reset');
  assert.deepEqual(await f.store.getProfile(a.id), {});
  assert.match((await a.c.get('/profile')).text, /id="base" name="base" type="number"[^>]* value="50"/);
});

test('recent queries: the account’s own, newest first, escaped', async () => {
  const a = await newAccount();
  const b = await newAccount();
  const t = f.clock.now();
  await f.store.appendQueryLog([
    {
      accountId: a.id,
      at: t - 2000,
      ip: '192.0.2.10',
      domain: 'sender.example',
      score: 83,
      text: 'dnsbl=pass iprev=pass',
    },
    {
      accountId: a.id,
      at: t - 1000,
      ip: '192.0.2.66',
      domain: '',
      score: 0,
      text: '<script>alert(1)</script>',
    },
    { accountId: b.id, at: t, ip: '198.51.100.5', domain: 'other.example', score: 50, text: '' },
  ]);
  const page = await a.c.get('/queries');
  assert.equal(page.status, 200);
  const rows = [...page.text.matchAll(/<tr><td>([^<]+)<\/td><td><code>([^<]+)<\/code><\/td>/g)].map(
    (m) => m[2],
  );
  assert.deepEqual(rows, ['192.0.2.66', '192.0.2.10']);
  assert.match(page.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.doesNotMatch(page.text, /<script>alert/);
  assert.doesNotMatch(page.text, /198\.51\.100\.5/);
  assert.match(page.text, /<td class="num">83<\/td>/);
  assert.match(page.text, new RegExp(new Date(t - 2000).toISOString().slice(0, 19).replace('T', ' ')));
});

test('account: password change needs the current one and signs out other sessions; deletion removes everything', async () => {
  const a = await newAccount();
  const other = client('198.18.4.1');
  const t = csrfFrom((await other.get('/signin')).text);
  assert.equal(
    (await other.postForm('/signin', { _csrf: t, username: a.email, password: PASSWORD })).status,
    303,
  );
  assert.equal((await other.get('/')).status, 200);
  const NEW = 'copper kettle 17 lantern';
  let r = await a.c.postForm('/account/password', {
    _csrf: a.csrf,
    current: 'wrong wrong wrong',
    password: NEW,
    password2: NEW,
  });
  assert.equal(r.status, 401);
  r = await a.c.postForm('/account/password', {
    _csrf: a.csrf,
    current: PASSWORD,
    password: 'short',
    password2: 'short',
  });
  assert.equal(r.status, 400);
  r = await a.c.postForm('/account/password', {
    _csrf: a.csrf,
    current: PASSWORD,
    password: NEW,
    password2: NEW,
  });
  assert.equal(r.location, '/account?done=password');
  assert.equal((await other.get('/')).status, 303, 'the other session is signed out');
  const mine = await a.c.get('/account?done=password');
  assert.equal(mine.status, 200, 'this browser got a new session');
  assert.ok(await verifyPassword(NEW, (await f.store.getAccount(a.id))!.passwordHash));

  await a.c.postForm('/ips', { _csrf: csrfFrom(mine.text), ip: '203.0.113.200' });
  r = await a.c.postForm('/account/delete', { _csrf: csrfFrom(mine.text), current: PASSWORD });
  assert.equal(r.status, 401, 'the old password no longer works');
  r = await a.c.postForm('/account/delete', { _csrf: csrfFrom(mine.text), current: NEW });
  assert.equal(r.location, '/signin');
  assert.equal(await f.store.getAccount(a.id), null);
  assert.equal(await f.store.accountIdForIp('203.0.113.200'), null);
  assert.equal((await a.c.get('/')).status, 303);
});

test('pages carry the security headers; the script is a file (no inline script anywhere); assets revalidate by ETag', async () => {
  const a = await newAccount();
  for (const path of GET_PAGES) {
    const r = await a.c.get(path);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const scripts = [...r.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    for (const s of scripts) {
      assert.match(s[1]!, /src="\/static\/siq\.js"/);
      assert.equal(s[2], '', 'no inline script');
    }
    assert.doesNotMatch(r.text, /\son[a-z]+="/, 'no inline event handlers');
    assert.doesNotMatch(r.text, /style="/, 'no inline styles');
  }
  const js = await a.c.get('/static/siq.js');
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  const etag = js.headers.get('etag')!;
  assert.equal((await a.c.get('/static/siq.js', { 'if-none-match': etag })).status, 304);
  assert.equal((await a.c.get('/static/siq.css')).headers.get('content-type'), 'text/css; charset=utf-8');
  assert.equal((await a.c.get('/nowhere')).status, 404);
  assert.equal((await a.c.postForm('/queries', { _csrf: a.csrf })).status, 405);
});

test('allowSignup: false closes sign-up', async () => {
  const closed = await startFixture({ allowSignup: false });
  try {
    const c = new WebClient(closed.base);
    assert.equal((await c.get('/signup')).status, 404);
    assert.doesNotMatch((await c.get('/signin')).text, /Sign up/);
  } finally {
    await closed.close();
  }
});
