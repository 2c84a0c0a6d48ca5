import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkDnsbl, compileZones, type DnsblZoneConfig, parseDnsblSite } from '../../../src/checks/dnsbl/index.ts';
import type { DnsResult, RecordType, Resolver } from '../../../src/dns/types.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

const V6_NIBBLES = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2';

const ZONES: ZoneData = {
  // 192.0.2.1: on zen (SBL + XBL) with a TXT reason, on bl2, and on the allow list wl
  '1.2.0.192.zen.example': [{ A: '127.0.0.2' }, { A: '127.0.0.4' }, { TXT: 'https://zen.example/q/192.0.2.1' }],
  '1.2.0.192.bl2.example': [{ A: '127.0.0.2' }],
  '1.2.0.192.wl.example': [{ A: '127.0.10.3' }],
  // 192.0.2.2: zen refuses the query (public resolver) and bl2 answers outside 127/8
  '2.2.0.192.zen.example': [{ A: '127.255.255.254' }],
  '2.2.0.192.bl2.example': [{ A: '198.51.100.7' }],
  // 192.0.2.3: zen times out, bl2 SERVFAILs
  '3.2.0.192.zen.example': ['TIMEOUT'],
  '3.2.0.192.bl2.example': ['SERVFAIL'],
  // 192.0.2.4: the DNSWL "excessive queries" code
  '4.2.0.192.wl.example': [{ A: '127.0.0.255' }],
  // 2001:db8::1 on zen
  [`${V6_NIBBLES}.zen.example`]: [{ A: '127.0.0.3' }],
  // domain lists
  'spammer.example.dbl.example': [{ A: '127.0.1.2' }, { TXT: 'spam domain' }],
  'bad.example.dbl.example': [{ A: '127.0.1.4' }],
};

const zen: DnsblZoneConfig = { zone: 'zen.example', weight: 3, txt: true };
const bl2: DnsblZoneConfig = { zone: 'bl2.example' };
const wl: DnsblZoneConfig = { zone: 'wl.example', filter: '127.0.[0..255].[1..3]', weight: -2 };

describe('checkDnsbl: IP lists', () => {
  it('sums the weights of listing zones and separates allow lists', async () => {
    const resolver = new MemoryResolver(ZONES);
    const r = await checkDnsbl({ ip: '192.0.2.1' }, { resolver }, { zones: [zen, bl2, wl] });
    assert.equal(r.score, 3 + 1 - 2);
    assert.deepEqual(r.listed, ['zen.example', 'bl2.example']);
    assert.deepEqual(r.allowListed, ['wl.example']);
    assert.deepEqual(r.errors, []);
    const z = r.results[0]!;
    assert.equal(z.status, 'listed');
    assert.equal(z.query, '1.2.0.192.zen.example');
    assert.deepEqual(z.codes, ['127.0.0.2', '127.0.0.4']);
    assert.equal(z.text, 'https://zen.example/q/192.0.2.1');
    assert.equal(z.weight, 3);
    assert.equal(r.results[1]!.text, undefined, 'no TXT unless the zone asks for it');
  });

  it('reports not-listed on NXDOMAIN with a zero score', async () => {
    const resolver = new MemoryResolver(ZONES);
    const r = await checkDnsbl({ ip: '192.0.2.99' }, { resolver }, { zones: [zen, bl2] });
    assert.equal(r.score, 0);
    assert.deepEqual(r.listed, []);
    assert.deepEqual(
      r.results.map((x) => [x.zone, x.status, x.codes.length]),
      [
        ['zen.example', 'not-listed', 0],
        ['bl2.example', 'not-listed', 0],
      ],
    );
  });

  it('fetches TXT only for listings', async () => {
    const resolver = new MemoryResolver(ZONES);
    await checkDnsbl({ ip: '192.0.2.99' }, { resolver }, { zones: [zen] });
    assert.deepEqual(resolver.log, ['99.2.0.192.zen.example/A']);
    const resolver2 = new MemoryResolver(ZONES);
    await checkDnsbl({ ip: '192.0.2.1' }, { resolver: resolver2 }, { zones: [zen] });
    assert.deepEqual(resolver2.log, ['1.2.0.192.zen.example/A', '1.2.0.192.zen.example/TXT']);
  });

  it('treats 127.255.255.254 and answers outside 127/8 as errors, never listings', async () => {
    const resolver = new MemoryResolver(ZONES);
    const r = await checkDnsbl({ ip: '192.0.2.2' }, { resolver }, { zones: [zen, bl2] });
    assert.equal(r.score, 0);
    assert.deepEqual(r.listed, []);
    assert.deepEqual(r.errors, ['zen.example', 'bl2.example']);
    const [z, b] = r.results;
    assert.equal(z!.status, 'error');
    assert.deepEqual(z!.codes, ['127.255.255.254']);
    assert.match(z!.error!, /public or open resolver/);
    assert.equal(z!.text, undefined);
    assert.equal(b!.status, 'error');
    assert.match(b!.error!, /outside 127\.0\.0\.0\/8/);
  });

  it('names the other Spamhaus error codes', async () => {
    const resolver = new MemoryResolver({
      '5.2.0.192.a.example': [{ A: '127.255.255.252' }],
      '5.2.0.192.b.example': [{ A: '127.255.255.255' }],
      '5.2.0.192.c.example': [{ A: '127.255.255.1' }],
    });
    const zones = ['a.example', 'b.example', 'c.example'].map((zone) => ({ zone }));
    const r = await checkDnsbl({ ip: '192.0.2.5' }, { resolver }, { zones });
    assert.deepEqual(
      r.results.map((x) => x.status),
      ['error', 'error', 'error'],
    );
    assert.match(r.results[0]!.error!, /typing error/);
    assert.match(r.results[1]!.error!, /excessive number of queries/);
    assert.match(r.results[2]!.error!, /127\.255\.255\.0\/24/);
  });

  it('maps DNS failures to error', async () => {
    const resolver = new MemoryResolver(ZONES);
    const r = await checkDnsbl({ ip: '192.0.2.3' }, { resolver }, { zones: [zen, bl2] });
    assert.deepEqual(
      r.results.map((x) => [x.status, x.error?.split(':')[0]]),
      [
        ['error', 'timeout'],
        ['error', 'servfail'],
      ],
    );
    assert.equal(r.score, 0);
  });

  it('does not count an answer that misses the filter, but keeps its codes', async () => {
    const resolver = new MemoryResolver(ZONES);
    const zones = [{ zone: 'zen.example', filter: '127.0.0.[10..11]', weight: 5 }];
    const r = await checkDnsbl({ ip: '192.0.2.1' }, { resolver }, { zones });
    assert.equal(r.score, 0);
    assert.equal(r.results[0]!.status, 'not-listed');
    assert.deepEqual(r.results[0]!.codes, ['127.0.0.2', '127.0.0.4']);
  });

  it('scores a zone listed with several entries once per matching entry, querying it once', async () => {
    const resolver = new MemoryResolver(ZONES);
    const zones = [
      { zone: 'zen.example', filter: '127.0.0.2;127.0.0.3', weight: 3 },
      { zone: 'zen.example', filter: '127.0.0.[4..7]', weight: 2 },
      { zone: 'zen.example', filter: '127.0.0.[10;11]', weight: 1 },
    ];
    const r = await checkDnsbl({ ip: '192.0.2.1' }, { resolver }, { zones });
    assert.equal(r.score, 5);
    assert.deepEqual(
      r.results.map((x) => x.status),
      ['listed', 'listed', 'not-listed'],
    );
    assert.deepEqual(r.listed, ['zen.example']);
    assert.deepEqual(resolver.log, ['1.2.0.192.zen.example/A']);
  });

  it('counts identical entries separately', async () => {
    const resolver = new MemoryResolver(ZONES);
    const r = await checkDnsbl({ ip: '192.0.2.1' }, { resolver }, { zones: [bl2, bl2] });
    assert.equal(r.score, 2);
  });

  it('honours the zone error filter (DNSWL 127.0.0.255)', async () => {
    const resolver = new MemoryResolver(ZONES);
    const zones = [{ zone: 'wl.example', weight: -1, errorFilter: '127.0.0.255' }];
    const r = await checkDnsbl({ ip: '192.0.2.4' }, { resolver }, { zones });
    assert.equal(r.results[0]!.status, 'error');
    assert.deepEqual(r.allowListed, []);
    assert.equal(r.score, 0);
  });

  it('looks IPv6 clients up by reversed nibbles', async () => {
    const resolver = new MemoryResolver(ZONES);
    const r = await checkDnsbl({ ip: '2001:DB8::1' }, { resolver }, { zones: [zen] });
    assert.equal(r.results[0]!.query, `${V6_NIBBLES}.zen.example`);
    assert.equal(r.results[0]!.subject, '2001:db8::1');
    assert.equal(r.results[0]!.status, 'listed');
    assert.equal(r.score, 3);
  });

  it('folds IPv4-mapped IPv6 clients to IPv4 lookups', async () => {
    const resolver = new MemoryResolver(ZONES);
    const r = await checkDnsbl({ ip: '::ffff:192.0.2.1' }, { resolver }, { zones: [bl2] });
    assert.equal(r.results[0]!.query, '1.2.0.192.bl2.example');
    assert.equal(r.results[0]!.status, 'listed');
  });

  it('reports an unparsable IP as an error without querying', async () => {
    const resolver = new MemoryResolver(ZONES);
    const r = await checkDnsbl({ ip: 'not-an-ip' }, { resolver }, { zones: [zen] });
    assert.equal(r.results[0]!.status, 'error');
    assert.match(r.results[0]!.error!, /not an IP address/);
    assert.equal(resolver.queries, 0);
  });

  it('queries all zones in parallel', async () => {
    const pending: Array<() => void> = [];
    const resolver: Resolver = {
      query<T extends RecordType>(): Promise<DnsResult<T>> {
        return new Promise((resolve) => pending.push(() => resolve({ status: 'nxdomain', ttl: 60 })));
      },
    };
    const zones = ['a.example', 'b.example', 'c.example', 'd.example'].map((zone) => ({ zone }));
    const run = checkDnsbl({ ip: '192.0.2.1' }, { resolver }, { zones });
    await Promise.resolve();
    assert.equal(pending.length, 4, 'every zone is asked before any answer arrives');
    for (const p of pending) p();
    const r = await run;
    assert.equal(r.results.length, 4);
  });

  it('skips zones the monitor has disabled', async () => {
    const resolver = new MemoryResolver(ZONES);
    const monitor = {
      isEnabled: (z: string) => z !== 'zen.example',
      disabledReason: () => 'self-test failed: 127.0.0.2 is not listed',
    };
    const r = await checkDnsbl({ ip: '192.0.2.1' }, { resolver }, { zones: [zen, bl2], monitor });
    assert.equal(r.results[0]!.status, 'disabled');
    assert.match(r.results[0]!.error!, /self-test failed/);
    assert.deepEqual(r.disabled, ['zen.example']);
    assert.equal(r.score, 1);
    assert.deepEqual(resolver.log, ['1.2.0.192.bl2.example/A']);
  });
});

describe('checkDnsbl: domain lists (RHSBL / DBL)', () => {
  const dbl: DnsblZoneConfig = { zone: 'dbl.example', type: 'domain', weight: 4, txt: true };

  it('looks up each distinct identity domain once and scores the entry once', async () => {
    const resolver = new MemoryResolver(ZONES);
    const r = await checkDnsbl(
      {
        ip: '192.0.2.99',
        domains: { helo: 'Spammer.Example', mailfrom: 'bob@spammer.example', id: 'bad.example' },
      },
      { resolver },
      { zones: [dbl, bl2] },
    );
    assert.equal(r.score, 4);
    assert.deepEqual(r.listed, ['dbl.example']);
    const domainResults = r.results.filter((x) => x.type === 'domain');
    assert.deepEqual(
      domainResults.map((x) => [x.subject, x.identities, x.status, x.codes[0]]),
      [
        ['spammer.example', ['helo', 'mailfrom'], 'listed', '127.0.1.2'],
        ['bad.example', ['id'], 'listed', '127.0.1.4'],
      ],
    );
    assert.equal(domainResults[0]!.text, 'spam domain');
    assert.equal(resolver.log.filter((q) => q === 'spammer.example.dbl.example/A').length, 1);
  });

  it('does not look up address literals, bare IPs or invalid names', async () => {
    const resolver = new MemoryResolver(ZONES);
    const r = await checkDnsbl(
      { domains: { helo: '[192.0.2.1]', id: '192.0.2.1', mailfrom: '', other: 'no_underscores.example' } },
      { resolver },
      { zones: [dbl] },
    );
    assert.deepEqual(r.results, []);
    assert.equal(resolver.queries, 0);
  });

  it('reports not-listed domains', async () => {
    const resolver = new MemoryResolver(ZONES);
    const r = await checkDnsbl({ domains: { helo: 'good.example' } }, { resolver }, { zones: [dbl] });
    assert.equal(r.results[0]!.status, 'not-listed');
    assert.equal(r.results[0]!.query, 'good.example.dbl.example');
    assert.equal(r.score, 0);
  });
});

describe('DNSBL configuration', () => {
  it('parses postscreen_dnsbl_sites entries', () => {
    assert.deepEqual(parseDnsblSite('zen.spamhaus.org*3'), { zone: 'zen.spamhaus.org', type: 'ip', weight: 3 });
    assert.deepEqual(parseDnsblSite('list.dnswl.org=127.0.[0..255].[1..3]*-4'), {
      zone: 'list.dnswl.org',
      type: 'ip',
      filter: '127.0.[0..255].[1..3]',
      weight: -4,
    });
    assert.deepEqual(parseDnsblSite('dbl.example', 'domain'), { zone: 'dbl.example', type: 'domain' });
    assert.throws(() => parseDnsblSite('zen.example=127.0.0*2'), /zen\.example/);
    assert.throws(() => parseDnsblSite('zen example'), /invalid DNSBL site/);
  });

  it('applies defaults and rejects bad entries naming them', () => {
    const [z] = compileZones([{ zone: 'Zen.Example.' }]);
    assert.equal(z!.zone, 'zen.example');
    assert.equal(z!.weight, 1);
    assert.equal(z!.type, 'ip');
    assert.equal(z!.selfTest, 4);
    assert.throws(() => compileZones([{ zone: 'zen.example', filter: '127.0.0.[9..2]' }]), /zen\.example.*reversed/);
    assert.throws(() => compileZones([{ zone: 'not a zone' }]), /"not a zone" is not a valid zone name/);
    assert.throws(() => compileZones([{ zone: 'x.example', weight: Number.NaN }]), /weight/);
  });

  it('throws for an invalid zone config rather than answering', async () => {
    const resolver = new MemoryResolver({});
    await assert.rejects(
      checkDnsbl({ ip: '192.0.2.1' }, { resolver }, { zones: [{ zone: 'z.example', filter: 'x' }] }),
      /z\.example/,
    );
  });
});
