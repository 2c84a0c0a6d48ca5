import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkLocalLists, LocalListError, LocalLists } from '../../../src/checks/locallist/index.ts';

describe('LocalLists: addresses', () => {
  const lists = new LocalLists({
    allow: ['192.0.2.10', '10.1.2.0/24', '2001:db8:1::/48', '# office', ''],
    block: ['192.0.2.0/24', '10.0.0.0/8', '2001:db8::/32  # whole doc prefix', '::ffff:203.0.113.0/120'],
  });

  it('matches IPv4 CIDRs and single addresses, most specific first', () => {
    assert.deepEqual(lists.matchIp('192.0.2.10'), { list: 'allow', entry: '192.0.2.10' });
    assert.deepEqual(lists.matchIp('192.0.2.11'), { list: 'block', entry: '192.0.2.0/24' });
    assert.deepEqual(lists.matchIp('10.1.2.3'), { list: 'allow', entry: '10.1.2.0/24' });
    assert.deepEqual(lists.matchIp('10.1.3.3'), { list: 'block', entry: '10.0.0.0/8' });
    assert.equal(lists.matchIp('198.51.100.1'), null);
  });

  it('matches IPv6 CIDRs, and IPv4-mapped forms as IPv4', () => {
    assert.deepEqual(lists.matchIp('2001:db8:1::25'), { list: 'allow', entry: '2001:db8:1::/48' });
    assert.deepEqual(lists.matchIp('2001:DB8:2::25'), { list: 'block', entry: '2001:db8::/32' });
    assert.equal(lists.matchIp('2001:db9::1'), null);
    assert.deepEqual(lists.matchIp('::ffff:192.0.2.10'), { list: 'allow', entry: '192.0.2.10' });
    assert.deepEqual(lists.matchIp('203.0.113.9'), { list: 'block', entry: '::ffff:203.0.113.0/120' });
  });

  it('does not match an unparsable address', () => {
    assert.equal(lists.matchIp('not-an-ip'), null);
  });

  it('handles a large list', () => {
    const block: string[] = [];
    for (let i = 0; i < 20_000; i++) block.push(`10.${(i >> 8) & 255}.${i & 255}.0/24`);
    for (let i = 0; i < 5_000; i++) block.push(`2001:db8:${i.toString(16)}::/48`);
    const big = new LocalLists({ block, allow: ['10.0.5.7'] });
    assert.deepEqual(big.size, { ips: 25_001, domains: 0 });
    assert.deepEqual(big.matchIp('10.78.31.200'), { list: 'block', entry: '10.78.31.0/24' });
    assert.deepEqual(big.matchIp('10.0.5.7'), { list: 'allow', entry: '10.0.5.7' });
    assert.deepEqual(big.matchIp('2001:db8:fa0:1::1'), { list: 'block', entry: '2001:db8:fa0::/48' });
    assert.equal(big.matchIp('11.0.0.1'), null);
    assert.equal(big.matchIp('2001:db8:1389::1'), null);
  });
});

describe('LocalLists: domains', () => {
  const lists = new LocalLists({
    allow: ['partner.example', '.trusted.example', 'ok.bad.example'],
    block: ['.bad.example', 'Spammer.Example.', '*.evil.example', 'host.trusted.example', '.tld'],
  });

  it('matches exact entries only for that name', () => {
    assert.deepEqual(lists.matchDomain('partner.example'), { list: 'allow', entry: 'partner.example' });
    assert.equal(lists.matchDomain('mail.partner.example'), null);
    assert.deepEqual(lists.matchDomain('SPAMMER.example.'), { list: 'block', entry: 'Spammer.Example.' });
  });

  it('matches .domain entries for subdomains, not the domain itself', () => {
    assert.deepEqual(lists.matchDomain('a.b.bad.example'), { list: 'block', entry: '.bad.example' });
    assert.equal(lists.matchDomain('bad.example'), null);
    assert.deepEqual(lists.matchDomain('x.evil.example'), { list: 'block', entry: '*.evil.example' });
    assert.deepEqual(lists.matchDomain('anything.tld'), { list: 'block', entry: '.tld' });
  });

  it('prefers the most specific entry', () => {
    assert.deepEqual(lists.matchDomain('ok.bad.example'), { list: 'allow', entry: 'ok.bad.example' });
    assert.deepEqual(lists.matchDomain('host.trusted.example'), { list: 'block', entry: 'host.trusted.example' });
    assert.deepEqual(lists.matchDomain('other.trusted.example'), { list: 'allow', entry: '.trusted.example' });
  });

  it('never matches address literals', () => {
    assert.equal(lists.matchDomain('[192.0.2.1]'), null);
  });
});

describe('checkLocalLists', () => {
  const lists = new LocalLists({ allow: ['192.0.2.0/24', 'friend.example'], block: ['.bad.example'] });

  it('reports the IP verdict and every matching identity domain with its entry', () => {
    const r = checkLocalLists(
      {
        ip: '192.0.2.7',
        domains: { helo: 'mx.bad.example', mailfrom: '<Alice@Friend.Example>', id: undefined, other: 'none.example' },
      },
      lists,
    );
    assert.deepEqual(r, {
      ip: 'allow',
      ipEntry: '192.0.2.0/24',
      domains: [
        { identity: 'helo', domain: 'mx.bad.example', list: 'block', entry: '.bad.example' },
        { identity: 'mailfrom', domain: 'friend.example', list: 'allow', entry: 'friend.example' },
      ],
    });
  });

  it('reports none when nothing matches', () => {
    assert.deepEqual(checkLocalLists({ ip: '198.51.100.1', domains: { mailfrom: '<>' } }, lists), {
      ip: 'none',
      domains: [],
    });
  });
});

describe('LocalLists: configuration errors', () => {
  const cases: Array<[string, { allow?: string[]; block?: string[] }, RegExp]> = [
    ['a bad address', { block: ['192.0.2.300'] }, /block list entry "192\.0\.2\.300": not an IP address, CIDR/],
    ['a bad prefix length', { allow: ['192.0.2.0/33'] }, /allow list entry "192\.0\.2\.0\/33": not a valid IP address or CIDR/],
    ['host bits set', { block: ['192.0.2.1/24'] }, /"192\.0\.2\.1\/24": the address has bits set beyond the prefix/],
    ['IPv6 host bits set', { block: ['2001:db8::1/32'] }, /bits set beyond the prefix/],
    ['a bad domain', { block: ['bad_name.example'] }, /"bad_name\.example": not an IP address/],
    ['a single-label exact domain', { allow: ['localhost'] }, /"localhost"/],
    ['a conflict between lists', { allow: ['192.0.2.0/24'], block: ['192.0.2.0/24'] }, /block list entry.*also on the allow list/],
    ['a domain conflict', { allow: ['.x.example'], block: ['*.X.example'] }, /also on the allow list \(as "\.x\.example"\)/],
  ];
  for (const [what, config, message] of cases) {
    it(`throws naming the entry for ${what}`, () => {
      assert.throws(
        () => new LocalLists(config),
        (e: unknown) => e instanceof LocalListError && message.test(e.message),
      );
    });
  }

  it('accepts the same entry twice in one list', () => {
    const lists = new LocalLists({ block: ['192.0.2.0/24', '192.0.2.0/24', 'a.example', 'A.example'] });
    assert.deepEqual(lists.size, { ips: 1, domains: 1 });
  });
});
