import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import {
  DkimKeyCache,
  defaultKeyCache,
  keyName,
  parseKeyRecord,
  selectKeyRecord,
} from '../../../src/checks/dkim/key.ts';
import { ManualClock } from '../../../src/common/clock.ts';
import type { DnsResult, RecordType, Resolver } from '../../../src/dns/types.ts';
import { MemoryResolver } from '../../support/zone.ts';
import { ed25519Key, rsaKey } from './sign.ts';

const rsa = rsaKey(1024);
const ed = ed25519Key();

function reason(record: string): string {
  const r = parseKeyRecord(record);
  assert.equal(r.ok, false, record);
  return r.ok ? '' : r.reason;
}

test('RSA and Ed25519 key records parse into KeyObjects', () => {
  const r = parseKeyRecord(rsa.record);
  assert.ok(r.ok);
  assert.equal(r.key.keyType, 'rsa');
  assert.equal(r.key.bits, 1024);
  assert.equal(r.key.publicKey.asymmetricKeyType, 'rsa');
  assert.equal(r.key.hashes, null);
  assert.equal(r.key.testing, false);
  const e = parseKeyRecord(ed.record);
  assert.ok(e.ok);
  assert.equal(e.key.keyType, 'ed25519');
  assert.equal(e.key.publicKey.asymmetricKeyType, 'ed25519');
});

test('RSA p= as RSAPublicKey (PKCS#1, as RFC 6376 §3.6.1 names it) is read too', () => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const pkcs1 = publicKey.export({ type: 'pkcs1', format: 'der' }).toString('base64');
  const r = parseKeyRecord(`k=rsa; p=${pkcs1}`);
  assert.ok(r.ok);
  assert.equal(r.key.bits, 1024);
});

test('defaults and flags: k= rsa by default, v= optional, h=, t=y:s, s=email', () => {
  const r = parseKeyRecord(`h=sha1:SHA256; t=y:s:x; s=email:web; n=a note; p=${rsa.p}`);
  assert.ok(r.ok);
  assert.deepEqual(r.key.hashes, ['sha1', 'sha256']);
  assert.equal(r.key.testing, true);
  assert.equal(r.key.strict, true);
  assert.equal(parseKeyRecord(`s=*; p=${rsa.p}`).ok, true);
});

test('rejections, each with its reason (RFC 6376 §3.6.1, RFC 8463 §4)', () => {
  assert.match(reason(`v=DKIM2; p=${rsa.p}`), /unsupported version/);
  assert.match(reason('v=DKIM1; k=rsa'), /no p= tag/);
  assert.match(reason('v=DKIM1; p='), /revoked/);
  assert.match(reason(`k=dsa; p=${rsa.p}`), /unknown key type/);
  assert.match(reason(`s=chat:tlsrpt; p=${rsa.p}`), /not for email/);
  assert.match(reason('p=%%%'), /not base64/);
  assert.match(reason('p=AAAA'), /not an RSA public key/);
  assert.match(reason(`k=ed25519; p=${rsa.p}`), /not a raw Ed25519 key/);
  const spkiEd = generateKeyPairSync('ed25519')
    .publicKey.export({ type: 'spki', format: 'der' })
    .toString('base64');
  assert.match(
    reason(`k=ed25519; p=${spkiEd}`),
    /44 octets, not 32/,
    'a SubjectPublicKeyInfo is not the RFC 8463 form',
  );
  assert.match(reason(`k=rsa; t; p=${rsa.p}`), /syntax error/);
  assert.match(reason(`p=${ed.p}`), /not an RSA public key/, 'an Ed25519 key under the default k=rsa');
});

test('several TXT records: the first that is a key wins; character-strings are joined', () => {
  const half = Math.floor(rsa.record.length / 2);
  const r = selectKeyRecord([['v=spf1 -all'], [rsa.record.slice(0, half), rsa.record.slice(half)]]);
  assert.ok(r.ok);
  const none = selectKeyRecord([['garbage'], ['v=DKIM1; p=']]);
  assert.equal(none.ok, false);
  assert.match(none.ok ? '' : none.reason, /syntax error/, "the first record's problem is reported");
});

test('key names are lower case', () => {
  assert.equal(keyName('Sel', 'Example.COM'), 'sel._domainkey.example.com');
});

test('cache: parsed once, kept for the TTL, then asked again', async () => {
  const clock = new ManualClock();
  const resolver = new MemoryResolver({ 'sel._domainkey.example.com': [{ TXT: rsa.record }] });
  const cache = new DkimKeyCache({ clock });
  const a = await cache.lookup(resolver, 'sel', 'example.com');
  const b = await cache.lookup(resolver, 'SEL', 'example.com');
  assert.equal(a.status, 'ok');
  assert.equal(a, b, 'the same parsed key object');
  assert.equal(resolver.queries, 1);
  clock.advance(299_000);
  await cache.lookup(resolver, 'sel', 'example.com');
  assert.equal(resolver.queries, 1, 'still fresh within the fixture TTL of 300 s');
  clock.advance(2_000);
  await cache.lookup(resolver, 'sel', 'example.com');
  assert.equal(resolver.queries, 2);
  assert.equal(cache.hits, 2);
});

test('cache: negative answers are cached for their TTL, DNS failures are not', async () => {
  const clock = new ManualClock();
  const resolver = new MemoryResolver({ 'slow._domainkey.example.com': ['TIMEOUT'] });
  const cache = new DkimKeyCache({ clock });
  const missing = await cache.lookup(resolver, 'none', 'example.com');
  assert.equal(missing.status, 'permerror');
  assert.match('reason' in missing ? missing.reason : '', /no key for signature.*NXDOMAIN/);
  await cache.lookup(resolver, 'none', 'example.com');
  assert.equal(resolver.queries, 1);
  const t1 = await cache.lookup(resolver, 'slow', 'example.com');
  const t2 = await cache.lookup(resolver, 'slow', 'example.com');
  assert.equal(t1.status, 'temperror');
  assert.equal(t2.status, 'temperror');
  assert.equal(resolver.queries, 3);
});

test('cache: concurrent look-ups of one name share one query; LRU bound holds', async () => {
  const resolver = new MemoryResolver({
    'a._domainkey.example.com': [{ TXT: rsa.record }],
    'b._domainkey.example.com': [{ TXT: ed.record }],
    'c._domainkey.example.com': [{ TXT: ed.record }],
  });
  const cache = new DkimKeyCache({ maxEntries: 2 });
  const [x, y] = await Promise.all([
    cache.lookup(resolver, 'a', 'example.com'),
    cache.lookup(resolver, 'a', 'example.com'),
  ]);
  assert.equal(x, y);
  assert.equal(resolver.queries, 1);
  await cache.lookup(resolver, 'b', 'example.com');
  await cache.lookup(resolver, 'a', 'example.com'); // a is now the most recently used
  await cache.lookup(resolver, 'c', 'example.com');
  assert.equal(cache.size, 2);
  const before = resolver.queries;
  await cache.lookup(resolver, 'a', 'example.com');
  assert.equal(resolver.queries, before, 'a survived');
  await cache.lookup(resolver, 'b', 'example.com');
  assert.equal(resolver.queries, before + 1, 'b was evicted');
});

test('cache: TTLs are capped, zero TTL is not cached, a throwing resolver is a temperror', async () => {
  const clock = new ManualClock();
  let calls = 0;
  let ttl = 86_400;
  const resolver: Resolver = {
    async query<T extends RecordType>(_name: string, _type: T): Promise<DnsResult<T>> {
      calls++;
      return { status: 'ok', records: [[rsa.record]] as never, ttl, authenticated: false };
    },
  };
  const cache = new DkimKeyCache({ clock, maxTtl: 60 });
  await cache.lookup(resolver, 's', 'example.com');
  clock.advance(61_000);
  await cache.lookup(resolver, 's', 'example.com');
  assert.equal(calls, 2, 'a one-day TTL was cut to 60 s');
  ttl = 0;
  await cache.lookup(resolver, 'z', 'example.com');
  await cache.lookup(resolver, 'z', 'example.com');
  assert.equal(calls, 4);
  const broken: Resolver = {
    query: () => Promise.reject(new Error('boom')),
  };
  const r = await new DkimKeyCache().lookup(broken, 's', 'example.com');
  assert.equal(r.status, 'temperror');
});

test('cache: an over-long key name is a permerror without a query', async () => {
  const resolver = new MemoryResolver({});
  const r = await new DkimKeyCache().lookup(resolver, 'a'.repeat(64), 'example.com');
  assert.equal(r.status, 'permerror');
  assert.equal(resolver.queries, 0);
});

test('the default cache is per resolver and clock', () => {
  const r1 = new MemoryResolver({});
  const r2 = new MemoryResolver({});
  const clock = new ManualClock();
  assert.equal(defaultKeyCache(r1), defaultKeyCache(r1));
  assert.notEqual(defaultKeyCache(r1), defaultKeyCache(r2));
  assert.notEqual(defaultKeyCache(r1), defaultKeyCache(r1, clock));
});
