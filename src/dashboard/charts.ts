/**
 * Charts as SVG text, with no dependency: a histogram (optionally stacked, with a threshold
 * marker), stacked bars over time, and lines. Used by the dashboard (served as SVG the page
 * inserts) and by reports written to HTML files.
 *
 * Every text that comes from outside (titles, labels, series names) is escaped. Colours and
 * sizes are presentation attributes, never `style`, so a page with a strict Content Security
 * Policy (no inline styles) shows them as drawn. Each bar and point carries `data-series`,
 * `data-label` and `data-value`, and a <title> tooltip, so a reader (or a test) can see the
 * numbers behind the picture.
 */

/**
 * Text for SVG/HTML content and attribute values: the five specials as entities, and characters
 * XML 1.0 does not allow at all (C0 controls but tab and line feeds, lone surrogates) as U+FFFD,
 * so a hostile label can neither inject markup nor make the document unreadable.
 */
export function escapeXml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Colours for the verdict actions (and a palette for anything else). */
export const ACTION_COLORS: Record<string, string> = {
  ACCEPT: '#2e7d32',
  FILTER: '#f9a825',
  REJECT: '#c62828',
  TEMPFAIL: '#6a1b9a',
  DISCARD: '#616161',
  CONTINUE: '#90a4ae',
};
const PALETTE = ['#1565c0', '#ef6c00', '#00838f', '#ad1457', '#558b2f', '#4527a0', '#795548', '#37474f'];

export interface Series {
  name: string;
  values: number[];
  /** a CSS colour; default: the action colour for action names, else the palette */
  color?: string;
}

export interface ChartOptions {
  title: string;
  width?: number;
  height?: number;
  xLabel?: string;
  yLabel?: string;
  /** the id of the <svg> element (for the page); letters, digits, - and _ only */
  id?: string;
}

export interface HistogramOptions extends ChartOptions {
  /** bucket labels along the x axis */
  labels: string[];
  /** one series = plain bars; several = stacked bars */
  series: Series[];
  /** a vertical line at a bucket boundary (0 = left of the first bucket; fractions allowed) */
  marker?: { at: number; label: string; color?: string };
}

const FONT = 'system-ui, sans-serif';

function colorOf(s: Series, i: number): string {
  const c = s.color ?? ACTION_COLORS[s.name] ?? PALETTE[i % PALETTE.length]!;
  // a colour goes into an attribute: only plain colour syntax
  return /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,20}|rgba?\([0-9.,\s%]+\))$/.test(c) ? c : '#888888';
}

function num(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/** A round upper bound and tick step for values up to `max`. */
export function niceScale(max: number, ticks = 5): { max: number; step: number } {
  if (!(max > 0) || !Number.isFinite(max)) return { max: 1, step: 1 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const nice = Math.ceil(max / step) * step;
  return { max: nice, step };
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function frame(o: ChartOptions, legend: boolean): Frame {
  const width = o.width ?? 640;
  const height = o.height ?? 280;
  return { width, height, left: 52, right: 12, top: 30 + (legend ? 18 : 0), bottom: 44 };
}

function open(o: ChartOptions, f: Frame, kind: string): string {
  const id = o.id && /^[A-Za-z][\w-]*$/.test(o.id) ? o.id : undefined;
  const title = escapeXml(o.title);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-${kind}"${id ? ` id="${id}"` : ''} viewBox="0 0 ${f.width} ${f.height}" width="${f.width}" height="${f.height}" role="img" aria-label="${title}" font-family="${FONT}" font-size="11">` +
    `<title>${title}</title>` +
    `<text x="${f.left}" y="16" font-size="13" font-weight="bold" fill="#222">${title}</text>`
  );
}

function legend(series: Series[], f: Frame): string {
  if (series.length < 2) return '';
  let x = f.left;
  let out = '';
  series.forEach((s, i) => {
    const name = escapeXml(s.name);
    out += `<g class="legend-item" data-series="${name}"><rect x="${x}" y="26" width="10" height="10" fill="${colorOf(s, i)}"/><text x="${x + 14}" y="35" fill="#333">${name}</text></g>`;
    x += 24 + s.name.length * 6.5;
  });
  return out;
}

/** Axes, y grid with ticks, axis labels. */
function axes(o: ChartOptions, f: Frame, yMax: number, yStep: number): string {
  const plotH = f.height - f.top - f.bottom;
  let out = '';
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    const y = f.top + plotH - (v / yMax) * plotH;
    out += `<line x1="${f.left}" x2="${f.width - f.right}" y1="${num(y)}" y2="${num(y)}" stroke="#e0e0e0"/>`;
    out += `<text x="${f.left - 6}" y="${num(y + 4)}" text-anchor="end" fill="#555">${num(v)}</text>`;
  }
  out += `<line x1="${f.left}" x2="${f.left}" y1="${f.top}" y2="${f.top + plotH}" stroke="#888"/>`;
  out += `<line x1="${f.left}" x2="${f.width - f.right}" y1="${f.top + plotH}" y2="${f.top + plotH}" stroke="#888"/>`;
  if (o.xLabel) out += `<text x="${(f.left + f.width - f.right) / 2}" y="${f.height - 4}" text-anchor="middle" fill="#333">${escapeXml(o.xLabel)}</text>`;
  if (o.yLabel) out += `<text x="12" y="${f.top + plotH / 2}" text-anchor="middle" fill="#333" transform="rotate(-90 12 ${f.top + plotH / 2})">${escapeXml(o.yLabel)}</text>`;
  return out;
}

/** x labels, thinned so they do not overlap. */
function xLabels(labels: string[], f: Frame, slot: number): string {
  const every = Math.max(1, Math.ceil((labels.length * 7 * Math.max(...labels.map((l) => Math.min(l.length, 16)), 1)) / (f.width - f.left - f.right) / 1.2));
  let out = '';
  labels.forEach((l, i) => {
    if (i % every !== 0) return;
    const x = f.left + slot * i + slot / 2;
    const text = l.length > 16 ? `${l.slice(0, 15)}…` : l;
    out += `<text x="${num(x)}" y="${f.height - f.bottom + 14}" text-anchor="middle" fill="#555">${escapeXml(text)}</text>`;
  });
  return out;
}

function noData(o: ChartOptions, f: Frame, kind: string): string {
  return `${open(o, f, kind)}<text x="${f.width / 2}" y="${f.height / 2}" text-anchor="middle" fill="#888" class="no-data">no data yet</text></svg>`;
}

/** Bars per label, stacked when there are several series. */
function bars(o: ChartOptions, labels: string[], series: Series[], kind: string, marker?: HistogramOptions['marker']): string {
  const f = frame(o, series.length > 1);
  const n = labels.length;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + Math.max(0, s.values[i] ?? 0), 0));
  if (n === 0) return noData(o, f, kind);
  const { max, step } = niceScale(Math.max(...totals, 0));
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const slot = plotW / n;
  const barW = Math.max(1, slot * 0.8);
  let out = open(o, f, kind) + legend(series, f) + axes(o, f, max, step);
  labels.forEach((label, i) => {
    let y = f.top + plotH;
    const x = f.left + slot * i + (slot - barW) / 2;
    const l = escapeXml(label);
    series.forEach((s, si) => {
      const v = Math.max(0, s.values[i] ?? 0);
      if (v === 0) return;
      const h = (v / max) * plotH;
      y -= h;
      const name = escapeXml(s.name);
      out += `<rect class="bar" x="${num(x)}" y="${num(y)}" width="${num(barW)}" height="${num(h)}" fill="${colorOf(s, si)}" data-series="${name}" data-label="${l}" data-value="${num(v)}"><title>${l}: ${num(v)}${series.length > 1 ? ` ${name}` : ''}</title></rect>`;
    });
  });
  out += xLabels(labels, f, slot);
  if (marker && Number.isFinite(marker.at)) {
    const x = f.left + slot * Math.min(n, Math.max(0, marker.at));
    const color = colorOf({ name: '', values: [], color: marker.color ?? '#000000' }, 0);
    out += `<g class="marker" data-at="${num(marker.at)}"><line x1="${num(x)}" x2="${num(x)}" y1="${f.top - 4}" y2="${f.top + plotH}" stroke="${color}" stroke-width="2" stroke-dasharray="4 3"/><text x="${num(x + 4)}" y="${f.top + 8}" fill="${color}">${escapeXml(marker.label)}</text></g>`;
  }
  return `${out}</svg>`;
}

/** A histogram: bucket labels and counts (several series: stacked), with an optional threshold line. */
export function histogramSvg(o: HistogramOptions): string {
  return bars(o, o.labels, o.series, 'histogram', o.marker);
}

/** Stacked bars over time: one bar per time label, one segment per series (e.g. per action). */
export function stackedBarsSvg(o: ChartOptions & { labels: string[]; series: Series[] }): string {
  return bars(o, o.labels, o.series, 'stacked');
}

/** Lines over the labels, one per series, with a dot per value. */
export function lineSvg(o: ChartOptions & { labels: string[]; series: Series[] }): string {
  const f = frame(o, o.series.length > 1);
  const n = o.labels.length;
  if (n === 0 || o.series.length === 0) return noData(o, f, 'line');
  const all = o.series.flatMap((s) => s.values.filter((v) => Number.isFinite(v)));
  const { max, step } = niceScale(Math.max(...all, 0));
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const slot = plotW / n;
  let out = open(o, f, 'line') + legend(o.series, f) + axes(o, f, max, step);
  o.series.forEach((s, si) => {
    const color = colorOf(s, si);
    const name = escapeXml(s.name);
    const points: string[] = [];
    let dots = '';
    o.labels.forEach((label, i) => {
      const v = s.values[i];
      if (v === undefined || !Number.isFinite(v)) return;
      const x = f.left + slot * i + slot / 2;
      const y = f.top + plotH - (Math.max(0, v) / max) * plotH;
      points.push(`${num(x)},${num(y)}`);
      const l = escapeXml(label);
      dots += `<circle class="point" cx="${num(x)}" cy="${num(y)}" r="2.5" fill="${color}" data-series="${name}" data-label="${l}" data-value="${num(v)}"><title>${l}: ${num(v)} ${name}</title></circle>`;
    });
    if (points.length > 1) out += `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${points.join(' ')}"/>`;
    out += dots;
  });
  out += xLabels(o.labels, f, slot);
  return `${out}</svg>`;
}
