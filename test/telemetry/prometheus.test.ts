import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeHelp, escapeLabelValue, formatValue, Registry } from '../../src/telemetry/prometheus.ts';

test('exposition format 0.0.4: HELP, TYPE, labelled samples, histogram buckets, _sum and _count, to the byte', () => {
  const r = new Registry();
  const c = r.counter('x_requests_total', 'Requests by code', ['code', 'method']);
  const g = r.gauge('x_open', 'Open now');
  const h = r.histogram('x_seconds', 'Latency', ['op'], [0.1, 1, 0.5]);
  const empty = r.counter('x_never_total', 'Nothing yet');
  c.inc({ code: '200', method: 'GET' });
  c.inc({ code: '200', method: 'GET' }, 2);
  c.inc({ method: 'POST', code: '500' });
  g.set({}, 3);
  g.dec({});
  h.observe({ op: 'a' }, 0.05);
  h.observe({ op: 'a' }, 0.5);
  h.observe({ op: 'a' }, 7);
  assert.equal(empty.get(), 0);
  assert.equal(
    r.render(),
    [
      '# HELP x_requests_total Requests by code',
      '# TYPE x_requests_total counter',
      'x_requests_total{code="200",method="GET"} 3',
      'x_requests_total{code="500",method="POST"} 1',
      '# HELP x_open Open now',
      '# TYPE x_open gauge',
      'x_open 2',
      '# HELP x_seconds Latency',
      '# TYPE x_seconds histogram',
      'x_seconds_bucket{op="a",le="0.1"} 1',
      'x_seconds_bucket{op="a",le="0.5"} 2',
      'x_seconds_bucket{op="a",le="1"} 2',
      'x_seconds_bucket{op="a",le="+Inf"} 3',
      'x_seconds_sum{op="a"} 7.55',
      'x_seconds_count{op="a"} 3',
      '# HELP x_never_total Nothing yet',
      '# TYPE x_never_total counter',
      '',
    ].join('\n'),
  );
});

test('escaping: label values escape backslash, quote and line feed; HELP escapes backslash and line feed', () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeHelp('say "hi"\\\n'), 'say "hi"\\\\\\n');
  const r = new Registry();
  r.counter('y_total', 'Odd "help"\nsecond line', ['v']).inc({ v: 'C:\\x "q"\n' });
  assert.equal(r.render(), '# HELP y_total Odd "help"\\nsecond line\n# TYPE y_total counter\ny_total{v="C:\\\\x \\"q\\"\\n"} 1\n');
});

test('values: +Inf, -Inf and NaN spelled as Prometheus reads them', () => {
  assert.equal(formatValue(Number.POSITIVE_INFINITY), '+Inf');
  assert.equal(formatValue(Number.NEGATIVE_INFINITY), '-Inf');
  assert.equal(formatValue(Number.NaN), 'NaN');
  assert.equal(formatValue(0.25), '0.25');
});

test('mistakes are refused: bad names, missing or unknown labels, le as a label, counters going down, duplicates', () => {
  const r = new Registry();
  assert.throws(() => r.counter('bad-name', 'x'), /bad metric name/);
  assert.throws(() => r.histogram('h', 'x', ['le'], [1]), /bad label name/);
  const c = r.counter('c_total', 'x', ['a']);
  assert.throws(() => c.inc({}), /label a missing/);
  assert.throws(() => c.inc({ a: '1', b: '2' }), /unknown label b/);
  assert.throws(() => c.inc({ a: '1' }, -1), /only goes up/);
  assert.throws(() => r.counter('c_total', 'again'), /registered twice/);
  // a total copied from a source that counts by itself never goes down
  c.setTotal({ a: '1' }, 5);
  c.setTotal({ a: '1' }, 4);
  assert.equal(c.get({ a: '1' }), 5);
});

test('collectors run before each render', () => {
  const r = new Registry();
  const g = r.gauge('z', 'z');
  let n = 0;
  r.collect(() => g.set({}, ++n));
  assert.match(r.render(), /^z 1$/m);
  assert.match(r.render(), /^z 2$/m);
});

test('label sets are told apart however their values are spelled: NULs and backslashes in values', () => {
  const r = new Registry();
  const c = r.counter('t_total', 'x', ['a', 'b']);
  const sets = [
    { a: 'x\0', b: 'y' },
    { a: 'x', b: '\0y' },
    { a: 'x\\', b: '0y' },
    { a: 'x\\0', b: 'y' },
    { a: 'x', b: 'y' },
    { a: '', b: '' },
  ];
  for (const [i, labels] of sets.entries()) c.inc(labels, i + 1);
  assert.deepEqual(
    sets.map((labels) => c.get(labels)),
    [1, 2, 3, 4, 5, 6],
  );
  // the same set in another key order is the same series
  c.inc({ b: 'y', a: 'x' }, 10);
  assert.equal(c.get({ a: 'x', b: 'y' }), 15);
  assert.equal(r.render().split('\n').filter((l) => l.startsWith('t_total{')).length, 6);
});
