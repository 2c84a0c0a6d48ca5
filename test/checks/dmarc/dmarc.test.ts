import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkDmarc,
  type DmarcInput,
  type DmarcOptions,
  type DmarcResult,
  dmarcMethodResults,
} from '../../../src/checks/dmarc/index.ts';
import { renderAuthenticationResults } from '../../../src/headers/authentication-results.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

type Spf = NonNullable<DmarcInput['spf']>;

function spf(domain: string, result = 'pass', identity = 'mailfrom'): Spf {
  return { domain, result, identity };
}

function dkim(domain: string, result = 'pass') {
  return { domain, result };
}

/** A zone from { domain: dmarc record(s) } plus names that exist (A records). */
function zone(records: Record<string, string | string[]>, existing: string[] = []): ZoneData {
  const data: ZoneData = {};
  for (const [domain, txt] of Object.entries(records)) {
    data[`_dmarc.${domain}`] = (Array.isArray(txt) ? txt : [txt]).map((t) => ({ TXT: t }));
  }
  for (const name of existing) data[name] = [{ A: '192.0.2.1' }];
  return data;
}

async function run(
  data: ZoneData,
  input: Partial<DmarcInput> & { from: readonly string[] },
  options: DmarcOptions = {},
  random?: () => number,
): Promise<{ r: DmarcResult; resolver: MemoryResolver }> {
  const resolver = new MemoryResolver(data);
  const r = await checkDmarc(input, { resolver, ...(random ? { random } : {}) }, options);
  return { r, resolver };
}

function unfolded(r: DmarcResult, opts?: { policyProperty?: boolean }): string {
  return renderAuthenticationResults('mx.example.org', dmarcMethodResults(r, opts)).replace(/\r\n\t/g, ' ');
}

const EXAMPLE = zone({ 'example.com': 'v=DMARC1; p=reject' }, [
  'example.com',
  'news.example.com',
  'foo.example.com',
]);

describe('DMARC: results', () => {
  it('pass through an aligned SPF result, rendered as in the brief', async () => {
    const { r } = await run(EXAMPLE, { from: ['a@example.com'], spf: spf('example.com') });
    assert.equal(r.result, 'pass');
    assert.equal(r.policy, 'reject');
    assert.equal(r.appliedPolicy, 'p');
    assert.equal(r.disposition, 'none');
    assert.equal(r.alignment.spf, 'pass');
    assert.equal(r.alignment.dkim, 'fail');
    assert.equal(r.fromDomain, 'example.com');
    assert.equal(r.policyDomain, 'example.com');
    assert.equal(r.orgDomain, 'example.com');
    assert.equal(unfolded(r), 'mx.example.org; dmarc=pass (p=reject dis=none) header.from=example.com');
  });

  it('fail under p=reject asks for rejection (the policy turns that into 550 5.7.1)', async () => {
    const { r } = await run(EXAMPLE, {
      from: ['a@example.com'],
      spf: spf('example.net'),
      dkim: [dkim('example.net')],
    });
    assert.equal(r.result, 'fail');
    assert.equal(r.policy, 'reject');
    assert.equal(r.disposition, 'reject');
    assert.match(r.reason, /no authenticated identifier aligns with example\.com/);
    assert.equal(
      unfolded(r, { policyProperty: true }),
      'mx.example.org; dmarc=fail (p=reject dis=reject) header.from=example.com policy.dmarc=reject',
    );
  });

  it('none when no record exists anywhere on the walk', async () => {
    const { r, resolver } = await run({}, { from: ['a@mail.example.org'], spf: spf('mail.example.org') });
    assert.equal(r.result, 'none');
    assert.equal(r.policy, 'none');
    assert.equal(r.appliedPolicy, null);
    assert.equal(r.disposition, 'none');
    assert.equal(r.policyDomain, null);
    assert.deepEqual(resolver.log, [
      '_dmarc.mail.example.org/TXT',
      '_dmarc.example.org/TXT',
      '_dmarc.org/TXT',
    ]);
    assert.equal(unfolded(r), 'mx.example.org; dmarc=none header.from=mail.example.org');
  });

  it('temperror when a policy lookup fails', async () => {
    const { r } = await run(
      { '_dmarc.example.com': ['TIMEOUT'] },
      { from: ['a@example.com'], spf: spf('example.com') },
    );
    assert.equal(r.result, 'temperror');
    assert.equal(r.disposition, 'none');
    assert.match(r.reason, /_dmarc\.example\.com: timeout/);
    assert.match(
      unfolded(r),
      /^mx\.example\.org; dmarc=temperror \(.*timeout.*\) header\.from=example\.com$/,
    );
  });

  it('permerror for a record without a valid p= and without a valid rua=', async () => {
    const { r } = await run(zone({ 'example.com': 'v=DMARC1; p=bogus' }), {
      from: ['a@example.com'],
      spf: spf('example.com'),
    });
    assert.equal(r.result, 'permerror');
    assert.equal(r.policyDomain, 'example.com');
    assert.equal(r.disposition, 'none');
  });

  it('a record without p= but with a valid rua= acts as p=none', async () => {
    const { r } = await run(zone({ 'example.com': 'v=DMARC1; rua=mailto:d@example.com' }), {
      from: ['a@example.com'],
    });
    assert.equal(r.result, 'fail');
    assert.equal(r.policy, 'none');
    assert.equal(r.disposition, 'none');
    assert.deepEqual(r.record?.rua, ['mailto:d@example.com']);
  });

  it('several DMARC records at the Author Domain are discarded, the walk goes on', async () => {
    const data = zone(
      {
        'news.example.com': ['v=DMARC1; p=none', 'v=DMARC1; p=none'],
        'example.com': 'v=DMARC1; p=quarantine',
      },
      ['news.example.com'],
    );
    const { r } = await run(data, { from: ['a@news.example.com'] });
    assert.equal(r.result, 'fail');
    assert.equal(r.policyDomain, 'example.com');
    assert.equal(r.policy, 'quarantine');
    assert.equal(r.appliedPolicy, 'p');
  });

  it('several DMARC records and nothing above them is none', async () => {
    const data = zone({ 'example.org': ['v=DMARC1; p=reject', 'v=DMARC1; p=reject'] });
    const { r } = await run(data, { from: ['a@example.org'] });
    assert.equal(r.result, 'none');
    assert.match(r.reason, /2 DMARC records at _dmarc\.example\.org, all discarded/);
  });

  it('reports the query count', async () => {
    const { r, resolver } = await run(EXAMPLE, { from: ['a@example.com'], spf: spf('example.com') });
    assert.equal(r.queries, resolver.queries);
    assert.equal(r.queries, 1, 'identical domains need no walk (§4.10.2 note)');
  });
});

describe('DMARC: alignment matrix (RFC 9989 §4.4, Table 1)', () => {
  // author domains × authenticated identifiers under _dmarc.example.com (Organizational Domain)
  const identifiers = [
    'example.com',
    'news.example.com',
    'foo.example.com',
    'a.b.news.example.com',
    'example.net',
    'com',
  ];
  const authors = ['example.com', 'news.example.com'];
  for (const author of authors) {
    for (const id of identifiers) {
      for (const mode of ['r', 's'] as const) {
        const strict = id === author;
        const relaxed = id === 'example.com' || id.endsWith('.example.com');
        const aligned = mode === 's' ? strict : relaxed;
        for (const method of ['spf', 'dkim'] as const) {
          it(`${method} ${mode === 's' ? 'strict' : 'relaxed'}: ${id} vs From ${author} → ${aligned ? 'aligned' : 'not aligned'}`, async () => {
            const tag = method === 'spf' ? 'aspf' : 'adkim';
            const data = zone({ 'example.com': `v=DMARC1; p=reject; ${tag}=${mode}` });
            const input = method === 'spf' ? { spf: spf(id) } : { dkim: [dkim(id)] };
            const { r } = await run(data, { from: [`x@${author}`], ...input });
            assert.equal(r.result, aligned ? 'pass' : 'fail');
            assert.equal(r.alignment[method], aligned ? 'pass' : 'fail');
            const check = r.alignment.checks[0]!;
            assert.equal(check.outcome, aligned ? (strict ? 'strict' : 'relaxed') : 'unaligned');
          });
        }
      }
    }
  }

  it('a failing SPF or DKIM result never aligns, even for the same domain', async () => {
    for (const result of ['fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror', 'policy']) {
      const { r } = await run(EXAMPLE, {
        from: ['a@example.com'],
        spf: spf('example.com', result),
        dkim: [dkim('example.com', result)],
      });
      assert.equal(r.result, 'fail', result);
      assert.deepEqual(
        r.alignment.checks.map((c) => c.outcome),
        ['unauthenticated', 'unauthenticated'],
      );
    }
  });

  it('any one aligned passing DKIM signature is enough', async () => {
    const { r } = await run(EXAMPLE, {
      from: ['a@example.com'],
      dkim: [dkim('example.com', 'fail'), dkim('mailer.example.net'), dkim('example.com')],
    });
    assert.equal(r.result, 'pass');
    assert.equal(r.alignment.dkimDomain, 'example.com');
    assert.equal(r.alignment.spf, 'fail');
  });

  it('relaxed alignment compares Organizational Domains found by tree walks, not suffixes', async () => {
    // team.example.com declares itself an Organizational Domain (psd=n): it no longer aligns with example.com
    const data = zone({ 'example.com': 'v=DMARC1; p=reject', 'team.example.com': 'v=DMARC1; p=none; psd=n' });
    const { r } = await run(data, { from: ['a@example.com'], dkim: [dkim('mail.team.example.com')] });
    assert.equal(r.result, 'fail');
    assert.equal(r.alignment.checks[0]!.orgDomain, 'team.example.com');
    const sibling = await run(data, { from: ['a@x.team.example.com'], dkim: [dkim('team.example.com')] });
    assert.equal(sibling.r.result, 'pass');
    assert.equal(sibling.r.policyDomain, 'team.example.com');
  });

  it('B.4.3: SPF aligns with giant.bank.example under a psd=y PSD, DKIM from mega.bank.example does not', async () => {
    const data = zone({
      'bank.example': 'v=DMARC1; p=reject; psd=y',
      'giant.bank.example': 'v=DMARC1; p=quarantine',
    });
    const { r } = await run(data, {
      from: ['a@giant.bank.example'],
      spf: spf('mail.giant.bank.example'),
      dkim: [dkim('mail.mega.bank.example')],
    });
    assert.equal(r.result, 'pass');
    assert.equal(r.alignment.spf, 'pass');
    assert.equal(r.alignment.dkim, 'fail');
    assert.equal(r.orgDomain, 'giant.bank.example');
    assert.equal(r.policyDomain, 'giant.bank.example');
  });

  it('identifiers outside the Author Domain’s Organizational Domain cost no queries', async () => {
    const dkims = Array.from({ length: 30 }, (_, i) => dkim(`signer${i}.example.net`));
    const { r, resolver } = await run(EXAMPLE, { from: ['a@news.example.com'], dkim: dkims });
    assert.equal(r.result, 'fail');
    assert.equal(r.alignment.checks.length, 30);
    assert.ok(resolver.queries <= 4, `${resolver.queries} queries`);
  });

  it('bounds the tree walks of identifiers (maxAlignmentQueries)', async () => {
    const input = { from: ['a@news.example.com'], dkim: [dkim('a.b.c.example.com')] };
    const full = await run(EXAMPLE, input);
    assert.equal(full.r.result, 'pass');
    const { r, resolver } = await run(EXAMPLE, input, { maxAlignmentQueries: 1 });
    assert.equal(r.alignment.checks[0]!.outcome, 'unaligned');
    assert.match(r.alignment.checks[0]!.note ?? '', /budget/);
    assert.equal(r.result, 'fail');
    assert.equal(full.resolver.queries, 6);
    assert.equal(resolver.queries, 4, '3 for the policy walk, 1 of the identifier walk');
  });
});

describe('DMARC: SPF is the MAIL FROM identity only (CVE-2019-20790)', () => {
  it('ignores a HELO-identity SPF pass even for the Author Domain', async () => {
    const { r } = await run(EXAMPLE, { from: ['ceo@example.com'], spf: spf('example.com', 'pass', 'helo') });
    assert.equal(r.result, 'fail');
    assert.equal(r.disposition, 'reject');
    assert.equal(r.alignment.checks[0]!.outcome, 'ignored');
    assert.match(r.alignment.checks[0]!.note ?? '', /CVE-2019-20790/);
  });

  it("ignores an SPF result whose domain is not the envelope's MAIL FROM domain", async () => {
    const { r } = await run(EXAMPLE, {
      from: ['ceo@example.com'],
      spf: spf('example.com'),
      envelope: { mailFrom: '<bounce@attacker.example>', helo: 'example.com' },
    });
    assert.equal(r.result, 'fail');
    assert.equal(r.alignment.checks[0]!.outcome, 'ignored');
  });

  it('accepts the null reverse-path result, which RFC 7208 §2.4 computes for postmaster@HELO', async () => {
    const { r } = await run(EXAMPLE, {
      from: ['ceo@example.com'],
      spf: spf('mx.example.com'),
      envelope: { mailFrom: '<>', helo: 'mx.example.com' },
    });
    assert.equal(r.result, 'pass');
    assert.equal(r.alignment.spfDomain, 'mx.example.com');
  });

  it('accepts the matching MAIL FROM domain in any case', async () => {
    const { r } = await run(EXAMPLE, {
      from: ['ceo@example.com'],
      spf: spf('Bounce.Example.com'),
      envelope: { mailFrom: 'x@BOUNCE.example.com' },
    });
    assert.equal(r.result, 'pass');
  });
});

describe('DMARC: p, sp and np (§4.10.1)', () => {
  const records = zone({ 'example.com': 'v=DMARC1; p=none; sp=quarantine; np=reject' }, [
    'example.com',
    'news.example.com',
  ]);

  it('p applies to the Author Domain itself', async () => {
    const { r } = await run(records, { from: ['a@example.com'] });
    assert.deepEqual([r.appliedPolicy, r.policy, r.disposition], ['p', 'none', 'none']);
  });

  it('sp applies to an existing subdomain', async () => {
    const { r, resolver } = await run(records, { from: ['a@news.example.com'] });
    assert.deepEqual([r.appliedPolicy, r.policy, r.disposition], ['sp', 'quarantine', 'quarantine']);
    assert.equal(r.domainExists, true);
    assert.ok(resolver.log.includes('news.example.com/A'));
    assert.equal(
      unfolded(r),
      'mx.example.org; dmarc=fail (p=none sp=quarantine dis=quarantine) header.from=news.example.com',
    );
  });

  it('np applies to a non-existent subdomain (NXDOMAIN)', async () => {
    const { r } = await run(records, { from: ['a@ghost.example.com'] });
    assert.deepEqual([r.appliedPolicy, r.policy, r.disposition], ['np', 'reject', 'reject']);
    assert.equal(r.domainExists, false);
  });

  it('a subdomain without data of its own (NODATA) exists', async () => {
    const data = { ...records, 'empty.example.com': [{ MX: [10, 'mx.example.com'] }] };
    const { r } = await run(data, { from: ['a@empty.example.com'] });
    assert.equal(r.appliedPolicy, 'sp');
  });

  it('without np, sp applies to non-existent subdomains too; without sp, p does', async () => {
    const sp = await run(zone({ 'example.com': 'v=DMARC1; p=reject; sp=none' }), {
      from: ['a@ghost.example.com'],
    });
    assert.deepEqual([sp.r.appliedPolicy, sp.r.policy], ['sp', 'none']);
    assert.ok(!sp.resolver.log.includes('ghost.example.com/A'), 'no existence query without np=');
    const p = await run(zone({ 'example.com': 'v=DMARC1; p=quarantine' }), { from: ['a@ghost.example.com'] });
    assert.deepEqual([p.r.appliedPolicy, p.r.policy], ['p', 'quarantine']);
    const np = await run(zone({ 'example.com': 'v=DMARC1; p=quarantine; np=reject' }), {
      from: ['a@ghost.example.com'],
    });
    assert.deepEqual([np.r.appliedPolicy, np.r.policy], ['np', 'reject']);
  });

  it('sp is ignored in a record published at the Author Domain itself', async () => {
    const { r } = await run(zone({ 'news.example.com': 'v=DMARC1; p=none; sp=reject' }), {
      from: ['a@news.example.com'],
    });
    assert.deepEqual([r.appliedPolicy, r.policy], ['p', 'none']);
  });

  it('a PSD policy (psd=y) applies with sp/np to domains below it (RFC 9091 use)', async () => {
    const data = zone({ 'bank.example': 'v=DMARC1; p=none; np=reject; psd=y' }, ['real.bank.example']);
    const ghost = await run(data, { from: ['a@fake.bank.example'] });
    assert.equal(ghost.r.policyDomain, 'bank.example');
    assert.equal(ghost.r.orgDomain, 'fake.bank.example');
    assert.deepEqual(
      [ghost.r.appliedPolicy, ghost.r.policy, ghost.r.disposition],
      ['np', 'reject', 'reject'],
    );
    const real = await run(data, { from: ['a@real.bank.example'] });
    assert.deepEqual([real.r.appliedPolicy, real.r.policy], ['p', 'none']);
  });

  it('an existence-check failure does not matter when np= equals the policy it would replace', async () => {
    const data: ZoneData = {
      ...zone({ 'example.com': 'v=DMARC1; p=none; sp=reject; np=reject' }),
      'news.example.com': ['SERVFAIL'],
    };
    const { r } = await run(data, { from: ['a@news.example.com'] });
    assert.deepEqual([r.result, r.policy, r.disposition], ['fail', 'reject', 'reject']);
    assert.equal(r.domainExists, undefined);
  });

  it('an existence-check failure is a temperror on a fail, and harmless on a pass', async () => {
    const data: ZoneData = {
      ...zone({ 'example.com': 'v=DMARC1; p=none; np=reject' }),
      'news.example.com': ['SERVFAIL'],
    };
    const failed = await run(data, { from: ['a@news.example.com'] });
    assert.equal(failed.r.result, 'temperror');
    assert.match(failed.r.reason, /existence/);
    const passed = await run(data, { from: ['a@news.example.com'], dkim: [dkim('example.com')] });
    assert.equal(passed.r.result, 'pass');
    assert.equal(passed.r.domainExists, undefined);
  });
});

describe('DMARC: testing (t=y) and sampling (pct=, RFC 7489)', () => {
  const fails = { from: ['a@example.com'], spf: spf('example.com', 'fail') };

  it('t=y lowers the disposition one level', async () => {
    const reject = await run(zone({ 'example.com': 'v=DMARC1; p=reject; t=y' }), fails);
    assert.deepEqual(
      [reject.r.policy, reject.r.disposition, reject.r.testing.reduced],
      ['reject', 'quarantine', true],
    );
    assert.equal(
      unfolded(reject.r),
      'mx.example.org; dmarc=fail (p=reject t=y dis=quarantine) header.from=example.com',
    );
    const quarantine = await run(zone({ 'example.com': 'v=DMARC1; p=quarantine; t=y' }), fails);
    assert.deepEqual([quarantine.r.policy, quarantine.r.disposition], ['quarantine', 'none']);
    const none = await run(zone({ 'example.com': 'v=DMARC1; p=none; t=y' }), fails);
    assert.deepEqual([none.r.disposition, none.r.testing.reduced], ['none', false]);
  });

  it('t=n and a pass are not affected', async () => {
    const n = await run(zone({ 'example.com': 'v=DMARC1; p=reject; t=n' }), fails);
    assert.equal(n.r.disposition, 'reject');
    const pass = await run(zone({ 'example.com': 'v=DMARC1; p=reject; t=y' }), {
      ...fails,
      spf: spf('example.com'),
    });
    assert.deepEqual([pass.r.disposition, pass.r.testing.t, pass.r.testing.reduced], ['none', true, false]);
  });

  it('pct draws from the injected random source: inside the sample applies the policy', async () => {
    const data = zone({ 'example.com': 'v=DMARC1; p=reject; pct=30' });
    let draws = 0;
    const inside = await run(data, fails, {}, () => {
      draws++;
      return 0.29;
    });
    assert.deepEqual([inside.r.disposition, inside.r.testing.sampledOut], ['reject', false]);
    assert.equal(draws, 1);
    const outside = await run(data, fails, {}, () => 0.3);
    assert.deepEqual(
      [outside.r.disposition, outside.r.testing.sampledOut, outside.r.testing.reduced],
      ['quarantine', true, true],
    );
    assert.equal(
      unfolded(outside.r),
      'mx.example.org; dmarc=fail (p=reject pct=30 dis=quarantine) header.from=example.com',
    );
  });

  it('pct=0 always lowers, pct=100 never draws, a pass never draws', async () => {
    const never = () => {
      throw new Error('no draw expected');
    };
    const zero = await run(zone({ 'example.com': 'v=DMARC1; p=quarantine; pct=0' }), fails, {}, () => 0);
    assert.equal(zero.r.disposition, 'none');
    const full = await run(zone({ 'example.com': 'v=DMARC1; p=reject; pct=100' }), fails, {}, never);
    assert.equal(full.r.disposition, 'reject');
    const pass = await run(
      zone({ 'example.com': 'v=DMARC1; p=reject; pct=10' }),
      { ...fails, spf: spf('example.com') },
      {},
      never,
    );
    assert.equal(pass.r.result, 'pass');
    const pnone = await run(zone({ 'example.com': 'v=DMARC1; p=none; pct=10' }), fails, {}, never);
    assert.equal(pnone.r.disposition, 'none');
  });

  it('honorPct: false ignores pct (RFC 9989 makes it historic)', async () => {
    const r = await run(
      zone({ 'example.com': 'v=DMARC1; p=reject; pct=0' }),
      fails,
      { honorPct: false },
      () => 0.99,
    );
    assert.equal(r.r.disposition, 'reject');
  });
});

describe('DMARC: the From field (§5.3.1, §11.5)', () => {
  it('permerror without a From field', async () => {
    const { r, resolver } = await run(EXAMPLE, { from: [] });
    assert.equal(r.result, 'permerror');
    assert.deepEqual(r.author.problems, ['absent']);
    assert.equal(resolver.queries, 0);
    assert.equal(unfolded(r), 'mx.example.org; dmarc=permerror (the message has no From header field)');
  });

  it('permerror for a From field that does not parse, unless salvage is asked for', async () => {
    const from = ['CEO <ceo@example.com'];
    const strict = await run(EXAMPLE, { from });
    assert.equal(strict.r.result, 'permerror');
    assert.deepEqual(strict.r.author.problems, ['syntax']);
    assert.match(strict.r.reason, /does not parse/);
    const salvage = await run(EXAMPLE, { from }, { malformedFrom: 'salvage' });
    assert.equal(salvage.r.result, 'fail');
    assert.equal(salvage.r.disposition, 'reject');
    assert.equal(salvage.r.fromDomain, 'example.com');
  });

  it('permerror for an empty group or a domain literal', async () => {
    assert.equal((await run(EXAMPLE, { from: ['Undisclosed recipients:;'] })).r.result, 'permerror');
    const literal = await run(EXAMPLE, { from: ['a@[192.0.2.1]'] });
    assert.equal(literal.r.result, 'permerror');
    assert.deepEqual(literal.r.author.problems, ['invalid-domain']);
  });

  it('converts an IDN Author Domain to A-labels before the lookup', async () => {
    const data = zone({ 'xn--bcher-kva.example': 'v=DMARC1; p=reject' });
    const { r, resolver } = await run(data, {
      from: ['Jürgen <j@Bücher.example>'],
      dkim: [dkim('xn--bcher-kva.example')],
    });
    assert.equal(r.result, 'pass');
    assert.equal(r.fromDomain, 'xn--bcher-kva.example');
    assert.equal(resolver.log[0], '_dmarc.xn--bcher-kva.example/TXT');
  });

  it('several Author Domains: each is evaluated and the strictest failure wins', async () => {
    const data = zone({ 'example.com': 'v=DMARC1; p=reject', 'example.org': 'v=DMARC1; p=quarantine' });
    const { r } = await run(data, {
      from: ['a@example.org, b@example.com, c@example.net'],
      dkim: [dkim('example.net')],
    });
    assert.equal(r.result, 'fail');
    assert.equal(r.fromDomain, 'example.com');
    assert.equal(r.disposition, 'reject');
    assert.deepEqual(
      r.perDomain?.map((x) => [x.fromDomain, x.result, x.disposition]),
      [
        ['example.org', 'fail', 'quarantine'],
        ['example.com', 'fail', 'reject'],
        ['example.net', 'none', 'none'],
      ],
    );
    assert.deepEqual(r.author.problems, ['multiple-domains']);
    assert.equal(
      unfolded(r),
      'mx.example.org; dmarc=fail (p=quarantine dis=quarantine) header.from=example.org; ' +
        'dmarc=fail (p=reject dis=reject) header.from=example.com; dmarc=none header.from=example.net',
    );
  });

  it('a spoofed extra author cannot hide the failure of another', async () => {
    const { r } = await run(EXAMPLE, {
      from: ['me@attacker.example, ceo@example.com'],
      spf: spf('attacker.example'),
    });
    assert.equal(r.result, 'fail');
    assert.equal(r.fromDomain, 'example.com');
  });

  it('pass and none together give pass; temperror outranks pass', async () => {
    const data: ZoneData = { ...EXAMPLE, '_dmarc.example.org': ['SERVFAIL'] };
    const both = await run(data, { from: ['a@example.com, b@example.net'], dkim: [dkim('example.com')] });
    assert.equal(both.r.result, 'pass');
    const err = await run(data, { from: ['a@example.com, b@example.org'], dkim: [dkim('example.com')] });
    assert.equal(err.r.result, 'temperror');
  });

  it('several authors of one domain are one evaluation', async () => {
    const { r } = await run(EXAMPLE, {
      from: ['a@example.com, B <b@EXAMPLE.com>'],
      dkim: [dkim('example.com')],
    });
    assert.equal(r.result, 'pass');
    assert.equal(r.perDomain, undefined);
    assert.deepEqual(r.author.problems, []);
  });

  it("multipleAuthors: 'permerror' stops at several domains or fields", async () => {
    const domains = await run(
      EXAMPLE,
      { from: ['a@example.com, b@example.net'] },
      { multipleAuthors: 'permerror' },
    );
    assert.equal(domains.r.result, 'permerror');
    assert.match(domains.r.reason, /2 Author Domains/);
    const fields = await run(
      EXAMPLE,
      { from: ['a@example.com', 'a@example.com'] },
      { multipleAuthors: 'permerror' },
    );
    assert.equal(fields.r.result, 'permerror');
    assert.match(fields.r.reason, /2 From fields/);
  });

  it('two From fields are evaluated like several authors by default', async () => {
    const { r } = await run(EXAMPLE, { from: ['a@example.com', 'b@example.com'], spf: spf('example.com') });
    assert.equal(r.result, 'pass');
    assert.deepEqual(r.author.problems, ['multiple-fields']);
  });

  it('more Author Domains than maxAuthorDomains is a permerror', async () => {
    const from = [Array.from({ length: 6 }, (_, i) => `a@d${i}.example`).join(', ')];
    const { r, resolver } = await run({}, { from });
    assert.equal(r.result, 'permerror');
    assert.equal(resolver.queries, 0);
    const three = await run({}, { from }, { maxAuthorDomains: 6 });
    assert.equal(three.r.result, 'none');
  });

  it('a literal next to a real domain: the real one is evaluated, the literal is a permerror', async () => {
    const fails = await run(EXAMPLE, { from: ['a@[192.0.2.1], b@example.com'] });
    assert.equal(fails.r.result, 'fail');
    const passes = await run(EXAMPLE, {
      from: ['a@[192.0.2.1], b@example.com'],
      dkim: [dkim('example.com')],
    });
    assert.equal(passes.r.result, 'permerror');
  });
});

describe('DMARC: DNS trouble during alignment (§5.3.6)', () => {
  it('an identifier walk that fails makes a would-be fail a temperror', async () => {
    const data: ZoneData = { ...EXAMPLE, '_dmarc.mail.example.com': ['TIMEOUT'] };
    const { r } = await run(data, { from: ['a@example.com'], dkim: [dkim('x.mail.example.com')] });
    assert.equal(r.result, 'temperror');
    assert.equal(r.alignment.checks[0]!.outcome, 'error');
  });

  it('but another aligned identifier still passes', async () => {
    const data: ZoneData = { ...EXAMPLE, '_dmarc.mail.example.com': ['TIMEOUT'] };
    const { r } = await run(data, {
      from: ['a@example.com'],
      spf: spf('example.com'),
      dkim: [dkim('x.mail.example.com')],
    });
    assert.equal(r.result, 'pass');
  });

  it("a failure finding the Author Domain's Organizational Domain is a temperror", async () => {
    const data: ZoneData = {
      ...zone({ 'news.example.com': 'v=DMARC1; p=reject' }),
      '_dmarc.example.com': ['SERVFAIL'],
    };
    const { r } = await run(data, { from: ['a@news.example.com'], spf: spf('bounce.example.com') });
    assert.equal(r.result, 'temperror');
    const strict = await run(data, { from: ['a@news.example.com'], spf: spf('news.example.com') });
    assert.equal(strict.r.result, 'pass', 'no walk needed for the same domain');
  });

  it('an aborted signal reaches the resolver', async () => {
    const controller = new AbortController();
    controller.abort();
    let seen: AbortSignal | undefined;
    const resolver = {
      async query(_name: string, _type: string, options?: { signal?: AbortSignal }) {
        seen = options?.signal;
        return { status: 'timeout' as const, message: 'aborted' };
      },
    };
    const r = await checkDmarc(
      { from: ['a@example.com'] },
      { resolver: resolver as never, signal: controller.signal },
    );
    assert.equal(r.result, 'temperror');
    assert.equal(seen, controller.signal);
  });
});

describe('DMARC: Organizational Domain reporting', () => {
  it('is the Author Domain when its record says psd=n, without more queries', async () => {
    const data = zone({ 'news.example.com': 'v=DMARC1; p=reject; psd=n', 'example.com': 'v=DMARC1; p=none' });
    const { r, resolver } = await run(data, { from: ['a@news.example.com'], dkim: [dkim('example.com')] });
    assert.equal(r.orgDomain, 'news.example.com');
    assert.equal(r.result, 'fail', 'example.com is another Organizational Domain now');
    assert.equal(resolver.queries, 1);
  });

  it('is found by a walk when relaxed alignment needs it', async () => {
    const data = zone({ 'news.example.com': 'v=DMARC1; p=reject', 'example.com': 'v=DMARC1; p=none' });
    const { r } = await run(data, { from: ['a@news.example.com'], dkim: [dkim('example.com')] });
    assert.equal(r.orgDomain, 'example.com');
    assert.equal(r.result, 'pass');
  });

  it('is left undetermined when nothing needs it', async () => {
    const data = zone({ 'news.example.com': 'v=DMARC1; p=reject; adkim=s' });
    const { r, resolver } = await run(data, { from: ['a@news.example.com'], dkim: [dkim('example.com')] });
    assert.equal(r.orgDomain, null);
    assert.equal(resolver.queries, 1);
  });
});
