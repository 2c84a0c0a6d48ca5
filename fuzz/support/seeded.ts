/**
 * The command line and loop of a fuzzer that starts from a seed set:
 *   node fuzz/<name>.ts [inputs=1000000] [seed=1]
 * The seeds go first, then generated inputs, all drawn from one PRNG so a run replays from its
 * seed; each input is checked by `one` under the harness's 1 s limit and counted under the
 * outcome `one` names. Prints {inputs, ...outcomes, crashes, ms, seed} as one JSON line; on a
 * crash the first ones go to stderr and the exit status is 1.
 */
import { fuzzArgs, runInputs } from './harness.ts';
import { prng } from './prng.ts';

type Rng = () => number;

export interface SeededFuzzer<T> {
  /** the file name under fuzz/, for the usage line */
  name: string;
  seeds: readonly T[];
  generate: (rng: Rng) => T;
  /** the outcome names, in the order the report lists them */
  outcomes: readonly string[];
  /** checks one input (throws when an invariant breaks) and names its outcome */
  one: (input: T, rng: Rng) => string;
  /** the input as the crash report shows it */
  show: (input: T) => string;
}

export async function runSeededFuzzer<T>(f: SeededFuzzer<T>): Promise<void> {
  const args = fuzzArgs(`usage: node fuzz/${f.name} [inputs=1000000] [seed=1]`, 1_000_000);
  const rng = prng(args.seed);
  const counts: Record<string, number> = Object.fromEntries(f.outcomes.map((o) => [o, 0]));
  const run = await runInputs(args.inputs, (k, probe) => {
    const input = k < f.seeds.length ? f.seeds[k]! : f.generate(rng);
    probe.kind = f.name;
    probe.input = f.show(input);
    const outcome = f.one(input, rng);
    counts[outcome] = (counts[outcome] ?? 0) + 1;
  });
  console.log(JSON.stringify({ inputs: args.inputs, ...counts, crashes: run.crashes, ms: run.ms, seed: args.seed }));
  if (run.crashes > 0) {
    for (const x of run.examples) console.error(JSON.stringify(x));
    process.exit(1);
  }
}
