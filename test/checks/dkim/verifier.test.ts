import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DkimKeyCache } from '../../../src/checks/dkim/key.ts';
import {
  type DkimOptions,
  type DkimResult,
  DkimVerifier,
  shortBValues,
  verifyMessage,
} from '../../../src/checks/dkim/index.ts';
import { ManualClock } from '../../../src/common/clock.ts';
import type { Resolver } from '../../../src/dns/types.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';
import { ed25519Key, parseFields, rsaKey, type SignOptions, signMessage } from './sign.ts';

const rsa = rsaKey(2048);
const ed = ed25519Key();
const NOW = 1_700_000_000_000;

const MESSAGE = [
  'From: Joe <joe@example.com>',
  'To: mary@example.org',
  'Subject:  Is dinner\r\n  ready?  ',
  'Date: Fri, 11 Jul 2003 21:00:37 -0700',
  '',
  'Hi.',
  '',
  'We lost the game.  Are you hungry yet?  ',
  '',
  '',
].join('\r\n');

function zone(extra: ZoneData = {}): ZoneData {
  return {
    'sel._domainkey.example.com': [{ TXT: rsa.record }],
    'ed._domainkey.example.com': [{ TXT: ed.record }],
    ...extra,
  };
}

async function verify(
  message: string,
  z: ZoneData = zone(),
  options: DkimOptions = {},
  now = NOW,
): Promise<DkimResult[]> {
  return verifyMessage(message, { resolver: new MemoryResolver(z), clock: new ManualClock(now) }, options);
}

function sign(message: string, o: Partial<SignOptions> = {}): string {
  return signMessage(message, { key: rsa, ...o });
}

/** Feeds a message through the streaming API, the body in chunks of `chunk` octets. */
async function stream(
  message: string,
  resolver: Resolver,
  chunk: number,
  options: DkimOptions = {},
): Promise<DkimResult[]> {
  const split = message.indexOf('\r\n\r\n');
  const v = new DkimVerifier({ resolver, clock: new ManualClock(NOW) }, options);
  for (const [name, value] of parseFields(message.slice(0, split + 2))) v.header(name, value);
  v.endOfHeaders();
  const body = Buffer.from(message.slice(split + 4));
  for (let i = 0; i < body.length; i += chunk) v.body(body.subarray(i, i + chunk));
  return v.finish();
}

test('RSA-SHA256 and Ed25519-SHA256 signatures pass, in every canonicalization', async () => {
  for (const c of [
    'simple/simple',
    'simple/relaxed',
    'relaxed/simple',
    'relaxed/relaxed',
    'relaxed',
    'simple',
  ]) {
    const [r] = await verify(sign(MESSAGE, { c }));
    assert.equal(r!.result, 'pass', `rsa ${c}: ${r!.reason}`);
    assert.equal(r!.domain, 'example.com');
    assert.equal(r!.selector, 'sel');
    assert.equal(r!.algorithm, 'rsa-sha256');
    assert.equal(r!.keyBits, 2048);
    assert.equal(r!.auid, '@example.com');
    assert.equal(r!.b.length, 8);
    const [e] = await verify(signMessage(MESSAGE, { key: ed, selector: 'ed', c }));
    assert.equal(e!.result, 'pass', `ed25519 ${c}: ${e!.reason}`);
    assert.equal(e!.algorithm, 'ed25519-sha256');
  }
});

test('the streaming API gives the same verdict whatever the chunking', async () => {
  const signed = sign(MESSAGE, { c: 'relaxed/relaxed' });
  const resolver = new MemoryResolver(zone());
  for (const chunk of [1, 2, 3, 7, 64, 100_000]) {
    const [r] = await stream(signed, resolver, chunk);
    assert.equal(r!.result, 'pass', `chunks of ${chunk}`);
  }
  const [bad] = await stream(signed.replace('hungry', 'HUNGRY'), resolver, 5);
  assert.equal(bad!.result, 'fail');
  assert.equal(bad!.reason, 'body hash did not verify');
});

test('keys are asked for at endOfHeaders(), before any body arrives', () => {
  const resolver = new MemoryResolver(zone());
  const v = new DkimVerifier({ resolver, keyCache: new DkimKeyCache() });
  const signed = signMessage(sign(MESSAGE), { key: ed, selector: 'ed' });
  for (const [name, value] of parseFields(signed.slice(0, signed.indexOf('\r\n\r\n') + 2)))
    v.header(name, value);
  assert.equal(resolver.queries, 0);
  v.endOfHeaders();
  assert.deepEqual(resolver.log, ['ed._domainkey.example.com/TXT', 'sel._domainkey.example.com/TXT']);
});

test('signatures sharing canonicalization, hash and l= share one body hash', async () => {
  let m = sign(MESSAGE, { c: 'relaxed/relaxed' });
  m = signMessage(m, { key: ed, selector: 'ed', c: 'simple/relaxed' });
  m = sign(m, { c: 'relaxed/simple' });
  m = sign(m, { c: 'relaxed/relaxed', l: 5 });
  const split = m.indexOf('\r\n\r\n');
  const v = new DkimVerifier({ resolver: new MemoryResolver(zone()) });
  for (const [name, value] of parseFields(m.slice(0, split + 2))) v.header(name, value);
  v.endOfHeaders();
  assert.equal(v.bodyHashCount, 3, 'relaxed (2 signatures), relaxed with l=5, simple');
  v.body(m.slice(split + 4));
  const results = await v.finish();
  assert.deepEqual(
    results.map((r) => r.result),
    ['pass', 'pass', 'pass', 'pass'],
  );
  assert.deepEqual(
    results.map((r) => r.index),
    [0, 1, 2, 3],
  );
});

test('cryptoThreadPool: the same verdicts with the checks on the thread pool', async () => {
  let m = sign(MESSAGE);
  m = signMessage(m, { key: ed, selector: 'ed' });
  const good = await verify(m, zone(), { cryptoThreadPool: true });
  assert.deepEqual(
    good.map((r) => r.result),
    ['pass', 'pass'],
  );
  const bad = await verify(
    m.replace(/ b=([A-Za-z0-9+/])/g, (_x, c: string) => ` b=${c === 'A' ? 'B' : 'A'}`),
    zone(),
    { cryptoThreadPool: true },
  );
  assert.deepEqual(
    bad.map((r) => [r.result, r.reason]),
    [
      ['fail', 'signature did not verify'],
      ['fail', 'signature did not verify'],
    ],
  );
});

test('no DKIM-Signature gives one none result', async () => {
  const r = await verify(MESSAGE);
  assert.equal(r.length, 1);
  assert.equal(r[0]!.result, 'none');
  assert.equal(r[0]!.domain, '');
});

test('maxSignatures: the topmost N are verified, the rest counted', async () => {
  let m = MESSAGE;
  for (let i = 0; i < 7; i++) m = sign(m);
  assert.equal((await verify(m)).length, 5);
  assert.equal((await verify(m, zone(), { maxSignatures: 2 })).length, 2);
  const v = new DkimVerifier({ resolver: new MemoryResolver(zone()) }, { maxSignatures: 3 });
  for (const [name, value] of parseFields(m.slice(0, m.indexOf('\r\n\r\n') + 2))) v.header(name, value);
  v.endOfHeaders();
  assert.equal(v.skippedSignatures, 4);
});

test('h= selects bottom-up; over-signing stops fields being added (RFC 6376 §5.4.2, §8.15)', async () => {
  const two = MESSAGE.replace('To: mary@example.org', 'Subject: first\r\nTo: mary@example.org');
  const signed = sign(two, { h: ['from', 'subject', 'to'] });
  assert.equal((await verify(signed))[0]!.result, 'pass');
  // the signature covered the bottom Subject; one added above it is not covered
  const above = signed.replace('Subject: first', 'Subject: spam\r\nSubject: first');
  assert.equal((await verify(above))[0]!.result, 'pass');
  // one added below it becomes the selected one
  const below = signed.replace('\r\n\r\nHi.', '\r\nSubject: spam\r\n\r\nHi.');
  assert.equal((await verify(below))[0]!.result, 'fail');
  // over-signed From: a second From anywhere breaks the signature
  const over = sign(MESSAGE, { h: ['from', 'from', 'subject'] });
  assert.equal((await verify(over))[0]!.result, 'pass');
  assert.equal((await verify(`From: evil@example.net\r\n${over}`))[0]!.result, 'fail');
  const under = sign(MESSAGE, { h: ['from', 'subject'] });
  assert.equal(
    (await verify(under.replace('\r\n\r\nHi.', '\r\nFrom: evil@example.net\r\n\r\nHi.')))[0]!.result,
    'fail',
  );
  assert.equal(
    (await verify(`From: evil@example.net\r\n${under}`))[0]!.result,
    'pass',
    'not over-signed: a From on top is unsigned',
  );
});

test('a signature listing dkim-signature never selects itself', async () => {
  const signed = sign(MESSAGE, { h: ['from', 'dkim-signature', 'subject'] });
  assert.equal((await verify(signed))[0]!.result, 'pass');
  // an older signature below is selected as the signer saw it
  const older = sign(MESSAGE);
  const outer = sign(older, { h: ['from', 'dkim-signature'] });
  const r = await verify(outer);
  assert.deepEqual(
    r.map((x) => x.result),
    ['pass', 'pass'],
  );
});

test('simple header canonicalization keeps the name case and spacing; relaxed does not care', async () => {
  const simple = sign(MESSAGE, { c: 'simple/simple', fieldName: 'dkim-signature' });
  assert.equal((await verify(simple))[0]!.result, 'pass', 'field name written in lower case');
  assert.equal((await verify(simple.replace('To: mary', 'TO: mary')))[0]!.result, 'fail');
  assert.equal((await verify(simple.replace('To: mary', 'To:  mary')))[0]!.result, 'fail');
  const relaxed = sign(MESSAGE, { c: 'relaxed/simple' });
  assert.equal((await verify(relaxed.replace('To: mary', 'TO:\r\n   mary')))[0]!.result, 'pass');
  assert.equal((await verify(relaxed.replace('We lost', 'We  lost')))[0]!.result, 'fail', 'simple body');
  const rr = sign(MESSAGE, { c: 'relaxed/relaxed' });
  assert.equal((await verify(rr.replace('We lost', 'We \t lost') + '\r\n\r\n'))[0]!.result, 'pass');
});

test('l=: only the counted octets are signed; the rest is reported; too long is neutral', async () => {
  const signed = sign(MESSAGE, { c: 'relaxed/relaxed', l: 10 });
  const [r] = await verify(`${signed}P.S. appended by someone else\r\n`);
  assert.equal(r!.result, 'pass');
  assert.equal(r!.bodyLengthLimited, true);
  // relaxed body: "Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nP.S. appended by someone else\r\n"
  assert.equal(r!.unsignedBodyBytes, 5 + 2 + 39 + 2 + 31 - 10);
  assert.match(r!.reason, /body octets unsigned/);
  const [whole] = await verify(sign(MESSAGE));
  assert.equal(whole!.bodyLengthLimited, undefined);
  const [tooLong] = await verify(sign(MESSAGE, { l: 10_000 }));
  assert.equal(tooLong!.result, 'neutral');
  assert.match(tooLong!.reason, /exceeds the canonical body/);
  const [zero] = await verify(sign('From: a@example.com\r\n\r\n', { l: 0, c: 'relaxed/relaxed' }));
  assert.equal(zero!.result, 'pass');
});

test('x= and t=: expired is policy, x < t is neutral, a future t= only when configured', async () => {
  const now = Math.floor(NOW / 1000);
  const [expired] = await verify(sign(MESSAGE, { t: now - 100, x: now - 1 }));
  assert.equal(expired!.result, 'policy');
  assert.match(expired!.reason, /expired/);
  const [ok] = await verify(sign(MESSAGE, { t: now - 100, x: now + 100 }));
  assert.equal(ok!.result, 'pass');
  const [reversed] = await verify(sign(MESSAGE, { t: now + 100, x: now + 50 }));
  assert.equal(reversed!.result, 'neutral');
  const future = sign(MESSAGE, { t: now + 3600 });
  assert.equal((await verify(future))[0]!.result, 'pass');
  const [refused] = await verify(future, zone(), { maxFutureSeconds: 300 });
  assert.equal(refused!.result, 'policy');
  assert.match(refused!.reason, /in the future/);
});

test('RFC 8301: rsa-sha1 and RSA keys under 1024 bits are policy, not pass', async () => {
  const [sha1] = await verify(sign(MESSAGE, { a: 'rsa-sha1' }));
  assert.equal(sha1!.result, 'policy');
  assert.match(sha1!.reason, /RFC 8301/);
  assert.equal(sha1!.algorithm, 'rsa-sha1');
  const [legacy] = await verify(sign(MESSAGE, { a: 'rsa-sha1' }), zone(), { legacy: { rsaSha1: true } });
  assert.equal(legacy!.result, 'pass', 'the legacy switch exists for old corpora');
  const small = rsaKey(768);
  const z = zone({ 'small._domainkey.example.com': [{ TXT: small.record }] });
  const signed = signMessage(MESSAGE, { key: small, selector: 'small' });
  const [short] = await verify(signed, z);
  assert.equal(short!.result, 'policy');
  assert.equal(short!.keyBits, 768);
  assert.match(short!.reason, /768 bits is shorter than 1024/);
  assert.equal((await verify(signed, z, { minRsaBits: 512 }))[0]!.result, 'pass');
  assert.equal((await verify(sign(MESSAGE), zone(), { minRsaBits: 4096 }))[0]!.result, 'policy');
});

test('key record rules: t=y testing, t=s strict, h=, k= mismatch, revoked, missing', async () => {
  const [testing] = await verify(
    sign(MESSAGE),
    zone({ 'sel._domainkey.example.com': [{ TXT: `${rsa.record}; t=y` }] }),
  );
  assert.equal(testing!.result, 'pass');
  assert.equal(testing!.testing, true);
  const strict = zone({ 'sel._domainkey.example.com': [{ TXT: `t=s; ${rsa.record}` }] });
  assert.equal((await verify(sign(MESSAGE, { i: 'joe@example.com' }), strict))[0]!.result, 'pass');
  const [sub] = await verify(sign(MESSAGE, { i: 'joe@mail.example.com' }), strict);
  assert.equal(sub!.result, 'permerror');
  assert.match(sub!.reason, /t=s/);
  assert.equal(
    (await verify(sign(MESSAGE, { i: 'joe@mail.example.com' })))[0]!.result,
    'pass',
    'a subdomain i= without t=s',
  );
  const [hash] = await verify(
    sign(MESSAGE),
    zone({ 'sel._domainkey.example.com': [{ TXT: `h=sha1; ${rsa.record}` }] }),
  );
  assert.equal(hash!.result, 'permerror');
  assert.match(hash!.reason, /inappropriate hash algorithm/);
  const [kind] = await verify(sign(MESSAGE), zone({ 'sel._domainkey.example.com': [{ TXT: ed.record }] }));
  assert.equal(kind!.result, 'permerror');
  assert.match(kind!.reason, /inappropriate key algorithm/);
  const [revoked] = await verify(
    sign(MESSAGE),
    zone({ 'sel._domainkey.example.com': [{ TXT: 'v=DKIM1; p=' }] }),
  );
  assert.equal(revoked!.result, 'permerror');
  assert.match(revoked!.reason, /revoked/);
  const [missing] = await verify(sign(MESSAGE, { selector: 'gone' }));
  assert.equal(missing!.result, 'permerror');
  assert.match(missing!.reason, /no key for signature/);
  const [nodata] = await verify(
    sign(MESSAGE, { selector: 'nodata' }),
    zone({ 'nodata._domainkey.example.com': [{ A: '192.0.2.1' }] }),
  );
  assert.equal(nodata!.result, 'permerror');
});

test('DNS trouble is temperror: SERVFAIL, timeout, a resolver that throws', async () => {
  for (const entry of ['SERVFAIL', 'TIMEOUT']) {
    const [r] = await verify(sign(MESSAGE), zone({ 'sel._domainkey.example.com': [entry] }));
    assert.equal(r!.result, 'temperror', entry);
  }
  const broken: Resolver = { query: () => Promise.reject(new Error('socket closed')) };
  const [r] = await verifyMessage(sign(MESSAGE), { resolver: broken, keyCache: new DkimKeyCache() });
  assert.equal(r!.result, 'temperror');
});

test('an aborted verification stops waiting for keys (temperror); the look-up still fills the cache', async () => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const inner = new MemoryResolver(zone());
  const slow: Resolver = {
    async query(name, type) {
      await gate;
      return inner.query(name, type);
    },
  };
  const cache = new DkimKeyCache();
  const controller = new AbortController();
  const signed = sign(MESSAGE);
  const pending = verifyMessage(signed, { resolver: slow, keyCache: cache, signal: controller.signal });
  await new Promise((r) => setImmediate(r));
  controller.abort();
  const [r] = await pending;
  assert.equal(r!.result, 'temperror');
  assert.match(r!.reason, /aborted/);
  release();
  await new Promise((r) => setImmediate(r));
  const [again] = await verifyMessage(signed, { resolver: slow, keyCache: cache });
  assert.equal(again!.result, 'pass');
  assert.equal(inner.queries, 1, 'the abandoned look-up answered the second message');
  const [already] = await verifyMessage(signed, {
    resolver: slow,
    keyCache: new DkimKeyCache(),
    signal: AbortSignal.abort(),
  });
  assert.equal(already!.result, 'temperror');
});

test('maxSignatures 0 on a signed message is neutral, not none', async () => {
  const r = await verify(sign(MESSAGE), zone(), { maxSignatures: 0 });
  assert.equal(r.length, 1);
  assert.equal(r[0]!.result, 'neutral');
  assert.match(r[0]!.reason, /1 DKIM-Signature fields not verified/);
});

test('several signatures: each judged on its own, topmost first', async () => {
  let m = sign(MESSAGE, { selector: 'gone' });
  m = signMessage(m, { key: ed, selector: 'ed' });
  m = sign(m, { a: 'rsa-sha1' });
  const r = await verify(m);
  assert.deepEqual(
    r.map((x) => [x.result, x.selector]),
    [
      ['policy', 'sel'],
      ['pass', 'ed'],
      ['permerror', 'gone'],
    ],
  );
});

test('an unparsable signature is neutral with what could be read', async () => {
  const signed = sign(MESSAGE).replace('v=1;', 'v=1; v=2;');
  const [r] = await verify(signed);
  assert.equal(r!.result, 'neutral');
  assert.equal(r!.domain, 'example.com');
  assert.equal(r!.selector, 'sel');
  assert.match(r!.reason, /duplicate tag v=/);
});

test('header.b: 8 characters, more when another signature of the message shares them', () => {
  assert.deepEqual(shortBValues(['abcdefghij', 'abcdefghXY', 'zzzzzzzzzz']), [
    'abcdefghi',
    'abcdefghX',
    'zzzzzzzz',
  ]);
  assert.deepEqual(shortBValues(['short', 'abc']), ['short', 'abc']);
  assert.deepEqual(shortBValues(['same1234', 'same1234']), ['same1234', 'same1234']);
});

test('string input: UTF-8 header values by default, latin1 when asked', async () => {
  const utf8 = 'From: Jörg <j@example.com>\r\nSubject: Grüße\r\n\r\nbody\r\n';
  const signedBytes = signMessage(Buffer.from(utf8, 'utf8').toString('latin1'), {
    key: rsa,
    c: 'simple/simple',
  });
  // the same octets, once as a Buffer, once as the JS string a UTF-8 reader would make
  assert.equal(
    (await verifyMessage(Buffer.from(signedBytes, 'latin1'), { resolver: new MemoryResolver(zone()) }))[0]!
      .result,
    'pass',
  );
  const asUtf8 = Buffer.from(signedBytes, 'latin1').toString('utf8');
  assert.equal((await verify(asUtf8))[0]!.result, 'pass');
  assert.equal((await verify(signedBytes, zone(), { encoding: 'latin1' }))[0]!.result, 'pass');
  const split = asUtf8.indexOf('\r\n\r\n');
  const v = new DkimVerifier({ resolver: new MemoryResolver(zone()) });
  for (const [name, value] of parseFields(asUtf8.slice(0, split + 2))) v.header(name, value);
  v.body(asUtf8.slice(split + 4));
  assert.equal((await v.finish())[0]!.result, 'pass', 'strings through header() and body()');
});

test('leadingSpaceStripped puts back the space a milter took away (simple canonicalization)', async () => {
  const signed = sign(MESSAGE, { c: 'simple/simple' });
  const split = signed.indexOf('\r\n\r\n');
  const run = async (options: DkimOptions) => {
    const v = new DkimVerifier({ resolver: new MemoryResolver(zone()) }, options);
    for (const [name, value] of parseFields(signed.slice(0, split + 2)))
      v.header(name, value.replace(/^ /, ''));
    v.body(signed.slice(split + 4));
    return (await v.finish())[0]!.result;
  };
  assert.equal(await run({ leadingSpaceStripped: true }), 'pass');
  assert.equal(await run({}), 'fail');
});

test('LF line ends are read as CRLF; a message without a body verifies against the empty body', async () => {
  assert.equal((await verify(sign(MESSAGE).replace(/\r\n/g, '\n')))[0]!.result, 'pass');
  const headersOnly = sign('From: a@example.com\r\nSubject: x\r\n\r\n', { c: 'simple/simple' });
  assert.equal((await verify(headersOnly.replace(/\r\n\r\n$/, '\r\n')))[0]!.result, 'pass');
});

test('calls in the wrong order (from a confused MTA) are ignored and counted, never thrown', async () => {
  const signed = sign(MESSAGE);
  const split = signed.indexOf('\r\n\r\n');
  const v = new DkimVerifier({ resolver: new MemoryResolver(zone()) });
  for (const [name, value] of parseFields(signed.slice(0, split + 2))) v.header(name, value);
  v.endOfHeaders();
  v.endOfHeaders();
  v.header('Subject', ' added after the header block');
  v.headerFields([]);
  v.body(signed.slice(split + 4));
  const first = v.finish();
  v.body('more body after the end');
  assert.equal(v.finish(), first, 'finish() twice gives the same answer');
  const [r] = await first;
  assert.equal(r!.result, 'pass', 'the late field and chunk changed nothing');
  assert.equal(v.ignoredCalls, 3);
});
