import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../../src/common/clock.ts';
import { checkHelo, checkHost, checkMailFrom, type SpfDeps } from '../../../src/checks/spf/index.ts';
import type { DnsResult, RecordType, Resolver } from '../../../src/dns/types.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

function deps(zone: ZoneData, extra: Partial<SpfDeps> = {}): SpfDeps & { resolver: MemoryResolver } {
  return { clock: new ManualClock(), ...extra, resolver: new MemoryResolver(zone) };
}

function host(ip: string, domain: string, d: SpfDeps) {
  return checkHost({ ip, domain, sender: `user@${domain}`, helo: 'mail.example.org' }, d);
}

describe('results and facts', () => {
  test('pass names the matching term, counts lookups, explains itself', async () => {
    const d = deps({
      'example.com': [{ TXT: 'v=spf1 include:_spf.example.com -all' }],
      '_spf.example.com': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 ~all' }],
    });
    const fact = await host('192.0.2.10', 'Example.COM.', d);
    assert.equal(fact.result, 'pass');
    assert.equal(fact.domain, 'example.com');
    assert.equal(fact.mechanism, 'include:_spf.example.com');
    assert.equal(fact.lookups, 1);
    assert.equal(fact.voidLookups, 0);
    assert.equal(fact.identity, 'mailfrom');
    assert.equal(fact.ip, '192.0.2.10');
    assert.match(fact.reason, /example\.com designates 192\.0\.2\.10/);
    assert.equal(fact.explanation, undefined);
  });

  test('fail carries exp= text; the exp lookup is not counted', async () => {
    const d = deps({
      'example.com': [{ TXT: 'v=spf1 a:nx1.example.com exp=why.%{d} -all' }],
      'why.example.com': [{ TXT: ['%{i} is not one of ', "%{d}'s senders"] }],
    });
    const fact = await host('192.0.2.10', 'example.com', d);
    assert.equal(fact.result, 'fail');
    assert.equal(fact.mechanism, '-all');
    assert.equal(fact.explanation, "192.0.2.10 is not one of example.com's senders");
    assert.equal(fact.lookups, 1);
    assert.equal(fact.voidLookups, 1);
  });

  test('softfail and neutral give no explanation even with exp=', async () => {
    const zone = { 'example.com': [{ TXT: 'v=spf1 exp=why.example.com ~all' }], 'why.example.com': [{ TXT: 'no' }] };
    const fact = await host('192.0.2.10', 'example.com', deps(zone));
    assert.equal(fact.result, 'softfail');
    assert.equal(fact.explanation, undefined);
    const neutral = await host('192.0.2.10', 'n.example.com', deps({ 'n.example.com': [{ TXT: 'v=spf1 exp=w.example.com' }] }));
    assert.equal(neutral.result, 'neutral');
    assert.equal(neutral.mechanism, undefined);
    assert.match(neutral.reason, /default result is neutral/);
  });

  test('none for a missing record, a missing domain, an invalid domain or IP', async () => {
    assert.equal((await host('192.0.2.1', 'example.com', deps({ 'example.com': [{ A: '192.0.2.1' }] }))).result, 'none');
    assert.equal((await host('192.0.2.1', 'nx.example.com', deps({}))).result, 'none');
    const d = deps({});
    for (const bad of ['localhost', 'a..example.com', '[192.0.2.1]', '192.0.2.1', `${'x'.repeat(64)}.example.com`, '']) {
      const fact = await host('192.0.2.1', bad, d);
      assert.equal(fact.result, 'none', bad);
      assert.match(fact.reason, /§4\.3/);
    }
    assert.equal(d.resolver.queries, 0, 'no query for an invalid domain');
    const noIp = await host('not-an-ip', 'example.com', d);
    assert.equal(noIp.result, 'none');
    assert.match(noIp.reason, /not an IP address/);
  });

  test('an internationalized domain is looked up in its A-label form', async () => {
    const d = deps({ 'xn--bcher-kva.example': [{ TXT: 'v=spf1 +all' }] });
    const fact = await host('192.0.2.1', 'bücher.example', d);
    assert.equal(fact.result, 'pass');
    assert.deepEqual(d.resolver.log, ['xn--bcher-kva.example/TXT']);
  });

  test('DNS failures are temperror, never exceptions', async () => {
    const d = deps({ 'example.com': [{ TXT: 'v=spf1 a:broken.example.com -all' }], 'broken.example.com': ['SERVFAIL'] });
    const fact = await host('192.0.2.1', 'example.com', d);
    assert.equal(fact.result, 'temperror');
    assert.match(fact.reason, /A lookup of broken\.example\.com failed: servfail/);
  });

  test('a resolver that throws gives temperror', async () => {
    const resolver: Resolver = {
      query() {
        throw new Error('boom');
      },
    };
    const fact = await checkHost({ ip: '192.0.2.1', domain: 'example.com', sender: 'a@example.com' }, { resolver });
    assert.equal(fact.result, 'temperror');
    assert.match(fact.reason, /boom/);
  });
});

describe('the 10 DNS-querying terms (§4.6.4)', () => {
  function chain(n: number): ZoneData {
    // example.com includes i1, i1 includes i2, ... the last one passes 192.0.2.1
    const zone: ZoneData = {};
    for (let k = 0; k < n; k++) {
      const name = k === 0 ? 'example.com' : `i${k}.example.com`;
      zone[name] = [{ TXT: `v=spf1 include:i${k + 1}.example.com -all` }];
    }
    zone[`i${n}.example.com`] = [{ TXT: 'v=spf1 ip4:192.0.2.1 -all' }];
    return zone;
  }

  test('10 includes is at the limit', async () => {
    const fact = await host('192.0.2.1', 'example.com', deps(chain(10)));
    assert.equal(fact.result, 'pass');
    assert.equal(fact.lookups, 10);
  });

  test('the 11th term is a permerror naming it', async () => {
    const fact = await host('192.0.2.1', 'example.com', deps(chain(11)));
    assert.equal(fact.result, 'permerror');
    assert.match(fact.reason, /more than 10 DNS-querying terms.*include:i11\.example\.com/);
  });

  test('the limit is configurable', async () => {
    const fact = await host('192.0.2.1', 'example.com', deps(chain(11), { limits: { maxDnsLookups: 11 } }));
    assert.equal(fact.result, 'pass');
    const low = await host('192.0.2.1', 'example.com', deps(chain(3), { limits: { maxDnsLookups: 2 } }));
    assert.equal(low.result, 'permerror');
  });

  test('identical queries are asked once but every term counts', async () => {
    const d = deps({
      'example.com': [{ TXT: 'v=spf1 a:h.example.com a:h.example.com a:h.example.com mx mx ip4:192.0.2.9 -all' }],
      'h.example.com': [{ A: '192.0.2.1' }],
    });
    const fact = await host('192.0.2.9', 'example.com', d);
    assert.equal(fact.result, 'pass');
    assert.equal(fact.lookups, 5);
    assert.equal(fact.voidLookups, 2, 'the two mx terms each count a void lookup');
    assert.deepEqual(d.resolver.log, ['example.com/TXT', 'h.example.com/A', 'example.com/MX']);
  });

  test('a redirect loop stops at the limit', async () => {
    const fact = await host('192.0.2.1', 'example.com', deps({ 'example.com': [{ TXT: 'v=spf1 redirect=example.com' }] }));
    assert.equal(fact.result, 'permerror');
    assert.equal(fact.lookups, 11);
  });

  test('ip4, ip6, all and exp= do not count', async () => {
    const fact = await host(
      '192.0.2.1',
      'example.com',
      deps({ 'example.com': [{ TXT: `v=spf1 ${'ip4:198.51.100.1 ip6:2001:db8::1 '.repeat(20)}-all exp=x.example.com` }] }),
    );
    assert.equal(fact.result, 'fail');
    assert.equal(fact.lookups, 0);
  });
});

describe('void lookups (§4.6.4)', () => {
  const zone: ZoneData = {
    'example.com': [{ TXT: 'v=spf1 a:nx1.example.com exists:nx2.example.com mx:nodata.example.com ?all' }],
    'nodata.example.com': [{ TXT: 'hello' }],
  };

  test('a third void lookup is a permerror', async () => {
    const fact = await host('192.0.2.1', 'example.com', deps(zone));
    assert.equal(fact.result, 'permerror');
    assert.equal(fact.voidLookups, 3);
    assert.match(fact.reason, /more than 2 void lookups.*mx:nodata\.example\.com/);
  });

  test('the void limit is configurable', async () => {
    const fact = await host('192.0.2.1', 'example.com', deps(zone, { limits: { maxVoidLookups: 3 } }));
    assert.equal(fact.result, 'neutral');
  });

  test('only the address family of the client is looked up and counted', async () => {
    const d = deps({ 'example.com': [{ TXT: 'v=spf1 a:v4only.example.com -all' }], 'v4only.example.com': [{ A: '192.0.2.1' }] });
    const fact = await host('2001:db8::1', 'example.com', d);
    assert.equal(fact.result, 'fail');
    assert.equal(fact.voidLookups, 1);
    assert.deepEqual(d.resolver.log, ['example.com/TXT', 'v4only.example.com/AAAA']);
  });
});

describe('mx and ptr name limits', () => {
  function mxZone(count: number): ZoneData {
    const zone: ZoneData = { 'example.com': [{ TXT: 'v=spf1 mx -all' }] };
    const mx: ZoneData[string] = [];
    for (let k = 0; k < count; k++) {
      mx.push({ MX: [k, `mx${k}.example.com`] });
      zone[`mx${k}.example.com`] = [{ A: `198.51.100.${k + 1}` }];
    }
    zone['example.com']!.push(...mx);
    return zone;
  }

  test('10 MX names are looked up; the last may match', async () => {
    const fact = await host('198.51.100.10', 'example.com', deps(mxZone(10)));
    assert.equal(fact.result, 'pass');
  });

  test('11 MX names are a permerror (§4.6.4)', async () => {
    const fact = await host('198.51.100.1', 'example.com', deps(mxZone(11)));
    assert.equal(fact.result, 'permerror');
    assert.match(fact.reason, /11 MX names/);
    const raised = await host('198.51.100.1', 'example.com', deps(mxZone(11), { limits: { maxMxNames: 11 } }));
    assert.equal(raised.result, 'pass');
  });

  test('a null MX names no host', async () => {
    const d = deps({ 'example.com': [{ TXT: 'v=spf1 mx ?all' }, { MX: [0, ''] }] });
    const fact = await host('192.0.2.1', 'example.com', d);
    assert.equal(fact.result, 'neutral');
    assert.equal(fact.voidLookups, 0);
  });

  test('a DNS error on an MX host is temperror; a missing host is skipped', async () => {
    const zone: ZoneData = {
      'example.com': [{ TXT: 'v=spf1 mx -all' }, { MX: [10, 'gone.example.com'] }, { MX: [20, 'slow.example.com'] }],
      'slow.example.com': ['TIMEOUT'],
    };
    assert.equal((await host('192.0.2.1', 'example.com', deps(zone))).result, 'temperror');
  });

  function ptrZone(count: number): ZoneData {
    const zone: ZoneData = { 'example.com': [{ TXT: 'v=spf1 ptr -all' }] };
    const ptr: ZoneData[string] = [];
    for (let k = 0; k < count; k++) ptr.push({ PTR: `h${k}.example.com` });
    zone['1.2.0.192.in-addr.arpa'] = ptr;
    zone[`h${count - 1}.example.com`] = [{ A: '192.0.2.1' }];
    return zone;
  }

  test('PTR names past the 10th are ignored, not an error (§4.6.4)', async () => {
    assert.equal((await host('192.0.2.1', 'example.com', deps(ptrZone(10)))).result, 'pass');
    assert.equal((await host('192.0.2.1', 'example.com', deps(ptrZone(11)))).result, 'fail');
    const raised = await host('192.0.2.1', 'example.com', deps(ptrZone(11), { limits: { maxPtrNames: 11 } }));
    assert.equal(raised.result, 'pass');
  });

  test('a DNS error in the PTR lookup is no match, not temperror (§5.5)', async () => {
    const zone: ZoneData = { 'example.com': [{ TXT: 'v=spf1 ptr ?all' }], '1.2.0.192.in-addr.arpa': ['SERVFAIL'] };
    assert.equal((await host('192.0.2.1', 'example.com', deps(zone))).result, 'neutral');
  });

  test('%{p} picks a validated name under <domain>, else "unknown"', async () => {
    const zone: ZoneData = {
      'example.com': [{ TXT: 'v=spf1 exists:%{p}.allow.example.net -all' }],
      '1.2.0.192.in-addr.arpa': [{ PTR: 'other.example.org' }, { PTR: 'mx.example.com' }, { PTR: 'fake.example.com' }],
      'other.example.org': [{ A: '192.0.2.1' }],
      'mx.example.com': [{ A: '192.0.2.1' }],
      'mx.example.com.allow.example.net': [{ A: '127.0.0.2' }],
    };
    const fact = await host('192.0.2.1', 'example.com', deps(zone));
    assert.equal(fact.result, 'pass');
    assert.equal(fact.lookups, 1, '%{p} is part of its term, not a term of its own');
    const unknown = await host('192.0.2.7', 'example.com', deps(zone));
    assert.equal(unknown.result, 'fail');
  });
});

describe('IPv6 clients', () => {
  const zone: ZoneData = {
    'example.com': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 ip6:2001:db8:1::/48 a:v6.example.com//64 -all' }],
    'v6.example.com': [{ AAAA: '2001:db8:2::1' }, { A: '198.51.100.1' }],
  };

  test('ip6 and a with an IPv6 CIDR', async () => {
    assert.equal((await host('2001:db8:1:ffff::1', 'example.com', deps(zone))).result, 'pass');
    assert.equal((await host('2001:db8:2::abcd', 'example.com', deps(zone))).result, 'pass');
    assert.equal((await host('2001:db8:3::1', 'example.com', deps(zone))).result, 'fail');
  });

  test('an IPv4-mapped IPv6 client is an IPv4 client', async () => {
    const fact = await host('::ffff:192.0.2.77', 'example.com', deps(zone));
    assert.equal(fact.result, 'pass');
    assert.equal(fact.mechanism, 'ip4:192.0.2.0/24');
    assert.equal(fact.ip, '192.0.2.77');
  });
});

describe('deadline (§4.6.4)', () => {
  test('a resolver that never answers ends in temperror', async () => {
    const resolver: Resolver = { query: () => new Promise(() => {}) };
    const fact = await checkHost(
      { ip: '192.0.2.1', domain: 'example.com', sender: 'a@example.com' },
      { resolver, limits: { maxElapsedMs: 20 } },
    );
    assert.equal(fact.result, 'temperror');
    assert.match(fact.reason, /longer than 20 ms/);
  });

  test('the injected clock decides the deadline between queries', async () => {
    const clock = new ManualClock();
    const inner = new MemoryResolver({
      'example.com': [{ TXT: 'v=spf1 a:a1.example.com a:a2.example.com a:a3.example.com -all' }],
      'a1.example.com': [{ A: '198.51.100.1' }],
      'a2.example.com': [{ A: '198.51.100.2' }],
      'a3.example.com': [{ A: '192.0.2.1' }],
    });
    const resolver: Resolver = {
      query<T extends RecordType>(name: string, type: T): Promise<DnsResult<T>> {
        clock.advance(8_000);
        return inner.query(name, type);
      },
    };
    const fact = await checkHost({ ip: '192.0.2.1', domain: 'example.com', sender: 'a@example.com' }, { resolver, clock });
    assert.equal(fact.result, 'temperror');
    assert.match(fact.reason, /longer than 20000 ms/);
    const roomy = await checkHost(
      { ip: '192.0.2.1', domain: 'example.com', sender: 'a@example.com' },
      { resolver, clock, limits: { maxElapsedMs: 60_000 } },
    );
    assert.equal(roomy.result, 'pass');
  });

  test('aborting the signal ends the evaluation with temperror', async () => {
    const controller = new AbortController();
    const resolver: Resolver = {
      query: () => {
        controller.abort();
        return new Promise(() => {});
      },
    };
    const fact = await checkHost(
      { ip: '192.0.2.1', domain: 'example.com', sender: 'a@example.com' },
      { resolver, signal: controller.signal },
    );
    assert.equal(fact.result, 'temperror');
    assert.match(fact.reason, /aborted/);
  });
});

describe('identities', () => {
  const zone: ZoneData = {
    'example.com': [{ TXT: 'v=spf1 ip4:192.0.2.1 -all exp=why.example.com' }],
    'why.example.com': [{ TXT: '%{s} via %{h}' }],
    'mail.example.com': [{ TXT: 'v=spf1 a -all' }, { A: '192.0.2.25' }],
  };

  test('MAIL FROM: brackets are stripped, a missing local part is postmaster', async () => {
    const fact = await checkMailFrom({ ip: '192.0.2.9', mailFrom: '<@example.com>', helo: 'mail.example.com' }, deps(zone));
    assert.equal(fact.result, 'fail');
    assert.equal(fact.sender, 'postmaster@example.com');
    assert.equal(fact.explanation, 'postmaster@example.com via mail.example.com');
  });

  test('the null sender checks postmaster@<helo> as the MAIL FROM identity (§2.4)', async () => {
    const fact = await checkMailFrom({ ip: '192.0.2.25', mailFrom: '<>', helo: 'mail.example.com' }, deps(zone));
    assert.equal(fact.result, 'pass');
    assert.equal(fact.identity, 'mailfrom');
    assert.equal(fact.domain, 'mail.example.com');
    assert.equal(fact.sender, 'postmaster@mail.example.com');
  });

  test('HELO identity (§2.3); address literals and single labels are none', async () => {
    const fact = await checkHelo({ ip: '192.0.2.26', helo: 'mail.example.com' }, deps(zone));
    assert.equal(fact.result, 'fail');
    assert.equal(fact.identity, 'helo');
    for (const helo of ['[192.0.2.1]', '[IPv6:2001:db8::1]', '192.0.2.1', 'OEMCOMPUTER']) {
      const d = deps(zone);
      const none = await checkHelo({ ip: '192.0.2.1', helo }, d);
      assert.equal(none.result, 'none', helo);
      assert.equal(d.resolver.queries, 0, helo);
    }
  });
});

describe('odd inputs', () => {
  test('never throw and never query names that cannot be names', async () => {
    const d = deps({
      'example.com': [{ TXT: 'v=spf1 a:%{l}.x.example.com exists:%{L}.%{h}.example.com ptr:%{s}.example.com -all' }],
    });
    const inputs = [
      { ip: '', domain: 'example.com', sender: '' },
      { ip: '192.0.2.1', domain: '\ud800.com', sender: '@' },
      { ip: '192.0.2.1', domain: 'example.com', sender: '\ud800é x@example.com', helo: '\u0000' },
      { ip: '::ffff:192.0.2.1', domain: 'EXAMPLE.com.', sender: 'a.b@example.com' },
    ];
    const results = [];
    for (const args of inputs) {
      const fact = await checkHost(args, d);
      assert.ok(fact.reason.length > 0);
      results.push(fact.result);
    }
    assert.deepEqual(results, ['none', 'none', 'fail', 'permerror']);
    for (const entry of d.resolver.log) assert.match(entry, /^[\x21-\x7e]+$/, entry);
  });
});
