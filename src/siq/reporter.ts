/**
 * Gateway reports from the engine (docs/siq-server.md, "Gateway reports"): an engine observer
 * that, after each message's final verdict, tells a checkid SIQ server whether the mail from
 * the client IP and MAIL FROM domain was accepted or rejected, so the server's reports_ip and
 * reports_domain checks learn from this gateway.
 *
 *   const reporter = new SiqReporter({ settings: () => config.siq.report, log });
 *   runtime.observe(reporter.observer);
 *   ...
 *   await reporter.close();          // sends what is queued (one try), stops the timer
 *
 * Which verdicts: ACCEPT and FILTER are "accepted", REJECT is "rejected"; TEMPFAIL (our DNS
 * trouble, a rate limit: nothing about the sender), DISCARD (accepted, then thrown away: the
 * sender cannot tell) and CONTINUE (not final) are not reported. One report per message: the
 * first final verdict of a message counts, so the verdicts of its several recipients (and a
 * later end-of-message verdict) do not count it again. A verdict before MAIL FROM (connect,
 * HELO) reports the IP alone; the null sender reports the IP alone.
 *
 * Reports never hold up or change a verdict: the observer only adds to a bounded in-memory
 * queue (identical reports are merged into one item with a count) and returns. Batches go out in
 * the background with `sendSiqReport`, one request at a time, every `batch_ms` or as soon as
 * `max_batch` items wait. A full queue drops new reports; a batch the server does not take is
 * dropped (no retry: reports are statistics, and the server's counts decay anyway). Both are
 * counted in `stats()` (checkid_siq_reports_dropped_total) and logged at most once a minute.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../engine/engine.ts';
import type { EngineObserver, VerdictEvent } from '../engine/observer.ts';
import type { Schema } from '../policy/schema.ts';
import { siqDomain } from './client.ts';
import { type SiqReportItem, type SiqReportOptions, type SiqReportResult, sendSiqReport } from './report.ts';
import { normalizeReportKey } from './server/store.ts';

/** `siq.report:` in the config file. */
export interface SiqReportConfig {
  /** the SIQ server's report URL (http://siq.example.net:6263/siq/report, or its http_listen base); '' = off */
  url: string;
  /** the account's API key ('' when in api_key_file) */
  apiKey: string;
  /** a file holding the API key (absolute; '' when api_key is given) */
  apiKeyFile: string;
  /** ms a report may wait for others to share its request */
  batchMs: number;
  /** items per request at most (the server takes 1000 and 64 KiB) */
  maxBatch: number;
  /** distinct items waiting at most; more are dropped */
  maxQueue: number;
  /** ms for one request */
  timeoutMs: number;
}

export function defaultSiqReportConfig(): SiqReportConfig {
  return { url: '', apiKey: '', apiKeyFile: '', batchMs: 1000, maxBatch: 500, maxQueue: 10_000, timeoutMs: 2000 };
}

const API_KEY = /^[0-9a-f]{32,128}$/;

export const SIQ_REPORT_SCHEMA: Schema = {
  type: 'object',
  props: {
    url: {
      type: 'string',
      valid: (s) => s === '' || /^https?:\/\/[^/\s]+(?:\/\S*)?$/.test(s),
      description: "'' (off) or the SIQ server's http:// or https:// address, e.g. http://siq.example.net:6263/siq/report",
    },
    api_key: {
      type: 'string',
      pattern: /^$|^[0-9a-f]{32,128}$/,
      description: "the account's API key: 32 to 128 lower-case hex digits",
    },
    api_key_file: { type: 'string' },
    batch_ms: { type: 'number', min: 0, max: 60_000, integer: true },
    max_batch: { type: 'number', min: 1, max: 1000, integer: true },
    max_queue: { type: 'number', min: 1, max: 1_000_000, integer: true },
    timeout_ms: { type: 'number', min: 100, max: 60_000, integer: true },
  },
};

type Raw = Record<string, unknown>;

/** The section (validated by SIQ_REPORT_SCHEMA) on top of the defaults; api_key_file relative to `baseDir`. */
export function siqReportConfigFrom(section: unknown, baseDir = process.cwd()): SiqReportConfig {
  const c = defaultSiqReportConfig();
  if (section === null || typeof section !== 'object') return c;
  const s = section as Raw;
  if (typeof s.url === 'string') c.url = s.url.trim();
  if (typeof s.api_key === 'string') c.apiKey = s.api_key;
  if (typeof s.api_key_file === 'string' && s.api_key_file !== '') c.apiKeyFile = resolve(baseDir, s.api_key_file);
  if (typeof s.batch_ms === 'number') c.batchMs = s.batch_ms;
  if (typeof s.max_batch === 'number') c.maxBatch = s.max_batch;
  if (typeof s.max_queue === 'number') c.maxQueue = s.max_queue;
  if (typeof s.timeout_ms === 'number') c.timeoutMs = s.timeout_ms;
  return c;
}

/** The key in an api_key_file: its first line, trimmed. */
function keyFromFile(text: string): string {
  return (text.split('\n')[0] ?? '').trim();
}

/**
 * Problems the schema cannot see, as key paths inside `siq.report`: a URL without a key, two
 * keys, a key file that cannot be read or holds no key.
 */
export function siqReportProblems(
  c: SiqReportConfig,
  read: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): Array<{ path: string[]; message: string }> {
  const out: Array<{ path: string[]; message: string }> = [];
  if (c.apiKey !== '' && c.apiKeyFile !== '')
    out.push({ path: ['api_key_file'], message: 'and api_key are both set: keep one' });
  if (c.apiKeyFile !== '') {
    let text: string | undefined;
    try {
      text = read(c.apiKeyFile);
    } catch (err) {
      out.push({
        path: ['api_key_file'],
        message: `cannot read ${c.apiKeyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      });
    }
    if (text !== undefined && !API_KEY.test(keyFromFile(text)))
      out.push({
        path: ['api_key_file'],
        message: `${c.apiKeyFile} does not start with an API key (32 to 128 lower-case hex digits, as the SIQ server's key page or \`checkid siq account add\` shows it)`,
      });
  } else if (c.url !== '' && c.apiKey === '') {
    out.push({
      path: ['url'],
      message: "is set but there is no API key: set api_key or api_key_file (the account's key on the SIQ server)",
    });
  }
  return out;
}

export interface SiqReporterStats {
  /** verdicts taken into the queue, by result */
  queued: { accepted: number; rejected: number };
  /** verdicts the server recorded */
  sent: number;
  /** verdicts given up: the queue was full, or their request failed */
  dropped: { queueFull: number; sendFailed: number };
  /** requests made, by outcome */
  requests: { ok: number; failed: number };
  /** verdicts waiting now (in the queue and in the request on its way) */
  pending: number;
}

export interface SiqReporterOptions {
  /** read at each verdict and each batch, so a policy reload applies */
  settings: () => SiqReportConfig;
  /** the sender (default sendSiqReport) */
  send?: (options: SiqReportOptions) => Promise<SiqReportResult>;
  /** reads api_key_file (default: the file, each batch, so a rotated key needs no reload) */
  readKey?: (path: string) => Promise<string>;
  log?: Logger;
  /** at most one warning about failed or dropped reports per this many ms (default 60000) */
  warnIntervalMs?: number;
}

/** A report's count is at most this (the server's limit per item). */
const MAX_COUNT = 10_000;
/** JSON octets per request at most: the server takes 64 KiB. */
const MAX_BODY = 60_000;

interface Item {
  ip?: string;
  domain?: string;
  result: 'accepted' | 'rejected';
  count: number;
}

type Result = Item['result'];

/** The report for a verdict: accepted, rejected, or none (TEMPFAIL, DISCARD, CONTINUE). */
export function reportResultOf(action: string): Result | null {
  if (action === 'ACCEPT' || action === 'FILTER') return 'accepted';
  if (action === 'REJECT') return 'rejected';
  return null;
}

export class SiqReporter {
  readonly observer: EngineObserver;
  private readonly settings: () => SiqReportConfig;
  private readonly send: (options: SiqReportOptions) => Promise<SiqReportResult>;
  private readonly readKey: (path: string) => Promise<string>;
  private readonly log: Logger | undefined;
  private readonly warnIntervalMs: number;
  /** merged items by result|ip|domain */
  private readonly queue = new Map<string, Item>();
  /** items whose count reached MAX_COUNT: sent first, no longer merged into */
  private readonly full: Item[] = [];
  private queuedCount = 0;
  /** messages already reported: their recipient lists (a new message gets a new list) */
  private readonly seen = new WeakSet<object>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private inFlightCount = 0;
  private closed = false;
  private lastWarn = Number.NEGATIVE_INFINITY;
  private unwarned = 0;
  private readonly counters = {
    queued: { accepted: 0, rejected: 0 },
    sent: 0,
    dropped: { queueFull: 0, sendFailed: 0 },
    requests: { ok: 0, failed: 0 },
  };

  constructor(options: SiqReporterOptions) {
    this.settings = options.settings;
    this.send = options.send ?? sendSiqReport;
    this.readKey = options.readKey ?? ((path) => readFile(path, 'utf8'));
    this.log = options.log;
    this.warnIntervalMs = options.warnIntervalMs ?? 60_000;
    this.observer = { verdict: (e) => this.onVerdict(e) };
  }

  stats(): SiqReporterStats {
    const c = this.counters;
    return {
      queued: { ...c.queued },
      sent: c.sent,
      dropped: { ...c.dropped },
      requests: { ...c.requests },
      pending: this.queuedCount + this.inFlightCount,
    };
  }

  private onVerdict(e: VerdictEvent): void {
    if (this.closed) return;
    const result = reportResultOf(e.verdict.action);
    if (!result) return;
    const settings = this.settings();
    if (settings.url === '') return;
    const env = e.facts.envelope;
    // one report per message: resetMessage gives each message a new recipient list
    if (this.seen.has(env.rcpt)) return;
    this.seen.add(env.rcpt);
    this.add({ ip: env.ip, domain: env.mailFrom ?? '', result }, settings);
  }

  /**
   * Queues one report (an address in `domain` is cut to its domain). Returns false when it was
   * dropped (queue full) or names nothing the server can use.
   */
  add(report: { ip?: string; domain?: string; result: Result }, settings = this.settings()): boolean {
    const ip = usable('ip', report.ip ?? '');
    // as the SIQ client sends it: the part after "@", lower case, IDNs as A-labels
    const domain = usable('domain', siqDomain(report.domain ?? '') ?? '');
    if (!ip && !domain) return false;
    const key = `${report.result}|${ip ?? ''}|${domain ?? ''}`;
    const item = this.queue.get(key);
    if (item) {
      item.count++;
      if (item.count >= MAX_COUNT) {
        this.queue.delete(key);
        this.full.push(item);
      }
    } else {
      if (this.queue.size + this.full.length >= settings.maxQueue) {
        this.counters.dropped.queueFull++;
        this.warn('SIQ reports dropped: the queue is full (the SIQ server is slow or unreachable)');
        return false;
      }
      this.queue.set(key, { ...(ip ? { ip } : {}), ...(domain ? { domain } : {}), result: report.result, count: 1 });
    }
    this.counters.queued[report.result]++;
    this.queuedCount++;
    this.schedule(settings);
    return true;
  }

  private items(): number {
    return this.queue.size + this.full.length;
  }

  /** Starts a request now when a batch is full, else once batch_ms has passed. */
  private schedule(settings: SiqReportConfig): void {
    if (this.inFlight || this.closed) return;
    if (this.items() >= settings.maxBatch || settings.batchMs === 0) {
      this.flushSoon();
      return;
    }
    if (!this.timer && this.items() > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flushSoon();
      }, settings.batchMs);
      this.timer.unref();
    }
  }

  private flushSoon(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.inFlight || this.items() === 0) return;
    this.inFlight = this.sendBatch().finally(() => {
      this.inFlight = undefined;
      if (!this.closed) this.schedule(this.settings());
    });
  }

  /** Takes up to max_batch items (and 60 KB of JSON) off the queue, oldest first. */
  private take(maxBatch: number): Item[] {
    const out: Item[] = [];
    let bytes = 20;
    const fits = (item: Item) => {
      const size = JSON.stringify(item).length + 1;
      if (out.length >= maxBatch || bytes + size > MAX_BODY) return false;
      bytes += size;
      out.push(item);
      return true;
    };
    while (this.full.length > 0 && fits(this.full[0]!)) this.full.shift();
    for (const [key, item] of this.queue) {
      if (!fits(item)) break;
      this.queue.delete(key);
    }
    return out;
  }

  private async apiKey(settings: SiqReportConfig): Promise<string> {
    if (settings.apiKeyFile === '') return settings.apiKey;
    return keyFromFile(await this.readKey(settings.apiKeyFile));
  }

  private async sendBatch(): Promise<void> {
    const settings = this.settings();
    const batch = this.take(settings.maxBatch);
    const count = batch.reduce((n, i) => n + i.count, 0);
    this.queuedCount -= count;
    if (settings.url === '') return; // reports were turned off by a reload: what waited is discarded
    this.inFlightCount = count;
    let result: SiqReportResult;
    try {
      const apiKey = await this.apiKey(settings);
      result = await this.send({
        url: settings.url,
        apiKey,
        reports: batch.map((i): SiqReportItem => ({ ...i })),
        timeoutMs: settings.timeoutMs,
      });
    } catch (err) {
      result = { ok: false, error: `SIQ report: ${(err as Error).message}` };
    } finally {
      this.inFlightCount = 0;
    }
    if (result.ok) {
      this.counters.requests.ok++;
      this.counters.sent += count;
      return;
    }
    this.counters.requests.failed++;
    this.counters.dropped.sendFailed += count;
    this.warn('SIQ reports dropped: the server did not take them', { error: result.error, reports: count });
  }

  private warn(message: string, fields: Record<string, unknown> = {}): void {
    const now = Date.now();
    if (now - this.lastWarn < this.warnIntervalMs) {
      this.unwarned++;
      return;
    }
    this.log?.('warn', message, {
      ...fields,
      ...(this.unwarned > 0 ? { 'similar since last warning': this.unwarned } : {}),
      dropped_queue_full: this.counters.dropped.queueFull,
      dropped_send_failed: this.counters.dropped.sendFailed,
    });
    this.lastWarn = now;
    this.unwarned = 0;
  }

  /** Waits for the request on its way and sends everything queued (one try each). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.inFlight || this.items() > 0) {
      if (!this.inFlight) this.flushSoon();
      await this.inFlight;
    }
  }

  /** Sends what is queued, then takes no more reports. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

/** The key as the server stores it, or null when the server would refuse it. */
function usable(kind: 'ip' | 'domain', value: string): string | null {
  if (value === '') return null;
  try {
    return normalizeReportKey(kind, value);
  } catch {
    return null;
  }
}
