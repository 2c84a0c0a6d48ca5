/** Starts scripts/dns-server.ts as a separate process (so its CPU is not ours) and reports its address. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export async function startDnsServerProcess(zoneFile: string): Promise<{ child: ChildProcess; address: string; stop(): void }> {
  const script = new URL('../../scripts/dns-server.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, [script, '--zone', zoneFile, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const address = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`dns-server exited with ${code}`)));
    lines.once('line', (line) => resolve((JSON.parse(line) as { listening: string }).listening));
  });
  return { child, address, stop: () => child.kill('SIGTERM') };
}

/** Runs `task` `total` times with `concurrency` in flight; returns operations per second. */
export async function measure(total: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<{ ops: number; ms: number; perSecond: number }> {
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < total) await task(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = performance.now() - start;
  return { ops: total, ms: Math.round(ms), perSecond: Math.round((total / ms) * 1000) };
}
