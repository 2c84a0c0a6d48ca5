/**
 * checkid as child processes for the SIQ server tests: a daemon (`checkid serve`, `checkid siq
 * serve`) read until its "checkid listening" log entry, its log kept draining; one-shot
 * commands with an optional line on standard input.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { CHECKID_BIN } from '../../support/fixtures.ts';

export interface Daemon {
  child: ChildProcess;
  /** the "checkid listening" entry: listener name → address */
  listening: Record<string, string>;
  /** every JSON log entry so far */
  logs: Array<Record<string, unknown>>;
  /** SIGTERM; resolves with the exit code */
  stop(): Promise<number | null>;
}

/** Starts a listener command; resolves once it logs "checkid listening" (rejects if it exits first, with its output). */
export async function startDaemon(args: string[], timeoutMs = 30_000): Promise<Daemon> {
  const child = spawn(process.execPath, [CHECKID_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.resume(); // mail-log lines
  const logs: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const lines = createInterface({ input: child.stderr! });
  const exited = once(child, 'exit');
  const listening = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no "checkid listening" within ${timeoutMs} ms:\n${raw.join('\n')}`));
    }, timeoutMs);
    lines.on('line', (line) => {
      raw.push(line);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === 'checkid listening') {
        clearTimeout(timer);
        resolve(entry as Record<string, string>);
      }
    });
    void exited.then(([code]) => {
      clearTimeout(timer);
      reject(new Error(`checkid ${args.join(' ')} exited with ${code} before listening:\n${raw.join('\n')}`));
    });
  });
  return {
    child,
    listening,
    logs,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = await exited;
      return code as number | null;
    },
  };
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a one-shot checkid command; `input` is written to its standard input (then closed). */
export async function runCheckid(args: string[], input?: string, timeoutMs = 30_000): Promise<Ran> {
  const child = spawn(process.execPath, [CHECKID_BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin!.end(input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = await once(child, 'close');
  clearTimeout(timer);
  return { code: code as number | null, stdout, stderr };
}

/** The address after `label ` in a listener's address text ("udp 127.0.0.1:5000, http …"). */
export function addressOf(text: string | undefined, label: string): string {
  const m = new RegExp(`(?:^|, )${label} (\\S+?)(?:,|$)`).exec(text ?? '');
  if (!m) throw new Error(`no ${label} address in ${JSON.stringify(text)}`);
  return m[1]!;
}

/** Polls `probe` every 50 ms until it returns a value other than undefined, at most `tries` times. */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, tries = 200): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
