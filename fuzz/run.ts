/**
 * `npm run fuzz [-- inputs]`: every fuzzer with the same number of inputs (default 100,000 each),
 * one after the other; exit status 1 if any of them found a crash.
 */
import { spawnSync } from 'node:child_process';

const FUZZERS = ['dns-decode.ts', 'spf-parse.ts', 'config.ts', 'siq.ts', 'siq-server.ts', 'dmarc.ts', 'milter.ts', 'dkim.ts', 'arc.ts', 'smtp.ts', 'policyd.ts', 'replay.ts', 'exim.ts', 'qmail.ts', 'http-api.ts'];
const inputs = process.argv[2] ?? '100000';
let failed = 0;
for (const file of FUZZERS) {
  const path = new URL(file, import.meta.url).pathname;
  process.stderr.write(`== fuzz/${file} (${inputs} inputs)\n`);
  const r = spawnSync(process.execPath, [path, inputs], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exitCode = failed > 0 ? 1 : 0;
