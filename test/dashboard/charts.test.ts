/** SVG charts: well-formed, every outside text escaped, the numbers on each bar, markers where asked. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeXml, histogramSvg, lineSvg, niceScale, stackedBarsSvg } from '../../src/dashboard/charts.ts';
import { actionsOverTime, markerAt } from '../../src/dashboard/views.ts';
import { distributions } from '../../src/history/whatif.ts';
import { makeRecord } from '../history/store-contract.ts';

/** The attributes of every element with `class="<cls>"`, in document order. */
function elements(svg: string, cls: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  const re = new RegExp(`<(?:rect|circle|g) class="${cls}"([^>]*)>`, 'g');
  for (const m of svg.matchAll(re)) {
    const attrs: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/([a-z-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    out.push(attrs);
  }
  return out;
}

/** Checks the markup is balanced XML (tags open and close in order, attributes quoted). */
function assertWellFormed(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (self) continue;
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else stack.push(name!);
  }
  assert.deepEqual(stack, [], 'every element is closed');
  // no stray "<" or "&" outside tags and entities
  const text = svg.replace(/<[^>]*>/g, '');
  assert.doesNotMatch(text, /<|&(?!(amp|lt|gt|quot|#39);)/);
}

test('escapeXml escapes the five XML specials', () => {
  assert.equal(escapeXml(`<a href="x">Tom & 'Jerry'</a>`), '&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;');
});

test('stacked bars: one rect per non-zero value, stacked, labelled with its numbers; hostile text escaped', () => {
  const evil = '<script>alert("x")</script>&';
  const svg = stackedBarsSvg({
    title: `Verdicts ${evil}`,
    labels: ['10:00', '11:00', evil],
    series: [
      { name: 'ACCEPT', values: [3, 0, 1] },
      { name: 'REJECT', values: [2, 4, 0] },
      { name: evil, values: [1, 1, 1], color: 'red;} body{display:none' },
    ],
    id: 'svg"onload="alert(1)',
  });
  assertWellFormed(svg);
  assert.doesNotMatch(svg, /<script/);
  assert.doesNotMatch(svg, /onload/);
  assert.doesNotMatch(svg, /display:none/, 'a colour that is not a colour is replaced');
  assert.doesNotMatch(svg, /style=/, 'presentation attributes only (CSP: no inline style)');
  const bars = elements(svg, 'bar');
  assert.deepEqual(
    bars.map((b) => [b['data-label'], b['data-series'], b['data-value']]),
    [
      ['10:00', 'ACCEPT', '3'],
      ['10:00', 'REJECT', '2'],
      ['10:00', '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;', '1'],
      ['11:00', 'REJECT', '4'],
      ['11:00', '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;', '1'],
      ['&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;', 'ACCEPT', '1'],
      ['&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;', '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;', '1'],
    ],
  );
  // stacked: the second segment of a bar sits right on top of the first
  const [a, r] = [bars[0]!, bars[1]!];
  assert.equal(Number(r.y) + Number(r.height), Number(a.y));
  // taller bars for bigger totals (6 at 10:00 vs 5 at 11:00)
  const top = (label: string) => Math.min(...bars.filter((b) => b['data-label'] === label).map((b) => Number(b.y)));
  assert.ok(top('10:00') < top('11:00'));
  assert.equal(bars[0]!.fill, '#2e7d32', 'actions have their colours');
});

test('histogram with a threshold marker; an empty one says so', () => {
  const d = distributions([5, 12, 30, 45, 70, 95].map((score) => makeRecord({ siq: { kind: 'score', score, ipScore: null, domainScore: null, relScore: null, confidence: null } })));
  const at = markerAt(d.siq.buckets, 30, true, true)!;
  assert.equal(at, 3.1, 'just past 30: the bucket 30–39 starts at 3, 30 is its first of ten values');
  const svg = histogramSvg({ title: 'SIQ', labels: d.siq.buckets.map((b) => b.label), series: [{ name: 'FILTER', values: d.siq.buckets.map((b) => b.total) }], marker: { at, label: 'reject ≤ 30' } });
  assertWellFormed(svg);
  assert.deepEqual(elements(svg, 'marker').map((m) => m['data-at']), ['3.1']);
  assert.match(svg, />reject ≤ 30</);
  assert.equal(elements(svg, 'bar').length, 6);
  const empty = histogramSvg({ title: 'nothing', labels: [], series: [] });
  assertWellFormed(empty);
  assert.match(empty, /no data yet/);
  assert.equal(markerAt(d.siq.buckets, 100, true, true), 10, 'at or below 100: the whole axis');
  assert.equal(markerAt(d.siq.buckets, 0, true, false), 0);
});

test('line chart: a polyline per series and a dot per value', () => {
  const svg = lineSvg({ title: 'rate', labels: ['a', 'b', 'c'], series: [{ name: 'x', values: [1, 5, 2] }, { name: 'y', values: [0, 0, Number.NaN] }] });
  assertWellFormed(svg);
  assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
  assert.deepEqual(elements(svg, 'point').map((p) => `${p['data-series']}:${p['data-value']}`), ['x:1', 'x:5', 'x:2', 'y:0', 'y:0']);
});

test('niceScale: round maxima and steps', () => {
  assert.deepEqual(niceScale(6), { max: 6, step: 2 });
  assert.deepEqual(niceScale(97), { max: 100, step: 20 });
  assert.deepEqual(niceScale(0), { max: 1, step: 1 });
  assert.deepEqual(niceScale(1234), { max: 1250, step: 250 });
});

test('actionsOverTime: round buckets ending now, counts by action, old records left out', () => {
  const now = Date.UTC(2026, 10, 23, 14, 37);
  const h = 3_600_000;
  const records = [
    makeRecord({ time: now - 30 * 60_000, action: 'REJECT' }),
    makeRecord({ time: now - 10 * 60_000, action: 'FILTER' }),
    makeRecord({ time: now - 10 * 60_000, action: 'FILTER' }),
    makeRecord({ time: now - 5 * h, action: 'ACCEPT' }),
    makeRecord({ time: now - 30 * h, action: 'ACCEPT' }),
  ];
  const s = actionsOverTime(records, now, 24 * h);
  assert.equal(s.bucketMs, h);
  assert.equal(s.starts.length, 24);
  assert.equal(s.starts[23], Date.UTC(2026, 10, 23, 14));
  assert.equal(s.counts.FILTER![23], 2);
  assert.equal(s.counts.REJECT![23], 1);
  assert.equal(s.counts.ACCEPT![18], 1);
  assert.equal(Object.values(s.counts).flat().reduce((a, b) => a + b, 0), 4, 'the one from 30 hours ago is outside the window');
  assert.equal(actionsOverTime(records, now, h).bucketMs, 5 * 60_000);
  assert.equal(actionsOverTime(records, now, 30 * 24 * h).bucketMs, 86_400_000);
});

test('characters XML forbids become U+FFFD, so a label cannot break the document', () => {
  assert.equal(escapeXml('a\u0007b\u0000c\td\ne'), 'a\ufffdb\ufffdc\td\ne');
  assert.equal(escapeXml('x\ud800y'), 'x\ufffdy', 'a lone surrogate');
  assert.equal(escapeXml('😀'), '😀', 'a surrogate pair is kept');
  const svg = stackedBarsSvg({ title: 'x', labels: ['a\u0007b'], series: [{ name: 'ACCEPT', values: [1] }] });
  assert.doesNotMatch(svg, /[\u0000-\u0008]/);
});
