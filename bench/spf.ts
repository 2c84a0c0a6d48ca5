/**
 * SPF evaluations per second: our checkHost() against mailauth 7.1.0's spf() (strict and default
 * modes), on the same in-memory zone answered by the same resolver (mailauth reaches it through
 * an adapter to its node:dns-style contract), for four policies, one at a time and 64 in flight.
 *
 *   node bench/spf.ts [--seconds 0.4] [--rounds 2]
 *
 * Each (case, implementation, concurrency) runs for `seconds` per round; implementations
 * alternate within a round so drift on a shared machine hits all alike. Prints one JSON object;
 * `ratio` is ours / mailauth (strict) and `ratioDefault` ours / mailauth (default mode).
 */
import { spf as mailauthSpf } from 'mailauth/lib/spf/index.js';
import { checkHost } from '../src/checks/spf/index.ts';
import { Zone, type ZoneData } from '../test/support/zone.ts';
import { numberArg } from './support/args.ts';
import { mailauthResolver } from './support/mailauth-resolver.ts';
import { ZoneResolver } from './support/zone-resolver.ts';

const SECONDS = numberArg('seconds', 0.4);
const ROUNDS = Math.floor(numberArg('rounds', 2));

const ZONE: ZoneData = {
  // 1. one TXT, ip4 match
  'ip4.bench.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 -all' }],
  // 2. three nested includes, then a and mx, ending ~all (no match: softfail)
  'nested.bench.example': [
    { TXT: 'v=spf1 include:_i1.bench.example a mx ~all' },
    { A: '203.0.113.1' },
    { MX: [10, 'mx1.bench.example'] },
    { MX: [20, 'mx2.bench.example'] },
  ],
  '_i1.bench.example': [{ TXT: 'v=spf1 ip4:203.0.113.64/26 include:_i2.bench.example -all' }],
  '_i2.bench.example': [{ TXT: 'v=spf1 ip4:203.0.113.128/26 include:_i3.bench.example -all' }],
  '_i3.bench.example': [{ TXT: ['v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ', 'ip4:198.51.100.0/24 -all'] }],
  'mx1.bench.example': [{ A: '203.0.113.2' }, { AAAA: '2001:db8:1::2' }],
  'mx2.bench.example': [{ A: '203.0.113.3' }],
  // 3. match in a nested include (same chain, client in _i3)
  'deep.bench.example': [{ TXT: 'v=spf1 include:_i1.bench.example a mx ~all' }, { A: '203.0.113.1' }],
  // 4. exists with macros
  'exists.bench.example': [{ TXT: 'v=spf1 exists:%{ir}.%{l1r-}.%{d}._spf.bench.example -all' }],
  '10.2.0.192.first.exists.bench.example._spf.bench.example': [{ A: '127.0.0.2' }],
};

const CASES = [
  { name: 'ip4-match-1-txt', domain: 'ip4.bench.example', ip: '192.0.2.10', local: 'user', want: 'pass' },
  { name: 'nested-includes-a-mx-softfail', domain: 'nested.bench.example', ip: '203.0.113.200', local: 'user', want: 'softfail' },
  { name: 'match-in-nested-include', domain: 'deep.bench.example', ip: '198.51.100.7', local: 'user', want: 'pass' },
  { name: 'exists-with-macros', domain: 'exists.bench.example', ip: '192.0.2.10', local: 'first-user', want: 'pass' },
] as const;

const resolver = new ZoneResolver(new Zone(ZONE));
const adapter = mailauthResolver(resolver);

type Impl = 'ours' | 'mailauthStrict' | 'mailauthDefault';
const IMPLS: Impl[] = ['ours', 'mailauthStrict', 'mailauthDefault'];

function runner(impl: Impl, c: (typeof CASES)[number]): () => Promise<string> {
  const sender = `${c.local}@${c.domain}`;
  if (impl === 'ours') {
    const deps = { resolver };
    return async () => (await checkHost({ ip: c.ip, domain: c.domain, sender, helo: 'mail.client.example' }, deps)).result;
  }
  const strict = impl === 'mailauthStrict';
  return async () => {
    const r = await mailauthSpf({ sender, ip: c.ip, helo: 'mail.client.example', mta: 'mx.bench.example', resolver: adapter as never, strict });
    return r.status.result;
  };
}

/** Runs `fn` for `seconds` with `concurrency` in flight; returns the number completed. */
async function measure(fn: () => Promise<unknown>, concurrency: number, seconds: number): Promise<{ ops: number; ms: number }> {
  const start = performance.now();
  const end = start + seconds * 1000;
  let ops = 0;
  const worker = async () => {
    while (performance.now() < end) {
      // a small batch between clock reads keeps the clock out of the measurement
      for (let k = 0; k < 16; k++) await fn();
      ops += 16;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ops, ms: performance.now() - start };
}

const started = performance.now();
const results: Record<string, unknown>[] = [];
for (const c of CASES) {
  // correctness first: every implementation must agree with the expected result
  const agree: Record<string, string> = {};
  for (const impl of IMPLS) agree[impl] = await runner(impl, c)();
  const before = resolver.queries;
  await runner('ours', c)();
  const queriesOurs = resolver.queries - before;
  const totals: Record<string, { ops: number; ms: number }> = {};
  for (const concurrency of [1, 64]) {
    for (const impl of IMPLS) {
      const fn = runner(impl, c);
      await measure(fn, concurrency, 0.05); // warm-up
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const impl of IMPLS) {
        const m = await measure(runner(impl, c), concurrency, SECONDS);
        const key = `${impl}@${concurrency}`;
        const t = totals[key] ?? { ops: 0, ms: 0 };
        t.ops += m.ops;
        t.ms += m.ms;
        totals[key] = t;
      }
    }
  }
  const rate = (impl: Impl, concurrency: number) => {
    const t = totals[`${impl}@${concurrency}`]!;
    return Math.round((t.ops / t.ms) * 1000);
  };
  const row = (concurrency: number) => ({
    ours: rate('ours', concurrency),
    mailauthStrict: rate('mailauthStrict', concurrency),
    mailauthDefault: rate('mailauthDefault', concurrency),
    ratio: Number((rate('ours', concurrency) / rate('mailauthStrict', concurrency)).toFixed(2)),
    ratioDefault: Number((rate('ours', concurrency) / rate('mailauthDefault', concurrency)).toFixed(2)),
  });
  results.push({
    case: c.name,
    expected: c.want,
    results: agree,
    queriesPerEvaluation: queriesOurs,
    sequential: row(1),
    concurrent64: row(64),
  });
}

const ratios = results.flatMap((r) => [
  (r['sequential'] as { ratio: number }).ratio,
  (r['concurrent64'] as { ratio: number }).ratio,
]);
console.log(
  JSON.stringify(
    {
      bench: 'spf',
      unit: 'evaluations/s',
      node: process.version,
      mailauth: '7.1.0',
      secondsPerSlice: SECONDS,
      rounds: ROUNDS,
      cases: results,
      minRatio: Math.min(...ratios),
      goal: 'ours >= 1.5x mailauth',
      allAgree: results.every((r) => Object.values(r['results'] as Record<string, string>).every((v) => v === r['expected'])),
      ms: Math.round(performance.now() - started),
    },
    null,
    2,
  ),
);
