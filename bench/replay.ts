/**
 * `checkid replay` throughput: messages per second replayed from an mbox against the seed zone
 * served by the test DNS server in a separate process, compared in the same run with the
 * baseline a postmaster has without replay: a shell loop spawning `checkid check --message` once
 * per message (same engine, same config, same DNS server, same messages).
 *
 *   node bench/replay.ts [--n 4000] [--baseline 40] [--jobs 8]
 *
 * Measured:
 * - replay_cli: the whole command (`checkid replay MBOX --quiet`) as a child process, wall time,
 *   start-up and report writing included;
 * - replay_in_process_jobs_1 / _jobs_N: the reader, envelope recovery, engine and report without
 *   process start-up, one at a time and N at a time;
 * - baseline_check_per_message: `checkid check` spawned for `--baseline` of the messages, one after
 *   the other (as a shell loop does), and two at a time (the machine's two cores);
 * - memory: the heap the in-process replay still holds when it ends (after a full GC), per
 *   message, for the mbox and for one four times larger: the reader streams, so what stays is
 *   the per-message summary the charts and what-if keep (up to --sample messages); and peak RSS.
 *
 * Prints one JSON object.
 */
import { spawn } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createResolver } from '../src/dns/config.ts';
import { Engine, staticPolicy } from '../src/engine/engine.ts';
import { loadConfigFile } from '../src/policy/config.ts';
import { ReplayReport } from '../src/replay/report.ts';
import { runReplay } from '../src/replay/runner.ts';
import { planInputs, readMessages } from '../src/replay/sources.ts';
import { numberArg } from './support/args.ts';
import { startDnsServerProcess } from './support/dns-process.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const N = numberArg('n', 4000);
const BASELINE = numberArg('baseline', 40);
const JOBS = numberArg('jobs', 8);
const fixtures = new URL('../test/fixtures/', import.meta.url).pathname;
const bin = new URL('../bin/checkid.mjs', import.meta.url).pathname;
const configPath = `${fixtures}seed-authent.yaml`;

/** The senders of the seed zone: accepted, rejected by SPF, and filtered. */
const SENDERS = [
  { ip: '192.0.2.1', helo: 'mx.example.com', from: 'alice@example.com' },
  { ip: '192.0.2.1', helo: 'mx.example.com', from: 'mallory@example.net' },
  { ip: '203.0.113.9', helo: 'mail.example.org', from: 'olga@example.org' },
  { ip: '198.51.100.20', helo: 'softfail.example', from: 'sam@softfail.example' },
];

const PARAGRAPH = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.\n';

function message(i: number): { text: string; sender: (typeof SENDERS)[number] } {
  const s = SENDERS[i % SENDERS.length]!;
  const text = `Return-Path: <${s.from}>
X-Original-To: bob@example.org
Delivered-To: bob@example.org
Received: from ${s.helo} (${s.helo} [${s.ip}])
\tby mx.receiver.example (Postfix) with ESMTPS id 4VtQ9k${String(i).padStart(6, '0')}
\tfor <bob@example.org>; Mon,  3 Jun 2024 10:00:00 +0200 (CEST)
From: ${s.from}
To: bob@example.org
Subject: message ${i}
Date: Mon, 03 Jun 2024 10:00:00 +0200
Message-ID: <bench.${i}@${s.from.split('@')[1]}>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

${PARAGRAPH.repeat(24)}From the archive: this line is quoted in the mbox.
`;
  return { text, sender: s };
}

function writeMbox(path: string, n: number): void {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(`From ${message(i).sender.from} Mon Jun  3 10:00:00 2024\n${message(i).text.replace(/^(>*From )/gm, '>$1')}\n`);
  writeFileSync(path, parts.join(''));
}

function runChild(args: string[]): Promise<{ code: number | null; ms: number; stderr: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, ms: performance.now() - started, stderr }));
  });
}

async function inProcess(mbox: string, jobs: number, address: string, reportDir: string) {
  const resolver = createResolver({ servers: [address] });
  const config = loadConfigFile(configPath);
  const engine = new Engine({ resolver, policy: staticPolicy(config, resolver) });
  const report = new ReplayReport(reportDir, { inputs: [mbox], config: configPath, resolver: [address], jobs, hop: {}, mboxFormat: 'mboxrd', envelopeFile: null });
  await report.open();
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const started = performance.now();
  await runReplay(engine, readMessages(await planInputs([mbox])), { jobs }, (e) => report.add(e));
  const { totals } = await report.finish(config);
  const ms = performance.now() - started;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  await resolver.close();
  gc();
  // the report (and the records it keeps) is still reachable here
  const retained = process.memoryUsage().heapUsed - heapBefore;
  void report.counts;
  return {
    messages: totals.messages,
    checked: totals.checked,
    actions: totals.actions,
    ms: Math.round(ms),
    perSecond: Math.round((totals.messages / ms) * 1000),
    peakRssMiB: Math.round(peak / 2 ** 20),
    retainedHeapBytesPerMessage: Math.round(retained / totals.messages),
  };
}

const work = mkdtempSync(join(tmpdir(), 'checkid-bench-replay-'));
const server = await startDnsServerProcess(`${fixtures}seed-zone.yaml`);
try {
  const mbox = join(work, 'archive.mbox');
  writeMbox(mbox, N);
  const big = join(work, 'big.mbox');
  writeMbox(big, N * 4);

  // the whole command, as a postmaster runs it
  const cli = await runChild(['replay', mbox, '--config', configPath, '--resolver', server.address, '--jobs', String(JOBS), '--quiet', '--report', join(work, 'cli-report')]);
  if (cli.code !== 0) throw new Error(`checkid replay failed: ${cli.stderr}`);

  // a first pass warms the JIT and the DNS server; not counted
  await inProcess(mbox, JOBS, server.address, join(work, 'warm'));
  const jobs1 = await inProcess(mbox, 1, server.address, join(work, 'r1'));
  const jobsN = await inProcess(mbox, JOBS, server.address, join(work, 'rn'));
  const bigRun = await inProcess(big, JOBS, server.address, join(work, 'rbig'));

  // the baseline: one `checkid check` process per message
  const files: string[][] = [];
  for (let i = 0; i < BASELINE; i++) {
    const { text, sender } = message(i);
    const file = join(work, `m${i}.eml`);
    writeFileSync(file, text.slice(text.indexOf('Received:')));
    files.push(['check', '--ip', sender.ip, '--helo', sender.helo, '--from', sender.from, '--rcpt', 'bob@example.org', '--message', file, '--config', configPath, '--resolver', server.address, '--json']);
  }
  const seqStart = performance.now();
  for (const args of files) {
    const r = await runChild(args);
    if (r.code !== 0) throw new Error(`checkid check failed: ${r.stderr}`);
  }
  const seqMs = performance.now() - seqStart;
  const parStart = performance.now();
  let next = 0;
  await Promise.all(
    [0, 1].map(async () => {
      while (next < files.length) await runChild(files[next++]!);
    }),
  );
  const parMs = performance.now() - parStart;
  const baselineSeq = Math.round((BASELINE / seqMs) * 1000 * 10) / 10;
  const baselinePar = Math.round((BASELINE / parMs) * 1000 * 10) / 10;
  const cliPerSecond = Math.round((N / cli.ms) * 1000);

  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'replay',
        node: process.version,
        messages: N,
        mbox_bytes_per_message: Buffer.byteLength(message(0).text) + 45,
        jobs: JOBS,
        replay_cli: { ms: Math.round(cli.ms), perSecond: cliPerSecond },
        replay_in_process_jobs_1: jobs1,
        [`replay_in_process_jobs_${JOBS}`]: jobsN,
        replay_in_process_4x_mbox: bigRun,
        baseline_check_per_message: { messages: BASELINE, sequential_per_second: baselineSeq, two_at_a_time_per_second: baselinePar },
        ratio_cli_vs_check_loop: Math.round((cliPerSecond / baselineSeq) * 10) / 10,
        ratio_cli_vs_check_two_at_a_time: Math.round((cliPerSecond / baselinePar) * 10) / 10,
        retained_heap_bytes_per_message: { [`${N}`]: jobsN.retainedHeapBytesPerMessage, [`${N * 4}`]: bigRun.retainedHeapBytesPerMessage },
        // what each further message adds (the fixed part taken out)
        retained_heap_bytes_per_additional_message: Math.round((bigRun.retainedHeapBytesPerMessage * N * 4 - jobsN.retainedHeapBytesPerMessage * N) / (N * 3)),
      },
      null,
      2,
    )}\n`,
  );
} finally {
  server.stop();
  rmSync(work, { recursive: true, force: true });
}
