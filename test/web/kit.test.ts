import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { ManualClock } from '../../src/common/clock.ts';
import { parseForm, readForm, readJson } from '../../src/web/body.ts';
import { parseCookies, serializeCookie } from '../../src/web/cookies.ts';
import { checkOrigin, clientAddress } from '../../src/web/guard.ts';
import { addressKey, RateLimiter } from '../../src/web/rate-limit.ts';
import { safeLocalPath, type WebError } from '../../src/web/respond.ts';
import { Router } from '../../src/web/router.ts';

function req(headers: Record<string, string>, body = '', remote = '127.0.0.1'): IncomingMessage {
  const r = Readable.from(body ? [Buffer.from(body)] : []) as unknown as IncomingMessage;
  Object.assign(r, { headers, socket: { remoteAddress: remote } });
  return r;
}

test('router: literal and :param segments, 404, 405 with Allow, HEAD served by GET', () => {
  const r = new Router<string>()
    .get('/', 'home')
    .get('/ips/:ip', 'show')
    .post('/ips/:ip/delete', 'del')
    .post('/ips', 'add');
  assert.deepEqual(r.match('GET', '/'), { status: 200, handler: 'home', params: {} });
  assert.deepEqual(r.match('GET', '/ips/2001%3Adb8%3A%3A1'), {
    status: 200,
    handler: 'show',
    params: { ip: '2001:db8::1' },
  });
  assert.deepEqual(r.match('HEAD', '/ips/x'), { status: 200, handler: 'show', params: { ip: 'x' } });
  assert.deepEqual(r.match('POST', '/ips/x/delete'), { status: 200, handler: 'del', params: { ip: 'x' } });
  assert.deepEqual(r.match('GET', '/ips'), { status: 405, allow: ['POST'] });
  assert.deepEqual(r.match('DELETE', '/ips/x'), { status: 405, allow: ['GET', 'HEAD'] });
  assert.deepEqual(r.match('GET', '/nope'), { status: 404 });
  assert.deepEqual(r.match('GET', '/ips/%E0%A4%A'), { status: 404 }, 'bad percent-encoding is no match');
});

test('rate limiter: a burst of `capacity`, then one try per window/capacity; bounded keys', () => {
  const clock = new ManualClock();
  const rl = new RateLimiter({ capacity: 3, windowMs: 60_000, clock, maxKeys: 2 });
  for (let i = 0; i < 3; i++) assert.equal(rl.take('a').allowed, true);
  const d = rl.take('a');
  assert.equal(d.allowed, false);
  assert.equal(d.retryAfterMs, 20_000);
  assert.equal(rl.take('b').allowed, true, 'keys are separate');
  clock.advance(20_000);
  assert.equal(rl.take('a').allowed, true);
  assert.equal(rl.take('a').allowed, false);
  rl.take('c'); // evicts the least recently used key, 'b'
  rl.reset('a');
  assert.equal(rl.take('a').remaining, 2);
  assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), addressKey('2001:db8:1:2:bbbb::2'));
  assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
});

test('cookies: parsing is bounded and first-wins; bad names and values are refused', () => {
  const c = parseCookies(req({ cookie: 'a=1; b="two"; a=3; junk; c=' }));
  assert.deepEqual(
    [...c],
    [
      ['a', '1'],
      ['b', 'two'],
      ['c', ''],
    ],
  );
  assert.equal(parseCookies(req({ cookie: `a=${'x'.repeat(9000)}` })).size, 0);
  assert.equal(
    serializeCookie('s', 'v', { maxAge: 60, secure: true }),
    's=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure',
  );
  assert.throws(() => serializeCookie('a b', 'v'), /bad cookie name/);
  assert.throws(() => serializeCookie('a', 'v;x=1'), /bad cookie value/);
});

test('bodies: media type, size and field limits with clear errors', async () => {
  const form = await readForm(
    req({ 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, 'a=1&b=%C3%A9+x'),
  );
  assert.equal(form.get('a'), '1');
  assert.equal(form.get('b'), 'é x');
  await assert.rejects(
    readForm(req({ 'content-type': 'text/plain' }, 'a=1')),
    (e: WebError) => e.status === 415,
  );
  await assert.rejects(
    readForm(req({ 'content-type': 'application/x-www-form-urlencoded' }, 'a=1'.repeat(100)), {
      maxBytes: 50,
    }),
    (e: WebError) => e.status === 413,
  );
  await assert.rejects(
    readForm(req({ 'content-type': 'application/x-www-form-urlencoded', 'content-length': '999999' }, ''), {
      maxBytes: 50,
    }),
    (e: WebError) => e.status === 413,
  );
  assert.throws(() => parseForm('a=1&'.repeat(201)), /more than 200 form fields/);
  assert.deepEqual(await readJson(req({ 'content-type': 'application/json' }, '{"x":[1]}')), { x: [1] });
  await assert.rejects(
    readJson(req({ 'content-type': 'application/json' }, '{x')),
    (e: WebError) => e.status === 400 && /not JSON/.test(e.message),
  );
});

test('origin checks: same-origin passes; another site, a foreign Origin or "null" is refused', () => {
  const ok = (h: Record<string, string>, o = {}) => checkOrigin(req({ host: 'siq.example:8080', ...h }), o);
  ok({});
  ok({ 'sec-fetch-site': 'same-origin', origin: 'http://siq.example:8080' });
  ok({ 'sec-fetch-site': 'none' });
  ok({ origin: 'https://siq.example' }, { publicOrigin: 'https://siq.example/' });
  assert.throws(() => ok({ 'sec-fetch-site': 'cross-site' }), /cross-site request refused/);
  assert.throws(() => ok({ 'sec-fetch-site': 'same-site' }), /cross-site request refused/);
  assert.throws(() => ok({ origin: 'http://evil.example' }), /another origin/);
  assert.throws(() => ok({ origin: 'null' }), /another origin/);
  assert.throws(
    () => ok({ origin: 'http://siq.example:8080' }, { secure: true }),
    /another origin/,
    'scheme matters',
  );
  assert.throws(
    () => ok({ origin: 'http://siq.example:8080' }, { publicOrigin: 'https://siq.example' }),
    /another origin/,
  );
});

test('client address: the peer, or behind a trusted proxy the last untrusted X-Forwarded-For hop', () => {
  assert.equal(clientAddress(req({}, '', '::ffff:192.0.2.1')), '192.0.2.1');
  assert.equal(
    clientAddress(req({ 'x-forwarded-for': '198.51.100.9' }, '', '192.0.2.1')),
    '192.0.2.1',
    'untrusted peer: header ignored',
  );
  assert.equal(
    clientAddress(req({ 'x-forwarded-for': '203.0.113.5, 198.51.100.9, 10.0.0.2' }, '', '10.0.0.1'), [
      '10.0.0.1',
      '10.0.0.2',
    ]),
    '198.51.100.9',
  );
});

test('safeLocalPath keeps local paths only', () => {
  assert.equal(safeLocalPath('/profile?x=1'), '/profile?x=1');
  for (const bad of [
    '//evil.example/',
    '/\\evil.example',
    'https://evil.example/',
    'profile',
    '',
    null,
    '/a\nb',
  ]) {
    assert.equal(safeLocalPath(bad, '/home'), '/home', String(bad));
  }
});
