/**
 * RFC 5782 §5 self-test of DNSxL zones. Every IPv4 list must list 127.0.0.2 and must not list
 * 127.0.0.1 (IPv6 lists: ::ffff:7f00:2 / ::ffff:7f00:1; domain lists: "test" / "invalid").
 *
 * A zone that fails (it lists nothing, answers everything, or answers with error codes such as
 * Spamhaus's 127.255.255.254 for queries from public resolvers) is disabled, so its answers are
 * not trusted; a later passing test enables it again. A test that cannot complete (timeout,
 * SERVFAIL) is inconclusive and leaves the zone as it was.
 *
 * Tests run on demand (`selfTest()`), when due by the injected clock (`refreshIfDue()`), or from
 * a timer (`start()`) that calls `refreshIfDue()`.
 */
import { type Clock, systemClock } from '../../common/clock.ts';
import { reverseLabels } from '../../common/ip.ts';
import type { Resolver } from '../../dns/types.ts';
import { classifyAnswer } from './answer.ts';
import { type CompiledZone, compileZones, type DnsblZoneConfig, type DnsblZoneHealth } from './check.ts';

export type SelfTestOutcome = 'pass' | 'fail' | 'inconclusive';

export interface ZoneHealth {
  zone: string;
  type: 'ip' | 'domain';
  /** false while the last conclusive self-test failed */
  enabled: boolean;
  /** clock time (ms) of the last test, if any */
  lastTest?: number;
  lastOutcome?: SelfTestOutcome;
  /** why the last test failed or was inconclusive */
  reason?: string;
}

export interface TimerFunctions {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface DnsblMonitorOptions {
  /** the zones to watch; zones with selfTest: false are never tested and stay enabled */
  zones: readonly DnsblZoneConfig[];
  /** how often the self-test is due, in ms; default 10 minutes */
  intervalMs?: number;
  /** replaces setInterval/clearInterval for start()/stop(); tests pass fakes */
  timers?: TimerFunctions;
}

export const DEFAULT_SELF_TEST_INTERVAL_MS = 10 * 60 * 1000;

function mappedV6(last: number): string {
  const bytes = new Uint8Array(16);
  bytes.set([0xff, 0xff, 127, 0, 0, last], 10);
  return reverseLabels({ family: 6, bytes });
}

/** The names whose listing is tested: [must be listed, must not be listed]. */
export function selfTestNames(zone: string, type: 'ip' | 'domain', family: 4 | 6 = 4): [string, string] {
  if (type === 'domain') return [`test.${zone}`, `invalid.${zone}`];
  if (family === 6) return [`${mappedV6(2)}.${zone}`, `${mappedV6(1)}.${zone}`];
  return [`2.0.0.127.${zone}`, `1.0.0.127.${zone}`];
}

interface Watched {
  zone: CompiledZone;
  family: 4 | 6;
  health: ZoneHealth;
}

export class DnsblMonitor implements DnsblZoneHealth {
  private readonly resolver: Resolver;
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly timers: TimerFunctions;
  private readonly watched = new Map<string, Watched>();
  private lastRun: number | undefined;
  private running: Promise<ZoneHealth[]> | null = null;
  private timer: unknown = null;

  constructor(deps: { resolver: Resolver; clock?: Clock }, options: DnsblMonitorOptions) {
    this.resolver = deps.resolver;
    this.clock = deps.clock ?? systemClock;
    this.intervalMs = options.intervalMs ?? DEFAULT_SELF_TEST_INTERVAL_MS;
    if (!(this.intervalMs > 0)) throw new Error('DnsblMonitor: intervalMs must be positive');
    this.timers = options.timers ?? {
      setInterval: (fn, ms) => {
        const t = setInterval(fn, ms);
        t.unref();
        return t;
      },
      clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
    };
    const compiled = compileZones(options.zones);
    for (const zone of compiled) {
      if (zone.selfTest === false || this.watched.has(zone.zone)) continue;
      const health: ZoneHealth = { zone: zone.zone, type: zone.type, enabled: true };
      this.watched.set(zone.zone, { zone, family: zone.selfTest, health });
    }
  }

  isEnabled(zone: string): boolean {
    return this.watched.get(zone.toLowerCase())?.health.enabled ?? true;
  }

  disabledReason(zone: string): string | undefined {
    const w = this.watched.get(zone.toLowerCase());
    return w && !w.health.enabled ? `self-test failed: ${w.health.reason ?? 'unknown'}` : undefined;
  }

  /** A snapshot of every watched zone's state. */
  health(): ZoneHealth[] {
    return [...this.watched.values()].map((w) => ({ ...w.health }));
  }

  /** True when no test has run yet or the interval has passed since the last one. */
  isDue(): boolean {
    return this.lastRun === undefined || this.clock.now() - this.lastRun >= this.intervalMs;
  }

  /** Tests every watched zone now, in parallel. Concurrent callers share one run. */
  selfTest(): Promise<ZoneHealth[]> {
    if (this.running) return this.running;
    this.lastRun = this.clock.now();
    const run = Promise.all([...this.watched.values()].map((w) => this.testZone(w))).then(() => this.health());
    this.running = run.finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Runs the self-test if it is due; resolves to null when it was not. */
  async refreshIfDue(): Promise<ZoneHealth[] | null> {
    if (this.running) return this.running;
    if (!this.isDue()) return null;
    return this.selfTest();
  }

  /** Checks every `tickMs` (default: a tenth of the interval, at most a minute) whether a test is due. */
  start(tickMs = Math.min(60_000, Math.max(1000, Math.floor(this.intervalMs / 10)))): void {
    if (this.timer !== null) return;
    this.timer = this.timers.setInterval(() => {
      void this.refreshIfDue();
    }, tickMs);
    void this.refreshIfDue();
  }

  stop(): void {
    if (this.timer === null) return;
    this.timers.clearInterval(this.timer);
    this.timer = null;
  }

  private async testZone(w: Watched): Promise<void> {
    const [positive, negative] = selfTestNames(w.zone.zone, w.zone.type, w.family);
    const [pos, neg] = await Promise.all([
      this.resolver.query(positive, 'A').then((r) => classifyAnswer(r, w.zone.errorFilter)),
      this.resolver.query(negative, 'A').then((r) => classifyAnswer(r, w.zone.errorFilter)),
    ]);
    const h = w.health;
    h.lastTest = this.clock.now();
    const [posLabel, negLabel] = w.zone.type === 'domain' ? ['test', 'invalid'] : testPointLabels(w.family);
    // error codes from the list operator are conclusive (we are refused); DNS failures are not
    const refused = [pos, neg].find((a) => a.kind === 'error' && a.codes.length > 0);
    if (refused && refused.kind === 'error') {
      this.conclude(h, 'fail', refused.error);
      return;
    }
    const failed = [pos, neg].find((a) => a.kind === 'error');
    if (failed && failed.kind === 'error') {
      h.lastOutcome = 'inconclusive';
      h.reason = `lookup failed: ${failed.error}`;
      return;
    }
    if (pos.kind !== 'codes') this.conclude(h, 'fail', `${posLabel} is not listed (the zone lists nothing?)`);
    else if (neg.kind === 'codes') this.conclude(h, 'fail', `${negLabel} is listed (the zone answers everything?)`);
    else this.conclude(h, 'pass');
  }

  private conclude(h: ZoneHealth, outcome: 'pass' | 'fail', reason?: string): void {
    h.lastOutcome = outcome;
    h.enabled = outcome === 'pass';
    if (reason === undefined) delete h.reason;
    else h.reason = reason;
  }
}

function testPointLabels(family: 4 | 6): [string, string] {
  return family === 6 ? ['::ffff:127.0.0.2', '::ffff:127.0.0.1'] : ['127.0.0.2', '127.0.0.1'];
}
