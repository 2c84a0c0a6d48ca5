/**
 * checkid as child processes of a test, the way a postmaster runs it: a daemon (`checkid serve`,
 * `checkid siq serve`) started and read until its "checkid listening" log entry, and one-shot
 * commands run to their end.
 *
 * A daemon's standard output (mail-log lines) and standard error (JSON log lines) are kept line by
 * line. Every wait is bounded, and every failure names the command and ends with its output, so a
 * daemon that does not start says why instead of hanging the test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { CHECKID_BIN } from './fixtures.ts';

/** checkid's JSON log entry (or any JSON object line). */
export type LogEntry = Record<string, unknown>;

/** Tests one output line; `json` is the line parsed when it is a JSON object, else null. */
export type LineMatch = (line: string, json: LogEntry | null) => boolean;

export interface ProcessOptions {
  /** the program and its first arguments; default: this Node running bin/checkid.mjs */
  cmd?: string[];
  /** set over this process's environment */
  env?: Record<string, string>;
  cwd?: string;
}

export interface DaemonOptions extends ProcessOptions {
  /** how long it may take to log "checkid listening" (default 30 s) */
  timeoutMs?: number;
}

export interface Daemon {
  child: ChildProcess;
  /** the "checkid listening" entry: listener name → address (and msg, pid, …) */
  listening: Record<string, string>;
  /** its standard output and standard error so far, line by line */
  stdout: string[];
  stderr: string[];
  /** the standard error lines that are JSON objects: checkid's log entries */
  logs: LogEntry[];
  /** its last lines of output (standard error, then standard output), for messages */
  output(): string;
  /**
   * Resolves with the first line, of either stream and from the start, that matches (the parsed
   * object for a JSON line, else the text); rejects when the process ends first or after
   * `timeoutMs` (default 30 s), with its output.
   */
  waitFor<T = LogEntry>(what: string, match: LineMatch, timeoutMs?: number): Promise<T>;
  /** Waits (at most `timeoutMs`, default 30 s) for it to end by itself; its exit code (null: a signal). */
  ended(timeoutMs?: number): Promise<number | null>;
  /**
   * Sends `signal` (default SIGTERM) unless it has ended, and resolves with its exit code (null: a
   * signal). Not ended within `timeoutMs` (default 30 s): SIGKILL, and rejects with its output.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/** A daemon that ended before it listened (`code`: its exit code) or did not listen in time (`code` null). */
export class DaemonStartError extends Error {
  override name = 'DaemonStartError';
  readonly code: number | null;
  /** all its standard error */
  readonly stderr: string;
  constructor(message: string, code: number | null, stderr: string) {
    super(message);
    this.code = code;
    this.stderr = stderr;
  }
}

const DEFAULT_WAIT_MS = 30_000;
/** lines of each stream an error message shows at most */
const OUTPUT_LINES = 100;

function parseJsonLine(line: string): LogEntry | null {
  if (!line.startsWith('{')) return null;
  try {
    const v = JSON.parse(line) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as LogEntry) : null;
  } catch {
    return null;
  }
}

/** The command line as a reader knows it ("checkid serve --config …"). */
function shownCommand(argv: string[]): string {
  const [first, second, ...rest] = argv;
  const shown = first === process.execPath && second === CHECKID_BIN ? ['checkid', ...rest] : argv;
  return shown.join(' ');
}

/** `promise`, or a rejection from `onTimeout()` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

interface Waiter {
  match: LineMatch;
  resolve: (v: unknown) => void;
  reject: (err: Error) => void;
  what: string;
}

/** Starts the process without waiting for anything (see `startDaemon`). */
export function spawnDaemon(args: string[], options: ProcessOptions = {}): Daemon {
  const argv = [...(options.cmd ?? [process.execPath, CHECKID_BIN]), ...args];
  const command = shownCommand(argv);
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: options.cwd,
    env: options.env ? { ...process.env, ...options.env } : process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const logs: LogEntry[] = [];
  const lines: Array<{ line: string; json: LogEntry | null }> = [];
  const waiters = new Set<Waiter>();
  let end: string | null = null;

  const output = () => [...stderr.slice(-OUTPUT_LINES), ...stdout.slice(-OUTPUT_LINES)].join('\n');
  const endError = (what: string) => new Error(`${command} ${end} before ${what}; its output:\n${output()}`);
  const read = (into: string[], isLog: boolean) => (line: string) => {
    into.push(line);
    const json = parseJsonLine(line);
    if (isLog && json) logs.push(json);
    lines.push({ line, json });
    for (const w of waiters) {
      if (!w.match(line, json)) continue;
      waiters.delete(w);
      w.resolve(json ?? line);
    }
  };
  createInterface({ input: child.stdout! }).on('line', read(stdout, false));
  createInterface({ input: child.stderr! }).on('line', read(stderr, true));

  // 'close' comes after the exit and the last line read; 'error' when it could not be started
  const closed = new Promise<number | null>((resolve) => {
    child.on('error', (err) => {
      end ??= `could not be started (${err.message})`;
      for (const w of waiters) w.reject(endError(w.what));
      waiters.clear();
      resolve(null);
    });
    child.on('close', (code, signal) => {
      end ??= `ended (${code ?? signal})`;
      for (const w of waiters) w.reject(endError(w.what));
      waiters.clear();
      resolve(code);
    });
  });

  const ended = (timeoutMs = DEFAULT_WAIT_MS) =>
    within(
      closed,
      timeoutMs,
      () => new Error(`${command} did not end within ${timeoutMs} ms; its output:\n${output()}`),
    );

  return {
    child,
    listening: {},
    stdout,
    stderr,
    logs,
    output,
    waitFor<T>(what: string, match: LineMatch, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
      for (const { line, json } of lines) if (match(line, json)) return Promise.resolve((json ?? line) as T);
      if (end !== null) return Promise.reject(endError(what));
      let waiter: Waiter | undefined;
      const found = new Promise<T>((resolve, reject) => {
        waiter = { match, resolve: resolve as (v: unknown) => void, reject, what };
        waiters.add(waiter);
      });
      return within(found, timeoutMs, () => {
        waiters.delete(waiter!);
        return new Error(`no ${what} from ${command} within ${timeoutMs} ms; its output:\n${output()}`);
      });
    },
    ended,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = DEFAULT_WAIT_MS) {
      if (end === null && child.exitCode === null && child.signalCode === null) child.kill(signal);
      try {
        return await ended(timeoutMs);
      } catch (err) {
        child.kill('SIGKILL');
        throw err;
      }
    },
  };
}

/**
 * Starts a daemon (default: `checkid ARGS`) and resolves once it logs "checkid listening"; rejects
 * with a DaemonStartError, its output in the message, when it ends first or does not listen
 * within `timeoutMs` (then it is killed).
 */
export async function startDaemon(args: string[], options: DaemonOptions = {}): Promise<Daemon> {
  const d = spawnDaemon(args, options);
  try {
    d.listening = await d.waitFor<Record<string, string>>(
      '"checkid listening"',
      (_line, json) => json?.msg === 'checkid listening',
      options.timeoutMs ?? DEFAULT_WAIT_MS,
    );
    return d;
  } catch (err) {
    const code = d.child.exitCode;
    await d.stop('SIGKILL', 5_000).catch(() => undefined);
    throw new DaemonStartError((err as Error).message, code, d.stderr.join('\n'));
  }
}

export interface Ran {
  /** the exit code; null when it was killed (a signal, or the time limit) */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions extends ProcessOptions {
  /** written to its standard input, which is then closed (default: nothing) */
  input?: string;
  /** killed (SIGKILL) after this long (default 30 s) */
  timeoutMs?: number;
}

/** Runs a one-shot command (default: `checkid ARGS`) to its end. */
export async function runCheckid(args: string[], options: RunOptions = {}): Promise<Ran> {
  const argv = [...(options.cmd ?? [process.execPath, CHECKID_BIN]), ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: options.cwd,
    env: options.env ? { ...process.env, ...options.env } : process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin!.on('error', () => {
    // a command that exits without reading its input
  });
  child.stdin!.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? DEFAULT_WAIT_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  return { code, stdout, stderr };
}
