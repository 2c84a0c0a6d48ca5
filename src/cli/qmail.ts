/**
 * `checkid qmail-queue`: run by qmail-smtpd as $QMAILQUEUE (docs/adapters/qmail.md). qmail runs
 * the program with no arguments, so everything can also come from the environment (a small
 * wrapper script sets it): CHECKID_CONFIG, CHECKID_RESOLVER, CHECKID_QMAIL_QUEUE,
 * CHECKID_ERROR_FD (auto, none or a number: where qmail-smtpd reads our reply text; auto = fd 6
 * when qmail-smtpd left it open). Flags win over the environment.
 *
 * Exit status: qmail-queue's (0 queued, 31 permanent, 71 temporary, 82 text on fd 6, 54 and 91
 * for a bad envelope, or the real qmail-queue's own); never 2 or 3, which qmail would take as
 * permanent failures of unrelated kinds: usage and configuration errors exit 71 (try later).
 */
import { createReadStream, fstatSync, readdirSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runQmailQueueWrapper, QQ_TEMPORARY } from '../adapters/qmail/wrapper.ts';
import { ConfigError } from '../policy/config.ts';
import { startRuntime } from './runtime.ts';
import { jsonLog } from './serve.ts';

export const DEFAULT_QMAIL_QUEUE = '/var/qmail/bin/qmail-queue';

/** Whether fd is open as a pipe or socket (qmail-smtpd's custom-error pipe). */
function isPipe(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false;
  }
}

/**
 * Whether fd is a pipe the program that ran us left open for writing. "fd 6 is an open pipe"
 * alone proves nothing: Node opens descriptors of its own at start-up (event loop, a signal
 * pipe), which take the lowest free numbers when qmail-smtpd left fd 6 closed, and it marks every
 * inherited one close-on-exec too. Node's own pipes have both ends here; qmail-smtpd's has its
 * read end in qmail-smtpd. Linux tells through /proc; elsewhere the answer is no.
 */
export function inheritedWritablePipe(fd: number): boolean {
  try {
    const flags = Number.parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8);
    if ((flags & 3) !== 1 && (flags & 3) !== 2) return false;
    if (!isPipe(fd)) return false;
    const target = readlinkSync(`/proc/self/fd/${fd}`);
    if (!/^(?:pipe|socket):\[\d+\]$/.test(target)) return true;
    for (const other of readdirSync('/proc/self/fd')) {
      if (Number(other) === fd) continue;
      try {
        if (readlinkSync(`/proc/self/fd/${other}`) === target) return false;
      } catch {
        // closed meanwhile (the directory listing's own descriptor)
      }
    }
    return true;
  } catch {
    return false;
  }
}

export async function runQmailQueue(argv: string[]): Promise<number> {
  let values: { config?: string; resolver?: string[]; 'qmail-queue'?: string; 'error-fd'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        resolver: { type: 'string', multiple: true },
        'qmail-queue': { type: 'string' },
        'error-fd': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`checkid qmail-queue: ${(err as Error).message}\n`);
    return QQ_TEMPORARY;
  }
  if (values.help) {
    process.stderr.write(
      'usage: checkid qmail-queue [--qmail-queue PATH] [--config FILE] [--resolver HOST:PORT] [--error-fd auto|none|N]\n' +
        '(run by qmail-smtpd as QMAILQUEUE; message on fd 0, envelope on fd 1: docs/adapters/qmail.md)\n',
    );
    return 0;
  }
  const env = process.env;
  const configPath = values.config ?? env.CHECKID_CONFIG;
  const resolvers = values.resolver ?? (env.CHECKID_RESOLVER ? env.CHECKID_RESOLVER.split(/[\s,]+/).filter(Boolean) : undefined);
  const qmailQueue = values['qmail-queue'] ?? env.CHECKID_QMAIL_QUEUE ?? DEFAULT_QMAIL_QUEUE;
  // where qmail-smtpd (with the custom-error patch) reads our reply text: fd 6 when it is there
  const errorFdSpec = values['error-fd'] ?? env.CHECKID_ERROR_FD ?? 'auto';
  let errorPipe: number | null = null;
  if (errorFdSpec === 'auto') errorPipe = inheritedWritablePipe(6) ? 6 : null;
  else if (errorFdSpec !== 'none') {
    const fd = Number(errorFdSpec);
    if (!(Number.isInteger(fd) && fd > 2)) {
      process.stderr.write(`checkid qmail-queue: --error-fd ${errorFdSpec}: expected auto, none or a descriptor number above 2\n`);
      return QQ_TEMPORARY;
    }
    errorPipe = isPipe(fd) ? fd : null;
  }
  let runtime: Awaited<ReturnType<typeof startRuntime>>;
  try {
    runtime = await startRuntime({
      ...(configPath ? { configPath } : {}),
      ...(resolvers ? { resolverServers: resolvers } : {}),
      log: jsonLog,
    });
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    process.stderr.write(`checkid qmail-queue: configuration error:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    return QQ_TEMPORARY;
  }
  try {
    const outcome = await runQmailQueueWrapper(
      {
        // fds 0 and 1 stay open (libuv never closes the standard descriptors)
        message: createReadStream('', { fd: 0, autoClose: false }),
        envelope: createReadStream('', { fd: 1, autoClose: false }),
        env,
        customError:
          errorPipe === null
            ? null
            : (text) => {
                writeSync(errorPipe, text);
              },
        passErrorFd: errorPipe,
      },
      { engine: runtime.engine, qmailQueue, log: jsonLog },
    );
    return outcome.exitCode;
  } finally {
    await runtime.close();
  }
}
