/**
 * What the dashboard shows, computed from verdict records: counts by action over time, score
 * distributions with the thresholds marked, and the JSON shapes the page reads. Pure functions.
 */
import type { Action } from '../engine/verdict.ts';
import type { VerdictRecord } from '../history/record.ts';
import { type Bucket, type Candidate, distributions, type Histogram } from '../history/whatif.ts';
import { histogramSvg, type Series, stackedBarsSvg } from './charts.ts';

/** The actions in the order the charts stack them. */
export const ACTION_ORDER: readonly Action[] = ['ACCEPT', 'FILTER', 'REJECT', 'TEMPFAIL', 'DISCARD'];

export interface TimeSeries {
  /** bucket start times, ms */
  starts: number[];
  bucketMs: number;
  /** counts per action, one value per bucket */
  counts: Record<string, number[]>;
}

const STEPS = [60_000, 5 * 60_000, 15 * 60_000, 3_600_000, 3 * 3_600_000, 6 * 3_600_000, 86_400_000, 7 * 86_400_000];

/** Counts by action in about `buckets` equal steps (a round size: 1 min … 1 week) ending now. */
export function actionsOverTime(records: readonly VerdictRecord[], now: number, windowMs: number, buckets = 31): TimeSeries {
  const bucketMs = STEPS.find((s) => windowMs / s <= buckets) ?? STEPS[STEPS.length - 1]!;
  const end = Math.floor(now / bucketMs) * bucketMs + bucketMs;
  const n = Math.max(1, Math.ceil(windowMs / bucketMs));
  const first = end - n * bucketMs;
  const starts = Array.from({ length: n }, (_, i) => first + i * bucketMs);
  const counts: Record<string, number[]> = {};
  for (const a of ACTION_ORDER) counts[a] = new Array(n).fill(0);
  for (const r of records) {
    const i = Math.floor((r.time - first) / bucketMs);
    if (i < 0 || i >= n) continue;
    counts[r.action] ??= new Array(n).fill(0);
    counts[r.action]![i]!++;
  }
  return { starts, bucketMs, counts };
}

function timeLabel(t: number, bucketMs: number): string {
  const iso = new Date(t).toISOString();
  if (bucketMs >= 86_400_000) return iso.slice(5, 10);
  return iso.slice(11, 16);
}

export function actionsChart(series: TimeSeries): string {
  const labels = series.starts.map((t) => timeLabel(t, series.bucketMs));
  const s: Series[] = Object.entries(series.counts)
    .filter(([, v]) => v.some((x) => x > 0))
    .map(([name, values]) => ({ name, values }));
  const step = series.bucketMs >= 86_400_000 ? `${series.bucketMs / 86_400_000} d` : series.bucketMs >= 3_600_000 ? `${series.bucketMs / 3_600_000} h` : `${series.bucketMs / 60_000} min`;
  return stackedBarsSvg({ id: 'svg-actions', title: 'Verdicts by action', labels, series: s, xLabel: `time (UTC), ${step} per bar`, yLabel: 'verdicts' });
}

function byAction(h: Histogram): Series[] {
  const present = new Set<string>();
  for (const b of h.buckets) for (const a of Object.keys(b.byAction)) present.add(a);
  return ACTION_ORDER.filter((a) => present.has(a)).map((a) => ({ name: a, values: h.buckets.map((b) => b.byAction[a] ?? 0) }));
}

/**
 * Where on a histogram's x axis (in buckets) the value `v` sits: `after` puts the mark just past
 * the values equal to v ("at or below v"), else just before them ("at or above v").
 */
export function markerAt(buckets: readonly Bucket[], v: number, integerValues: boolean, after: boolean): number | null {
  if (buckets.length === 0 || !Number.isFinite(v)) return null;
  const x = integerValues && after ? v + 1 : v;
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i]!;
    const last = i === buckets.length - 1;
    if (x < b.from) return i;
    if (x < b.to || (last && x <= b.to)) return i + (x - b.from) / (b.to - b.from);
  }
  return buckets.length;
}

export interface DistributionCharts {
  siq: string;
  ratings: string;
  dnsbl: string;
}

/** The three distribution charts, split by action, with the thresholds in force (or tried) marked. */
export function distributionCharts(records: readonly VerdictRecord[], t: Required<Candidate>): DistributionCharts {
  const d = distributions(records);
  const siqMarks: Array<{ at: number; label: string; color: string }> = [];
  if (t.siqRejectScore >= 0) {
    const at = markerAt(d.siq.buckets, t.siqRejectScore, true, true);
    if (at !== null) siqMarks.push({ at, label: `reject ≤ ${t.siqRejectScore}`, color: '#c62828' });
  }
  if (t.siqTagScore >= 0) {
    const at = markerAt(d.siq.buckets, t.siqTagScore, true, true);
    if (at !== null) siqMarks.push({ at, label: `tag ≤ ${t.siqTagScore}`, color: '#f9a825' });
  }
  const rAccept = t.ratingsAccept?.average;
  const rReject = t.ratingsReject?.average;
  const ratingMark = rReject !== undefined ? { v: rReject, label: `reject avg ≤ ${rReject}` } : rAccept !== undefined ? { v: rAccept, label: `accept avg ≥ ${rAccept}` } : null;
  const ratingAt = ratingMark ? markerAt(d.ratings.buckets, ratingMark.v, false, rReject !== undefined) : null;
  const dnsblAt = markerAt(d.dnsbl.buckets, t.dnsblThreshold, true, false);
  return {
    siq: histogramSvg({
      id: 'svg-siq',
      title: `SIQ scores (${d.siq.buckets.reduce((s, b) => s + b.total, 0)} verdicts with a score)`,
      labels: d.siq.buckets.map((b) => b.label),
      series: byAction(d.siq),
      xLabel: 'SIQ score (0 = bad, 100 = good)',
      yLabel: 'verdicts',
      // the chart draws one marker: the reject threshold when set, else the tag threshold
      ...(siqMarks[0] ? { marker: siqMarks[0] } : {}),
    }),
    ratings: histogramSvg({
      id: 'svg-ratings',
      title: 'Rating averages of authenticated identities',
      labels: d.ratings.buckets.map((b) => b.label),
      series: byAction(d.ratings),
      xLabel: 'weighted average rating',
      yLabel: 'verdicts',
      ...(ratingMark && ratingAt !== null ? { marker: { at: ratingAt, label: ratingMark.label, color: rReject !== undefined ? '#c62828' : '#2e7d32' } } : {}),
    }),
    dnsbl: histogramSvg({
      id: 'svg-dnsbl',
      title: 'DNS list scores',
      labels: d.dnsbl.buckets.map((b) => b.label),
      series: byAction(d.dnsbl),
      xLabel: 'DNS list score',
      yLabel: 'verdicts',
      ...(dnsblAt !== null ? { marker: { at: dnsblAt, label: `reject ≥ ${t.dnsblThreshold}`, color: '#c62828' } } : {}),
    }),
  };
}
