/** The progress display: a bar on a terminal, plain lines elsewhere, nothing when quiet. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, Progress, type ProgressMode } from '../../src/replay/progress.ts';

function run(mode: ProgressMode, totalMessages: number | null, totalBytes: number) {
  let t = 0;
  const out: string[] = [];
  const p = new Progress({ mode, write: (s) => out.push(s), totalMessages, totalBytes, intervalMs: 1000, now: () => t, columns: 100 });
  return {
    out,
    p,
    step(ms: number, bytes?: number) {
      t += ms;
      if (bytes !== undefined) p.read(bytes);
      p.done();
    },
  };
}

test('a known number of messages: done/total, percentage, rate and ETA', () => {
  const r = run('lines', 400, 0);
  for (let i = 0; i < 100; i++) r.step(10);
  // 100 messages in 1 s: 100/s, 300 left → 3 s
  assert.equal(r.p.status().text, '100/400 messages (25%), 100 msg/s, ETA 0:03');
  assert.deepEqual(r.out, ['checkid replay: 100/400 messages (25%), 100 msg/s, ETA 0:03\n']);
  r.p.finish();
  assert.equal(r.out.at(-1), 'checkid replay: done, 100/400 messages (25%), 100 msg/s, ETA 0:03\n');
});

test('an mbox (count unknown): the fraction and ETA come from the bytes read', () => {
  const r = run('lines', null, 1000);
  for (let i = 1; i <= 20; i++) r.step(100, i * 10);
  // 2 s for 200 of 1000 bytes → 8 s left
  assert.equal(r.p.status().text, '20 messages (20%), 10 msg/s, ETA 0:08');
  assert.equal(r.out.length, 2, 'one line a second');
});

test('bar mode redraws in place and ends the line; off writes nothing', () => {
  const bar = run('bar', 10, 0);
  for (let i = 0; i < 10; i++) bar.step(250);
  bar.p.finish();
  assert.ok(bar.out.every((s) => s.startsWith('\r\x1b[K[')));
  assert.match(bar.out.at(-1)!, /^\r\x1b\[K\[#+\] 10\/10 messages \(100%\), 4\.0 msg\/s, ETA 0:00\n$/);
  assert.equal(bar.out.filter((s) => s.endsWith('\n')).length, 1);
  const off = run('off', 10, 0);
  for (let i = 0; i < 10; i++) off.step(2000);
  off.p.finish();
  assert.deepEqual(off.out, []);
});

test('durations', () => {
  assert.equal(formatDuration(0), '0:00');
  assert.equal(formatDuration(75), '1:15');
  assert.equal(formatDuration(3600 + 62), '1:01:02');
  assert.equal(formatDuration(Number.NaN), '--:--');
});
