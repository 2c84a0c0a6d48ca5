import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkDnsbl, DnsblMonitor, selfTestNames, type TimerFunctions } from '../../../src/checks/dnsbl/index.ts';
import { ManualClock } from '../../../src/common/clock.ts';
import type { DnsResult, QueryOptions, RecordType, Resolver } from '../../../src/dns/types.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

/** A resolver whose zone data the test can swap, to break and repair a list. */
class SwitchResolver implements Resolver {
  inner: MemoryResolver;
  constructor(data: ZoneData) {
    this.inner = new MemoryResolver(data);
  }
  set(data: ZoneData): void {
    this.inner = new MemoryResolver(data);
  }
  query<T extends RecordType>(name: string, type: T, options?: QueryOptions): Promise<DnsResult<T>> {
    return this.inner.query(name, type, options);
  }
}

const HEALTHY: ZoneData = {
  '2.0.0.127.bl.example': [{ A: '127.0.0.2' }],
  '1.2.0.192.bl.example': [{ A: '127.0.0.2' }],
};
const EMPTY: ZoneData = { '1.2.0.192.bl.example': [{ A: '127.0.0.2' }] };
const WILDCARD: ZoneData = {
  '2.0.0.127.bl.example': [{ A: '127.0.0.2' }],
  '1.0.0.127.bl.example': [{ A: '127.0.0.2' }],
  '1.2.0.192.bl.example': [{ A: '127.0.0.2' }],
};
const REFUSED: ZoneData = {
  '2.0.0.127.bl.example': [{ A: '127.255.255.254' }],
  '1.0.0.127.bl.example': [{ A: '127.255.255.254' }],
};
const TIMING_OUT: ZoneData = { '2.0.0.127.bl.example': ['TIMEOUT'] };

const zones = [{ zone: 'bl.example' }];
const TEN_MIN = 10 * 60 * 1000;

describe('DnsblMonitor (RFC 5782 §5 self-test)', () => {
  it('keeps a healthy zone enabled and queries both test points', async () => {
    const resolver = new SwitchResolver(HEALTHY);
    const monitor = new DnsblMonitor({ resolver, clock: new ManualClock() }, { zones });
    const [h] = await monitor.selfTest();
    assert.equal(h!.enabled, true);
    assert.equal(h!.lastOutcome, 'pass');
    assert.deepEqual(resolver.inner.log.sort(), ['1.0.0.127.bl.example/A', '2.0.0.127.bl.example/A']);
  });

  it('disables a zone that lists nothing, skips it, and re-enables it when it passes again', async () => {
    const clock = new ManualClock();
    const resolver = new SwitchResolver(EMPTY);
    const monitor = new DnsblMonitor({ resolver, clock }, { zones, intervalMs: TEN_MIN });
    await monitor.refreshIfDue();
    assert.equal(monitor.isEnabled('bl.example'), false);
    assert.match(monitor.health()[0]!.reason!, /127\.0\.0\.2 is not listed/);

    const r = await checkDnsbl({ ip: '192.0.2.1' }, { resolver }, { zones, monitor });
    assert.equal(r.results[0]!.status, 'disabled');
    assert.equal(r.score, 0);
    assert.match(r.results[0]!.error!, /self-test failed/);

    resolver.set(HEALTHY);
    clock.advance(TEN_MIN - 1);
    assert.equal(await monitor.refreshIfDue(), null, 'not due yet');
    assert.equal(monitor.isEnabled('bl.example'), false);
    clock.advance(1);
    const health = await monitor.refreshIfDue();
    assert.equal(health?.[0]?.enabled, true);
    assert.equal(monitor.isEnabled('bl.example'), true);
    assert.equal(monitor.health()[0]!.lastTest, clock.now());
    const again = await checkDnsbl({ ip: '192.0.2.1' }, { resolver }, { zones, monitor });
    assert.equal(again.results[0]!.status, 'listed');
  });

  it('disables a zone that answers everything', async () => {
    const monitor = new DnsblMonitor({ resolver: new SwitchResolver(WILDCARD), clock: new ManualClock() }, { zones });
    await monitor.selfTest();
    assert.equal(monitor.isEnabled('bl.example'), false);
    assert.match(monitor.disabledReason('bl.example')!, /127\.0\.0\.1 is listed/);
  });

  it('disables a zone that refuses us with 127.255.255.254 (public resolver)', async () => {
    const monitor = new DnsblMonitor({ resolver: new SwitchResolver(REFUSED), clock: new ManualClock() }, { zones });
    await monitor.selfTest();
    assert.equal(monitor.isEnabled('bl.example'), false);
    assert.match(monitor.health()[0]!.reason!, /127\.255\.255\.254.*public or open resolver/);
  });

  it('leaves the state alone when the test cannot complete', async () => {
    const clock = new ManualClock();
    const resolver = new SwitchResolver(EMPTY);
    const monitor = new DnsblMonitor({ resolver, clock }, { zones, intervalMs: TEN_MIN });
    await monitor.selfTest();
    assert.equal(monitor.isEnabled('bl.example'), false);
    resolver.set(TIMING_OUT);
    clock.advance(TEN_MIN);
    await monitor.refreshIfDue();
    const [h] = monitor.health();
    assert.equal(h!.enabled, false, 'still disabled');
    assert.equal(h!.lastOutcome, 'inconclusive');
    assert.match(h!.reason!, /timeout/);

    const fresh = new DnsblMonitor({ resolver, clock }, { zones });
    await fresh.selfTest();
    assert.equal(fresh.isEnabled('bl.example'), true, 'an untested zone starts enabled and stays so');
  });

  it('never tests zones with selfTest: false and reports unknown zones as enabled', async () => {
    const resolver = new SwitchResolver(EMPTY);
    const monitor = new DnsblMonitor({ resolver, clock: new ManualClock() }, { zones: [{ zone: 'bl.example', selfTest: false }] });
    assert.deepEqual(await monitor.selfTest(), []);
    assert.equal(resolver.inner.queries, 0);
    assert.equal(monitor.isEnabled('bl.example'), true);
    assert.equal(monitor.isEnabled('other.example'), true);
  });

  it('tests each zone once even when it appears in several entries', async () => {
    const resolver = new SwitchResolver(HEALTHY);
    const monitor = new DnsblMonitor(
      { resolver, clock: new ManualClock() },
      { zones: [{ zone: 'bl.example', filter: '127.0.0.2' }, { zone: 'BL.example', weight: 2 }] },
    );
    assert.equal((await monitor.selfTest()).length, 1);
    assert.equal(resolver.inner.queries, 2);
  });

  it('uses the domain and IPv6 test points of RFC 5782 §5', async () => {
    assert.deepEqual(selfTestNames('dbl.example', 'domain'), ['test.dbl.example', 'invalid.dbl.example']);
    const [pos, neg] = selfTestNames('v6.example', 'ip', 6);
    assert.equal(pos, '2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.v6.example');
    assert.equal(neg, '1.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.v6.example');

    const resolver = new SwitchResolver({ 'test.dbl.example': [{ A: '127.0.1.2' }], [pos]: [{ A: '127.0.0.2' }] });
    const monitor = new DnsblMonitor(
      { resolver, clock: new ManualClock() },
      { zones: [{ zone: 'dbl.example', type: 'domain' }, { zone: 'v6.example', selfTest: 'ipv6' }] },
    );
    const health = await monitor.selfTest();
    assert.deepEqual(
      health.map((h) => [h.zone, h.type, h.enabled]),
      [
        ['dbl.example', 'domain', true],
        ['v6.example', 'ip', true],
      ],
    );
  });

  it('runs from a timer: start() tests now, each tick tests when due, stop() clears it', async () => {
    const clock = new ManualClock();
    const resolver = new SwitchResolver(HEALTHY);
    let tick: (() => void) | null = null;
    let tickMs = 0;
    let cleared: unknown = null;
    const timers: TimerFunctions = {
      setInterval(fn, ms) {
        tick = fn;
        tickMs = ms;
        return 'handle';
      },
      clearInterval(h) {
        cleared = h;
      },
    };
    const monitor = new DnsblMonitor({ resolver, clock }, { zones, intervalMs: TEN_MIN, timers });
    monitor.start();
    assert.equal(tickMs, 60_000);
    await monitor.refreshIfDue(); // joins the run start() began
    assert.equal(resolver.inner.queries, 2);
    monitor.start(); // idempotent
    tick!();
    await monitor.refreshIfDue();
    assert.equal(resolver.inner.queries, 2, 'not due: no new queries');
    resolver.set(EMPTY);
    clock.advance(TEN_MIN);
    tick!();
    await monitor.refreshIfDue();
    assert.equal(monitor.isEnabled('bl.example'), false);
    monitor.stop();
    assert.equal(cleared, 'handle');
  });

  it('rejects a non-positive interval', () => {
    assert.throws(() => new DnsblMonitor({ resolver: new SwitchResolver({}) }, { zones, intervalMs: 0 }), /intervalMs/);
  });
});
