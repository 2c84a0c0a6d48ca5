/**
 * SIQ figures as Prometheus metrics on GET /metrics (docs/operations.md, docs/siq-server.md):
 *
 *  - the SIQ server (the siq-server listener of `checkid serve`): checkid_siq_server_queries_total,
 *    checkid_siq_server_answers_total, checkid_siq_server_cache_hits_total,
 *    checkid_siq_server_dropped_total{reason}, checkid_siq_server_rate_limited_total,
 *    checkid_siq_server_errors_total, checkid_siq_server_computed_total;
 *  - gateway reports from the engine (siq.report): checkid_siq_reports_queued_total{result},
 *    checkid_siq_reports_sent_total, checkid_siq_reports_dropped_total{reason},
 *    checkid_siq_report_requests_total{result}, checkid_siq_reports_pending.
 *
 * Both copy the figures their objects keep (`stats()`) at each scrape, through Registry.collect.
 * Registering twice on one registry (a listener started again in the same process) re-points the
 * metrics at the new object instead of failing.
 */
import type { SiqReporterStats } from '../siq/reporter.ts';
import type { SiqServerStats } from '../siq/server/server.ts';
import type { Registry } from './prometheus.ts';

const serverSources = new WeakMap<Registry, { stats: (() => SiqServerStats) | null }>();

/**
 * Exports a SIQ server's `stats()`; the result stops reading them (the figures stay at their
 * last values, as counters must not go back).
 */
export function registerSiqServerMetrics(registry: Registry, stats: () => SiqServerStats): () => void {
  let source = serverSources.get(registry);
  if (!source) {
    source = { stats: null };
    serverSources.set(registry, source);
    const holder = source;
    const queries = registry.counter('checkid_siq_server_queries_total', 'SIQ queries the SIQ server received (UDP datagrams and the HTTP form)');
    const answers = registry.counter('checkid_siq_server_answers_total', 'SIQ replies the SIQ server sent');
    const hits = registry.counter('checkid_siq_server_cache_hits_total', 'SIQ queries answered from the answer cache (no checks run)');
    const dropped = registry.counter(
      'checkid_siq_server_dropped_total',
      'SIQ queries left without a reply, by reason: unregistered (no account registered the source address), malformed (not a SIQ query)',
      ['reason'],
    );
    const limited = registry.counter(
      'checkid_siq_server_rate_limited_total',
      'SIQ queries over their source address rate limit (dropped, or answered TEMPFAIL: siq_server.rate_limit.action)',
    );
    const errors = registry.counter('checkid_siq_server_errors_total', 'SIQ ERROR replies (store failures, unusable domains)');
    const computed = registry.counter('checkid_siq_server_computed_total', 'SIQ queries whose checks ran (answer cache misses)');
    let last: SiqServerStats | undefined;
    registry.collect(() => {
      const s = holder.stats?.() ?? last;
      if (!s) return;
      last = s;
      queries.setTotal({}, s.received);
      answers.setTotal({}, s.answered);
      hits.setTotal({}, s.cacheHits);
      dropped.setTotal({ reason: 'unregistered' }, s.unregistered);
      dropped.setTotal({ reason: 'malformed' }, s.malformed);
      limited.setTotal({}, s.rateLimited);
      errors.setTotal({}, s.errors);
      computed.setTotal({}, s.computed);
    });
  }
  source.stats = stats;
  const mine = source;
  return () => {
    if (mine.stats === stats) mine.stats = null;
  };
}

/** Exports the gateway reporter's `stats()`. */
export function registerSiqReporterMetrics(registry: Registry, stats: () => SiqReporterStats): void {
  const queued = registry.counter(
    'checkid_siq_reports_queued_total',
    'Verdicts queued as gateway reports to the SIQ server (siq.report), by result',
    ['result'],
  );
  const sent = registry.counter('checkid_siq_reports_sent_total', 'Verdicts the SIQ server recorded from our gateway reports');
  const dropped = registry.counter(
    'checkid_siq_reports_dropped_total',
    'Gateway reports given up, by reason: queue_full (siq.report.max_queue reached), send_failed (the request failed or was refused)',
    ['reason'],
  );
  const requests = registry.counter('checkid_siq_report_requests_total', 'Report requests to the SIQ server, by result (ok, error)', ['result']);
  const pending = registry.gauge('checkid_siq_reports_pending', 'Verdicts waiting to be reported now');
  registry.collect(() => {
    const s = stats();
    if (s.queued.accepted + s.queued.rejected + s.requests.ok + s.requests.failed + s.dropped.queueFull === 0) return;
    queued.setTotal({ result: 'accepted' }, s.queued.accepted);
    queued.setTotal({ result: 'rejected' }, s.queued.rejected);
    sent.setTotal({}, s.sent);
    dropped.setTotal({ reason: 'queue_full' }, s.dropped.queueFull);
    dropped.setTotal({ reason: 'send_failed' }, s.dropped.sendFailed);
    requests.setTotal({ result: 'ok' }, s.requests.ok);
    requests.setTotal({ result: 'error' }, s.requests.failed);
    pending.set({}, s.pending);
  });
}
