/**
 * `npm run bench`: every benchmark in one run, one after the other (they compete for the same
 * two cores otherwise), each printing its JSON; then one JSON line summarising the ratios.
 */
import { spawnSync } from 'node:child_process';

const BENCHES = ['checkid.ts', 'spf.ts', 'resolver.ts', 'siq.ts', 'siq-server.ts', 'dkim.ts', 'eom.ts', 'smtp-front.ts', 'redis-cache.ts', 'replay.ts', 'history.ts'];
const results: Record<string, unknown> = {};
for (const file of BENCHES) {
  const path = new URL(file, import.meta.url).pathname;
  process.stderr.write(`== bench/${file}\n`);
  const r = spawnSync(process.execPath, [path, ...process.argv.slice(2)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  process.stdout.write(r.stdout);
  if (r.status !== 0) {
    process.stderr.write(`bench/${file} failed with status ${r.status}\n`);
    process.exitCode = 1;
    continue;
  }
  try {
    results[file] = JSON.parse(r.stdout);
  } catch {
    results[file] = { unparsed: true };
  }
}
process.stdout.write(`${JSON.stringify({ bench: 'all', node: process.version, benches: Object.keys(results) })}\n`);
