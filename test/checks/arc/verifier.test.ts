import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ArcVerifier, arcMethodResults, verifyArc } from '../../../src/checks/arc/index.ts';
import { DkimKeyCache } from '../../../src/checks/dkim/key.ts';
import { ManualClock } from '../../../src/common/clock.ts';
import type { DnsResult, RecordType, Resolver } from '../../../src/dns/types.ts';
import { renderAuthenticationResults } from '../../../src/headers/authentication-results.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';
import { ed25519Key, rsaKey } from '../dkim/sign.ts';
import { addArcSet, baseMessage } from './seal.ts';

const rsa = rsaKey(2048);
const ed = ed25519Key();
const weak = rsaKey(512);
const NOW = Date.parse('2026-01-15T12:00:00Z');
const clock = new ManualClock(NOW);

/** Keys published: arc._domainkey.<d> for the sealer domains tests use. */
function zone(extra: ZoneData = {}): ZoneData {
  return {
    'arc._domainkey.sealer.example': [{ TXT: rsa.record }],
    'ed._domainkey.lists.example': [{ TXT: ed.record }],
    'arc._domainkey.fwd.example': [{ TXT: rsa.record }],
    'weak._domainkey.sealer.example': [{ TXT: weak.record }],
    ...extra,
  };
}

const verify = (message: string, z: ZoneData = zone(), options = {}) =>
  verifyArc(message, { resolver: new MemoryResolver(z), clock }, options);

/** A message through three sealers: lists.example (Ed25519), fwd.example, sealer.example. */
function threeHops(): string {
  let m = addArcSet(baseMessage(), { key: ed, domain: 'lists.example', selector: 'ed' });
  m = addArcSet(m, { key: rsa, domain: 'fwd.example' });
  return addArcSet(m, { key: rsa, domain: 'sealer.example' });
}

/** Replaces the body of a CRLF message. */
function withBody(message: string, body: string): string {
  return message.slice(0, message.indexOf('\r\n\r\n') + 4) + body;
}

describe('ArcVerifier', () => {
  test('no ARC header field: none, and no DNS', async () => {
    const resolver = new MemoryResolver(zone());
    const r = await verifyArc(baseMessage(), { resolver, clock });
    assert.deepEqual(r, {
      cv: 'none',
      instances: 0,
      sealers: [],
      reason: 'the message has no ARC header fields',
    });
    assert.equal(resolver.queries, 0);
  });

  test('one set: pass, with the sealer described', async () => {
    const m = addArcSet(baseMessage(), {
      key: rsa,
      domain: 'sealer.example',
      authResults: 'mx.sealer.example; dmarc=pass header.from=example.com',
    });
    const r = await verify(m);
    assert.equal(r.cv, 'pass', r.reason);
    assert.equal(r.instances, 1);
    assert.equal(r.temperror, undefined);
    assert.equal(r.oldestPass, undefined);
    assert.deepEqual(r.sealers, [
      {
        i: 1,
        d: 'sealer.example',
        s: 'arc',
        cvSeen: 'none',
        amsDomain: 'sealer.example',
        amsSelector: 'arc',
        authservId: 'mx.sealer.example',
        authResults: 'mx.sealer.example; dmarc=pass header.from=example.com',
      },
    ]);
  });

  test('three sets, RSA and Ed25519 sealers: pass; oldestPass 1 when every AMS still verifies', async () => {
    const r = await verify(threeHops(), zone(), { oldestPass: true });
    assert.equal(r.cv, 'pass', r.reason);
    assert.equal(r.instances, 3);
    assert.deepEqual(
      r.sealers.map((s) => [s.i, s.d, s.cvSeen]),
      [
        [1, 'lists.example', 'none'],
        [2, 'fwd.example', 'pass'],
        [3, 'sealer.example', 'pass'],
      ],
    );
    assert.equal(r.oldestPass, 1);
  });

  test('a forwarder that changed the message: the chain passes, oldestPass says from where', async () => {
    let m = addArcSet(baseMessage(), { key: ed, domain: 'lists.example', selector: 'ed' });
    // the list rewrites the subject and adds a footer, then seals
    m = withBody(m.replace('Subject: ARC test', 'Subject: [list] ARC test'), 'Hello,\r\n--\r\nfooter\r\n');
    m = addArcSet(m, { key: rsa, domain: 'fwd.example' });
    m = addArcSet(m, { key: rsa, domain: 'sealer.example' });
    const r = await verify(m, zone(), { oldestPass: true });
    assert.equal(r.cv, 'pass', r.reason);
    assert.equal(r.oldestPass, 2);
    const plain = await verify(m);
    assert.equal(plain.cv, 'pass');
    assert.equal(plain.oldestPass, undefined);
  });

  test('streaming in small chunks gives the one-shot result', async () => {
    const m = threeHops();
    const split = m.indexOf('\r\n\r\n');
    const v = new ArcVerifier({ resolver: new MemoryResolver(zone()), clock }, { encoding: 'latin1' });
    for (const line of m.slice(0, split).split(/\r\n(?![ \t])/)) {
      const colon = line.indexOf(':');
      v.header(line.slice(0, colon), line.slice(colon + 1));
    }
    v.endOfHeaders();
    const body = Buffer.from(m.slice(split + 4), 'latin1');
    for (let at = 0, k = 1; at < body.length; at += k, k = (k % 7) + 1) v.body(body.subarray(at, at + k));
    assert.equal(v.bodyHashCount, 1);
    const r = await v.finish();
    assert.deepEqual(r, await verify(m));
    // calls in the wrong order (from the network) are ignored and counted, never thrown
    assert.equal(await v.finish(), r);
    v.header('X', ' y');
    v.body('more');
    assert.equal(v.ignoredCalls, 2);
  });

  test('milter without leading space: values get their space back (simple header canonicalization)', async () => {
    const m = addArcSet(baseMessage(), { key: rsa, domain: 'sealer.example', c: 'simple/simple' });
    const split = m.indexOf('\r\n\r\n');
    const v = new ArcVerifier(
      { resolver: new MemoryResolver(zone()), clock },
      { leadingSpaceStripped: true },
    );
    for (const line of m.slice(0, split).split(/\r\n(?![ \t])/)) {
      const colon = line.indexOf(':');
      v.header(line.slice(0, colon), line.slice(colon + 2));
    }
    v.body(m.slice(split + 4));
    const r = await v.finish();
    assert.equal(r.cv, 'pass', r.reason);
  });

  test('the body changed after the last seal: the newest AMS fails', async () => {
    const m = threeHops();
    const r = await verify(withBody(m, 'Hello,\r\n\r\nthis is a changed test.\r\n'));
    assert.equal(r.cv, 'fail');
    assert.equal(r.failedInstance, 3);
    assert.match(r.reason, /^ARC-Message-Signature i=3: body hash did not verify/);
  });

  test('a header the newest AMS signed changed: fail; one it did not sign: pass', async () => {
    const m = threeHops();
    const changed = await verify(m.replace('To: list@', 'To: other@'));
    assert.equal(changed.cv, 'fail');
    assert.match(changed.reason, /ARC-Message-Signature i=3: signature did not verify/);
    const added = await verify(m.replace('Message-ID:', 'X-Added: yes\r\nMessage-ID:'));
    assert.equal(added.cv, 'pass', added.reason);
  });

  test('an older ARC-Authentication-Results changed: the seals fail, newest first', async () => {
    // (AAR i=2: the newest AMS signs one arc-authentication-results, which h= selects bottom-up: i=1's)
    const m = threeHops().replace(/(ARC-Authentication-Results: i=2; fwd\.example; spf=)pass/, '$1fail');
    assert.notEqual(m, threeHops());
    const r = await verify(m);
    assert.equal(r.cv, 'fail');
    assert.equal(r.failedInstance, 3);
    assert.match(r.reason, /^ARC-Seal i=3: seal signature did not verify/);
  });

  test('an older AMS changed: the seals that cover it fail', async () => {
    const m = threeHops();
    // a changed AMS i=1 is covered by seals 1..3, so the seals fail
    const changed = m.replace(/(ARC-Message-Signature: i=1; a=ed25519-sha256; c=)relaxed/, '$1simple');
    assert.notEqual(changed, m);
    const r = await verify(changed);
    assert.equal(r.cv, 'fail');
    assert.match(r.reason, /ARC-Seal i=3/);
  });

  test('a structural failure costs no DNS', async () => {
    const resolver = new MemoryResolver(zone());
    const m = threeHops().replace(
      /ARC-Seal: i=2; a=rsa-sha256; cv=pass/,
      'ARC-Seal: i=2; a=rsa-sha256; cv=none',
    );
    const r = await verifyArc(m, { resolver, clock });
    assert.equal(r.cv, 'fail');
    assert.match(r.reason, /cv=none where pass is required/);
    assert.equal(resolver.queries, 0);
    assert.equal(r.sealers.length, 3);
  });

  test('a newest AMS that cannot pass whatever the keys say fetches none', async () => {
    const resolver = new MemoryResolver(zone());
    const m = threeHops().replace(
      'ARC-Message-Signature: i=3; a=rsa-sha256',
      'ARC-Message-Signature: i=3; a=rsa-sha1',
    );
    const r = await verifyArc(m, { resolver, clock });
    assert.equal(r.cv, 'fail');
    assert.match(r.reason, /^ARC-Message-Signature i=3: rsa-sha1 is not accepted/);
    assert.equal(resolver.queries, 0);
  });

  test('keys: NXDOMAIN and revoked keys fail; a DNS failure is temperror, not a broken chain', async () => {
    const m = threeHops();
    const nx = await verify(m, zone({ 'ed._domainkey.lists.example': undefined }));
    assert.equal(nx.cv, 'fail');
    assert.equal(nx.temperror, undefined);
    assert.match(nx.reason, /ARC-Seal i=1: no key for signature/);
    const revoked = await verify(
      m,
      zone({ 'ed._domainkey.lists.example': [{ TXT: 'v=DKIM1; k=ed25519; p=' }] }),
    );
    assert.equal(revoked.cv, 'fail');
    assert.match(revoked.reason, /revoked/);
    for (const failure of ['TIMEOUT', 'SERVFAIL']) {
      const r = await verify(m, zone({ 'ed._domainkey.lists.example': [failure] }));
      assert.equal(r.cv, 'fail');
      assert.equal(r.temperror, true, failure);
      assert.equal(r.failedInstance, 1);
      assert.match(r.reason, /ARC-Seal i=1 could not be verified: key unavailable/);
    }
  });

  test('a definite failure wins over a key that could not be fetched', async () => {
    const m = withBody(threeHops(), 'changed\r\n');
    const r = await verify(m, zone({ 'ed._domainkey.lists.example': ['TIMEOUT'] }));
    assert.equal(r.cv, 'fail');
    assert.equal(r.temperror, undefined);
    assert.match(r.reason, /body hash/);
  });

  test('a resolver that throws, and an aborted validation, give temperror', async () => {
    const broken: Resolver = {
      query: () => Promise.reject(new Error('resolver exploded')),
    };
    const m = addArcSet(baseMessage(), { key: rsa, domain: 'sealer.example' });
    const r = await verifyArc(m, { resolver: broken, clock, keyCache: new DkimKeyCache({ clock }) });
    assert.equal(r.cv, 'fail');
    assert.equal(r.temperror, true);
    assert.match(r.reason, /exploded/);

    const silent: Resolver = {
      query: <T extends RecordType>() => new Promise<DnsResult<T>>(() => {}),
    };
    const controller = new AbortController();
    const pending = verifyArc(m, {
      resolver: silent,
      clock,
      keyCache: new DkimKeyCache({ clock }),
      signal: controller.signal,
    });
    controller.abort();
    const aborted = await pending;
    assert.equal(aborted.temperror, true);
    assert.match(aborted.reason, /aborted/);
  });

  test('RFC 8301: RSA keys under 1024 bits fail (configurable); key type and key h= are honoured', async () => {
    const m = addArcSet(baseMessage(), { key: weak, domain: 'sealer.example', selector: 'weak' });
    const r = await verify(m);
    assert.equal(r.cv, 'fail');
    assert.match(r.reason, /512 bits is shorter than 1024/);
    assert.equal((await verify(m, zone(), { minRsaBits: 512 })).cv, 'pass');

    const m2 = addArcSet(baseMessage(), { key: rsa, domain: 'sealer.example' });
    const wrongType = await verify(m2, zone({ 'arc._domainkey.sealer.example': [{ TXT: ed.record }] }));
    assert.match(wrongType.reason, /inappropriate key algorithm/);
    const sha1Only = await verify(
      m2,
      zone({ 'arc._domainkey.sealer.example': [{ TXT: `v=DKIM1; k=rsa; h=sha1; p=${rsa.p}` }] }),
    );
    assert.match(sha1Only.reason, /inappropriate hash algorithm/);
  });

  test('time: an expired AMS fails; future t= only with maxFutureSeconds', async () => {
    const now = NOW / 1000;
    const expired = addArcSet(baseMessage(), {
      key: rsa,
      domain: 'sealer.example',
      t: now - 7200,
      x: now - 3600,
    });
    const r = await verify(expired);
    assert.equal(r.cv, 'fail');
    assert.match(r.reason, /expired/);
    const future = addArcSet(baseMessage(), { key: rsa, domain: 'sealer.example', t: now + 86_400 });
    assert.equal((await verify(future)).cv, 'pass');
    const strict = await verify(future, zone(), { maxFutureSeconds: 300 });
    assert.equal(strict.cv, 'fail');
    assert.match(strict.reason, /future/);
  });

  test('AMS forms: no c= means simple/simple; l= leaves the rest of the body unsigned', async () => {
    const noC = addArcSet(baseMessage(), { key: rsa, domain: 'sealer.example', c: null });
    assert.doesNotMatch(noC, /c=simple/);
    assert.equal((await verify(noC)).cv, 'pass');
    const limited = addArcSet(baseMessage(), { key: rsa, domain: 'sealer.example', l: 8 });
    const r = await verify(limited.replace(/this is a test\.\r\n$/, 'this is anything.\r\n'));
    assert.equal(r.cv, 'pass', r.reason);
    const tooLong = addArcSet(baseMessage('x\r\n'), { key: rsa, domain: 'sealer.example', l: 3 });
    assert.equal((await verify(withBody(tooLong, ''))).cv, 'fail');
  });

  test('an AMS may sign the older AMS fields; an AMS that signs ARC-Seal fails', async () => {
    let m = addArcSet(baseMessage(), { key: rsa, domain: 'sealer.example' });
    m = addArcSet(m, {
      key: rsa,
      domain: 'fwd.example',
      h: ['from', 'arc-message-signature', 'arc-authentication-results'],
    });
    assert.equal((await verify(m)).cv, 'pass');
    let bad = addArcSet(baseMessage(), { key: rsa, domain: 'sealer.example' });
    bad = addArcSet(bad, { key: rsa, domain: 'fwd.example', h: ['from', 'arc-seal'] });
    const r = await verify(bad);
    assert.equal(r.cv, 'fail');
    assert.match(r.reason, /signs ARC-Seal/);
  });

  test('50 sets pass; a 51st is beyond RFC 8617 §4.2.1', async () => {
    const z = zone();
    let m = baseMessage('x\r\n');
    for (let i = 1; i <= 50; i++) {
      z[`ed._domainkey.s${i}.example`] = [{ TXT: ed.record }];
      m = addArcSet(m, { key: ed, domain: `s${i}.example`, selector: 'ed' });
    }
    const r = await verify(m, z, { oldestPass: true });
    assert.equal(r.cv, 'pass', r.reason);
    assert.equal(r.instances, 50);
    assert.equal(r.oldestPass, 1);
    const over = addArcSet(m, { key: ed, domain: 's1.example', selector: 'ed' });
    const r51 = await verify(over, z);
    assert.equal(r51.cv, 'fail');
    assert.match(r51.reason, /no valid instance/);
  });

  test('keys come from the shared key cache', async () => {
    const resolver = new MemoryResolver(zone());
    const keyCache = new DkimKeyCache({ clock });
    const m = threeHops();
    await verifyArc(m, { resolver, clock, keyCache });
    const first = resolver.queries;
    assert.equal(first, 3); // one key per sealer domain: AMS 3 and seal 3 share sealer.example's
    const again = await verifyArc(m, { resolver, clock, keyCache });
    assert.equal(again.cv, 'pass');
    assert.equal(resolver.queries, first);
  });
});

describe('arcMethodResults', () => {
  test('pass with the instance, oldest-pass and remote-ip', async () => {
    const r = await verify(threeHops(), zone(), { oldestPass: true });
    const text = renderAuthenticationResults(
      'mx.example.net',
      arcMethodResults(r, { remoteIp: '192.0.2.1' }),
    );
    assert.equal(text, 'mx.example.net; arc=pass (i=3) header.oldest-pass=0\r\n\tsmtp.remote-ip=192.0.2.1');
  });

  test('fail carries the reason; temperror says it is temporary; none is bare', async () => {
    const failed = await verify(withBody(threeHops(), 'x\r\n'));
    const [f] = arcMethodResults(failed);
    assert.equal(f!.result, 'fail');
    assert.equal(f!.comment, 'i=3');
    assert.match(f!.reason!, /^ARC-Message-Signature i=3: body hash/);

    const temp = await verify(threeHops(), zone({ 'arc._domainkey.fwd.example': ['TIMEOUT'] }));
    const [t] = arcMethodResults(temp, { remoteIp: '2001:db8::1' });
    assert.equal(t!.result, 'fail');
    assert.match(t!.reason!, /^temporary failure: ARC-Seal i=2 could not be verified/);
    assert.deepEqual(t!.properties, [['smtp.remote-ip', '2001:db8::1']]);

    const none = await verify(baseMessage());
    assert.deepEqual(arcMethodResults(none, { remoteIp: '192.0.2.1' }), [
      { method: 'arc', result: 'none', properties: [] },
    ]);
  });

  test('oldest-pass is the lowest verifying instance above a broken AMS', async () => {
    let m = addArcSet(baseMessage(), { key: ed, domain: 'lists.example', selector: 'ed' });
    m = addArcSet(withBody(m, 'footer\r\n'), { key: rsa, domain: 'fwd.example' });
    const r = await verify(m, zone(), { oldestPass: true });
    assert.equal(r.oldestPass, 2);
    assert.deepEqual(arcMethodResults(r)[0]!.properties, [['header.oldest-pass', '2']]);
  });
});
