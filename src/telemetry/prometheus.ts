/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/):
 *
 *   # HELP name text            (backslash and line feed escaped)
 *   # TYPE name counter|gauge|histogram
 *   name{label="value",...} 1   (label values: backslash, double quote and line feed escaped)
 *
 * Families come out in registration order, series in the order they were first seen; a
 * histogram's buckets are cumulative and end with le="+Inf", followed by _sum and _count.
 */

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A sample value as Go's strconv formats it for Prometheus: +Inf, -Inf, NaN, or the number. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(n);
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i] ?? '')}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

abstract class Family {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: 'counter' | 'gauge' | 'histogram';

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!NAME.test(name)) throw new Error(`bad metric name ${JSON.stringify(name)}`);
    for (const l of labelNames) if (!LABEL.test(l) || l.startsWith('__') || l === 'le') throw new Error(`bad label name ${JSON.stringify(l)} for ${name}`);
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  /**
   * The series key of a label set: its values in labelNames order joined by NUL, a value's own
   * backslashes and NULs escaped (so no two label sets share a key). Called for every count, so
   * it allocates little more than the key; a missing or unknown label is refused.
   */
  protected key(labels: Labels): string {
    const names = this.labelNames;
    let key = '';
    for (let i = 0; i < names.length; i++) {
      let v = labels[names[i]!];
      if (v === undefined) throw new Error(`${this.name}: label ${names[i]} missing`);
      if (v.includes('\\') || v.includes('\0')) v = v.replaceAll('\\', '\\\\').replaceAll('\0', '\\0');
      key = i === 0 ? v : `${key}\0${v}`;
    }
    for (const k in labels) if (!names.includes(k)) throw new Error(`${this.name}: unknown label ${k}`);
    return key;
  }

  /** The label values in labelNames order (when a series is first seen). */
  protected values(labels: Labels): string[] {
    return this.labelNames.map((n) => labels[n]!);
  }

  abstract samples(): string[];

  render(): string {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, ...this.samples()].join('\n');
  }
}

/** Values set or added per label set; the base of Counter and Gauge. */
abstract class Scalar extends Family {
  private readonly series = new Map<string, { values: string[]; value: number }>();

  /** The series of a label set, made (at 0) when first seen. */
  protected entry(labels: Labels): { values: string[]; value: number } {
    const key = this.key(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { values: this.values(labels), value: 0 };
      this.series.set(key, s);
    }
    return s;
  }

  get(labels: Labels = {}): number {
    return this.series.get(this.key(labels))?.value ?? 0;
  }

  samples(): string[] {
    return [...this.series.values()].map((s) => `${this.name}${labelText(this.labelNames, s.values)} ${formatValue(s.value)}`);
  }
}

export class Counter extends Scalar {
  readonly type = 'counter';

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter only goes up`);
    this.entry(labels).value += by;
  }

  /** Sets the total from a source that counts by itself (resolver statistics); never goes down. */
  setTotal(labels: Labels, total: number): void {
    const s = this.entry(labels);
    s.value = Math.max(s.value, total);
  }
}

export class Gauge extends Scalar {
  readonly type = 'gauge';

  set(labels: Labels, value: number): void {
    this.entry(labels).value = value;
  }

  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels).value += by;
  }

  dec(labels: Labels = {}, by = 1): void {
    this.entry(labels).value -= by;
  }
}

export class Histogram extends Family {
  readonly type = 'histogram';
  readonly buckets: readonly number[];
  private readonly series = new Map<string, { values: string[]; counts: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    const sorted = [...buckets].sort((a, b) => a - b);
    if (sorted.length === 0 || sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b === sorted[i - 1]))) throw new Error(`${name}: buckets must be distinct finite numbers`);
    this.buckets = sorted;
  }

  observe(labels: Labels, value: number): void {
    const key = this.key(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { values: this.values(labels), counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  samples(): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      for (let i = 0; i < this.buckets.length; i++) {
        out.push(`${this.name}_bucket${labelText(this.labelNames, s.values, ['le', formatValue(this.buckets[i]!)])} ${s.counts[i]}`);
      }
      out.push(`${this.name}_bucket${labelText(this.labelNames, s.values, ['le', '+Inf'])} ${s.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, s.values)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, s.values)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly families: Family[] = [];
  private readonly collectors: Array<() => void> = [];

  private add<F extends Family>(family: F): F {
    if (this.families.some((f) => f.name === family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.families.push(family);
    return family;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /** Runs before each render: copies figures kept elsewhere (resolver statistics) into metrics. */
  collect(f: () => void): void {
    this.collectors.push(f);
  }

  /** The exposition text: every family, each line ending in a line feed. */
  render(): string {
    for (const c of this.collectors) c();
    return this.families.map((f) => `${f.render()}\n`).join('');
  }
}
