/**
 * The real-MTA lab's common ground (docs/lab.md): where scripts/lab/install.sh put things, whether
 * the lab can run here, free ports, child processes that are always stopped, and log tails for
 * readable errors.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';

export const REPO = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
export const LAB_DIR = process.env.CHECKID_LAB_DIR ?? `${REPO}/.cache/lab`;
export const SENDMAIL_ROOT = `${LAB_DIR}/sendmail`;
export const SENDMAIL_BIN = `${SENDMAIL_ROOT}/usr/libexec/sendmail/sendmail`;
export const SENDMAIL_CF_DIR = `${SENDMAIL_ROOT}/usr/share/sendmail/cf`;
export const SCRIPTS = `${REPO}/scripts/lab`;
export const POSTFIX_BIN = '/usr/sbin/postfix';
export const SMTP_SOURCE = '/usr/sbin/smtp-source';
export const SMTP_SINK = '/usr/sbin/smtp-sink';
export const RSPAMD_BIN = '/usr/bin/rspamd';

export type LabPart = 'postfix' | 'sendmail' | 'rspamd';

const INSTALL_HINT = 'run `bash scripts/lab/install.sh` as root (docs/lab.md)';

/** Why a lab part cannot run here, or null when it can. */
export function labMissing(part: LabPart): string | null {
  if (process.platform !== 'linux') return `the lab runs on Linux only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'the lab runs its MTAs as root, and this process is not root';
  switch (part) {
    case 'postfix':
      for (const f of [POSTFIX_BIN, SMTP_SINK, SMTP_SOURCE])
        if (!existsSync(f)) return `${f} is not installed: ${INSTALL_HINT}`;
      return null;
    case 'sendmail':
      if (!existsSync(SENDMAIL_BIN)) return `no unpacked Sendmail at ${SENDMAIL_BIN}: ${INSTALL_HINT}`;
      if (!existsSync(`${SENDMAIL_CF_DIR}/m4/cf.m4`))
        return `no sendmail-cf tree at ${SENDMAIL_CF_DIR}: ${INSTALL_HINT}`;
      if (!existsSync('/usr/bin/m4')) return `m4 is not installed: ${INSTALL_HINT}`;
      if (!existsSync('/usr/bin/unshare')) return 'unshare (util-linux) is missing';
      return null;
    case 'rspamd':
      return existsSync(RSPAMD_BIN) ? null : `${RSPAMD_BIN} is not installed: ${INSTALL_HINT}`;
  }
}

/**
 * The `skip` option for a lab test: false when the part is there. Outside CI a missing part
 * skips the test with the reason printed loudly on stderr; under CI (CI=true) it does not skip,
 * so the test runs and fails with the same reason — CI must install the lab (.ci/run does).
 */
export function labSkip(...parts: LabPart[]): string | false {
  const reasons = parts.map((p) => labMissing(p)).filter((r): r is string => r !== null);
  if (reasons.length === 0) return false;
  const reason = `real-MTA lab unavailable: ${reasons.join('; ')}`;
  if (process.env.CI) return false;
  process.stderr.write(`\n!!! SKIPPING lab test: ${reason}\n\n`);
  return reason;
}

/** Throws the reason a part is missing (for the CI case, where labSkip does not skip). */
export function requireLab(...parts: LabPart[]): void {
  const reasons = parts.map((p) => labMissing(p)).filter((r): r is string => r !== null);
  if (reasons.length) throw new Error(`real-MTA lab unavailable: ${reasons.join('; ')}`);
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once something accepts TCP connections on 127.0.0.1:port; rejects after timeoutMs or when `failed()` says why. */
export function waitForPort(port: number, timeoutMs: number, failed?: () => string | null): Promise<void> {
  return waitForListener(port, timeoutMs, failed);
}

/** Like waitForPort, for a TCP port on 127.0.0.1 or a unix socket path. */
export async function waitForListener(
  where: number | string,
  timeoutMs: number,
  failed?: () => string | null,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  const what = typeof where === 'number' ? `127.0.0.1:${where}` : where;
  for (;;) {
    const why = failed?.();
    if (why) throw new Error(why);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = typeof where === 'number' ? net.connect(where, '127.0.0.1') : net.connect(where);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${what} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** The last `lines` lines of a file ('' if it does not exist). */
export function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8').trimEnd();
  return text.split('\n').slice(-lines).join('\n');
}

/** Runs a command to completion; throws with its output when it fails. */
export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string } = {},
): string {
  const r = spawnSync(command, args, {
    encoding: 'utf8',
    env: options.env ?? process.env,
    input: options.input ?? '',
    timeout: 60_000,
  });
  if (r.error) throw new Error(`${command} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited with ${r.status ?? r.signal}:\n${r.stdout}${r.stderr}`.trimEnd(),
    );
  }
  return r.stdout;
}

const children = new Set<ChildProcess>();
const exitHooks = new Set<() => void>();
process.on('exit', () => {
  for (const hook of exitHooks) {
    try {
      hook();
    } catch {
      // best effort: the process is going away
    }
  }
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Registers a synchronous clean-up for the test process's exit (for daemons we did not fork ourselves); returns its remover. */
export function onExit(hook: () => void): () => void {
  exitHooks.add(hook);
  return () => exitHooks.delete(hook);
}

export interface Child {
  process: ChildProcess;
  /** what it printed on stdout and stderr so far */
  output(): string;
  /** null while running, else how it ended */
  exited(): string | null;
  /** resolves when it has exited by itself (keeping this process alive meanwhile) */
  wait(): Promise<void>;
  /** SIGTERM, then SIGKILL after graceMs; resolves when it has exited */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns a child that is killed when the test process exits, keeping its output. */
export function spawnChild(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Child {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  children.add(child);
  let out = '';
  const keep = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // A child never keeps the test process alive (a failed test that leaked one would hang its
  // file): the exit hook above kills whatever is left.
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  let ended: string | null = null;
  const done = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      ended = signal ? `killed by ${signal}` : `exited with ${code}`;
      children.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      ended = `could not start: ${err.message}`;
      children.delete(child);
      resolve();
    });
  });
  return {
    process: child,
    output: () => out,
    exited: () => ended,
    async wait() {
      if (ended) return;
      child.ref();
      await done;
    },
    async stop(graceMs = 5000) {
      if (ended) return;
      child.ref();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await done;
      clearTimeout(timer);
    },
  };
}

/** Polls `ready` every 50 ms until it is true; throws `what()` after timeoutMs. */
export async function waitUntil(ready: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > until) throw new Error(`${what()} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/**
 * A directory for a milter's unix socket, set up as docs/adapters/milter.md says: under /run
 * (Sendmail refuses a socket below a group- or world-writable directory, so not under /tmp), mode
 * 2750, group `gid` (the MTA's), so the socket (0660) inherits that group. Removed at exit.
 */
export function socketDir(gid: number): string {
  const dir = mkdtempSync('/run/checkid-lab-');
  onExit(() => rmSync(dir, { recursive: true, force: true }));
  chownSync(dir, 0, gid);
  chmodSync(dir, 0o2750);
  return dir;
}
