/**
 * What a running checkid tells about itself: the engine observer that writes the mail-log line
 * for each final verdict and counts verdicts and checks, the DNS resolver's statistics, adapter
 * connections, all served as Prometheus metrics (docs/operations.md has the list).
 */
import type { Logger } from '../engine/engine.ts';
import type { EngineObserver, VerdictEvent } from '../engine/observer.ts';
import type { ResolverStats } from '../dns/config.ts';
import type { ConnectionTracker } from './connections.ts';
import { mailLogLine, replyText } from './maillog.ts';
import { type Counter, type Gauge, type Histogram, Registry } from './prometheus.ts';

/** Latency buckets in seconds: a cached answer is well under 1 ms, the default deadline is 15 s. */
export const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30];

export interface TelemetryOptions {
  /** receives the mail-log line of each final verdict (serve: stdout) */
  mailLog?: (line: string) => void;
  /** given: each final verdict also as a JSON entry at debug level, with its explanation */
  verdictLog?: Logger;
  /** checkid's version, for checkid_build_info */
  version?: string;
}

export class Telemetry {
  readonly registry = new Registry();
  readonly observer: EngineObserver;
  readonly connections: ConnectionTracker;
  private readonly options: TelemetryOptions;
  private readonly verdicts: Counter;
  private readonly stages: Histogram;
  private readonly checkResults: Counter;
  private readonly checkDuration: Histogram;
  private readonly siqAnswers: Counter;
  private readonly connectionsActive: Gauge;
  private readonly connectionsTotal: Counter;
  private resolverStats: (() => ResolverStats) | undefined;

  constructor(options: TelemetryOptions = {}) {
    this.options = options;
    const r = this.registry;
    r.gauge('checkid_build_info', 'checkid version (always 1)', ['version']).set({ version: options.version ?? 'unknown' }, 1);
    this.verdicts = r.counter('checkid_verdicts_total', 'Final verdicts (every action but CONTINUE) by stage, action and reason', ['stage', 'action', 'reason']);
    this.stages = r.histogram('checkid_stage_duration_seconds', 'Time of each stage: its checks, the policy and the hook', ['stage'], LATENCY_BUCKETS);
    this.checkResults = r.counter('checkid_check_results_total', 'Check outcomes by check and result', ['check', 'result']);
    this.checkDuration = r.histogram('checkid_check_duration_seconds', 'Time of each check timed on its own (dkim, arc and dmarc: see the eom stage)', ['check'], LATENCY_BUCKETS);
    this.siqAnswers = r.counter('checkid_siq_answers_total', 'SIQ answers by kind (score, unknown, tempfail, redirect, error, timeout, skipped, failed)', ['kind']);
    const dnsLookups = r.counter('checkid_dns_lookups_total', 'DNS lookups the checks asked of the resolver (cache hits included)');
    const dnsSent = r.counter('checkid_dns_queries_sent_total', 'DNS queries sent to the name servers, by transport', ['transport']);
    const dnsTimeouts = r.counter('checkid_dns_timeouts_total', 'DNS tries that ran out of time');
    const dnsInFlight = r.gauge('checkid_dns_in_flight', 'DNS questions on the wire now');
    const cacheHits = r.counter('checkid_dns_cache_hits_total', 'DNS lookups answered from the cache');
    const cacheMisses = r.counter('checkid_dns_cache_misses_total', 'DNS lookups the cache could not answer');
    const cacheEvictions = r.counter('checkid_dns_cache_evictions_total', 'DNS cache entries dropped to stay under max_entries');
    const cacheEntries = r.gauge('checkid_dns_cache_entries', 'DNS answers in the cache now');
    this.connectionsActive = r.gauge('checkid_connections_active', 'Adapter connections open now, by listener', ['listener']);
    this.connectionsTotal = r.counter('checkid_connections_total', 'Adapter connections accepted, by listener', ['listener']);
    r.collect(() => {
      const s = this.resolverStats?.();
      if (!s) return;
      dnsLookups.setTotal({}, s.cache ? s.cache.hits + s.cache.misses : s.stub.queries);
      dnsSent.setTotal({ transport: 'udp' }, s.stub.udpSent);
      dnsSent.setTotal({ transport: 'tcp' }, s.stub.tcpSent);
      dnsTimeouts.setTotal({}, s.stub.timeouts);
      dnsInFlight.set({}, s.stub.inFlight);
      if (s.cache) {
        cacheHits.setTotal({}, s.cache.hits);
        cacheMisses.setTotal({}, s.cache.misses);
        cacheEvictions.setTotal({}, s.cache.evictions);
        cacheEntries.set({}, s.cache.entries);
      }
    });
    this.observer = {
      verdict: (e) => this.onVerdict(e),
      check: (e) => {
        this.checkResults.inc({ check: e.name, result: e.result });
        if (e.ms !== undefined) this.checkDuration.observe({ check: e.name }, e.ms / 1000);
        if (e.name === 'siq') this.siqAnswers.inc({ kind: e.result });
      },
    };
    this.connections = {
      opened: (listener) => {
        this.connectionsActive.inc({ listener });
        this.connectionsTotal.inc({ listener });
        let open = true;
        return () => {
          if (!open) return;
          open = false;
          this.connectionsActive.dec({ listener });
        };
      },
    };
  }

  /** The resolver whose statistics become the checkid_dns_* metrics. */
  watchResolver(stats: () => ResolverStats): void {
    this.resolverStats = stats;
  }

  /** The Prometheus exposition text (GET /metrics). */
  metrics(): string {
    return this.registry.render();
  }

  private onVerdict(e: VerdictEvent): void {
    this.stages.observe({ stage: e.stage }, e.ms / 1000);
    const v = e.verdict;
    if (v.action === 'CONTINUE') return;
    this.verdicts.inc({ stage: v.stage, action: v.action, reason: v.reason });
    this.options.mailLog?.(mailLogLine(e.facts, v, e.recipient));
    const env = e.facts.envelope;
    this.options.verdictLog?.('debug', 'verdict', {
      client: env.ip,
      helo: env.helo ?? null,
      id: env.id ?? null,
      from: env.mailFrom ?? null,
      to: e.recipient !== undefined ? [e.recipient] : [...env.rcpt],
      stage: v.stage,
      action: v.action,
      reply: replyText(v.reply),
      reason: v.reason,
      explanation: v.explanation,
      ms: Math.round(e.ms * 10) / 10,
    });
  }
}
