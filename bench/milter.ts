/**
 * Postfix's throughput with checkid's milter, against Postfix alone and Postfix with rspamd's
 * milter, in one run, all on this machine (docs/lab.md, docs/benchmarks.md):
 *
 *   smtp-source ──► Postfix 3.7 (private instance) ──► smtp-sink
 *                      │ smtpd_milters
 *                      ├─ none
 *                      ├─ a null milter (this script with --null-milter PORT: checkid's option
 *                      │  negotiation, then CONTINUE to every step; the protocol's own cost)
 *                      ├─ checkid milter (the daemon, `checkid milter`)
 *                      └─ rspamd 3.4 proxy in milter mode (SPF, DKIM, DMARC, one RBL)
 *   both milters ask the same local DNS server (scripts/dns-server.ts, seed + lab zones)
 *
 * Each case: a fresh Postfix, a warm-up of 200 messages, then --n messages from --sessions
 * parallel smtp-source sessions; we time until smtp-source is done (accepted/s) and until the sink
 * has every message (end to end), and count from Postfix's log: delivered + rejected must equal
 * sent. The three cases run --rounds times, in alternating order (the machine is shared: each case
 * also reports how much CPU other processes took meanwhile); the ratios use each case's best
 * round. --soak N adds one checkid run of N messages for the loss count alone. Then checkid's
 * memory with --connections concurrent milter connections, each held after RCPT.
 *
 *   node bench/milter.ts [--n 20000] [--rounds 1] [--sessions 20] [--size 2048] [--connections 1000] [--soak 0]
 *
 * Needs root and the lab (bash scripts/lab/install.sh). Prints one JSON object. Goals (issue 3):
 * checkid ≥ 1.0× rspamd's messages/s; checkid costs Postfix ≤ 20% of its throughput; < 200 MB RSS
 * with 1,000 connections.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parse } from 'yaml';
import { milterWants } from '../src/adapters/milter/adapter.ts';
import { type Negotiated, negotiate, replyOwed } from '../src/adapters/milter/session.ts';
import { decodeCommand, encodeResponse, type Frame, FrameDecoder } from '../src/adapters/milter/wire.ts';
import { FIXTURES, seedZone, tempDir } from '../test/support/fixtures.ts';
import { type RunningMilter, startCheckidMilter } from '../test/support/lab/checkid.ts';
import {
  type Child,
  freePort,
  labMissing,
  SMTP_SINK,
  SMTP_SOURCE,
  sleep,
  spawnChild,
  waitForPort,
  waitUntil,
} from '../test/support/lab/lab.ts';
import type { RunningMta } from '../test/support/lab/mta.ts';
import { startPostfix } from '../test/support/lab/postfix.ts';
import { type RunningRspamd, startRspamd } from '../test/support/lab/rspamd.ts';
import { MilterClient } from '../test/support/milter-client.ts';
import { numberArg } from './support/args.ts';

const N = numberArg('n', 20_000);
const SESSIONS = numberArg('sessions', 20);
const SIZE = numberArg('size', 2048);
const CONNECTIONS = numberArg('connections', 1000);
const ROUNDS = numberArg('rounds', 1);
const SOAK = process.argv.includes('--soak') ? numberArg('soak', 100_000) : 0;
const WARMUP = 200;
const SENDER = 'bench@pass.lab.example';
const HELO = 'client.lab.example';

const log = (message: string) => process.stderr.write(`bench/milter: ${message}\n`);

if (process.argv[2] === '--null-milter') {
  await nullMilter(Number(process.argv[3]));
  await new Promise(() => {}); // serves until killed
}

/**
 * A milter that does nothing: it negotiates exactly what checkid negotiates (so Postfix sends the
 * same steps and waits for the same replies) and answers CONTINUE to every step it owes a reply.
 * Postfix with it shows what the milter protocol itself costs on this machine.
 */
async function nullMilter(port: number): Promise<void> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    let agreed: Negotiated | null = null;
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        const cmd = decodeCommand(frame);
        if (cmd.kind === 'OPTNEG') {
          const n = negotiate(cmd, milterWants());
          agreed = n.agreed;
          socket.write(encodeResponse(n.reply));
        } else if (cmd.kind === 'QUIT') socket.end();
        else if (cmd.kind === 'BODYEOB') socket.write(encodeResponse({ kind: 'CONTINUE' }));
        else if (agreed && replyOwed(agreed, cmd.kind)) socket.write(encodeResponse({ kind: 'CONTINUE' }));
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
writeFileSync(
  configFile,
  readFileSync(join(FIXTURES, 'lab.yaml'), 'utf8')
    .split('\n')
    .filter((l) => !/^hook:/.test(l))
    .join('\n'),
);

/** CPU seconds (user + system) a process and its descendants have used, from /proc. */
function cpuSeconds(rootPid: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of readdirProc()) {
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      // utime + stime, and cutime + cstime: the children it has reaped (Postfix recycles its daemons)
      stats.set(entry, {
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]),
      });
    } catch {
      // gone
    }
  }
  let ticks = 0;
  const tree = new Set([rootPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, s] of stats) {
      if (!tree.has(pid) && tree.has(s.ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  for (const pid of tree) ticks += stats.get(pid)?.ticks ?? 0;
  return ticks / 100;
}

function readdirProc(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** CPU seconds the whole machine has been busy (all cores), from /proc/stat. */
function machineBusySeconds(): number {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.map(Number);
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / 100;
}

function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  const text = readFileSync('/proc/self/stat', 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (u.user + u.system) / 1e6 + (Number(f[13]) + Number(f[14])) / 100;
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
  milter_cpu_ms_per_message: number | null;
  dns_server_cpu_ms_per_message: number;
  /** CPU the lab's processes used (Postfix, milter, DNS server, smtp-source, smtp-sink, this script), in cores */
  lab_cores: number;
  /** CPU other processes on the machine used meanwhile, in cores (2 = the whole machine) */
  other_cores: number;
}

interface Peer {
  address: string;
  pid: number;
}

async function runCase(
  name: string,
  round: number,
  count: number,
  sink: Child,
  milter: Peer | null,
  dnsPid: number,
): Promise<CaseResult> {
  log(`${name}: starting Postfix`);
  const postfix: RunningMta = await startPostfix({
    sinkPort: sinkPortOf(sink),
    ...(milter ? { milter: milter.address } : {}),
    milterDefaultAction: 'tempfail',
  });
  try {
    const masterPid = Number(readFileSync(join(postfix.dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
    const delivered = () => countLog(postfix.logs()).delivered;
    log(`${name}: warm-up, ${WARMUP} messages`);
    await smtpSource(postfix.port, WARMUP, 4);
    await waitUntil(
      () => delivered() >= WARMUP,
      120_000,
      () => `warm-up: ${delivered()} of ${WARMUP} delivered`,
    );
    const base = countLog(postfix.logs());
    const labCpu = () =>
      cpuSeconds(masterPid) +
      (milter ? cpuSeconds(milter.pid) : 0) +
      cpuSeconds(dnsPid) +
      cpuSeconds(sink.process.pid!) +
      selfCpuSeconds();
    const cpu0 = milter ? cpuSeconds(milter.pid) : 0;
    const dnsCpu0 = cpuSeconds(dnsPid);
    const lab0 = labCpu();
    const busy0 = machineBusySeconds();
    log(`${name}: round ${round}, ${count} messages, ${SESSIONS} sessions`);
    const t0 = performance.now();
    await smtpSource(postfix.port, count, SESSIONS);
    const t1 = performance.now();
    // everything accepted must reach the sink (a deferred message would stay queued)
    await waitUntil(
      () => {
        const c = countLog(postfix.logs());
        return c.delivered - base.delivered + (c.rejected - base.rejected) >= count && postfix.queued() === 0;
      },
      600_000,
      () =>
        `${countLog(postfix.logs()).delivered - base.delivered} of ${count} delivered, ${postfix.queued()} queued`,
    ).catch((err) => log(`${name}: ${(err as Error).message}`));
    const t2 = performance.now();
    const wall = (t2 - t0) / 1000;
    const lab = labCpu() - lab0;
    const busy = machineBusySeconds() - busy0;
    await sleep(500);
    const c = countLog(postfix.logs());
    const cpu = milter ? cpuSeconds(milter.pid) - cpu0 : null;
    const dnsCpu = cpuSeconds(dnsPid) - dnsCpu0;
    const result: CaseResult = {
      milter: name,
      round,
      sent: count,
      delivered: c.delivered - base.delivered,
      rejected: c.rejected - base.rejected,
      deferred: c.deferred - base.deferred,
      lost: count - (c.delivered - base.delivered) - (c.rejected - base.rejected),
      accept_seconds: +((t1 - t0) / 1000).toFixed(2),
      accepted_per_second: Math.round(count / ((t1 - t0) / 1000)),
      end_to_end_seconds: +wall.toFixed(2),
      end_to_end_per_second: Math.round(count / wall),
      milter_cpu_ms_per_message: cpu === null ? null : +((cpu * 1000) / count).toFixed(3),
      dns_server_cpu_ms_per_message: +((dnsCpu * 1000) / count).toFixed(3),
      lab_cores: +(lab / wall).toFixed(2),
      other_cores: +(Math.max(0, busy - lab) / wall).toFixed(2),
    };
    log(`${name}: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await postfix.stop();
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

const sinkPorts = new Map<Child, number>();
const sinkPortOf = (sink: Child) => sinkPorts.get(sink)!;
const sinkPort = await freePort();
const sink = spawnChild(SMTP_SINK, ['-u', 'postfix', `127.0.0.1:${sinkPort}`, '1024']);
sinkPorts.set(sink, sinkPort);
await waitForPort(sinkPort, 10_000, () => sink.exited());
const results: CaseResult[] = [];
let rspamdError: string | null = labMissing('rspamd');
let memory: Awaited<ReturnType<typeof memoryWithConnections>> | null = null;
let soak: CaseResult | null = null;
const dnsQueries: Record<string, number> = {};
// one DNS server per case kind, for the whole run: its query count is that kind's
const dnsNone = await startDns();
const dnsCheckid = await startDns();
const dnsRspamd = await startDns();
let checkidMilter: RunningMilter | null = null;
let nullMilterChild: Child | null = null;
let rspamd: RunningRspamd | null = null;
try {
  const nullPort = await freePort();
  nullMilterChild = spawnChild(process.execPath, [
    new URL(import.meta.url).pathname,
    '--null-milter',
    String(nullPort),
  ]);
  await waitForPort(nullPort, 10_000, () => nullMilterChild!.exited());
  checkidMilter = await startCheckidMilter({ config: configFile, resolver: dnsCheckid.address });
  if (!rspamdError) {
    try {
      log('rspamd: starting (slow: it compiles its URL suffix list)');
      rspamd = await startRspamd({ dns: dnsRspamd.address });
    } catch (err) {
      rspamdError = (err as Error).message.split('\n')[0]!;
      log(`rspamd: ${(err as Error).message}`);
    }
  }
  const cases: Array<[string, Peer | null, number]> = [
    ['none', null, dnsNone.pid],
    ['null', { address: `inet:127.0.0.1:${nullPort}`, pid: nullMilterChild.process.pid! }, dnsNone.pid],
    ['checkid', { address: checkidMilter.address, pid: checkidMilter.child.process.pid! }, dnsCheckid.pid],
    ...(rspamd
      ? ([['rspamd', { address: rspamd.address, pid: rspamd.child.process.pid! }, dnsRspamd.pid]] as Array<
          [string, Peer, number]
        >)
      : []),
  ];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? cases : [...cases].reverse();
    for (const [name, peer, dnsPid] of order) results.push(await runCase(name, round, N, sink, peer, dnsPid));
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
  if (SOAK > 0) {
    log(`soak: ${SOAK} messages through Postfix + checkid`);
    soak = await runCase(
      'checkid',
      0,
      SOAK,
      sink,
      { address: checkidMilter.address, pid: checkidMilter.child.process.pid! },
      dnsCheckid.pid,
    );
  }
} finally {
  await rspamd?.stop();
  await checkidMilter?.stop();
  await nullMilterChild?.stop();
  const runs = (name: string) =>
    results.filter((r) => r.milter === name || (name === 'none' && r.milter === 'null')).length *
      (N + WARMUP) +
    (name === 'checkid' && soak ? SOAK + WARMUP : 0);
  for (const [name, dns] of [
    ['none', dnsNone],
    ['checkid', dnsCheckid],
    ['rspamd', dnsRspamd],
  ] as const) {
    const st = await dns.stop();
    if (runs(name) > 0) dnsQueries[name] = +((st.udp + st.tcp) / runs(name)).toFixed(2);
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

/** a case kind's best round (the least disturbed by the rest of the machine) */
const by = (name: string) =>
  results
    .filter((r) => r.milter === name)
    .sort((x, y) => y.end_to_end_per_second - x.end_to_end_per_second)[0];
const none = by('none')!;
const nothing = by('null')!;
const checkid = by('checkid')!;
const peer = by('rspamd');
const ratio = (a: number, b: number) => +(a / b).toFixed(2);
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
      dns_queries_per_message: dnsQueries,
      rspamd: peer ? 'ran' : `not run: ${rspamdError}`,
      soak,
      memory,
      best_end_to_end_per_second: {
        none: none.end_to_end_per_second,
        null_milter: nothing.end_to_end_per_second,
        checkid: checkid.end_to_end_per_second,
        rspamd: peer?.end_to_end_per_second ?? null,
      },
      checkid_vs_postfix_alone: ratio(checkid.end_to_end_per_second, none.end_to_end_per_second),
      null_milter_vs_postfix_alone: ratio(nothing.end_to_end_per_second, none.end_to_end_per_second),
      checkid_vs_null_milter: ratio(checkid.end_to_end_per_second, nothing.end_to_end_per_second),
      checkid_vs_rspamd: peer ? ratio(checkid.end_to_end_per_second, peer.end_to_end_per_second) : null,
      rspamd_vs_postfix_alone: peer ? ratio(peer.end_to_end_per_second, none.end_to_end_per_second) : null,
      rspamd_cpu_per_message_over_checkid:
        peer?.milter_cpu_ms_per_message && checkid.milter_cpu_ms_per_message
          ? ratio(peer.milter_cpu_ms_per_message, checkid.milter_cpu_ms_per_message)
          : null,
      goals: {
        'checkid >= 1.0x rspamd msg/s': peer
          ? checkid.end_to_end_per_second >= peer.end_to_end_per_second
          : null,
        'checkid costs Postfix <= 20%': checkid.end_to_end_per_second >= 0.8 * none.end_to_end_per_second,
        'RSS < 200 MB with 1000 connections': memory ? memory.rss_mb < 200 : null,
        'nothing lost': results.every((r) => r.lost === 0) && (soak === null || soak.lost === 0),
      },
    },
    null,
    2,
  )}\n`,
);
