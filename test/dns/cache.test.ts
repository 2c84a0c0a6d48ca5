import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/common/clock.ts';
import { CachingResolver } from '../../src/dns/cache.ts';
import type { DnsResult, QueryOptions, RecordType, Resolver } from '../../src/dns/types.ts';
import { MemoryResolver } from '../support/zone.ts';

/** Answers from a script keyed "name/TYPE", counting calls. */
class ScriptedResolver implements Resolver {
  calls = 0;
  readonly answers = new Map<string, DnsResult<RecordType>>();
  async query<T extends RecordType>(name: string, type: T, _options?: QueryOptions): Promise<DnsResult<T>> {
    this.calls++;
    const r = this.answers.get(`${name.toLowerCase().replace(/\.$/, '')}/${type}`);
    return (r ?? { status: 'error', message: 'not scripted' }) as DnsResult<T>;
  }
}

const okA = (ttl: number, ...records: string[]): DnsResult<'A'> => ({
  status: 'ok',
  records,
  ttl,
  authenticated: false,
});

describe('CachingResolver', () => {
  test('a positive answer is served from the cache with its TTL counting down, then expires', async () => {
    const clock = new ManualClock();
    const inner = new ScriptedResolver();
    inner.answers.set('a.example/A', okA(300, '192.0.2.1'));
    const cache = new CachingResolver(inner, { clock });
    assert.deepEqual(await cache.query('a.example', 'A'), okA(300, '192.0.2.1'));
    clock.advance(100_500);
    assert.deepEqual(await cache.query('A.Example.', 'A'), okA(199, '192.0.2.1'));
    assert.equal(inner.calls, 1);
    clock.advance(199_499);
    assert.equal((await cache.query('a.example', 'A')).status, 'ok');
    assert.equal(inner.calls, 1, 'still fresh 1 ms before expiry');
    clock.advance(1);
    await cache.query('a.example', 'A');
    assert.equal(inner.calls, 2);
    assert.deepEqual(cache.stats(), { hits: 2, misses: 2, inserts: 2, evictions: 0, expired: 1, entries: 1 });
  });

  test('NXDOMAIN and NODATA are cached for their TTL, capped by negativeMaxTtl', async () => {
    const clock = new ManualClock();
    const inner = new ScriptedResolver();
    inner.answers.set('nx.example/A', { status: 'nxdomain', ttl: 86400 });
    inner.answers.set('a.example/MX', { status: 'nodata', ttl: 60 });
    const cache = new CachingResolver(inner, { clock, negativeMaxTtl: 900 });
    assert.deepEqual(await cache.query('nx.example', 'A'), { status: 'nxdomain', ttl: 900 });
    assert.deepEqual(await cache.query('a.example', 'MX'), { status: 'nodata', ttl: 60 });
    clock.advance(59_000);
    assert.deepEqual(await cache.query('a.example', 'MX'), { status: 'nodata', ttl: 1 });
    assert.deepEqual(await cache.query('nx.example', 'A'), { status: 'nxdomain', ttl: 841 });
    assert.equal(inner.calls, 2);
    clock.advance(1_000);
    await cache.query('a.example', 'MX');
    assert.equal(inner.calls, 3);
  });

  test('minTtl and maxTtl clamp what is stored and what is returned', async () => {
    const clock = new ManualClock();
    const inner = new ScriptedResolver();
    inner.answers.set('zero.example/A', okA(0, '192.0.2.1'));
    inner.answers.set('long.example/A', okA(1_000_000, '192.0.2.2'));
    const plain = new CachingResolver(inner, { clock });
    await plain.query('zero.example', 'A');
    await plain.query('zero.example', 'A');
    assert.equal(inner.calls, 2, 'TTL 0 is not cached by default');
    assert.equal(((await plain.query('long.example', 'A')) as { ttl: number }).ttl, 86400);

    const floor = new CachingResolver(inner, { clock, minTtl: 30, maxTtl: 600 });
    assert.equal(((await floor.query('zero.example', 'A')) as { ttl: number }).ttl, 30);
    assert.equal(((await floor.query('long.example', 'A')) as { ttl: number }).ttl, 600);
    const calls = inner.calls;
    clock.advance(29_000);
    assert.equal(((await floor.query('zero.example', 'A')) as { ttl: number }).ttl, 1);
    assert.equal(inner.calls, calls);
    assert.throws(() => new CachingResolver(inner, { minTtl: 10, maxTtl: 5 }), /minTtl/);
    assert.throws(() => new CachingResolver(inner, { maxEntries: -1 }), />= 0/);
  });

  test('timeouts, REFUSED, FORMERR and errors are never cached; SERVFAIL only when asked', async () => {
    const clock = new ManualClock();
    const inner = new ScriptedResolver();
    inner.answers.set('t.example/A', { status: 'timeout', message: 't' });
    inner.answers.set('r.example/A', { status: 'refused', message: 'r' });
    inner.answers.set('f.example/A', { status: 'formerr', message: 'f' });
    inner.answers.set('e.example/A', { status: 'error', message: 'e' });
    inner.answers.set('s.example/A', { status: 'servfail', message: 's' });
    const cache = new CachingResolver(inner, { clock });
    for (const n of ['t', 'r', 'f', 'e', 's']) {
      await cache.query(`${n}.example`, 'A');
      await cache.query(`${n}.example`, 'A');
    }
    assert.equal(inner.calls, 10);
    assert.equal(cache.stats().entries, 0);

    const brief = new CachingResolver(inner, { clock, servfailTtl: 5 });
    assert.equal((await brief.query('s.example', 'A')).status, 'servfail');
    clock.advance(4_999);
    assert.equal((await brief.query('s.example', 'A')).status, 'servfail');
    assert.equal(inner.calls, 11);
    clock.advance(1);
    await brief.query('s.example', 'A');
    assert.equal(inner.calls, 12);
    await brief.query('t.example', 'A');
    await brief.query('t.example', 'A');
    assert.equal(inner.calls, 14);
  });

  test('the size is bounded; the least recently used entry goes first', async () => {
    const inner = new ScriptedResolver();
    for (const n of ['a', 'b', 'c', 'd']) inner.answers.set(`${n}.example/A`, okA(300, '192.0.2.1'));
    const cache = new CachingResolver(inner, { clock: new ManualClock(), maxEntries: 3 });
    await cache.query('a.example', 'A');
    await cache.query('b.example', 'A');
    await cache.query('c.example', 'A');
    await cache.query('a.example', 'A'); // a is now the most recent
    await cache.query('d.example', 'A'); // evicts b
    assert.equal(cache.stats().evictions, 1);
    assert.equal(cache.stats().entries, 3);
    const calls = inner.calls;
    await cache.query('a.example', 'A');
    await cache.query('c.example', 'A');
    await cache.query('d.example', 'A');
    assert.equal(inner.calls, calls);
    await cache.query('b.example', 'A');
    assert.equal(inner.calls, calls + 1);
  });

  test('the key is the name (any case, trailing dot or not) and the type', async () => {
    const inner = new MemoryResolver({ 'mx.example': [{ A: '192.0.2.1' }, { AAAA: '2001:db8::1' }] });
    const cache = new CachingResolver(inner, { clock: new ManualClock() });
    await cache.query('mx.example', 'A');
    await cache.query('MX.EXAMPLE.', 'A');
    await cache.query('mx.example', 'AAAA');
    assert.deepEqual(inner.log, ['mx.example/A', 'mx.example/AAAA']);
    cache.clear('Mx.Example');
    await cache.query('mx.example', 'A');
    assert.equal(inner.queries, 3);
    cache.clear();
    assert.equal(cache.stats().entries, 0);
  });

  test('cached answers are frozen, so one caller cannot change another one’s records', async () => {
    const inner = new MemoryResolver({ 't.example': [{ TXT: ['a', 'b'] }] });
    const cache = new CachingResolver(inner, { clock: new ManualClock() });
    const first = await cache.query('t.example', 'TXT');
    assert.equal(first.status, 'ok');
    if (first.status !== 'ok') return;
    assert.throws(() => first.records.push(['x']), TypeError);
    assert.throws(() => first.records[0]!.push('x'), TypeError);
    const again = await cache.query('t.example', 'TXT');
    assert.deepEqual(again.status === 'ok' && again.records, [['a', 'b']]);
  });

  test('an invalid name goes to the inner resolver for its error', async () => {
    const inner = new ScriptedResolver();
    const cache = new CachingResolver(inner, { clock: new ManualClock() });
    assert.equal((await cache.query('a..b', 'A')).status, 'error');
    assert.equal(inner.calls, 1);
    assert.equal(cache.stats().entries, 0);
  });
});
