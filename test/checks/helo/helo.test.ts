import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkHelo, parseHelo } from '../../../src/checks/helo/index.ts';
import { checkIprev } from '../../../src/checks/iprev/index.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

const ZONE: ZoneData = {
  // mail.example.com is 192.0.2.1, with a confirmed PTR
  'mail.example.com': [{ A: '192.0.2.1' }, { AAAA: '2001:db8::1' }],
  '1.2.0.192.in-addr.arpa': [{ PTR: 'mail.example.com' }],
  // example.com has MX mx.example.com = 192.0.2.25
  'example.com': [{ MX: [10, 'mx.example.com'] }, { MX: [20, 'backup.example.net'] }],
  'mx.example.com': [{ A: '192.0.2.25' }],
  'backup.example.net': [{ A: '198.51.100.25' }],
  // 192.0.2.30's PTR is fcrdns.example.org, which confirms; the HELO name has no A of its own
  '30.2.0.192.in-addr.arpa': [{ PTR: 'fcrdns.example.org' }],
  'fcrdns.example.org': [{ A: '192.0.2.30' }],
  // other.example.org resolves elsewhere and has no MX
  'other.example.org': [{ A: '198.51.100.1' }],
  // v6only.example.org has only AAAA
  'v6only.example.org': [{ AAAA: '2001:db8::99' }],
  // broken.example.org: A times out
  'broken.example.org': [{ A: 'TIMEOUT' }, { AAAA: '2001:db8::7' }],
  // txtonly.example.org exists without addresses or MX
  'txtonly.example.org': [{ TXT: 'hello' }],
  // mxfail.example.org: no address, MX SERVFAILs
  'mxfail.example.org': [{ MX: 'TIMEOUT' }, { TXT: 'x' }],
};

describe('parseHelo: RFC 5321 syntax', () => {
  const cases: Array<[string, string, string?]> = [
    ['mail.example.com', 'fqdn'],
    ['MAIL.Example.COM', 'fqdn'],
    ['[192.0.2.1]', 'address-literal'],
    ['[IPv6:2001:db8::1]', 'address-literal'],
    ['[ipv6:2001:db8::1]', 'address-literal'],
    ['localhost', 'invalid', 'not fully qualified'],
    ['mail.example.com.', 'invalid', 'trailing dot'],
    ['mail_1.example.com', 'invalid', 'not a valid host name'],
    ['192.0.2.1', 'invalid', 'bare IP'],
    ['[192.0.2.256]', 'invalid', 'bad IPv4'],
    ['[2001:db8::1]', 'invalid', 'without the "IPv6:" tag'],
    ['[IPv6:192.0.2.1]', 'invalid', 'bad IPv6'],
    ['[x400:something]', 'invalid', 'general address literal'],
    ['[192.0.2.1', 'invalid', 'unterminated'],
    ['', 'invalid', 'empty'],
  ];
  for (const [helo, syntax, why] of cases) {
    it(`${JSON.stringify(helo)} is ${syntax}`, () => {
      const p = parseHelo(helo);
      assert.equal(p.syntax, syntax);
      if (why) assert.match(p.invalidReason!, new RegExp(why));
    });
  }
});

describe('checkHelo', () => {
  it('passes the 3-strikes test on the HELO address, without further lookups', async () => {
    const resolver = new MemoryResolver(ZONE);
    const r = await checkHelo({ ip: '192.0.2.1', helo: 'Mail.Example.com' }, { resolver });
    assert.equal(r.syntax, 'fqdn');
    assert.equal(r.name, 'mail.example.com');
    assert.equal(r.resolves, 'match');
    assert.deepEqual(r.addresses, ['192.0.2.1', '2001:db8::1']);
    assert.equal(r.mx, 'skipped');
    assert.deepEqual(r.threeStrikes, { pass: true, fcrdns: false, address: true, mx: false, auth: false, temperror: false });
    assert.deepEqual(resolver.log.sort(), ['mail.example.com/A', 'mail.example.com/AAAA']);
  });

  it('passes on an MX host that has the IP', async () => {
    const r = await checkHelo({ ip: '192.0.2.25', helo: 'example.com' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(r.resolves, 'nodata');
    assert.equal(r.mx, 'match');
    assert.deepEqual(r.mxHosts, ['mx.example.com', 'backup.example.net']);
    assert.equal(r.threeStrikes.mx, true);
    assert.equal(r.threeStrikes.pass, true);
  });

  it('passes on FCrDNS when the HELO equals the confirmed PTR name', async () => {
    const r = await checkHelo({ ip: '192.0.2.30', helo: 'fcrdns.example.org' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(r.threeStrikes.pass, true);
    assert.equal(r.threeStrikes.address, true, 'the confirmed name resolves to the IP, so (b) holds too');
    // an iprev result passed in is used without lookups, and decides alone when (b) cannot
    const earlier = new MemoryResolver({
      '31.2.0.192.in-addr.arpa': [{ PTR: 'other31.example.org' }, { PTR: 'host31.example.org' }],
      'other31.example.org': [{ A: '198.51.100.31' }],
      'host31.example.org': [{ A: '192.0.2.31' }],
    });
    const iprev = await checkIprev({ ip: '192.0.2.31' }, { resolver: earlier });
    const now = new MemoryResolver({ 'host31.example.org': ['TIMEOUT'] });
    const viaPtr = await checkHelo({ ip: '192.0.2.31', helo: 'Host31.example.org', iprev }, { resolver: now });
    assert.equal(viaPtr.resolves, 'temperror');
    assert.equal(viaPtr.threeStrikes.fcrdns, true);
    assert.equal(viaPtr.threeStrikes.pass, true);
    assert.equal(viaPtr.threeStrikes.temperror, false);
    assert.equal(now.log.some((q) => q.endsWith('/PTR') || q.endsWith('/MX')), false);
  });

  it('does not count a PTR name that is not forward-confirmed', async () => {
    const resolver = new MemoryResolver({
      '40.2.0.192.in-addr.arpa': [{ PTR: 'claimed.example.org' }],
      'claimed.example.org': [{ A: '198.51.100.40' }],
    });
    const r = await checkHelo({ ip: '192.0.2.40', helo: 'claimed.example.org' }, { resolver });
    assert.equal(r.resolves, 'mismatch');
    assert.equal(r.threeStrikes.fcrdns, false);
    assert.equal(r.threeStrikes.pass, false);
    assert.equal(r.threeStrikes.temperror, false);
  });

  it('fails the 3-strikes test when nothing ties the HELO to the IP', async () => {
    const r = await checkHelo({ ip: '192.0.2.50', helo: 'other.example.org' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(r.resolves, 'mismatch');
    assert.equal(r.mx, 'nodata');
    assert.deepEqual(r.threeStrikes, { pass: false, fcrdns: false, address: false, mx: false, auth: false, temperror: false });
  });

  it('passes on the SPF-HELO or CSA leg given as input', async () => {
    const spf = await checkHelo({ ip: '192.0.2.50', helo: 'other.example.org', spfHelo: 'pass' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(spf.threeStrikes.auth, true);
    assert.equal(spf.threeStrikes.pass, true);
    const csa = await checkHelo({ ip: '192.0.2.50', helo: 'other.example.org', csa: 'ok' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(csa.threeStrikes.pass, true);
    const spfFail = await checkHelo({ ip: '192.0.2.50', helo: 'other.example.org', spfHelo: 'fail' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(spfFail.threeStrikes.pass, false);
  });

  it('reports nxdomain, nodata and a name with addresses of the other family only', async () => {
    const resolver = new MemoryResolver(ZONE);
    const nx = await checkHelo({ ip: '192.0.2.50', helo: 'nowhere.example.org' }, { resolver });
    assert.equal(nx.resolves, 'nxdomain');
    assert.equal(nx.mx, 'nxdomain');
    const nodata = await checkHelo({ ip: '192.0.2.50', helo: 'txtonly.example.org' }, { resolver });
    assert.equal(nodata.resolves, 'nodata');
    const v6 = await checkHelo({ ip: '192.0.2.50', helo: 'v6only.example.org' }, { resolver });
    assert.equal(v6.resolves, 'mismatch');
    assert.deepEqual(v6.addresses, ['2001:db8::99']);
  });

  it('reports temperror and flags the 3-strikes verdict as undecided', async () => {
    const resolver = new MemoryResolver(ZONE);
    const r = await checkHelo({ ip: '192.0.2.50', helo: 'broken.example.org' }, { resolver });
    assert.equal(r.resolves, 'temperror');
    assert.equal(r.threeStrikes.pass, false);
    assert.equal(r.threeStrikes.temperror, true);
    const mx = await checkHelo({ ip: '192.0.2.50', helo: 'mxfail.example.org' }, { resolver });
    assert.equal(mx.mx, 'temperror');
    assert.equal(mx.threeStrikes.temperror, true);
    const spfTemp = await checkHelo({ ip: '192.0.2.50', helo: 'other.example.org', spfHelo: 'temperror' }, { resolver });
    assert.equal(spfTemp.threeStrikes.temperror, true);
  });

  it('checks IPv6 clients against AAAA records', async () => {
    const r = await checkHelo({ ip: '2001:db8::1', helo: 'mail.example.com' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(r.resolves, 'match');
    assert.equal(r.threeStrikes.pass, true);
  });

  it('checks an address literal against the client IP without DNS', async () => {
    const resolver = new MemoryResolver(ZONE);
    const same = await checkHelo({ ip: '192.0.2.1', helo: '[192.0.2.1]' }, { resolver });
    assert.equal(same.syntax, 'address-literal');
    assert.equal(same.literal, '192.0.2.1');
    assert.equal(same.literalMatches, true);
    assert.equal(same.resolves, 'skipped');
    assert.equal(same.threeStrikes.pass, false);
    const other = await checkHelo({ ip: '192.0.2.1', helo: '[192.0.2.77]' }, { resolver });
    assert.equal(other.literalMatches, false);
    const v6 = await checkHelo({ ip: '2001:db8::1', helo: '[IPv6:2001:DB8:0::1]' }, { resolver });
    assert.equal(v6.literal, '2001:db8::1');
    assert.equal(v6.literalMatches, true);
    const mapped = await checkHelo({ ip: '::ffff:192.0.2.1', helo: '[192.0.2.1]' }, { resolver });
    assert.equal(mapped.literalMatches, true);
    assert.equal(resolver.queries, 0);
  });

  it('flags a bare IP as invalid but still compares it', async () => {
    const r = await checkHelo({ ip: '192.0.2.1', helo: '192.0.2.9' }, { resolver: new MemoryResolver(ZONE) });
    assert.equal(r.syntax, 'invalid');
    assert.equal(r.bareIp, true);
    assert.equal(r.literalMatches, false);
  });

  it('detects a HELO that claims to be us, by name or address', async () => {
    const localNames = ['MX.Ours.Example', '203.0.113.5', '[IPv6:2001:db8:ffff::25]'];
    const resolver = new MemoryResolver(ZONE);
    const byName = await checkHelo({ ip: '192.0.2.50', helo: 'mx.ours.example' }, { resolver }, { localNames });
    assert.equal(byName.local, true);
    const byLiteral = await checkHelo({ ip: '192.0.2.50', helo: '[203.0.113.5]' }, { resolver }, { localNames });
    assert.equal(byLiteral.local, true);
    const byBareIp = await checkHelo({ ip: '192.0.2.50', helo: '203.0.113.5' }, { resolver }, { localNames });
    assert.equal(byBareIp.local, true);
    const byV6 = await checkHelo({ ip: '192.0.2.50', helo: '[IPv6:2001:db8:ffff::25]' }, { resolver }, { localNames });
    assert.equal(byV6.local, true);
    const notUs = await checkHelo({ ip: '192.0.2.50', helo: 'mail.example.com' }, { resolver }, { localNames });
    assert.equal(notUs.local, false);
  });

  it('does no DNS for an invalid name', async () => {
    const resolver = new MemoryResolver(ZONE);
    const r = await checkHelo({ ip: '192.0.2.1', helo: 'WIN-PC' }, { resolver });
    assert.equal(r.syntax, 'invalid');
    assert.equal(r.resolves, 'skipped');
    assert.equal(r.threeStrikes.pass, false);
    assert.equal(resolver.queries, 0);
  });

  it('examines at most maxMxHosts MX hosts', async () => {
    const zone: ZoneData = { 'many.example': [] };
    for (let i = 0; i < 4; i++) {
      zone['many.example']!.push({ MX: [i, `mx${i}.many.example`] });
      zone[`mx${i}.many.example`] = [{ A: i === 3 ? '192.0.2.60' : '198.51.100.60' }];
    }
    const capped = await checkHelo({ ip: '192.0.2.60', helo: 'many.example' }, { resolver: new MemoryResolver(zone) }, { maxMxHosts: 3 });
    assert.equal(capped.mx, 'mismatch');
    assert.equal(capped.mxHosts.length, 3);
    const all = await checkHelo({ ip: '192.0.2.60', helo: 'many.example' }, { resolver: new MemoryResolver(zone) });
    assert.equal(all.mx, 'match');
  });
});
