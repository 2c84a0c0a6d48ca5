/**
 * What checkid's milter costs Postfix, against Postfix alone, against milters that do nothing, and
 * against rspamd's milter, in one run, all on this machine (docs/lab.md, docs/benchmarks.md):
 *
 *   smtp-source ──► Postfix 3.7 (private instance) ──► smtp-sink
 *                      │ smtpd_milters
 *                      ├─ none
 *                      ├─ null-plain: a null milter (this script, --null-milter PORT plain) that
 *                      │  negotiates nothing: every step sent, every step answered (CONTINUE)
 *                      ├─ null-eom: a null milter that asks for no step but the end of message
 *                      │  (what merely having a milter costs: the connection, OPTNEG, end of message)
 *                      ├─ null: a null milter with checkid's own negotiation for this policy
 *                      │  (same steps sent, same answers owed, same macros; the protocol's cost)
 *                      ├─ checkid milter (the daemon, `checkid milter`), over TCP
 *                      ├─ checkid-eom: the same with `milter.answer_at: end_of_message` (every
 *                      │  answer at the end of the message, as rspamd gives them)
 *                      ├─ checkid-unix: the same over a unix socket (--unix)
 *                      ├─ checkid-pinned: the same with checkid on one core, taskset -c 1 (--pin)
 *                      ├─ checkid-baseline: an earlier checkid, for before/after (--baseline DIR)
 *                      └─ rspamd 3.4 proxy in milter mode (SPF, DKIM, DMARC, one RBL)
 *   both real milters ask the same kind of local DNS server (scripts/dns-server.ts, seed + lab zones)
 *
 * Each case: a fresh Postfix (max_use and max_idle raised so that each daemon lives through the
 * run and its CPU can be read from /proc; the same for every case), a warm-up of 200 messages,
 * then --n messages from --sessions parallel smtp-source sessions (one message per SMTP session,
 * as smtp-source sends by default, so one milter connection and OPTNEG per message). We time until
 * smtp-source is done (accepted/s) and until the sink has every message (end to end), count from
 * Postfix's log that delivered + rejected == sent, and read the CPU every process used: Postfix's
 * daemons by name (smtpd, cleanup, the rest), the milter, the DNS server, smtp-source, smtp-sink.
 * On a 2-core box where all of them compete, CPU per message is the fairer cost: messages/s move
 * with whatever else runs (each case reports the CPU other processes took meanwhile).
 *
 * For checkid, the event loop's delay during the run (monitorEventLoopDelay, loaded with --import
 * into the daemon, read with SIGUSR2). Then a short census per milter case through a recording
 * proxy (test/support/lab/milter-recorder.ts): frames each way and answer writes per message, the
 * protocol flags agreed. Cases run --rounds times in alternating order; ratios use each case's best
 * round (the least disturbed), and the spread of every case is reported. --soak N adds one checkid
 * run of N messages for the loss count alone. Then checkid's memory with --connections concurrent
 * milter connections, each held after RCPT.
 *
 *   node bench/milter.ts [--n 20000] [--rounds 1] [--sessions 20] [--size 2048] [--connections 1000]
 *                        [--soak 100000] [--unix] [--pin] [--baseline DIR] [--census 300] [--only none,null,checkid]
 *
 * Extra node flags for the checkid daemon (a CPU profile: `--cpu-prof --cpu-prof-dir=DIR`) go in
 * the environment variable MILTER_BENCH_CHECKID_FLAGS.
 *
 * Needs root and the lab (bash scripts/lab/install.sh). Prints one JSON object. Goals (issue 3):
 * checkid ≥ 1.0× rspamd's messages/s; checkid costs Postfix ≤ 20% of its throughput; < 200 MB RSS
 * with 1,000 connections; nothing lost.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parse } from 'yaml';
import { milterWants, policyNeeds } from '../src/adapters/milter/adapter.ts';
import { type FilterWants, type Negotiated, negotiate, replyOwed } from '../src/adapters/milter/session.ts';
import {
  decodeCommand,
  encodeResponse,
  type Frame,
  FrameDecoder,
  type MilterResponse,
  SMFIF,
  SMFIP,
} from '../src/adapters/milter/wire.ts';
import { loadConfigFile } from '../src/policy/config.ts';
import { CHECKID_BIN, FIXTURES, seedZone, tempDir } from '../test/support/fixtures.ts';
import { startCheckidMilter } from '../test/support/lab/checkid.ts';
import {
  type Child,
  freePort,
  labMissing,
  SMTP_SINK,
  SMTP_SOURCE,
  sleep,
  socketDir,
  spawnChild,
  waitForListener,
  waitForPort,
  waitUntil,
} from '../test/support/lab/lab.ts';
import { startMilterRecorder } from '../test/support/lab/milter-recorder.ts';
import type { RunningMta } from '../test/support/lab/mta.ts';
import { postfixGid, startPostfix } from '../test/support/lab/postfix.ts';
import { type RunningRspamd, startRspamd } from '../test/support/lab/rspamd.ts';
import { MilterClient } from '../test/support/milter-client.ts';
import { numberArg } from './support/args.ts';

const N = numberArg('n', 20_000);
const SESSIONS = numberArg('sessions', 20);
const SIZE = numberArg('size', 2048);
const CONNECTIONS = numberArg('connections', 1000);
const ROUNDS = numberArg('rounds', 1);
const CENSUS = numberArg('census', 300);
const SOAK = process.argv.includes('--soak') ? numberArg('soak', 100_000) : 0;
const UNIX = process.argv.includes('--unix');
const PIN = process.argv.includes('--pin');
/** a checkout of an earlier checkid (git archive COMMIT | tar -x -C DIR; node_modules linked): case checkid-baseline */
const BASELINE = (() => {
  const i = process.argv.indexOf('--baseline');
  return i < 0 ? null : process.argv[i + 1]!;
})();
const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return i < 0 ? null : new Set(process.argv[i + 1]!.split(','));
})();
const WARMUP = 200;
const SENDER = 'bench@pass.lab.example';
const HELO = 'client.lab.example';

const log = (message: string) => process.stderr.write(`bench/milter: ${message}\n`);

type NullMode = 'plain' | 'eom' | 'ours';

if (process.argv[2] === '--null-milter') {
  await nullMilter(Number(process.argv[3]), process.argv[4] as NullMode, process.argv[5]!);
  await new Promise(() => {}); // serves until killed
}

/** What each null milter asks for. `ours` is checkid's negotiation for the bench's policy. */
function nullWants(mode: NullMode, configFile: string): FilterWants {
  if (mode === 'plain') return { actions: SMFIF.ADDHDRS, protocol: 0 };
  if (mode === 'eom') {
    const no = SMFIP.NOCONNECT | SMFIP.NOHELO | SMFIP.NOMAIL | SMFIP.NORCPT | SMFIP.NOHDRS | SMFIP.NOEOH;
    return { actions: SMFIF.ADDHDRS, protocol: no | SMFIP.NOBODY | SMFIP.NODATA | SMFIP.NOUNKNOWN };
  }
  return milterWants({}, policyNeeds(loadConfigFile(configFile)));
}

/**
 * A milter that does nothing: it negotiates as `mode` says and answers CONTINUE to every step it
 * owes an answer (the end of message too), all answers of one read in one write. It counts the
 * frames each way and its reads and writes, and prints them as JSON when it gets SIGTERM.
 */
async function nullMilter(port: number, mode: NullMode, configFile: string): Promise<void> {
  const wants = nullWants(mode, configFile);
  const counts = { connections: 0, commands: 0, answers: 0, reads: 0, writes: 0 };
  process.on('SIGTERM', () => {
    process.stdout.write(`${JSON.stringify(counts)}\n`);
    process.exit(0);
  });
  const CONTINUE = encodeResponse({ kind: 'CONTINUE' });
  const server = net.createServer((socket) => {
    counts.connections++;
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    let agreed: Negotiated | null = null;
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk) => {
      counts.reads++;
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      const out: Buffer[] = [];
      for (const frame of frames) {
        counts.commands++;
        const cmd = decodeCommand(frame);
        if (cmd.kind === 'OPTNEG') {
          const n = negotiate(cmd, wants);
          agreed = n.agreed;
          out.push(encodeResponse(n.reply));
        } else if (cmd.kind === 'QUIT') socket.end();
        else if (agreed && replyOwed(agreed, cmd.kind)) out.push(CONTINUE);
      }
      if (out.length > 0) {
        counts.answers += out.length;
        counts.writes++;
        socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
}

for (const part of ['postfix', 'rspamd'] as const) {
  const missing = labMissing(part);
  if (missing && part === 'postfix') {
    log(`cannot run: ${missing}`);
    process.exit(1);
  }
}

const work = tempDir('checkid-bench-milter-');
const zoneFile = join(work, 'zone.json');
writeFileSync(
  zoneFile,
  JSON.stringify({
    ...seedZone(),
    ...(parse(readFileSync(join(FIXTURES, 'lab-zone.yaml'), 'utf8')) as object),
  }),
);
// the lab's config without its test hook: what a deployment runs
const configFile = join(work, 'checkid.yaml');
const labPolicy = readFileSync(join(FIXTURES, 'lab.yaml'), 'utf8')
  .split('\n')
  .filter((l) => !/^hook:/.test(l))
  .join('\n');
writeFileSync(configFile, labPolicy);
/** the same policy answering at the end of the message only (case checkid-eom) */
const eomConfigFile = join(work, 'checkid-eom.yaml');
writeFileSync(eomConfigFile, `${labPolicy}\nmilter:\n  answer_at: end_of_message\n`);

interface ProcStat {
  comm: string;
  ppid: number;
  /** CPU seconds: utime + stime */
  self: number;
  /** CPU seconds of the children it has reaped: cutime + cstime */
  reaped: number;
}

function procs(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      out.set(Number(entry), {
        comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')),
        ppid: Number(f[1]),
        self: (Number(f[11]) + Number(f[12])) / 100,
        reaped: (Number(f[13]) + Number(f[14])) / 100,
      });
    } catch {
      // gone
    }
  }
  return out;
}

/** A process and its descendants. */
function treeOf(root: number, all: Map<number, ProcStat>): Set<number> {
  const tree = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, s] of all) {
      if (!tree.has(pid) && tree.has(s.ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return tree;
}

/** CPU seconds the whole machine has been busy (all cores), from /proc/stat. */
function machineBusySeconds(): number {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.map(Number);
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / 100;
}

function memoryKb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/** The DNS server in its own process; its query counts come with its exit. */
async function startDns(): Promise<{
  address: string;
  pid: number;
  stop(): Promise<{ udp: number; tcp: number }>;
}> {
  const script = new URL('../scripts/dns-server.ts', import.meta.url).pathname;
  const child: ChildProcess = spawn(
    process.execPath,
    [script, '--zone', zoneFile, '--listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! });
  const iterator = lines[Symbol.asyncIterator]();
  const first = await iterator.next();
  const address = (JSON.parse(String(first.value)) as { listening: string }).listening;
  return {
    address,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      let stats = { udp: 0, tcp: 0 };
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        const parsed = JSON.parse(String(next.value)) as { stats?: { udp: number; tcp: number } };
        if (parsed.stats) stats = parsed.stats;
      }
      if (child.exitCode === null) await once(child, 'exit');
      return stats;
    },
  };
}

/**
 * Loaded into the checkid daemon with --import: the event loop's delay, reset by the first SIGUSR2,
 * appended as one JSON line to $BENCH_EVENT_LOOP_FILE and reset by each later one.
 */
const EVENT_LOOP_PROBE = `data:text/javascript,${encodeURIComponent(
  [
    "import { appendFileSync } from 'node:fs';",
    "import { monitorEventLoopDelay } from 'node:perf_hooks';",
    'const h = monitorEventLoopDelay({ resolution: 1 });',
    'h.enable();',
    'let armed = false;',
    "process.on('SIGUSR2', () => {",
    '  const ms = (ns) => +(ns / 1e6).toFixed(3);',
    "  if (armed) appendFileSync(process.env.BENCH_EVENT_LOOP_FILE, JSON.stringify({ mean: ms(h.mean), p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) }) + '\\n');",
    '  armed = !armed;',
    '  h.reset();',
    '});',
  ].join('\n'),
)}`;

/** The checkid daemon with the event-loop probe, over TCP or a unix socket, pinned or not. */
async function startCheckid(
  dns: string,
  options: { unix?: boolean; pin?: boolean; bin?: string; config?: string } = {},
): Promise<Milter & { child: Child; eventLoopFile: string }> {
  const eventLoopFile = join(work, `event-loop-${++probes}.jsonl`);
  writeFileSync(eventLoopFile, '');
  const env = { ...process.env, BENCH_EVENT_LOOP_FILE: eventLoopFile };
  const listen = options.unix
    ? `unix:${join(socketDir(postfixGid()), 'milter.sock')}`
    : `inet:127.0.0.1:${await freePort()}`;
  // extra node flags for the daemon, e.g. MILTER_BENCH_CHECKID_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof'
  const flags = (process.env.MILTER_BENCH_CHECKID_FLAGS ?? '').split(' ').filter(Boolean);
  const node = [
    process.execPath,
    ...flags,
    '--import',
    EVENT_LOOP_PROBE,
    options.bin ?? CHECKID_BIN,
    'milter',
    '--listen',
    listen,
    '--config',
    options.config ?? configFile,
    '--resolver',
    dns,
  ];
  // the mail log (stdout, a line per message) goes to a file, as rspamd's log does: a pipe to
  // this script would wake it for every line and bill both processes for it
  const command = [...(options.pin ? ['taskset', '-c', '1'] : []), ...node];
  const child = spawnChild('sh', ['-c', 'exec "$@" >>"$BENCH_MAIL_LOG"', 'sh', ...command], {
    env: { ...env, BENCH_MAIL_LOG: join(work, `mail-${probes}.log`) },
  });
  await waitForListener(options.unix ? listen.slice(5) : Number(/:(\d+)$/.exec(listen)![1]), 30_000, () => {
    const ended = child.exited();
    return ended ? `checkid milter ${ended}: ${child.output().trim()}` : null;
  });
  return { address: listen, pid: child.process.pid!, child, eventLoopFile, stop: () => child.stop() };
}
let probes = 0;

/** smtp-source: `count` messages over `sessions` connections; resolves when it exits. */
async function smtpSource(port: number, count: number, sessions: number): Promise<void> {
  const child = spawnChild(SMTP_SOURCE, [
    '-s',
    String(sessions),
    '-m',
    String(count),
    '-l',
    String(SIZE),
    '-f',
    SENDER,
    '-t',
    'rcpt@dest.example',
    '-M',
    HELO,
    `127.0.0.1:${port}`,
  ]);
  await child.wait();
  if (child.process.exitCode !== 0)
    throw new Error(`smtp-source ${child.exited()}: ${child.output().trim()}`);
}

interface Counts {
  delivered: number;
  rejected: number;
  deferred: number;
}

function countLog(text: string): Counts {
  const count = (re: RegExp) => (text.match(re) ?? []).length;
  return {
    delivered: count(/ status=sent /g),
    rejected: count(/: (milter-)?reject: /g),
    deferred: count(/ status=deferred /g),
  };
}

/** CPU milliseconds per message, by process. */
interface CpuPerMessage {
  /** the system under test and its load: Postfix, the milter, its DNS server, smtp-source, smtp-sink */
  lab: number;
  postfix: number;
  smtpd: number;
  cleanup: number;
  /** qmgr, smtp, trivial-rewrite, master, postlogd, scache... */
  postfix_other: number;
  milter: number | null;
  dns_server: number;
  smtp_source: number;
  smtp_sink: number;
  /** this script (it reads Postfix's log while it waits) */
  bench: number;
}

interface CaseResult {
  milter: string;
  round: number;
  sent: number;
  delivered: number;
  rejected: number;
  deferred: number;
  lost: number;
  accept_seconds: number;
  accepted_per_second: number;
  end_to_end_seconds: number;
  end_to_end_per_second: number;
  cpu_ms_per_message: CpuPerMessage;
  /** checkid only: the event loop's delay during the run */
  event_loop_delay_ms?: { mean: number; p50: number; p99: number; max: number };
  /** CPU the lab's processes used, in cores */
  lab_cores: number;
  /** CPU other processes on the machine used meanwhile, in cores (2 = the whole machine) */
  other_cores: number;
}

interface Milter {
  address: string;
  pid: number;
  stop(): Promise<void>;
}

interface Case {
  name: string;
  milter: Milter | null;
  dnsPid: number;
  /** the checkid daemon: its event-loop probe answers SIGUSR2 */
  probe?: { child: Child; file: string };
}

const ms = (seconds: number, count: number) => +((seconds * 1000) / count).toFixed(3);

async function withPostfix<T>(milter: string | null, fn: (postfix: RunningMta) => Promise<T>): Promise<T> {
  const postfix = await startPostfix({
    sinkPort,
    ...(milter ? { milter } : {}),
    milterDefaultAction: 'tempfail',
    // each daemon serves the whole run, so its CPU is there to read at the end (all cases alike)
    extra: ['max_use = 1000000', 'max_idle = 3600s'],
  });
  try {
    return await fn(postfix);
  } finally {
    await postfix.stop();
  }
}

async function warmUp(postfix: RunningMta): Promise<void> {
  await smtpSource(postfix.port, WARMUP, 4);
  await waitUntil(
    () => countLog(postfix.logs()).delivered >= WARMUP,
    120_000,
    () => `warm-up: ${countLog(postfix.logs()).delivered} of ${WARMUP} delivered`,
  );
}

async function runCase(c: Case, round: number, count: number): Promise<CaseResult> {
  log(`${c.name}: starting Postfix`);
  return withPostfix(c.milter?.address ?? null, async (postfix) => {
    const masterPid = Number(readFileSync(join(postfix.dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
    log(`${c.name}: warm-up, ${WARMUP} messages`);
    await warmUp(postfix);
    const base = countLog(postfix.logs());
    const before = procs();
    const busy0 = machineBusySeconds();
    c.probe?.child.process.kill('SIGUSR2'); // start the event-loop histogram afresh
    log(`${c.name}: round ${round}, ${count} messages, ${SESSIONS} sessions`);
    const t0 = performance.now();
    await smtpSource(postfix.port, count, SESSIONS);
    const t1 = performance.now();
    // everything accepted must reach the sink (a deferred message would stay queued)
    await waitUntil(
      () => {
        const n = countLog(postfix.logs());
        return n.delivered - base.delivered + (n.rejected - base.rejected) >= count && postfix.queued() === 0;
      },
      600_000,
      () =>
        `${countLog(postfix.logs()).delivered - base.delivered} of ${count} delivered, ${postfix.queued()} queued`,
    ).catch((err) => log(`${c.name}: ${(err as Error).message}`));
    const t2 = performance.now();
    const after = procs();
    const busy = machineBusySeconds() - busy0;
    // CPU the rest of the machine took: all of it but the lab and this script
    let eld: CaseResult['event_loop_delay_ms'];
    if (c.probe) {
      const file = c.probe.file;
      const lines = () => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
      const had = lines().length;
      c.probe.child.process.kill('SIGUSR2');
      await waitUntil(
        () => lines().length > had,
        5000,
        () => 'no event-loop report',
      ).catch((err) => log(`${c.name}: ${(err as Error).message}`));
      const line = lines()[had];
      if (line) eld = JSON.parse(line) as CaseResult['event_loop_delay_ms'];
    }
    const wall = (t2 - t0) / 1000;
    // CPU used during the run, by process: a process that existed before counts from its reading then
    const used = (pid: number): number => {
      const a = after.get(pid);
      if (!a) return 0;
      const b = before.get(pid);
      return a.self + a.reaped - (b && b.comm === a.comm ? b.self + b.reaped : 0);
    };
    const sum = (pids: Iterable<number>) => [...pids].reduce((s, pid) => s + used(pid), 0);
    const postfixPids = treeOf(masterPid, after);
    const byComm = (name: string) => sum([...postfixPids].filter((pid) => after.get(pid)?.comm === name));
    const postfixCpu = sum(postfixPids);
    const milterCpu = c.milter ? sum(treeOf(c.milter.pid, after)) : null;
    const dnsCpu = used(c.dnsPid);
    const sinkCpu = used(sink.process.pid!);
    // smtp-source is our child: once reaped, its CPU is in our own reaped counters; our own CPU
    // (the harness) is reported apart, not counted in the lab's
    const selfUsed = used(process.pid);
    const selfOwn = (after.get(process.pid)?.self ?? 0) - (before.get(process.pid)?.self ?? 0);
    const sourceCpu = selfUsed - selfOwn;
    const lab = postfixCpu + (milterCpu ?? 0) + dnsCpu + sinkCpu + sourceCpu;
    const n = countLog(postfix.logs());
    const result: CaseResult = {
      milter: c.name,
      round,
      sent: count,
      delivered: n.delivered - base.delivered,
      rejected: n.rejected - base.rejected,
      deferred: n.deferred - base.deferred,
      lost: count - (n.delivered - base.delivered) - (n.rejected - base.rejected),
      accept_seconds: +((t1 - t0) / 1000).toFixed(2),
      accepted_per_second: Math.round(count / ((t1 - t0) / 1000)),
      end_to_end_seconds: +wall.toFixed(2),
      end_to_end_per_second: Math.round(count / wall),
      cpu_ms_per_message: {
        lab: ms(lab, count),
        postfix: ms(postfixCpu, count),
        smtpd: ms(byComm('smtpd'), count),
        cleanup: ms(byComm('cleanup'), count),
        postfix_other: ms(postfixCpu - byComm('smtpd') - byComm('cleanup'), count),
        milter: milterCpu === null ? null : ms(milterCpu, count),
        dns_server: ms(dnsCpu, count),
        smtp_source: ms(sourceCpu, count),
        smtp_sink: ms(sinkCpu, count),
        bench: ms(selfOwn, count),
      },
      ...(eld ? { event_loop_delay_ms: eld } : {}),
      lab_cores: +(lab / wall).toFixed(2),
      other_cores: +(Math.max(0, busy - lab - selfOwn) / wall).toFixed(2),
    };
    log(`${c.name}: ${JSON.stringify(result)}`);
    return result;
  });
}

/** What a milter and Postfix say to each other per message, through the recording proxy. */
interface Census {
  messages: number;
  /** the protocol flags agreed at OPTNEG, by name */
  flags: string[];
  /** frames Postfix sent per message (MACRO frames included), and of those the steps */
  commands_per_message: number;
  steps_per_message: number;
  /** frames the milter sent per message, and in how many writes (reads on Postfix's side) */
  answers_per_message: number;
  answer_writes_per_message: number;
  /** reads of Postfix's bytes on the milter's side per message */
  command_reads_per_message: number;
  /** the answer bursts of the first message, e.g. OPTNEG | CONTINUE | INSHEADER,INSHEADER,ACCEPT */
  one_message: string;
}

const FLAG_NAMES = Object.entries(SMFIP) as Array<[string, number]>;

async function census(c: Case): Promise<Census | null> {
  if (!c.milter || c.milter.address.startsWith('unix:') || CENSUS <= 0) return null;
  const recorder = await startMilterRecorder(c.milter.address);
  try {
    return await withPostfix(recorder.address, async (postfix) => {
      await warmUp(postfix);
      await waitUntil(
        () => recorder.connections.every((x) => x.commands.at(-1)?.kind === 'QUIT'),
        10_000,
        () => 'warm-up connections still open',
      );
      recorder.clear();
      await smtpSource(postfix.port, CENSUS, 4);
      await waitUntil(
        () => recorder.connections.filter((x) => x.commands.at(-1)?.kind === 'QUIT').length >= CENSUS,
        60_000,
        () => `${recorder.connections.length} of ${CENSUS} milter connections recorded`,
      );
      const conns = recorder.connections;
      const per = (f: (x: (typeof conns)[number]) => number) =>
        +(conns.reduce((s, x) => s + f(x), 0) / CENSUS).toFixed(2);
      const opt = conns[0]!.responses[0] as Extract<MilterResponse, { kind: 'OPTNEG' }>;
      return {
        messages: CENSUS,
        flags: FLAG_NAMES.filter(([, bit]) => (opt.protocol & bit) === bit).map(([name]) => name),
        commands_per_message: per((x) => x.commands.length),
        steps_per_message: per((x) => x.commands.filter((k) => k.kind !== 'MACRO').length),
        answers_per_message: per((x) => x.responses.length),
        answer_writes_per_message: per((x) => x.responseBursts.length),
        command_reads_per_message: per((x) => x.commandReads),
        one_message: conns[0]!.responseBursts.map((b) => b.map((r) => r.kind).join(',')).join(' | '),
      };
    });
  } finally {
    await recorder.close();
  }
}

/** checkid's memory with `count` milter connections open, each held after RCPT. */
async function memoryWithConnections(dnsAddress: string, count: number) {
  const milter = await startCheckidMilter({ config: configFile, resolver: dnsAddress });
  const pid = milter.child.process.pid!;
  const clients: MilterClient[] = [];
  try {
    const open = async () => {
      const client = await MilterClient.connect(milter.address, { timeoutMs: 60_000 });
      clients.push(client);
      await client.negotiate();
      await client.connectEvent({
        hostname: '[127.0.0.1]',
        family: 'inet',
        port: 40000 + (clients.length % 20000),
        address: '127.0.0.1',
      });
      await client.helo(HELO);
      await client.mail([`<${SENDER}>`]);
      await client.rcpt(['<rcpt@dest.example>']);
    };
    await open(); // warm: code paths compiled, caches filled
    await sleep(500);
    const idle = memoryKb(pid);
    for (let done = 1; done < count; ) {
      const batch = Math.min(100, count - done);
      await Promise.all(Array.from({ length: batch }, open));
      done += batch;
    }
    await sleep(1000);
    const held = memoryKb(pid);
    return {
      connections: clients.length,
      rss_idle_mb: +(idle.rss / 1024).toFixed(1),
      rss_mb: +(held.rss / 1024).toFixed(1),
      peak_rss_mb: +(held.hwm / 1024).toFixed(1),
      kb_per_connection: +((held.rss - idle.rss) / (count - 1)).toFixed(1),
    };
  } finally {
    for (const c of clients) c.close();
    await milter.stop();
  }
}

const sinkPort = await freePort();
const sink = spawnChild(SMTP_SINK, ['-u', 'postfix', `127.0.0.1:${sinkPort}`, '1024']);
await waitForPort(sinkPort, 10_000, () => sink.exited());
const results: CaseResult[] = [];
const censuses: Record<string, Census | null> = {};
let rspamdError: string | null = labMissing('rspamd');
let memory: Awaited<ReturnType<typeof memoryWithConnections>> | null = null;
let soak: CaseResult | null = null;
const dnsQueries: Record<string, number> = {};
const messagesThrough: Record<string, number> = {};
// one DNS server per real milter, for the whole run: its query count is that milter's
const dnsNone = await startDns();
const dnsCheckid = await startDns();
const dnsRspamd = await startDns();
const started: Milter[] = [];
let rspamd: RunningRspamd | null = null;
const want = (name: string) => ONLY === null || ONLY.has(name);
try {
  const cases: Case[] = [{ name: 'none', milter: null, dnsPid: dnsNone.pid }];
  for (const mode of ['plain', 'eom', 'ours'] as const) {
    const name = mode === 'ours' ? 'null' : `null-${mode}`;
    if (!want(name)) continue;
    const port = await freePort();
    const child = spawnChild(process.execPath, [
      new URL(import.meta.url).pathname,
      '--null-milter',
      String(port),
      mode,
      configFile,
    ]);
    await waitForPort(port, 10_000, () => child.exited());
    const m = { address: `inet:127.0.0.1:${port}`, pid: child.process.pid!, stop: () => child.stop(), child };
    started.push(m);
    cases.push({ name, milter: m, dnsPid: dnsNone.pid });
  }
  const variants = [
    ['checkid', {}],
    ['checkid-eom', { config: eomConfigFile }],
    ...(UNIX ? [['checkid-unix', { unix: true }]] : []),
    ...(PIN ? [['checkid-pinned', { pin: true }]] : []),
    ...(BASELINE ? [['checkid-baseline', { bin: join(BASELINE, 'bin', 'checkid.mjs') }]] : []),
  ] as Array<[string, { unix?: boolean; pin?: boolean; bin?: string; config?: string }]>;
  for (const [name, options] of variants) {
    if (!want(name)) continue;
    const m = await startCheckid(dnsCheckid.address, options);
    started.push(m);
    cases.push({ name, milter: m, dnsPid: dnsCheckid.pid, probe: { child: m.child, file: m.eventLoopFile } });
  }
  if (!rspamdError && want('rspamd')) {
    try {
      log('rspamd: starting (slow: it compiles its URL suffix list)');
      rspamd = await startRspamd({ dns: dnsRspamd.address });
      cases.push({
        name: 'rspamd',
        milter: { address: rspamd.address, pid: rspamd.child.process.pid!, stop: () => rspamd!.stop() },
        dnsPid: dnsRspamd.pid,
      });
    } catch (err) {
      rspamdError = (err as Error).message.split('\n')[0]!;
      log(`rspamd: ${(err as Error).message}`);
    }
  }
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? cases : [...cases].reverse();
    for (const c of order) results.push(await runCase(c, round, N));
  }
  for (const c of cases) {
    if (!c.milter) continue;
    log(`${c.name}: census through the recording proxy, ${CENSUS} messages`);
    censuses[c.name] = await census(c).catch((err) => {
      log(`${c.name}: census failed: ${(err as Error).message}`);
      return null;
    });
  }
  if (rspamd) {
    const symbols = /\[([A-Z_]+\([^\]]*)\]/.exec(
      rspamd
        .logs()
        .split('\n')
        .reverse()
        .find((l) => l.includes('(default:')) ?? '',
    );
    log(`rspamd: a task's symbols: ${symbols?.[1] ?? '(none logged)'}`);
  }
  const checkidCase = cases.find((c) => c.name === 'checkid');
  if (SOAK > 0 && checkidCase) {
    log(`soak: ${SOAK} messages through Postfix + checkid`);
    soak = await runCase(checkidCase, 0, SOAK);
  }
} finally {
  for (const m of started) await m.stop();
  await rspamd?.stop();
  for (const r of [...results, ...(soak ? [soak] : [])]) {
    const kind = r.milter.startsWith('checkid') ? 'checkid' : r.milter === 'rspamd' ? 'rspamd' : 'none';
    messagesThrough[kind] = (messagesThrough[kind] ?? 0) + r.sent + WARMUP;
  }
  for (const [name, dns] of [
    ['none', dnsNone],
    ['checkid', dnsCheckid],
    ['rspamd', dnsRspamd],
  ] as const) {
    const st = await dns.stop();
    if (messagesThrough[name]) dnsQueries[name] = +((st.udp + st.tcp) / messagesThrough[name]).toFixed(2);
  }
}
try {
  const dns = await startDns();
  log(`memory: ${CONNECTIONS} concurrent milter connections`);
  memory = await memoryWithConnections(dns.address, CONNECTIONS);
  await dns.stop();
} finally {
  await sink.stop();
}

const names = [...new Set(results.map((r) => r.milter))];
/** a case's best round (the least disturbed by the rest of the machine) */
const best = (name: string) =>
  results
    .filter((r) => r.milter === name)
    .sort((x, y) => y.end_to_end_per_second - x.end_to_end_per_second)[0];
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? null : +(a / b).toFixed(2);
const range = (xs: number[]) => (xs.length ? [Math.min(...xs), Math.max(...xs)] : null);
const none = best('none');
const checkid = best('checkid');
const checkidEom = best('checkid-eom');
const nothing = best('null');
const peer = best('rspamd');
const summary = Object.fromEntries(
  names.map((name) => {
    const b = best(name)!;
    const rounds = results.filter((r) => r.milter === name);
    return [
      name,
      {
        best_end_to_end_per_second: b.end_to_end_per_second,
        end_to_end_per_second_range: range(rounds.map((r) => r.end_to_end_per_second)),
        throughput_vs_postfix_alone: ratio(b.end_to_end_per_second, none?.end_to_end_per_second),
        lab_cpu_ms_per_message: b.cpu_ms_per_message.lab,
        lab_cpu_ms_per_message_range: range(rounds.map((r) => r.cpu_ms_per_message.lab)),
        // on a machine where every process competes for the cores, CPU per message sets the pace
        postfix_alone_cpu_over_this: ratio(none?.cpu_ms_per_message.lab, b.cpu_ms_per_message.lab),
        postfix_cpu_ms_per_message: b.cpu_ms_per_message.postfix,
        milter_cpu_ms_per_message: b.cpu_ms_per_message.milter,
        milter_cpu_ms_per_message_range:
          b.cpu_ms_per_message.milter === null
            ? null
            : range(rounds.map((r) => r.cpu_ms_per_message.milter ?? 0)),
        ...(b.event_loop_delay_ms ? { event_loop_delay_ms: b.event_loop_delay_ms } : {}),
        other_cores: b.other_cores,
      },
    ];
  }),
);
const costOf = (r: CaseResult | undefined) =>
  r && none ? +(1 - r.end_to_end_per_second / none.end_to_end_per_second).toFixed(2) : null;
const extraCpu = (a: CaseResult | undefined, b: CaseResult | undefined) =>
  a && b ? +(a.cpu_ms_per_message.lab - b.cpu_ms_per_message.lab).toFixed(3) : null;
process.stdout.write(
  `${JSON.stringify(
    {
      bench: 'milter',
      node: process.version,
      n: N,
      rounds: ROUNDS,
      sessions: SESSIONS,
      message_bytes: SIZE,
      cases: results,
      summary,
      census: censuses,
      dns_queries_per_message: dnsQueries,
      rspamd: peer ? 'ran' : `not run: ${rspamdError}`,
      soak,
      memory,
      cost_to_postfix_throughput: Object.fromEntries(
        names.filter((n) => n !== 'none').map((n) => [n, costOf(best(n))]),
      ),
      extra_lab_cpu_ms_per_message_over_postfix_alone: Object.fromEntries(
        names.filter((n) => n !== 'none').map((n) => [n, extraCpu(best(n), none)]),
      ),
      checkid_marginal_over_null: {
        throughput: ratio(checkid?.end_to_end_per_second, nothing?.end_to_end_per_second),
        extra_lab_cpu_ms_per_message: extraCpu(checkid, nothing),
      },
      checkid_vs_rspamd: ratio(checkid?.end_to_end_per_second, peer?.end_to_end_per_second),
      // both answering at the end of the message only
      checkid_eom_vs_rspamd: ratio(checkidEom?.end_to_end_per_second, peer?.end_to_end_per_second),
      rspamd_cpu_per_message_over_checkid: ratio(
        peer?.cpu_ms_per_message.milter ?? undefined,
        checkid?.cpu_ms_per_message.milter ?? undefined,
      ),
      goals: {
        'checkid >= 1.0x rspamd msg/s':
          peer && checkid ? checkid.end_to_end_per_second >= peer.end_to_end_per_second : null,
        'checkid (answer_at end_of_message) >= 1.0x rspamd msg/s':
          peer && checkidEom ? checkidEom.end_to_end_per_second >= peer.end_to_end_per_second : null,
        'checkid costs Postfix <= 20%':
          checkid && none ? checkid.end_to_end_per_second >= 0.8 * none.end_to_end_per_second : null,
        'RSS < 200 MB with 1000 connections': memory ? memory.rss_mb < 200 : null,
        'nothing lost': results.every((r) => r.lost === 0) && (soak === null || soak.lost === 0),
      },
    },
    null,
    2,
  )}\n`,
);
