import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DmarcLookup,
  discoverPolicy,
  MAX_TREE_WALK_QUERIES,
  organizationalDomain,
  treeWalk,
  treeWalkNames,
} from '../../../src/checks/dmarc/index.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

function dmarc(zone: Record<string, string | string[]>): ZoneData {
  const data: ZoneData = {};
  for (const [domain, records] of Object.entries(zone)) {
    data[`_dmarc.${domain}`] = (Array.isArray(records) ? records : [records]).map((r) => ({ TXT: r }));
  }
  return data;
}

function setup(zone: ZoneData) {
  const resolver = new MemoryResolver(zone);
  return { resolver, lookup: new DmarcLookup(resolver) };
}

async function org(zone: ZoneData, domain: string): Promise<string> {
  const { lookup } = setup(zone);
  const r = await organizationalDomain(domain, lookup);
  assert.ok(r.ok);
  return r.orgDomain;
}

describe('tree walk: the names queried (RFC 9989 §4.10)', () => {
  it('drops one label at a time below eight labels', () => {
    assert.deepEqual(treeWalkNames('a.mail.example.com'), [
      'a.mail.example.com',
      'mail.example.com',
      'example.com',
      'com',
    ]);
    assert.deepEqual(treeWalkNames('com'), ['com']);
  });

  it('jumps to seven labels from eight or more: the §4.10 example', () => {
    assert.deepEqual(treeWalkNames('a.b.c.d.e.f.g.h.i.j.mail.example.com'), [
      'a.b.c.d.e.f.g.h.i.j.mail.example.com',
      'g.h.i.j.mail.example.com',
      'h.i.j.mail.example.com',
      'i.j.mail.example.com',
      'j.mail.example.com',
      'mail.example.com',
      'example.com',
      'com',
    ]);
  });

  it('never asks more than eight names', () => {
    for (let n = 1; n <= 40; n++) {
      const domain = Array.from({ length: n }, (_, i) => `l${i}`).join('.');
      const names = treeWalkNames(domain);
      assert.equal(names.length, Math.min(n, MAX_TREE_WALK_QUERIES), `${n} labels`);
      assert.equal(names[0], domain);
      assert.equal(names[names.length - 1], `l${n - 1}`);
    }
  });

  it('a walk over a long name makes at most eight queries', async () => {
    const { resolver, lookup } = setup({});
    const domain = `${'x.'.repeat(60)}example.com`;
    const walk = await treeWalk(domain, lookup);
    assert.equal(walk.found.length, 0);
    assert.equal(resolver.queries, 8);
  });
});

describe('tree walk: Organizational Domain selection (§4.10.2)', () => {
  it('picks the record with the fewest labels: first §4.10.2 example', async () => {
    const zone = dmarc({ 'mail.example.com': 'v=DMARC1; p=none', 'example.com': 'v=DMARC1; p=none' });
    assert.equal(await org(zone, 'a.mail.example.com'), 'example.com');
  });

  it('stops at psd=n: second §4.10.2 example', async () => {
    const zone = dmarc({ 'mail.example.com': 'v=DMARC1; p=none; psd=n', 'example.com': 'v=DMARC1; p=none' });
    const { resolver, lookup } = setup(zone);
    const r = await organizationalDomain('a.mail.example.com', lookup);
    assert.ok(r.ok);
    assert.equal(r.orgDomain, 'mail.example.com');
    assert.deepEqual(resolver.log, ['_dmarc.a.mail.example.com/TXT', '_dmarc.mail.example.com/TXT']);
  });

  it('takes the domain one label below a psd=y record: third §4.10.2 example', async () => {
    const zone = dmarc({ com: 'v=DMARC1; p=none; psd=y' });
    assert.equal(await org(zone, 'a.mail.example.com'), 'example.com');
  });

  it('psd=y at the start domain makes it its own Organizational Domain', async () => {
    const zone = dmarc({ 'bank.example': 'v=DMARC1; p=reject; psd=y', example: 'v=DMARC1; p=none' });
    const { resolver, lookup } = setup(zone);
    const r = await organizationalDomain('bank.example', lookup);
    assert.ok(r.ok);
    assert.equal(r.orgDomain, 'bank.example');
    assert.equal(resolver.queries, 1, 'the walk stops at psd=y');
  });

  it('without any record the start domain is the Organizational Domain', async () => {
    assert.equal(await org({}, 'a.b.example.org'), 'a.b.example.org');
  });

  it('a record with psd=u (or none) does not stop the walk', async () => {
    const zone = dmarc({ 'b.example.org': 'v=DMARC1; p=none; psd=u', 'example.org': 'v=DMARC1; p=none' });
    assert.equal(await org(zone, 'a.b.example.org'), 'example.org');
  });

  it('discards names with several DMARC records and walks on', async () => {
    const zone = dmarc({
      'example.org': ['v=DMARC1; p=none', 'v=DMARC1; p=reject'],
      'b.example.org': 'v=DMARC1; p=none',
    });
    const { lookup } = setup(zone);
    const walk = await treeWalk('a.b.example.org', lookup);
    assert.deepEqual(
      walk.found.map((f) => f.domain),
      ['b.example.org'],
    );
    assert.equal(walk.notes.length, 1);
    assert.match(walk.notes[0]!, /2 DMARC records/);
  });

  it('ignores TXT records that are not DMARC records', async () => {
    const zone: ZoneData = {
      '_dmarc.example.org': [{ TXT: 'v=spf1 -all' }, { TXT: 'v=DMARC1; p=reject' }],
    };
    assert.equal(await org(zone, 'x.example.org'), 'example.org');
  });

  it('B.4.1: signing.example.com and example.com both publish; example.com is the Organizational Domain', async () => {
    const zone = dmarc({ 'example.com': 'v=DMARC1; p=reject', 'signing.example.com': 'v=DMARC1; p=none' });
    assert.equal(await org(zone, 'example.com'), 'example.com');
    assert.equal(await org(zone, 'signing.example.com'), 'example.com');
  });

  it('B.4.2: a deep Author Domain skips to seven labels and still finds example.com', async () => {
    const zone = dmarc({ 'example.com': 'v=DMARC1; p=reject', 'signing.example.com': 'v=DMARC1; p=none' });
    const { resolver, lookup } = setup(zone);
    const r = await organizationalDomain('a.b.c.d.e.f.g.h.i.j.k.example.com', lookup);
    assert.ok(r.ok);
    assert.equal(r.orgDomain, 'example.com');
    assert.deepEqual(resolver.log, [
      '_dmarc.a.b.c.d.e.f.g.h.i.j.k.example.com/TXT',
      '_dmarc.g.h.i.j.k.example.com/TXT',
      '_dmarc.h.i.j.k.example.com/TXT',
      '_dmarc.i.j.k.example.com/TXT',
      '_dmarc.j.k.example.com/TXT',
      '_dmarc.k.example.com/TXT',
      '_dmarc.example.com/TXT',
      '_dmarc.com/TXT',
    ]);
  });

  it('B.4.3: a PSD record with psd=y', async () => {
    const zone = dmarc({
      'bank.example': 'v=DMARC1; p=reject; psd=y',
      'giant.bank.example': 'v=DMARC1; p=quarantine',
    });
    assert.equal(await org(zone, 'giant.bank.example'), 'giant.bank.example');
    assert.equal(await org(zone, 'mail.giant.bank.example'), 'giant.bank.example');
    assert.equal(await org(zone, 'mail.mega.bank.example'), 'mega.bank.example');
  });

  it('§5.1.8: a psd=n record at a skipped name is never found', async () => {
    const zone = dmarc({
      'example.com': 'v=DMARC1; p=none',
      'b.c.d.e.f.g.example.com': 'v=DMARC1; p=reject; psd=n',
    });
    const { resolver, lookup } = setup(zone);
    const r = await organizationalDomain('mail.a.b.c.d.e.f.g.example.com', lookup);
    assert.ok(r.ok);
    assert.equal(r.orgDomain, 'example.com');
    assert.ok(!resolver.log.includes('_dmarc.b.c.d.e.f.g.example.com/TXT'));
    assert.equal(resolver.queries, 8);
  });
});

describe('tree walk: DNS trouble and budgets', () => {
  it('a failed query ends the walk with an error', async () => {
    const zone: ZoneData = { '_dmarc.example.com': ['SERVFAIL'] };
    const { lookup } = setup(zone);
    const r = await organizationalDomain('a.example.com', lookup);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.error.status, 'servfail');
      assert.equal(r.error.domain, 'example.com');
    }
  });

  it('NXDOMAIN and NODATA mean "no record here"', async () => {
    const zone: ZoneData = {
      '_dmarc.a.example.com': [{ A: '192.0.2.1' }],
      ...dmarc({ 'example.com': 'v=DMARC1; p=none' }),
    };
    assert.equal(await org(zone, 'b.a.example.com'), 'example.com');
  });

  it('asks each name once per evaluation', async () => {
    const zone = dmarc({ 'example.com': 'v=DMARC1; p=none' });
    const { resolver, lookup } = setup(zone);
    await organizationalDomain('a.example.com', lookup);
    await organizationalDomain('b.example.com', lookup);
    await organizationalDomain('example.com', lookup);
    assert.deepEqual(resolver.log, [
      '_dmarc.a.example.com/TXT',
      '_dmarc.example.com/TXT',
      '_dmarc.com/TXT',
      '_dmarc.b.example.com/TXT',
    ]);
    assert.equal(lookup.queries, 4);
  });

  it('a budget limits new queries, not cached ones', async () => {
    const zone = dmarc({ 'example.com': 'v=DMARC1; p=none' });
    const { lookup } = setup(zone);
    await organizationalDomain('example.com', lookup);
    const budget = { left: 1 };
    const r = await organizationalDomain('x.y.example.com', lookup, budget);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.error.status, 'limit');
    assert.equal(budget.left, 0);
    const again = await organizationalDomain('y.example.com', lookup, { left: 1 });
    assert.ok(again.ok);
  });
});

describe('policy discovery (§4.10.1)', () => {
  it("takes the Author Domain's own record without walking", async () => {
    const zone = dmarc({ 'mail.example.com': 'v=DMARC1; p=quarantine', 'example.com': 'v=DMARC1; p=reject' });
    const { resolver, lookup } = setup(zone);
    const d = await discoverPolicy('mail.example.com', lookup);
    assert.equal(d.status, 'found');
    if (d.status === 'found') {
      assert.equal(d.policyDomain, 'mail.example.com');
      assert.equal(d.record.p, 'quarantine');
      assert.equal(d.orgDomain, null, 'not needed yet');
    }
    assert.equal(resolver.queries, 1);
  });

  it('otherwise takes the Organizational Domain record, not a nearer one', async () => {
    const zone = dmarc({ 'mail.example.com': 'v=DMARC1; p=quarantine', 'example.com': 'v=DMARC1; p=reject' });
    const { lookup } = setup(zone);
    const d = await discoverPolicy('a.mail.example.com', lookup);
    assert.equal(d.status, 'found');
    if (d.status === 'found') {
      assert.equal(d.policyDomain, 'example.com');
      assert.equal(d.orgDomain, 'example.com');
    }
  });

  it('falls back to the PSD record when the Organizational Domain publishes none', async () => {
    const zone = dmarc({ 'bank.example': 'v=DMARC1; p=reject; np=reject; psd=y' });
    const { lookup } = setup(zone);
    const d = await discoverPolicy('www.giant.bank.example', lookup);
    assert.equal(d.status, 'found');
    if (d.status === 'found') {
      assert.equal(d.policyDomain, 'bank.example');
      assert.equal(d.orgDomain, 'giant.bank.example');
    }
  });

  it('PSD policy is not used when the Organizational Domain has a record', async () => {
    const zone = dmarc({
      'bank.example': 'v=DMARC1; p=reject; psd=y',
      'giant.bank.example': 'v=DMARC1; p=none',
    });
    const { lookup } = setup(zone);
    const d = await discoverPolicy('www.giant.bank.example', lookup);
    assert.equal(d.status, 'found');
    if (d.status === 'found') assert.equal(d.policyDomain, 'giant.bank.example');
  });

  it('finds none when no name has a record, and temperror when a query fails', async () => {
    const none = await discoverPolicy('a.example.net', setup({}).lookup);
    assert.equal(none.status, 'none');
    const zone: ZoneData = { '_dmarc.net': ['TIMEOUT'] };
    const failed = await discoverPolicy('a.example.net', setup(zone).lookup);
    assert.equal(failed.status, 'temperror');
    if (failed.status === 'temperror') assert.match(failed.message, /_dmarc\.net: timeout/);
  });

  it("a failure at the Author Domain's own name is a temperror too", async () => {
    const zone: ZoneData = {
      '_dmarc.example.net': ['SERVFAIL'],
      ...dmarc({ net: 'v=DMARC1; p=none; psd=y' }),
    };
    const d = await discoverPolicy('example.net', setup(zone).lookup);
    assert.equal(d.status, 'temperror');
  });
});
