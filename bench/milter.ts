/**
 * Postfix's throughput with checkid's milter, against Postfix alone and Postfix with rspamd's
 * milter, in one run, all on this machine (docs/lab.md, docs/benchmarks.md):
 *
 *   smtp-source ──► Postfix 3.7 (private instance) ──► smtp-sink
 *                      │ smtpd_milters
 *                      ├─ none
 *                      ├─ checkid milter (the daemon, `checkid milter`)
 *                      └─ rspamd 3.4 proxy in milter mode (SPF, DKIM, DMARC, one RBL)
 *   both milters ask the same local DNS server (scripts/dns-server.ts, seed + lab zones)
 *
 * Each case: a fresh Postfix, a warm-up of 200 messages, then --n messages from --sessions
 * parallel smtp-source sessions; we time until smtp-source is done (accepted/s) and until the sink
 * has every message (end to end), and count from Postfix's log: delivered + rejected must equal
 * sent. Then checkid's memory with --connections concurrent milter connections, each held in the
 * middle of a transaction (after RCPT).
 *
 *   node bench/milter.ts [--n 20000] [--sessions 20] [--size 2048] [--connections 1000]
 *
 * Needs root and the lab (bash scripts/lab/install.sh). Prints one JSON object. Goals (issue 3):
 * checkid ≥ 1.0× rspamd's messages/s; checkid costs Postfix ≤ 20% of its throughput; < 200 MB RSS
 * with 1,000 connections.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parse } from 'yaml';
import { FIXTURES, seedZone, tempDir } from '../test/support/fixtures.ts';
import { type RunningMilter, startCheckidMilter } from '../test/support/lab/checkid.ts';
import {
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
const WARMUP = 200;
const SENDER = 'bench@pass.lab.example';
const HELO = 'client.lab.example';

const log = (message: string) => process.stderr.write(`bench/milter: ${message}\n`);

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
      stats.set(entry, { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
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
  dns_queries_per_message: number;
}

async function runCase(
  name: string,
  sinkPort: number,
  milter: { address: string; pid: number } | null,
  dnsPid: number,
): Promise<CaseResult> {
  log(`${name}: starting Postfix`);
  const postfix: RunningMta = await startPostfix({
    sinkPort,
    ...(milter ? { milter: milter.address } : {}),
    milterDefaultAction: 'tempfail',
  });
  try {
    const delivered = () => countLog(postfix.logs()).delivered;
    log(`${name}: warm-up, ${WARMUP} messages`);
    await smtpSource(postfix.port, WARMUP, 4);
    await waitUntil(
      () => delivered() >= WARMUP,
      120_000,
      () => `warm-up: ${delivered()} of ${WARMUP} delivered`,
    );
    const base = countLog(postfix.logs());
    const cpu0 = milter ? cpuSeconds(milter.pid) : 0;
    const dnsCpu0 = cpuSeconds(dnsPid);
    log(`${name}: ${N} messages, ${SESSIONS} sessions`);
    const t0 = performance.now();
    await smtpSource(postfix.port, N, SESSIONS);
    const t1 = performance.now();
    // everything accepted must reach the sink (or stay visible as deferred in the log)
    await waitUntil(
      () => {
        const c = countLog(postfix.logs());
        return c.delivered - base.delivered + (c.rejected - base.rejected) >= N && postfix.queued() === 0;
      },
      600_000,
      () =>
        `${countLog(postfix.logs()).delivered - base.delivered} of ${N} delivered, ${postfix.queued()} queued`,
    ).catch((err) => log(`${name}: ${(err as Error).message}`));
    const t2 = performance.now();
    await sleep(500);
    const c = countLog(postfix.logs());
    const cpu = milter ? cpuSeconds(milter.pid) - cpu0 : null;
    const dnsCpu = cpuSeconds(dnsPid) - dnsCpu0;
    const result = {
      milter: name,
      sent: N,
      delivered: c.delivered - base.delivered,
      rejected: c.rejected - base.rejected,
      deferred: c.deferred - base.deferred,
      lost: N - (c.delivered - base.delivered) - (c.rejected - base.rejected),
      accept_seconds: +((t1 - t0) / 1000).toFixed(2),
      accepted_per_second: Math.round(N / ((t1 - t0) / 1000)),
      end_to_end_seconds: +((t2 - t0) / 1000).toFixed(2),
      end_to_end_per_second: Math.round(N / ((t2 - t0) / 1000)),
      milter_cpu_ms_per_message: cpu === null ? null : +((cpu * 1000) / N).toFixed(3),
      dns_server_cpu_ms_per_message: +((dnsCpu * 1000) / N).toFixed(3),
      dns_queries_per_message: 0,
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

const sinkPort = await freePort();
const sink = spawnChild(SMTP_SINK, ['-u', 'postfix', `127.0.0.1:${sinkPort}`, '1024']);
await waitForPort(sinkPort, 10_000, () => sink.exited());
const results: CaseResult[] = [];
let rspamdError: string | null = labMissing('rspamd');
let memory: Awaited<ReturnType<typeof memoryWithConnections>> | null = null;
try {
  {
    const dns = await startDns();
    results.push(await runCase('none', sinkPort, null, dns.pid));
    const s = await dns.stop();
    results.at(-1)!.dns_queries_per_message = +((s.udp + s.tcp) / (N + WARMUP)).toFixed(2);
  }
  {
    const dns = await startDns();
    let milter: RunningMilter | null = null;
    try {
      milter = await startCheckidMilter({ config: configFile, resolver: dns.address });
      results.push(
        await runCase(
          'checkid',
          sinkPort,
          { address: milter.address, pid: milter.child.process.pid! },
          dns.pid,
        ),
      );
    } finally {
      await milter?.stop();
    }
    const s = await dns.stop();
    results.at(-1)!.dns_queries_per_message = +((s.udp + s.tcp) / (N + WARMUP)).toFixed(2);
  }
  if (!rspamdError) {
    const dns = await startDns();
    let rspamd: RunningRspamd | null = null;
    try {
      log('rspamd: starting (slow: it compiles its URL suffix list)');
      rspamd = await startRspamd({ dns: dns.address });
      results.push(
        await runCase(
          'rspamd',
          sinkPort,
          { address: rspamd.address, pid: rspamd.child.process.pid! },
          dns.pid,
        ),
      );
      const symbols = /\[([A-Z_]+\([^\]]*)\]/.exec(
        rspamd
          .logs()
          .split('\n')
          .reverse()
          .find((l) => l.includes('(default:')) ?? '',
      );
      log(`rspamd: a task's symbols: ${symbols?.[1] ?? '(none logged)'}`);
    } catch (err) {
      rspamdError = (err as Error).message.split('\n')[0]!;
      log(`rspamd: ${(err as Error).message}`);
    } finally {
      await rspamd?.stop();
    }
    const s = await dns.stop();
    if (results.at(-1)?.milter === 'rspamd')
      results.at(-1)!.dns_queries_per_message = +((s.udp + s.tcp) / (N + WARMUP)).toFixed(2);
  }
  {
    const dns = await startDns();
    log(`memory: ${CONNECTIONS} concurrent milter connections`);
    memory = await memoryWithConnections(dns.address, CONNECTIONS);
    await dns.stop();
  }
} finally {
  await sink.stop();
}

const by = (name: string) => results.find((r) => r.milter === name);
const none = by('none')!;
const checkid = by('checkid')!;
const rspamd = by('rspamd');
const ratio = (a: number, b: number) => +(a / b).toFixed(2);
process.stdout.write(
  `${JSON.stringify(
    {
      bench: 'milter',
      node: process.version,
      n: N,
      sessions: SESSIONS,
      message_bytes: SIZE,
      cases: results,
      rspamd: rspamd ? 'ran' : `not run: ${rspamdError}`,
      memory,
      checkid_vs_postfix_alone_end_to_end: ratio(checkid.end_to_end_per_second, none.end_to_end_per_second),
      checkid_vs_postfix_alone_accepted: ratio(checkid.accepted_per_second, none.accepted_per_second),
      checkid_vs_rspamd_end_to_end: rspamd
        ? ratio(checkid.end_to_end_per_second, rspamd.end_to_end_per_second)
        : null,
      checkid_vs_rspamd_accepted: rspamd
        ? ratio(checkid.accepted_per_second, rspamd.accepted_per_second)
        : null,
      checkid_vs_rspamd_cpu_per_message:
        rspamd?.milter_cpu_ms_per_message && checkid.milter_cpu_ms_per_message
          ? ratio(rspamd.milter_cpu_ms_per_message, checkid.milter_cpu_ms_per_message)
          : null,
      goals: {
        'checkid >= 1.0x rspamd msg/s': rspamd
          ? checkid.end_to_end_per_second >= rspamd.end_to_end_per_second
          : null,
        'checkid costs Postfix <= 20%': checkid.end_to_end_per_second >= 0.8 * none.end_to_end_per_second,
        'RSS < 200 MB with 1000 connections': memory ? memory.rss_mb < 200 : null,
        'nothing lost': results.every((r) => r.lost === 0),
      },
    },
    null,
    2,
  )}\n`,
);
