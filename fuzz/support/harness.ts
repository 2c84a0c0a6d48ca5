/**
 * The loop, command line and report the DKIM and ARC fuzzers share:
 *   node fuzz/<name>.ts [inputs] [seed=1] [--differential N]
 * Each input runs under a 1 s limit; a thrown error or a slower input is a crash. The report is
 * one JSON line on stdout; on any crash or undocumented differential verdict the first crashes go
 * to stderr and the exit status is 1.
 */

export interface FuzzArgs {
  inputs: number;
  seed: number;
  /** how many mailauth-oracle cases to run after the inputs (0: none) */
  differential: number;
}

/** Reads `[inputs] [seed] [--differential N]`; prints `usage` and exits 2 when they do not make sense. */
export function fuzzArgs(usage: string, defaultInputs: number, argv = process.argv.slice(2)): FuzzArgs {
  const d = argv.indexOf('--differential');
  const differential = d >= 0 ? Number(argv[d + 1]) : 0;
  const positional = argv.filter((_a, i) => d < 0 || (i !== d && i !== d + 1));
  const inputs = Number(positional[0] ?? defaultInputs);
  const seed = Number(positional[1] ?? 1);
  if (!(inputs > 0) || !Number.isInteger(seed) || !(differential >= 0)) {
    console.error(usage);
    process.exit(2);
  }
  return { inputs, seed, differential };
}

/** Throws `what` unless `cond`: an invariant of the code under test. */
export function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

/** What an input is, set by the fuzzer before it can fail, for the crash report. */
export interface Probe {
  kind: string;
  input: string;
}

export interface Crash extends Probe {
  error: string;
}

export interface RunResult {
  crashes: number;
  /** the first five crashes, inputs cut to 300 characters */
  examples: Crash[];
  ms: number;
}

/** Runs `one` for k = 0 … count - 1 and counts the crashes. */
export async function runInputs(
  count: number,
  one: (k: number, probe: Probe) => void | Promise<void>,
): Promise<RunResult> {
  let crashes = 0;
  const examples: Crash[] = [];
  const start = performance.now();
  for (let k = 0; k < count; k++) {
    const probe: Probe = { kind: '', input: '' };
    const t0 = performance.now();
    try {
      await one(k, probe);
      const took = performance.now() - t0;
      if (took > 1000) throw new Error(`took ${Math.round(took)} ms`);
    } catch (e) {
      crashes++;
      if (examples.length < 5)
        examples.push({
          kind: probe.kind,
          input: probe.input.slice(0, 300),
          error: e instanceof Error ? e.message : String(e),
        });
    }
  }
  return { crashes, examples, ms: Math.round(performance.now() - start) };
}

/** One verdict of a differential case: its class ("agree:pass", a documented difference), or undocumented, with what to print. */
export type Verdict = { key: string } | { undocumented: Record<string, unknown> };

/**
 * Runs `cases` oracle cases (case k has the seed `seed` × 1,000,003 + k) and counts their
 * verdicts by class; each undocumented one is printed to stderr with its seed.
 */
export async function countVerdicts(
  cases: number,
  seed: number,
  judge: (caseSeed: number) => Promise<Verdict[]>,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let k = 0; k < cases; k++) {
    const caseSeed = seed * 1_000_003 + k;
    for (const v of await judge(caseSeed)) {
      const key = 'key' in v ? v.key : 'undocumented';
      counts[key] = (counts[key] ?? 0) + 1;
      if ('undocumented' in v) console.error(JSON.stringify({ seed: caseSeed, ...v.undocumented }));
    }
  }
  return counts;
}

/**
 * Runs the differential cases the command line asked for (`judge`: see countVerdicts), then prints
 * the report (`summary`, then the differential counts if any); exits 1 after printing the crash
 * examples when there was a crash or an undocumented verdict.
 */
export async function finish(
  args: FuzzArgs,
  summary: Record<string, unknown>,
  run: RunResult,
  differential: (cases: number, seed: number) => Promise<Record<string, number>>,
): Promise<void> {
  const verdicts = args.differential > 0 ? await differential(args.differential, args.seed) : null;
  console.log(
    JSON.stringify({
      ...summary,
      ...(verdicts ? { differential: { cases: args.differential, verdicts } } : {}),
    }),
  );
  if (run.crashes > 0 || (verdicts?.['undocumented'] ?? 0) > 0) {
    for (const x of run.examples) console.error(JSON.stringify(x));
    process.exit(1);
  }
}
