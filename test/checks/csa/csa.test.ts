import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CsaResult, checkCsa, csaLookupName, csaParentNames } from '../../../src/checks/csa/index.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

const ZONE: ZoneData = {
  // authorized, target has the client IP (and an IPv6 address)
  '_client._smtp.ok.example.com': [{ SRV: [1, 2, 0, 'ok.example.com'] }],
  'ok.example.com': [{ A: '192.0.2.1' }, { AAAA: '2001:db8::1' }],
  // explicitly not authorized
  '_client._smtp.no.example.com': [{ SRV: [1, 1, 0, 'no.example.com'] }],
  '_client._smtp.zero.example.com': [{ SRV: [1, 0, 0, '.'] }],
  // authorized, target "."
  '_client._smtp.dot.example.com': [{ SRV: [1, 2, 0, '.'] }],
  // authorized, target without addresses / NXDOMAIN / timing out
  '_client._smtp.noaddr.example.com': [{ SRV: [1, 2, 0, 'txt.example.com'] }],
  'txt.example.com': [{ TXT: 'no address here' }],
  '_client._smtp.gone.example.com': [{ SRV: [1, 2, 0, 'missing.example.com'] }],
  '_client._smtp.slow.example.com': [{ SRV: [1, 2, 0, 'slowtarget.example.com'] }],
  'slowtarget.example.com': ['TIMEOUT'],
  // weight 3 (authorized, unverifiable) only; and weight 3 followed by weight 2
  '_client._smtp.w3.example.com': [{ SRV: [1, 3, 0, 'ok.example.com'] }],
  '_client._smtp.w3then2.example.com': [{ SRV: [1, 3, 0, 'elsewhere.example.com'] }, { SRV: [1, 2, 0, 'ok.example.com'] }],
  // the first priority-1 record decides: weight 1 before weight 2
  '_client._smtp.order.example.com': [{ SRV: [1, 1, 0, 'ok.example.com'] }, { SRV: [1, 2, 0, 'ok.example.com'] }],
  // a record of another CSA version only (and its own record stops the parent search)
  '_client._smtp.v2.strict.example': [{ SRV: [2, 2, 0, 'ok.example.com'] }],
  // SRV lookup fails
  '_client._smtp.broken.example.com': ['SERVFAIL'],
  // strict.example: every client below needs its own record (Port bit 1)
  '_client._smtp.strict.example': [{ SRV: [1, 2, 1, '.'] }],
  '_client._smtp.host.strict.example': [{ SRV: [1, 2, 0, 'ok.example.com'] }],
  // lax.example: a parent record without the assertion
  '_client._smtp.lax.example': [{ SRV: [1, 2, 0, '.'] }],
  // quirk.example: first priority-1 record without the bit, a later one with it
  '_client._smtp.quirk.example': [{ SRV: [1, 2, 0, '.'] }, { SRV: [1, 1, 1, '.'] }],
  // a deeper parent asserting, below a silent upper parent
  '_client._smtp.dept.deep.example': [{ SRV: [1, 1, 1, '.'] }],
  // a parent whose lookup times out
  '_client._smtp.flaky.example': ['TIMEOUT'],
  // reverse tree: 192.0.2.1 authorized, 192.0.2.0/24 asserts explicit records
  '_client._smtp.1.2.0.192.in-addr.arpa': [{ SRV: [1, 2, 0, 'ok.example.com'] }],
  '_client._smtp.2.0.192.in-addr.arpa': [{ SRV: [1, 2, 1, '.'] }],
};

async function run(input: { ip: string; helo?: string; domain?: string }, zone: ZoneData = ZONE, options = {}) {
  const resolver = new MemoryResolver(zone);
  const result = await checkCsa(input, { resolver }, options);
  return { result, log: resolver.log };
}

function brief(r: CsaResult): [string, string | undefined] {
  return [r.result, r.failReason];
}

describe('CSA (Exim acl_verify_csa semantics)', () => {
  it('ok: own record, weight 2, target has the client IP', async () => {
    const { result, log } = await run({ ip: '192.0.2.1', helo: 'OK.example.com' });
    assert.deepEqual(brief(result), ['ok', undefined]);
    assert.equal(result.detail, 'ok');
    assert.equal(result.domain, 'ok.example.com');
    assert.equal(result.foundAt, 'ok.example.com');
    assert.equal(result.target, 'ok.example.com');
    assert.deepEqual(result.addresses, ['192.0.2.1']);
    assert.deepEqual(log, ['_client._smtp.ok.example.com/SRV', 'ok.example.com/A']);
  });

  it('ok for an IPv6 client, checking AAAA', async () => {
    const { result, log } = await run({ ip: '2001:db8::1', helo: 'ok.example.com' });
    assert.equal(result.result, 'ok');
    assert.equal(log[1], 'ok.example.com/AAAA');
  });

  it('fail (mismatch): the target has addresses, none is the client', async () => {
    const { result } = await run({ ip: '192.0.2.99', helo: 'ok.example.com' });
    assert.deepEqual(brief(result), ['fail', 'mismatch']);
    assert.equal(result.detail, 'fail-mismatch');
    assert.match(result.reason, /client address mismatch/);
  });

  it('fail (not-authorized): own record with weight < 2', async () => {
    for (const helo of ['no.example.com', 'zero.example.com']) {
      const { result, log } = await run({ ip: '192.0.2.1', helo });
      assert.deepEqual(brief(result), ['fail', 'not-authorized']);
      assert.equal(result.detail, 'fail-domain');
      assert.equal(log.length, 1, 'no target lookup');
    }
  });

  it('fail (no-address): weight 2 with target "."', async () => {
    const { result, log } = await run({ ip: '192.0.2.1', helo: 'dot.example.com' });
    assert.deepEqual(brief(result), ['fail', 'no-address']);
    assert.equal(result.target, '');
    assert.equal(log.length, 1);
  });

  it('fail (no-address): the target has no address of the client family or does not exist', async () => {
    assert.deepEqual(brief((await run({ ip: '192.0.2.1', helo: 'noaddr.example.com' })).result), ['fail', 'no-address']);
    assert.deepEqual(brief((await run({ ip: '192.0.2.1', helo: 'gone.example.com' })).result), ['fail', 'no-address']);
  });

  it('defer: the target address lookup fails', async () => {
    const { result } = await run({ ip: '192.0.2.1', helo: 'slow.example.com' });
    assert.deepEqual(brief(result), ['defer', undefined]);
    assert.equal(result.detail, 'defer-addr');
  });

  it('defer: the SRV lookup fails', async () => {
    const { result, log } = await run({ ip: '192.0.2.1', helo: 'broken.example.com' });
    assert.equal(result.result, 'defer');
    assert.equal(result.detail, 'defer-srv');
    assert.equal(log.length, 1, 'no parent search after a failure');
  });

  it('defer: a parent SRV lookup fails during the search', async () => {
    const { result } = await run({ ip: '192.0.2.1', helo: 'a.b.flaky.example' });
    assert.equal(result.detail, 'defer-srv');
    assert.match(result.reason, /_client\._smtp\.flaky\.example/);
  });

  it('skips weight > 2 records: unknown alone, else the next record decides', async () => {
    const w3 = await run({ ip: '192.0.2.1', helo: 'w3.example.com' });
    assert.equal(w3.result.result, 'unknown');
    assert.equal(w3.log.length, 1);
    const next = await run({ ip: '192.0.2.1', helo: 'w3then2.example.com' });
    assert.equal(next.result.result, 'ok');
  });

  it('lets the first priority-1 record decide', async () => {
    const { result } = await run({ ip: '192.0.2.1', helo: 'order.example.com' });
    assert.deepEqual(brief(result), ['fail', 'not-authorized']);
  });

  it('ignores records of other CSA versions, and an own record stops the parent search', async () => {
    const { result, log } = await run({ ip: '192.0.2.1', helo: 'v2.strict.example' });
    assert.equal(result.result, 'unknown');
    assert.equal(result.foundAt, 'v2.strict.example');
    assert.deepEqual(log, ['_client._smtp.v2.strict.example/SRV']);
  });

  it('unknown: nothing found, after searching parents from the top down', async () => {
    const { result, log } = await run({ ip: '192.0.2.1', helo: 'a.b.c.nowhere.example.org' });
    assert.deepEqual(brief(result), ['unknown', undefined]);
    assert.equal(result.foundAt, undefined);
    assert.deepEqual(log, [
      '_client._smtp.a.b.c.nowhere.example.org/SRV',
      '_client._smtp.example.org/SRV',
      '_client._smtp.nowhere.example.org/SRV',
      '_client._smtp.c.nowhere.example.org/SRV',
      '_client._smtp.b.c.nowhere.example.org/SRV',
    ]);
  });

  it('fail (explicit-required): a parent with Port bit 1 and no own record', async () => {
    const { result } = await run({ ip: '192.0.2.1', helo: 'rogue.strict.example' });
    assert.deepEqual(brief(result), ['fail', 'explicit-required']);
    assert.equal(result.detail, 'fail-explicit');
    assert.equal(result.foundAt, 'strict.example');
    // a client with its own record under the same parent is judged by that record
    const own = await run({ ip: '192.0.2.1', helo: 'host.strict.example' });
    assert.equal(own.result.result, 'ok');
  });

  it('fail (explicit-required) from a deeper parent below a silent one', async () => {
    const { result, log } = await run({ ip: '192.0.2.1', helo: 'pc1.dept.deep.example' });
    assert.deepEqual(brief(result), ['fail', 'explicit-required']);
    assert.equal(result.foundAt, 'dept.deep.example');
    assert.deepEqual(log.slice(1), ['_client._smtp.deep.example/SRV', '_client._smtp.dept.deep.example/SRV']);
  });

  it('unknown: a parent record without Port bit 1 asserts nothing', async () => {
    const { result } = await run({ ip: '192.0.2.1', helo: 'pc.lax.example' });
    assert.equal(result.result, 'unknown');
    assert.equal(result.foundAt, undefined);
  });

  it('unknown: a parent whose first priority-1 record lacks the bit (Exim reads that one)', async () => {
    const { result } = await run({ ip: '192.0.2.1', helo: 'pc.quirk.example' });
    assert.equal(result.result, 'unknown');
    assert.equal(result.foundAt, 'quirk.example');
  });

  it('honours the search limit', async () => {
    const shallow = await run({ ip: '192.0.2.1', helo: 'pc1.dept.deep.example' }, ZONE, { searchLimit: 1 });
    assert.equal(shallow.result.result, 'unknown');
    assert.equal(shallow.log.length, 2);
    const none = await run({ ip: '192.0.2.1', helo: 'rogue.strict.example' }, ZONE, { searchLimit: 0 });
    assert.equal(none.result.result, 'unknown');
    assert.equal(none.log.length, 1);
  });

  it('looks address literals and bare IPs up in the reverse tree', async () => {
    const literal = await run({ ip: '192.0.2.1', helo: '[192.0.2.1]' });
    assert.equal(literal.result.result, 'ok');
    assert.equal(literal.result.domain, '1.2.0.192.in-addr.arpa');
    const bare = await run({ ip: '192.0.2.1', helo: '192.0.2.1' });
    assert.equal(bare.result.result, 'ok');
    // another host in 192.0.2.0/24 without its own record: the /24 asserts explicit records
    const other = await run({ ip: '192.0.2.7', helo: '[192.0.2.7]' });
    assert.deepEqual(brief(other.result), ['fail', 'explicit-required']);
    assert.equal(other.result.foundAt, '2.0.192.in-addr.arpa');
    assert.deepEqual(other.log.slice(1), [
      '_client._smtp.192.in-addr.arpa/SRV',
      '_client._smtp.0.192.in-addr.arpa/SRV',
      '_client._smtp.2.0.192.in-addr.arpa/SRV',
    ]);
  });

  it('uses the client IP when there is no HELO', async () => {
    const { result } = await run({ ip: '192.0.2.1' });
    assert.equal(result.domain, '1.2.0.192.in-addr.arpa');
    assert.equal(result.result, 'ok');
  });

  it('looks IPv6 literals up under ip6.arpa, searching in 16-bit steps', async () => {
    const { result, log } = await run({ ip: '2001:db8::5', helo: '[IPv6:2001:db8::5]' });
    assert.equal(result.result, 'unknown');
    assert.equal(result.domain, `${'5.0.0.0.'}${'0.0.0.0.'.repeat(5)}8.b.d.0.1.0.0.2.ip6.arpa`);
    assert.deepEqual(log.slice(1), [
      '_client._smtp.1.0.0.2.ip6.arpa/SRV',
      '_client._smtp.8.b.d.0.1.0.0.2.ip6.arpa/SRV',
      '_client._smtp.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa/SRV',
    ]);
  });

  it('answers unknown for IP HELOs when reverse lookups are off', async () => {
    const { result, log } = await run({ ip: '192.0.2.1', helo: '[192.0.2.1]' }, ZONE, { useReverse: false });
    assert.equal(result.result, 'unknown');
    assert.equal(log.length, 0);
  });

  it('checks an explicit domain instead of the HELO', async () => {
    const { result } = await run({ ip: '192.0.2.1', helo: 'whatever.example', domain: 'ok.example.com' });
    assert.equal(result.result, 'ok');
  });

  it('caches results per lookup name when given a cache', async () => {
    const resolver = new MemoryResolver(ZONE);
    const cache = new Map<string, CsaResult>();
    const first = await checkCsa({ ip: '192.0.2.1', helo: 'ok.example.com' }, { resolver }, { cache });
    const queries = resolver.queries;
    const second = await checkCsa({ ip: '192.0.2.1', helo: 'OK.EXAMPLE.COM' }, { resolver }, { cache });
    assert.equal(resolver.queries, queries);
    assert.equal(second, first);
  });

  it('answers unknown for an unusable client IP', async () => {
    const { result, log } = await run({ ip: 'nonsense', helo: 'ok.example.com' });
    assert.equal(result.result, 'unknown');
    assert.equal(log.length, 0);
  });
});

describe('CSA name derivation', () => {
  it('strips address-literal framing as Exim does', () => {
    assert.equal(csaLookupName({ ip: '192.0.2.1', helo: '[IPv6:2001:db8::1]' }), `1.0.0.0.${'0.0.0.0.'.repeat(5)}8.b.d.0.1.0.0.2.ip6.arpa`);
    assert.equal(csaLookupName({ ip: '192.0.2.1', helo: '[192.0.2.9]' }), '9.2.0.192.in-addr.arpa');
    assert.equal(csaLookupName({ ip: '192.0.2.1', helo: 'Host.Example.' }), 'host.example');
    assert.equal(csaLookupName({ ip: '192.0.2.1', helo: '[192.0.2.9]' }, false), null);
  });

  it('lists parents top down, excluding the TLD and the name itself', () => {
    assert.deepEqual(csaParentNames('a.b.example.com'), ['example.com', 'b.example.com']);
    assert.deepEqual(csaParentNames('example.com'), []);
    assert.deepEqual(csaParentNames('host'), []);
    assert.deepEqual(csaParentNames('a.b.c.d.e.f.g.example', 2), ['g.example', 'f.g.example']);
    assert.deepEqual(csaParentNames('4.3.2.1.in-addr.arpa'), ['1.in-addr.arpa', '2.1.in-addr.arpa', '3.2.1.in-addr.arpa']);
  });
});
