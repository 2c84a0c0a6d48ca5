import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkIprev, genericReverseName } from '../../../src/checks/iprev/index.ts';
import { parseIp } from '../../../src/common/ip.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

const V6_PTR = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa';

const ZONE: ZoneData = {
  // 192.0.2.1: one PTR, confirmed
  '1.2.0.192.in-addr.arpa': [{ PTR: 'Mail.Example.COM.' }],
  'mail.example.com': [{ A: '192.0.2.1' }, { A: '192.0.2.100' }, { AAAA: '2001:db8::1' }],
  // 192.0.2.2: two PTRs, the second confirms
  '2.2.0.192.in-addr.arpa': [{ PTR: 'old.example.net' }, { PTR: 'new.example.net' }],
  'old.example.net': [{ A: '198.51.100.9' }],
  'new.example.net': [{ A: '192.0.2.2' }],
  // 192.0.2.3: PTR whose forward name points elsewhere
  '3.2.0.192.in-addr.arpa': [{ PTR: 'liar.example.org' }],
  'liar.example.org': [{ A: '198.51.100.3' }],
  // 192.0.2.4: PTR to a name that does not exist
  '4.2.0.192.in-addr.arpa': [{ PTR: 'gone.example.org' }],
  // 192.0.2.5: PTR to a name with no A record
  '5.2.0.192.in-addr.arpa': [{ PTR: 'v6only.example.org' }],
  'v6only.example.org': [{ AAAA: '2001:db8::5' }],
  // 192.0.2.6: reverse zone SERVFAIL
  '6.2.0.192.in-addr.arpa': ['SERVFAIL'],
  // 192.0.2.7: forward lookup times out
  '7.2.0.192.in-addr.arpa': [{ PTR: 'slow.example.org' }, { PTR: 'wrong.example.org' }],
  'slow.example.org': ['TIMEOUT'],
  'wrong.example.org': [{ A: '198.51.100.7' }],
  // 192.0.2.8: reverse name exists without PTR (NODATA)
  '8.2.0.192.in-addr.arpa': [{ TXT: 'no ptr here' }],
  // 192.0.2.9: a generic pool name, confirmed
  '9.2.0.192.in-addr.arpa': [{ PTR: 'c-192-0-2-9.hsd1.ma.isp.example' }],
  'c-192-0-2-9.hsd1.ma.isp.example': [{ A: '192.0.2.9' }],
  // 192.0.2.10: a PTR of "." only
  '10.2.0.192.in-addr.arpa': [{ PTR: '.' }],
  // 192.0.2.11: reverse lookup times out
  '11.2.0.192.in-addr.arpa': ['TIMEOUT'],
  // 2001:db8::1
  [V6_PTR]: [{ PTR: 'mail.example.com' }],
};

function manyPtrZone(count: number, matchingIndex: number): ZoneData {
  const zone: ZoneData = { '20.2.0.192.in-addr.arpa': [] };
  for (let i = 0; i < count; i++) {
    zone['20.2.0.192.in-addr.arpa']!.push({ PTR: `h${i}.example.net` });
    zone[`h${i}.example.net`] = [{ A: i === matchingIndex ? '192.0.2.20' : '198.51.100.1' }];
  }
  return zone;
}

describe('iprev (RFC 8601 §3)', () => {
  it('passes when the PTR name resolves back to the IP', async () => {
    const resolver = new MemoryResolver(ZONE);
    const r = await checkIprev({ ip: '192.0.2.1' }, { resolver });
    assert.equal(r.result, 'pass');
    assert.deepEqual(r.ptrNames, ['mail.example.com']);
    assert.equal(r.validatedName, 'mail.example.com');
    assert.equal(r.generic, false);
    assert.deepEqual(r.forward, [
      { name: 'mail.example.com', status: 'match', addresses: ['192.0.2.1', '192.0.2.100'] },
    ]);
    assert.deepEqual(resolver.log, ['1.2.0.192.in-addr.arpa/PTR', 'mail.example.com/A']);
  });

  it('passes when any of several PTR names confirms, naming that one', async () => {
    const r = await checkIprev({ ip: '192.0.2.2' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(r.result, 'pass');
    assert.deepEqual(r.ptrNames, ['old.example.net', 'new.example.net']);
    assert.equal(r.validatedName, 'new.example.net');
    assert.deepEqual(
      r.forward.map((f) => f.status),
      ['mismatch', 'match'],
    );
  });

  it('fails when the forward lookup returns other addresses', async () => {
    const r = await checkIprev({ ip: '192.0.2.3' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(r.result, 'fail');
    assert.equal(r.validatedName, undefined);
    assert.match(r.reason, /liar\.example\.org/);
  });

  it('fails when the forward name is NXDOMAIN or has no record of the client family', async () => {
    const gone = await checkIprev({ ip: '192.0.2.4' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(gone.result, 'fail');
    assert.equal(gone.forward[0]!.status, 'nxdomain');
    const v6only = await checkIprev({ ip: '192.0.2.5' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(v6only.result, 'fail');
    assert.equal(v6only.forward[0]!.status, 'nodata');
  });

  it('is a permerror when no PTR is published (NXDOMAIN or NODATA)', async () => {
    const nx = await checkIprev({ ip: '192.0.2.200' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(nx.result, 'permerror');
    assert.match(nx.reason, /NXDOMAIN/);
    assert.deepEqual(nx.ptrNames, []);
    const nodata = await checkIprev({ ip: '192.0.2.8' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(nodata.result, 'permerror');
    assert.match(nodata.reason, /NODATA/);
  });

  it('is a permerror when the PTR holds no usable name', async () => {
    const r = await checkIprev({ ip: '192.0.2.10' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(r.result, 'permerror');
    assert.deepEqual(r.forward, []);
  });

  it('is a temperror when the PTR lookup fails', async () => {
    const servfail = await checkIprev({ ip: '192.0.2.6' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(servfail.result, 'temperror');
    assert.match(servfail.reason, /servfail/);
    const timeout = await checkIprev({ ip: '192.0.2.11' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(timeout.result, 'temperror');
  });

  it('is a temperror when a forward lookup fails and no other name confirms', async () => {
    const r = await checkIprev({ ip: '192.0.2.7' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(r.result, 'temperror');
    assert.deepEqual(
      r.forward.map((f) => [f.name, f.status]),
      [
        ['slow.example.org', 'temperror'],
        ['wrong.example.org', 'mismatch'],
      ],
    );
    assert.match(r.forward[0]!.error!, /timeout/);
  });

  it('checks IPv6 clients with nibble PTR names and AAAA lookups', async () => {
    const resolver = new MemoryResolver(ZONE);
    const r = await checkIprev({ ip: '2001:db8:0:0::1' }, { resolver });
    assert.equal(r.result, 'pass');
    assert.equal(r.ip, '2001:db8::1');
    assert.equal(r.validatedName, 'mail.example.com');
    assert.deepEqual(resolver.log, [`${V6_PTR}/PTR`, 'mail.example.com/AAAA']);
  });

  it('checks at most maxNames PTR names', async () => {
    const zone = manyPtrZone(12, 11);
    const capped = await checkIprev({ ip: '192.0.2.20' }, { resolver: new MemoryResolver(zone) });
    assert.equal(capped.result, 'fail');
    assert.equal(capped.ptrNames.length, 12);
    assert.equal(capped.forward.length, 10);
    assert.match(capped.reason, /2 more PTR names not checked/);
    const wider = await checkIprev({ ip: '192.0.2.20' }, { resolver: new MemoryResolver(zone) }, { maxNames: 12 });
    assert.equal(wider.result, 'pass');
    assert.equal(wider.validatedName, 'h11.example.net');
  });

  it('flags a generic reverse name without changing the result', async () => {
    const r = await checkIprev({ ip: '192.0.2.9' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(r.result, 'pass');
    assert.equal(r.generic, true);
    assert.match(r.genericReason!, /embeds the address/);
  });

  it('answers permerror for an input that is not an IP, without querying', async () => {
    const resolver = new MemoryResolver(ZONE);
    const r = await checkIprev({ ip: 'mail.example.com' }, { resolver });
    assert.equal(r.result, 'permerror');
    assert.equal(resolver.queries, 0);
  });
});

describe('genericReverseName', () => {
  const v4 = parseIp('192.0.2.1')!;
  const generic: string[] = [
    'c-192-0-2-1.hsd1.ma.isp.example',
    '1.2.0.192.dynamic.isp.example',
    'host-1-2-0-192.isp.example',
    'ip192-000-002-001.isp.example',
    'p192000002001.dip.isp.example',
    'c0000201.cust.isp.example',
    '0-2-1.pool.isp.example',
    'adsl-line-7.isp.example',
    'dhcp123.campus.example.edu',
    'ppp-44.dialup.isp.example',
  ];
  for (const name of generic) {
    it(`flags ${name}`, () => assert.notEqual(genericReverseName(name, v4), null));
  }
  const specific = ['mail.example.com', 'mx1.mail.example.org', 'smtp-out-3.example.net', 'dsl.example', 'a.b.dsl-provider.example'];
  for (const name of specific) {
    it(`does not flag ${name}`, () => assert.equal(genericReverseName(name, v4), null));
  }

  it('recognises IPv6 interface identifiers in the name', () => {
    const v6 = parseIp('2001:db8:1:2::a1')!;
    assert.notEqual(genericReverseName('2001-db8-1-2-0-0-0-a1.cust.isp.example', v6), null);
    assert.notEqual(genericReverseName('x00000000000000a1.isp.example', v6), null);
    assert.equal(genericReverseName('mail.example.com', v6), null);
  });
});
