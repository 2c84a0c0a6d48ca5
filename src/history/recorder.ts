/**
 * The engine observer that keeps the verdict history: each final verdict (every action but
 * CONTINUE) becomes a record (record.ts) appended to a HistoryStore.
 *
 * It never slows or fails a verdict: the observer call only summarizes the event and queues the
 * record; a background writer appends in batches. The queue is bounded: when the store is slower
 * than the mail (a busy disk, Redis down), new records are dropped and counted rather than held
 * in memory without end. A store that fails is counted and reported (rate-limited), never thrown.
 */
import type { Logger } from '../engine/engine.ts';
import type { EngineObserver, VerdictEvent } from '../engine/observer.ts';
import type { Registry } from '../telemetry/prometheus.ts';
import { recordFromEvent, type VerdictRecord } from './record.ts';
import type { HistoryStore } from './store.ts';

export interface RecorderOptions {
  store: HistoryStore;
  /** records waiting for the store; beyond it new ones are dropped (default 10,000) */
  maxQueue?: number;
  /** records per append (default 500) */
  batch?: number;
  now?: () => number;
  log?: Logger;
  /** least time between two "history store failed" log entries (default 60 s) */
  warnEveryMs?: number;
}

export interface RecorderStats {
  /** records stored */
  written: number;
  /** records dropped because the queue was full */
  dropped: number;
  /** records lost because the store failed to append them */
  failed: number;
  /** records waiting now */
  queued: number;
}

export class HistoryRecorder {
  readonly observer: EngineObserver;
  private readonly store: HistoryStore;
  private readonly maxQueue: number;
  private readonly batch: number;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly warnEveryMs: number;
  private queue: VerdictRecord[] = [];
  private writing: Promise<void> | null = null;
  private scheduled = false;
  private closed = false;
  private lastWarn = Number.NEGATIVE_INFINITY;
  private readonly counts = { written: 0, dropped: 0, failed: 0 };

  constructor(options: RecorderOptions) {
    this.store = options.store;
    this.maxQueue = options.maxQueue ?? 10_000;
    this.batch = options.batch ?? 500;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => {});
    this.warnEveryMs = options.warnEveryMs ?? 60_000;
    this.observer = { verdict: (e) => this.onVerdict(e) };
  }

  stats(): RecorderStats {
    return { ...this.counts, queued: this.queue.length };
  }

  /** checkid_history_records_total{outcome} and checkid_history_queue on a metrics registry. */
  registerMetrics(registry: Registry): void {
    const total = registry.counter('checkid_history_records_total', 'Final verdicts for the verdict history, by outcome: written, dropped (queue full), failed (store error)', ['outcome']);
    const queued = registry.gauge('checkid_history_queue', 'Verdict records waiting for the history store');
    registry.collect(() => {
      const s = this.stats();
      total.setTotal({ outcome: 'written' }, s.written);
      total.setTotal({ outcome: 'dropped' }, s.dropped);
      total.setTotal({ outcome: 'failed' }, s.failed);
      queued.set({}, s.queued);
    });
  }

  private onVerdict(e: VerdictEvent): void {
    if (e.verdict.action === 'CONTINUE' || this.closed) return;
    if (this.queue.length >= this.maxQueue) {
      this.counts.dropped++;
      this.warn('history store is behind: verdict records dropped', { dropped: this.counts.dropped, queue: this.maxQueue });
      return;
    }
    this.queue.push(recordFromEvent(e, this.now()));
    this.schedule();
  }

  private warn(message: string, fields: Record<string, unknown>): void {
    const t = this.now();
    if (t - this.lastWarn < this.warnEveryMs) return;
    this.lastWarn = t;
    this.log('warn', message, { store: this.store.name, ...fields });
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    // after the verdict's own work: the adapter answers first
    setImmediate(() => {
      this.scheduled = false;
      this.writing = this.drainQueue().finally(() => {
        this.writing = null;
        if (this.queue.length > 0 && !this.closed) this.schedule();
      });
    });
  }

  private async drainQueue(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.batch);
      try {
        await this.store.append(batch);
        this.counts.written += batch.length;
      } catch (err) {
        this.counts.failed += batch.length;
        this.warn('history store failed: verdict records lost', { error: (err as Error).message, failed: this.counts.failed });
      }
    }
  }

  /** Writes what is queued (waiting for a write under way). */
  async flush(): Promise<void> {
    while (this.writing || this.scheduled || this.queue.length > 0) {
      if (this.writing) await this.writing;
      else if (this.queue.length > 0 && !this.scheduled) {
        this.writing = this.drainQueue().finally(() => {
          this.writing = null;
        });
      } else await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Stops taking verdicts and writes what is queued (the store stays open: its owner closes it). */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}
