/**
 * The replay report: `report.json` (every message, totals, score distributions, the threshold
 * what-if) written as the run goes, and `report.html`, one self-contained page (inline CSS and
 * SVG, no script, no external resource) with the charts and tables.
 *
 * Memory: the messages stream to report.json; what stays in memory for the charts and the
 * what-if is a slimmed copy of each verdict record (no reply text or explanation), 0.5 to 1.5 KB
 * per message, for at most `sample` messages (default 200,000): past that, a uniform random
 * sample of the checked messages (reservoir sampling) stands for all of them, and the report says
 * so. The totals (actions, reasons, …) always count every message. The HTML lists at most
 * MAX_LISTED entries of each table.
 */
import { once } from 'node:events';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { ACTION_COLORS, escapeXml, histogramSvg, type Series } from '../dashboard/charts.ts';
import { ACTIONS } from '../engine/verdict.ts';
import type { VerdictRecord } from '../history/record.ts';
import { type Candidate, candidateOf, distributions, type Histogram, whatIf } from '../history/whatif.ts';
import type { Config, Thresholds } from '../policy/config.ts';
import type { ReplayEntry } from './runner.ts';

export const REPORT_VERSION = 1;
/** rows of each list the HTML page shows (the JSON has every message) */
export const MAX_LISTED = 200;
/** verdict records kept for the charts and the what-if (the history store's range cap too) */
export const DEFAULT_SAMPLE = 200_000;

export const DNS_NOTE =
  'Verdicts are made with DNS as it answers now, not as it answered when the message arrived: SPF records, ' +
  'DNS lists, reverse DNS, reputation and DKIM keys may have changed since, so a verdict may differ from the ' +
  'original one for that reason alone.';

export interface ReportMeta {
  inputs: string[];
  config: string | null;
  resolver: string[];
  jobs: number;
  hop: { trustedHops?: number; receivedBy?: string[] };
  mboxFormat: string;
  envelopeFile: string | null;
  /** records kept for the charts and what-if (default DEFAULT_SAMPLE) */
  sample?: number;
}

export interface Totals {
  messages: number;
  checked: number;
  skipped: number;
  errors: number;
  /** checked messages by action and by reason */
  actions: Record<string, number>;
  reasons: Record<string, number>;
  /** reason → action → messages */
  reasonActions: Record<string, Record<string, number>>;
  stages: Record<string, number>;
  /** skipped messages by cause (no-received, no-client-ip, trusted-hops, received-by) */
  skippedBy: Record<string, number>;
  envelopeSources: Record<string, number>;
  receivedFormats: Record<string, number>;
  warnings: Record<string, number>;
  siqKinds: Record<string, number>;
  /** engine time per checked message, in milliseconds */
  ms: { average: number; max: number };
}

export interface WhatIfRow {
  /** the config key the row changes */
  threshold: string;
  /** its value in the row ("off" for a disabled one) */
  value: string;
  /** the config's own value */
  current: boolean;
  candidate: Candidate;
  rejected: number;
  tagged: number;
  accepted: number;
  changed: number;
  newlyRejected: number;
  noLongerRejected: number;
  newlyTagged: number;
  noLongerTagged: number;
  /** the session would have gone on to checks that did not run: outcome not known */
  unknown: number;
  /** the senders whose verdict changes most */
  senders: Array<{ key: string; changed: number }>;
}

/**
 * The fields the what-if and the charts read; the rest of a record streams to the JSON file only.
 * Copied through JSON so that no string in it is a slice keeping the whole message text alive.
 */
function slim(r: VerdictRecord): VerdictRecord {
  return JSON.parse(
    JSON.stringify({
      ...r,
      reply: { code: r.reply.code, xcode: '', text: '' },
      // decide.ts's temperror explanation names the rule the what-if needs; others are not read
      explanation: r.reason === 'dns-temperror' ? r.explanation.slice(0, 1) : [],
      facts: '',
    }),
  ) as VerdictRecord;
}

/** A map keyed by outside text (reasons from a policy hook): no prototype to pollute. */
function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function bump(map: Record<string, number>, key: string, n = 1): void {
  map[key] = (map[key] ?? 0) + n;
}

function warningKind(w: string): string {
  if (w.includes('is private')) return 'private-client-ip';
  if (w.startsWith('no MAIL FROM')) return 'no-mail-from';
  if (w.startsWith('no RCPT')) return 'no-rcpt';
  return 'other';
}

export class ReplayReport {
  readonly dir: string;
  readonly jsonPath: string;
  readonly htmlPath: string;
  private readonly meta: ReportMeta;
  private readonly started = new Date();
  private out: WriteStream | null = null;
  private first = true;
  private readonly records: VerdictRecord[] = [];
  private readonly sample: number;
  /** a fixed-seed generator for the reservoir: the same input gives the same report */
  private seed = 0x2545f491;
  private readonly totals: Totals = {
    messages: 0,
    checked: 0,
    skipped: 0,
    errors: 0,
    actions: dict(),
    reasons: dict(),
    reasonActions: dict(),
    stages: dict(),
    skippedBy: dict(),
    envelopeSources: dict(),
    receivedFormats: dict(),
    warnings: dict(),
    siqKinds: dict(),
    ms: { average: 0, max: 0 },
  };
  private msSum = 0;
  /** entries listed in the HTML: refused or deferred verdicts, skipped, errors */
  private readonly listed = { refused: [] as ReplayEntry[], skipped: [] as ReplayEntry[], errors: [] as ReplayEntry[] };

  constructor(dir: string, meta: ReportMeta) {
    this.dir = dir;
    this.meta = meta;
    this.sample = meta.sample ?? DEFAULT_SAMPLE;
    this.jsonPath = join(dir, 'report.json');
    this.htmlPath = join(dir, 'report.html');
  }

  /** Makes the directory and starts report.json (throws when it cannot). */
  async open(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const out = createWriteStream(this.jsonPath);
    await once(out, 'open');
    out.on('error', () => {});
    this.out = out;
    const head = {
      report: 'checkid replay',
      version: REPORT_VERSION,
      started: this.started.toISOString(),
      ...this.meta,
      note: DNS_NOTE,
    };
    const text = JSON.stringify(head, null, 1);
    out.write(`${text.slice(0, -2)},\n "messages": [\n`);
  }

  /** One message's outcome (in order). */
  add(entry: ReplayEntry): void {
    const t = this.totals;
    t.messages++;
    if (this.out) {
      this.out.write(`${this.first ? '' : ',\n'}  ${JSON.stringify(entry)}`);
      this.first = false;
    }
    for (const w of entry.warnings) bump(t.warnings, warningKind(w));
    if (entry.envelope) {
      bump(t.envelopeSources, entry.envelope.source);
      if (entry.envelope.received) bump(t.receivedFormats, entry.envelope.received.format);
    }
    if (entry.status === 'skipped') {
      t.skipped++;
      bump(t.skippedBy, entry.skipCode ?? 'other');
      if (this.listed.skipped.length < MAX_LISTED) this.listed.skipped.push(entry);
      return;
    }
    if (entry.status === 'error' || !entry.verdict) {
      t.errors++;
      if (this.listed.errors.length < MAX_LISTED) this.listed.errors.push(entry);
      return;
    }
    const v = entry.verdict;
    t.checked++;
    bump(t.actions, v.action);
    bump(t.reasons, v.reason);
    t.reasonActions[v.reason] ??= dict();
    bump(t.reasonActions[v.reason]!, v.action);
    bump(t.stages, v.stage);
    if (v.siq) bump(t.siqKinds, v.siq.kind);
    this.msSum += v.ms;
    if (v.ms > t.ms.max) t.ms.max = v.ms;
    if ((v.action === 'REJECT' || v.action === 'TEMPFAIL') && this.listed.refused.length < MAX_LISTED) this.listed.refused.push(entry);
    // reservoir sampling (Algorithm R): every checked message has the same chance to be kept
    if (this.records.length < this.sample) this.records.push(slim(v));
    else {
      const j = Math.floor(this.random() * t.checked);
      if (j < this.sample) this.records[j] = slim(v);
    }
  }

  /** xorshift32 in [0, 1) */
  private random(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed / 4294967296;
  }

  get counts(): Readonly<Totals> {
    return this.totals;
  }

  /** Ends report.json with the totals, distributions and what-if, and writes report.html. */
  async finish(config: Config): Promise<{ totals: Totals; whatIf: WhatIfRow[] }> {
    const t = this.totals;
    t.ms.average = t.checked > 0 ? Math.round((this.msSum / t.checked) * 10) / 10 : 0;
    t.ms.max = Math.round(t.ms.max * 10) / 10;
    const dist = distributions(this.records);
    const rows = whatIfRows(this.records, config);
    const finished = new Date();
    if (this.out) {
      const tail = {
        finished: finished.toISOString(),
        totals: t,
        // the charts' distributions and the what-if are over these many checked messages
        sampled: this.records.length,
        distributions: dist,
        thresholds: candidateOf(config),
        whatIf: rows,
      };
      const text = JSON.stringify(tail, null, 1);
      this.out.write(`${this.first ? '' : '\n'} ],\n${text.slice(2)}\n`);
      const out = this.out;
      this.out = null;
      await new Promise<void>((resolve, reject) => {
        out.once('error', reject);
        out.end(() => resolve());
      });
    }
    const html = renderHtml({ meta: this.meta, started: this.started, finished, totals: t, dist, rows, config, listed: this.listed, sampled: this.records.length });
    const page = createWriteStream(this.htmlPath);
    await new Promise<void>((resolve, reject) => {
      page.once('error', reject);
      page.end(html, () => resolve());
    });
    return { totals: t, whatIf: rows };
  }

  /** Closes report.json without a summary (the run failed). */
  abort(): void {
    this.out?.end(`\n ]\n}\n`);
    this.out = null;
  }
}

// --- the what-if table -------------------------------------------------------------------------

function unique(values: number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

const off = (n: number): string => (n < 0 ? 'off' : String(n));
const thresholdText = (t: Thresholds | null): string => {
  if (!t) return 'off';
  const parts = [t.average !== undefined ? `average ${t.average}` : '', t.min !== undefined ? `min ${t.min}` : '', t.max !== undefined ? `max ${t.max}` : ''];
  return parts.filter((p) => p).join(', ') || 'off';
};

/**
 * The thresholds tried: each one alone, at a few values around its current one, for the numbers
 * the replay saw (no SIQ score: no SIQ rows; no DNS list: no prescreen rows; no ratings: none).
 */
export function whatIfRows(records: readonly VerdictRecord[], config: Config): WhatIfRow[] {
  const cur = candidateOf(config);
  const rows: WhatIfRow[] = [];
  const add = (threshold: string, value: string, candidate: Candidate, current: boolean) => {
    const r = whatIf(records, config, candidate, { top: 5, samples: 0 });
    rows.push({
      threshold,
      value,
      current,
      candidate,
      rejected: r.rejectedAfter,
      tagged: r.taggedAfter,
      accepted: acceptedAfter(r),
      changed: r.totals.changed,
      newlyRejected: r.totals.newlyRejected,
      noLongerRejected: r.totals.noLongerRejected,
      newlyTagged: r.totals.newlyTagged,
      noLongerTagged: r.totals.noLongerTagged,
      unknown: r.totals.unknown,
      senders: r.senders.map((s) => ({ key: s.key, changed: s.changed })),
    });
  };
  const acceptedBefore = records.filter((r) => r.action === 'ACCEPT').length;
  const acceptedAfter = (r: ReturnType<typeof whatIf>) => acceptedBefore + r.totals.newlyAccepted - r.totals.noLongerAccepted;

  if (records.some((r) => r.siq?.score !== null && r.siq?.score !== undefined)) {
    for (const v of unique([-1, 10, 20, 30, 40, 50, cur.siqRejectScore])) add('siq.reject_score', off(v), { siqRejectScore: v }, v === cur.siqRejectScore);
    for (const v of unique([-1, 20, 40, 50, 60, 80, cur.siqTagScore])) add('siq.tag_score', off(v), { siqTagScore: v }, v === cur.siqTagScore);
  }
  if (records.some((r) => r.dnsbl !== null)) {
    for (const v of unique([1, 2, 3, 4, 5, cur.dnsblThreshold])) add('prescreen.threshold', String(v), { dnsblThreshold: v }, v === cur.dnsblThreshold);
  }
  const averages = records.flatMap((r) => (r.ratings?.status === 'found' && r.ratings.average !== null ? [r.ratings.average] : []));
  if (averages.length > 0) {
    const sorted = [...averages].sort((a, b) => a - b);
    // a few averages the replay saw (quartiles and ends), rounded
    const picks = unique([0, 0.1, 0.25, 0.5, 0.75].map((q) => Math.round(sorted[Math.floor(q * (sorted.length - 1))]! * 10) / 10));
    add('ratings.reject', thresholdText(cur.ratingsReject), {}, true);
    for (const v of picks) {
      const t = { average: v };
      if (thresholdText(t) !== thresholdText(cur.ratingsReject)) add('ratings.reject', thresholdText(t), { ratingsReject: t }, false);
    }
    if (cur.ratingsReject) add('ratings.reject', 'off', { ratingsReject: null }, false);
    add('ratings.accept', thresholdText(cur.ratingsAccept), {}, true);
    for (const v of picks) {
      const t = { average: v };
      if (thresholdText(t) !== thresholdText(cur.ratingsAccept)) add('ratings.accept', thresholdText(t), { ratingsAccept: t }, false);
    }
    if (cur.ratingsAccept) add('ratings.accept', 'off', { ratingsAccept: null }, false);
  }
  return rows;
}

// --- report.html -------------------------------------------------------------------------------

interface HtmlInput {
  meta: ReportMeta;
  started: Date;
  finished: Date;
  totals: Totals;
  dist: ReturnType<typeof distributions>;
  rows: WhatIfRow[];
  config: Config;
  listed: { refused: ReplayEntry[]; skipped: ReplayEntry[]; errors: ReplayEntry[] };
  sampled: number;
}

const e = escapeXml;

function where(entry: ReplayEntry): string {
  return entry.offset !== undefined ? `${entry.file}:${entry.offset} (#${entry.index})` : entry.file;
}

function table(head: string[], rows: string[][], cls = ''): string {
  const body =
    rows.length === 0
      ? `<tr><td colspan="${head.length}" class="none">none</td></tr>`
      : rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead><tbody>${body}</tbody></table>`;
}

function counted(map: Record<string, number>): string[][] {
  return Object.entries(map)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([k, n]) => [e(k), String(n)]);
}

/** Stacked series per action over buckets. */
function actionSeries(buckets: Histogram['buckets']): Series[] {
  const used = ACTIONS.filter((a) => buckets.some((b) => (b.byAction[a] ?? 0) > 0));
  return used.map((a) => ({ name: a, values: buckets.map((b) => b.byAction[a] ?? 0) }));
}

function histogramChart(id: string, h: Histogram, xLabel: string, marker?: { at: number; label: string }): string {
  return histogramSvg({
    id,
    title: `${h.name}${h.missing > 0 ? ` (${h.missing} without one)` : ''}`,
    labels: h.buckets.map((b) => b.label),
    series: actionSeries(h.buckets),
    xLabel,
    yLabel: 'messages',
    ...(marker ? { marker } : {}),
  });
}

export function renderHtml(o: HtmlInput): string {
  const t = o.totals;
  const charts: string[] = [];
  // actions: one series per action so each bar has its colour
  const actions = ACTIONS.filter((a) => (t.actions[a] ?? 0) > 0);
  charts.push(
    histogramSvg({
      id: 'chart-actions',
      title: 'Verdicts by action',
      labels: actions,
      series: actions.map((a, i) => ({ name: a, values: actions.map((_, j) => (i === j ? t.actions[a]! : 0)), color: ACTION_COLORS[a] ?? '#888888' })),
      yLabel: 'messages',
      width: 480,
    }),
  );
  // reasons, coloured by the action they led to
  const reasons = Object.entries(t.reasons)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([r]) => r);
  const reasonActions = ACTIONS.filter((a) => reasons.some((r) => (t.reasonActions[r]?.[a] ?? 0) > 0));
  charts.push(
    histogramSvg({
      id: 'chart-reasons',
      title: 'Verdicts by reason',
      labels: reasons,
      series: reasonActions.map((a) => ({ name: a, values: reasons.map((r) => t.reasonActions[r]?.[a] ?? 0) })),
      yLabel: 'messages',
      width: 720,
    }),
  );
  const siqMarker = o.config.siq.rejectScore >= 0 ? { at: o.config.siq.rejectScore / 10, label: `reject ≤ ${o.config.siq.rejectScore}` } : o.config.siq.tagScore >= 0 ? { at: (o.config.siq.tagScore + 1) / 10, label: `tag ≤ ${o.config.siq.tagScore}` } : undefined;
  const siq = o.config.siq.servers.length === 0 ? { ...o.dist.siq, name: 'SIQ score (no SIQ servers in the config)', missing: 0 } : o.dist.siq;
  charts.push(histogramChart('chart-siq', siq, 'SIQ score', siqMarker));
  if (o.dist.ratings.buckets.length > 0) charts.push(histogramChart('chart-ratings', o.dist.ratings, 'rating average'));
  if (o.dist.dnsbl.buckets.length > 0) charts.push(histogramChart('chart-dnsbl', o.dist.dnsbl, 'DNS list score'));

  const cur = candidateOf(o.config);
  const whatIfTable = table(
    ['threshold', 'value', 'rejected', 'tagged', 'accepted', 'changed', 'newly rejected', 'no longer rejected', 'newly tagged', 'no longer tagged', 'unknown', 'senders most affected'],
    o.rows.map((r) => [
      e(r.threshold),
      `${e(r.value)}${r.current ? ' <span class="current">(current)</span>' : ''}`,
      String(r.rejected),
      String(r.tagged),
      String(r.accepted),
      String(r.changed),
      String(r.newlyRejected),
      String(r.noLongerRejected),
      String(r.newlyTagged),
      String(r.noLongerTagged),
      String(r.unknown),
      e(r.senders.map((s) => `${s.key} (${s.changed})`).join(', ')),
    ]),
    'whatif',
  );
  const refused = table(
    ['#', 'message', 'Message-ID', 'client', 'MAIL FROM', 'action', 'reason', 'reply', 'facts'],
    o.listed.refused.map((x) => {
      const v = x.verdict!;
      return [
        String(x.n),
        e(where(x)),
        e(x.messageId ?? ''),
        e(`${v.ip}${v.helo ? ` (${v.helo})` : ''}`),
        e(v.mailFrom === null ? '' : `<${v.mailFrom}>`),
        `<span class="action" data-action="${e(v.action)}">${e(v.action)}</span>`,
        e(v.reason),
        e(`${v.reply.code} ${v.reply.xcode} ${v.reply.text}`),
        e(v.facts),
      ];
    }),
  );
  const skipped = table(
    ['#', 'message', 'Message-ID', 'why'],
    o.listed.skipped.map((x) => [String(x.n), e(where(x)), e(x.messageId ?? ''), e(x.problem ?? '')]),
  );
  const errors = table(
    ['#', 'message', 'Message-ID', 'error'],
    o.listed.errors.map((x) => [String(x.n), e(where(x)), e(x.messageId ?? ''), e(x.problem ?? '')]),
  );
  const more = (n: number, shown: number) => (n > shown ? `<p class="more">${shown} of ${n} shown; report.json lists every message.</p>` : '');
  const refusedTotal = (t.actions.REJECT ?? 0) + (t.actions.TEMPFAIL ?? 0);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>checkid replay report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td{overflow-wrap:anywhere}.whatif td:nth-child(n+3){text-align:right}
.whatif td:not(:last-child),.whatif th,.action{white-space:nowrap;overflow-wrap:normal}
.current{color:#1565c0;font-weight:bold}.note{background:#fff8e1;border-left:4px solid #f9a825;padding:.5em 1em}
.charts{display:flex;flex-wrap:wrap;gap:1em}.none,.more{color:#777}
.action[data-action=REJECT]{color:#c62828;font-weight:bold}.action[data-action=TEMPFAIL]{color:#6a1b9a;font-weight:bold}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}dd{margin:0}
</style></head><body>
<h1>checkid replay report</h1>
<p class="note">${e(DNS_NOTE)}</p>
<dl>
<dt>inputs</dt><dd>${e(o.meta.inputs.join(', '))}</dd>
<dt>config</dt><dd>${e(o.meta.config ?? '(embedded defaults)')}</dd>
<dt>resolver</dt><dd>${e(o.meta.resolver.length > 0 ? o.meta.resolver.join(', ') : '/etc/resolv.conf')}</dd>
<dt>run</dt><dd>${e(o.started.toISOString())} – ${e(o.finished.toISOString())}, ${o.meta.jobs} at a time</dd>
<dt>messages</dt><dd id="count-messages">${t.messages}: ${t.checked} checked, ${t.skipped} skipped, ${t.errors} errors</dd>
<dt>thresholds now</dt><dd>siq.tag_score ${e(off(cur.siqTagScore))}, siq.reject_score ${e(off(cur.siqRejectScore))}, prescreen.threshold ${cur.dnsblThreshold}, ratings.reject ${e(thresholdText(cur.ratingsReject))}, ratings.accept ${e(thresholdText(cur.ratingsAccept))}</dd>
</dl>
<h2>Verdicts</h2>
<div class="charts">${charts.join('\n')}</div>
<h2>Actions, reasons, stages</h2>
<div class="charts">${table(['action', 'messages'], counted(t.actions))}${table(['reason', 'messages'], counted(t.reasons))}${table(['stage', 'messages'], counted(t.stages))}</div>
<h2>What each threshold would do</h2>
<p>Each row changes one threshold and keeps the rest of the config; the counts are over ${o.sampled < t.checked ? `a uniform random sample of ${o.sampled} of the ${t.checked}` : `the ${t.checked}`} checked messages. "unknown": the session would have gone on to checks that never ran.</p>
${o.rows.length > 0 ? whatIfTable : '<p class="none">No SIQ score, DNS list score or rating in this replay: nothing for a threshold to change.</p>'}
<h2>Envelopes</h2>
<div class="charts">${table(['envelope from', 'messages'], counted(t.envelopeSources))}${table(['Received format', 'messages'], counted(t.receivedFormats))}${table(['warning', 'messages'], counted(t.warnings))}${table(['skipped because', 'messages'], counted(t.skippedBy))}</div>
<h2>Refused or deferred (${refusedTotal})</h2>
${refused}${more(refusedTotal, o.listed.refused.length)}
<h2>Skipped (${t.skipped})</h2>
${skipped}${more(t.skipped, o.listed.skipped.length)}
<h2>Errors (${t.errors})</h2>
${errors}${more(t.errors, o.listed.errors.length)}
</body></html>
`;
}
