#!/usr/bin/env node
// `npm test`: type check, lint, then every test file under test/ with Node's own test runner.
// Node 20 neither expands globs nor finds .ts files by default (and then "passes" with zero
// tests), so we list the files ourselves. Arguments filter test files by substring and skip
// the type check and lint (for quick runs: `npm test -- spf`).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`checkid needs Node >= 22.18 (this is ${process.version}). Run it through npm ("npm test"),`);
  console.error('which puts the pinned Node from node_modules/.bin first on PATH, after "npm install".');
  process.exit(2);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`\n${cmd} ${args.join(' ')} failed`);
    process.exit(r.status ?? 1);
  }
}

function find(dir, out = []) {
  for (const entry of readdirSync(dir)) {
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) find(p, out);
    else if (entry.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
if (filter.length === 0) {
  console.log('== type check (tsc --noEmit)');
  run('tsc', ['--noEmit', '-p', '.']);
  console.log('== lint (biome)');
  run('biome', ['lint', '--error-on-warnings', 'src', 'test', 'bench', 'fuzz', 'scripts', 'bin']);
}
let files = find('test').sort();
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
console.log(`== tests (${files.length} files)`);
const reporter = process.env.CHECKID_TEST_REPORTER ?? 'spec';
// a test that hangs fails after this long instead of holding CI until its 90-minute limit
const timeout = process.env.CHECKID_TEST_TIMEOUT_MS ?? '180000';
// every checkid a test starts keeps its state (verdict history, the dashboard's policy overlay)
// in a directory of this run, never in /var/lib/checkid or the user's ~/.local/state
const stateDir = mkdtempSync(join(tmpdir(), 'checkid-test-state-'));
process.env.STATE_DIRECTORY = stateDir;
// No --test-force-exit: it ends a test file's process before the runner has read all its
// results, so the last tests of some files went unreported (and uncounted). A file that keeps a
// handle open after its tests instead stalls the run, which this bound turns into a failure.
const runLimit = Number(process.env.CHECKID_TEST_RUN_TIMEOUT_MS ?? 30 * 60_000);
const r = spawnSync(process.execPath, ['--test', `--test-reporter=${reporter}`, `--test-timeout=${timeout}`, ...files], {
  stdio: 'inherit',
  timeout: runLimit,
  killSignal: 'SIGKILL',
});
rmSync(stateDir, { recursive: true, force: true });
if (r.error || r.signal) {
  console.error(
    `\nnpm test: the test run did not end within ${Math.round(runLimit / 1000)} s (${r.error?.message ?? r.signal}): a test file probably keeps a handle open after its tests; the output above shows the last file that reported`,
  );
  process.exit(1);
}
process.exit(r.status ?? 1);
