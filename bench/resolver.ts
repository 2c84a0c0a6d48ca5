/**
 * Resolver throughput against the test DNS server running in a child process
 * (scripts/dns-server.ts): our StubResolver without a cache (wire speed) versus node:dns
 * (c-ares) at 1 and 64 queries in flight, over unique names, plus our cached resolver warm and
 * two socket-pool variants. Ours is measured with its default EDNS OPT record and without one
 * (node:dns sends none, so that is the like-for-like packet). Prints one JSON object.
 *
 *   node bench/resolver.ts [--names 20000] [--seconds 0.5] [--rounds 2]
 *
 * Each case runs for `seconds`, cycling through the names (the server has no cache, and at most
 * 64 distinct names are in flight, so no query profits from another); ours and node:dns alternate
 * for `rounds` rounds and the figures are totals over the rounds.
 */
import { Resolver as NodeResolver } from 'node:dns/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CachingResolver } from '../src/dns/cache.ts';
import { StubResolver, type StubResolverOptions } from '../src/dns/stub.ts';
import { numberArg } from './support/args.ts';
import { startDnsServerProcess } from './support/dns-process.ts';


const NAMES = Math.floor(numberArg('names', 20000));
const SECONDS = numberArg('seconds', 0.5);
const ROUNDS = Math.floor(numberArg('rounds', 2));


interface CaseResult {
  queries: number;
  failed: number;
  ms: number;
  qps: number;
  /** client-side CPU (user + system) per query, in µs: the resolver's own cost */
  cpuUsPerQuery: number;
}

let cursor = 0;

/** Runs `lookup` with `concurrency` workers for `seconds`, taking names from `nameAt`. */
async function run(
  lookup: (name: string) => Promise<boolean>,
  concurrency: number,
  seconds: number,
  nameAt: () => string = () => `n${cursor++ % NAMES}.bench.test`,
): Promise<CaseResult> {
  let done = 0;
  let failed = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      if (!(await lookup(nameAt()))) failed++;
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  const cpuUsPerQuery = +((used.user + used.system) / Math.max(1, done)).toFixed(2);
  return { queries: done, failed, ms: Math.round(ms), qps: Math.round((done / ms) * 1000), cpuUsPerQuery };
}

function add(results: Record<string, CaseResult>, key: string, r: CaseResult): void {
  const prev = results[key];
  const queries = (prev?.queries ?? 0) + r.queries;
  const ms = (prev?.ms ?? 0) + r.ms;
  const cpuUs = (prev ? prev.cpuUsPerQuery * prev.queries : 0) + r.cpuUsPerQuery * r.queries;
  results[key] = {
    queries,
    failed: (prev?.failed ?? 0) + r.failed,
    ms,
    qps: Math.round((queries / ms) * 1000),
    cpuUsPerQuery: +(cpuUs / Math.max(1, queries)).toFixed(2),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'checkid-bench-'));
const zoneFile = join(dir, 'zone.json');
const zone: Record<string, unknown[]> = {};
for (let i = 0; i < NAMES; i++) {
  zone[`n${i}.bench.test`] = [{ TXT: `v=spf1 ip4:192.0.2.${i % 256} -all` }, { A: `192.0.2.${i % 256}` }];
}
writeFileSync(zoneFile, JSON.stringify(zone));
const { child, address } = await startDnsServerProcess(zoneFile);

const ours = (options: Partial<StubResolverOptions> = {}) => {
  const stub = new StubResolver({
    servers: [address],
    timeoutMs: 2000,
    attempts: 2,
    maxInFlight: 64,
    ...options,
  });
  return {
    stub,
    lookup: async (name: string) => (await stub.query(name, 'TXT')).status === 'ok',
  };
};
const nodeDns = () => {
  const r = new NodeResolver({ timeout: 2000, tries: 2 });
  r.setServers([address]);
  return async (name: string) => {
    try {
      return (await r.resolveTxt(name)).length > 0;
    } catch {
      return false;
    }
  };
};

// warm up both paths (JIT, sockets, the server process)
{
  const o = ours();
  await run(o.lookup, 16, 0.5);
  await o.stub.close();
  await run(nodeDns(), 16, 0.5);
}

const results: Record<string, CaseResult> = {};
for (let round = 0; round < ROUNDS; round++) {
  for (const c of [1, 64]) {
    // alternate them so drift on a shared machine hits all three
    const o = ours();
    add(results, `ours_c${c}`, await run(o.lookup, c, SECONDS));
    await o.stub.close();
    add(results, `node_c${c}`, await run(nodeDns(), c, SECONDS));
    // node:dns sends no OPT record; this is the same packet, so the server does the same work
    const plain = ours({ udpPayloadSize: false });
    add(results, `oursNoEdns_c${c}`, await run(plain.lookup, c, SECONDS));
    await plain.stub.close();
  }
}
{
  const o = ours({ queriesPerSocket: 1 });
  add(results, 'ours_c64_perQuerySocket', await run(o.lookup, 64, SECONDS));
  await o.stub.close();
  const one = ours({ sockets: 1, queriesPerSocket: 1_000_000 });
  add(results, 'ours_c64_oneLongLivedSocket', await run(one.lookup, 64, SECONDS));
  await one.stub.close();
}
{
  const o = ours();
  const cache = new CachingResolver(o.stub, { maxEntries: 100_000 });
  const names = Array.from({ length: Math.min(NAMES, 5000) }, (_, i) => `n${i}.bench.test`);
  const lookup = async (name: string) => (await cache.query(name, 'TXT')).status === 'ok';
  for (let i = 0; i < names.length; i += 64) {
    await Promise.all(names.slice(i, i + 64).map(lookup)); // fill
  }
  const before = cache.stats();
  let i = 0;
  const cycle = () => names[i++ % names.length]!;
  add(results, 'cachedWarm_c1', await run(lookup, 1, SECONDS, cycle));
  add(results, 'cachedWarm_c64', await run(lookup, 64, SECONDS, cycle));
  if (cache.stats().misses !== before.misses) throw new Error('warm cache missed');
  await o.stub.close();
}

child.kill('SIGTERM');
await new Promise((resolve) => child.once('exit', resolve));
rmSync(dir, { recursive: true, force: true });

const ratio = (c: number, who = 'ours') =>
  Number((results[`${who}_c${c}`]!.qps / results[`node_c${c}`]!.qps).toFixed(2));
process.stdout.write(
  `${JSON.stringify(
    {
      bench: 'resolver',
      node: process.version,
      server: 'scripts/dns-server.ts (dns-packet, child process)',
      names: NAMES,
      secondsPerCase: SECONDS,
      rounds: ROUNDS,
      qps: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.qps])),
      ratioOursToNode: { c1: ratio(1), c64: ratio(64) },
      ratioOursNoEdnsToNode: { c1: ratio(1, 'oursNoEdns'), c64: ratio(64, 'oursNoEdns') },
      // the resolver's own capacity: client CPU per query (the test server, one thread in
      // another process, is what saturates first at 64 in flight)
      cpuUsPerQuery: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.cpuUsPerQuery])),
      cpuRatioNodeToOurs: {
        c1: +(results.node_c1!.cpuUsPerQuery / results.ours_c1!.cpuUsPerQuery).toFixed(2),
        c64: +(results.node_c64!.cpuUsPerQuery / results.ours_c64!.cpuUsPerQuery).toFixed(2),
      },
      cases: results,
    },
    null,
    2,
  )}\n`,
);
