/**
 * SIQ client overhead: the codec alone, a cache hit, and full UDP round trips to the scripted
 * test server on loopback (in this process, so the figure covers both ends), one at a time
 * (latency) and `--concurrency` at once (throughput).
 *
 *   node bench/siq.ts [--queries 5000] [--concurrency 32]
 *
 * Prints one JSON line.
 */
import { ManualClock } from '../src/common/clock.ts';
import { SiqClient } from '../src/siq/client.ts';
import { decodeReply, encodeQuery, encodeReply } from '../src/siq/codec.ts';
import { startSiqServer } from '../test/support/siq-server.ts';
import { numberArg } from './support/args.ts';

const queries = numberArg('queries', 5000);
const concurrency = numberArg('concurrency', 32);

function opsPerSecond(n: number, fn: (i: number) => void): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  return Math.round(n / ((performance.now() - t0) / 1000));
}

function percentile(sorted: number[], p: number): number {
  return Number(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!.toFixed(3));
}

const reply = encodeReply({ id: 1, score: 73, ipScore: 80, domainScore: 60, relScore: -1, ttl: 300, confidence: 90, text: 'stability=1.' });
let sink = 0;
const decodePerSec = opsPerSecond(1_000_000, () => {
  sink += decodeReply(reply).score;
});
const encodePerSec = opsPerSecond(1_000_000, (i) => {
  sink += encodeQuery({ id: i & 0xffff, type: 'mail', ip: '192.0.2.1', domain: 'example.com' }).length;
});

const server = await startSiqServer({ script: () => ({ reply: { score: 73, ttl: 300, confidence: 90, text: 'ok' } }) });
const cached = new SiqClient({ servers: [server.address], clock: new ManualClock() });
await cached.query({ ip: '192.0.2.1', domain: 'example.com' });
let t0 = performance.now();
for (let i = 0; i < 100_000; i++) await cached.query({ ip: '192.0.2.1', domain: 'example.com' });
const cacheHitsPerSec = Math.round(100_000 / ((performance.now() - t0) / 1000));

const wire = new SiqClient({ servers: [server.address], cache: false });
const latencies: number[] = [];
for (let i = 0; i < Math.min(queries, 2000); i++) {
  const s = performance.now();
  const r = await wire.query({ ip: '192.0.2.1', domain: `d${i}.example` });
  if (r.status !== 'answer') throw new Error(`no answer: ${JSON.stringify(r)}`);
  latencies.push(performance.now() - s);
}
latencies.sort((x, y) => x - y);

let next = 0;
let failed = 0;
t0 = performance.now();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < queries) {
      const i = next++;
      const r = await wire.query({ ip: '192.0.2.1', domain: `c${i}.example` });
      if (r.status !== 'answer') failed++;
    }
  }),
);
const wirePerSec = Math.round(queries / ((performance.now() - t0) / 1000));
await server.close();

process.stdout.write(
  `${JSON.stringify({
    bench: 'siq',
    node: process.version,
    decodeReplyPerSec: decodePerSec,
    encodeQueryPerSec: encodePerSec,
    cacheHitsPerSec,
    sequential: { queries: latencies.length, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) },
    concurrent: { queries, concurrency, perSec: wirePerSec, failed },
    sink: sink > 0,
  })}\n`,
);
