/**
 * Structured logs: pino writing JSON lines to stderr (level as a word, ISO time), behind the
 * engine's `Logger` function type so nothing else depends on pino. Writes are buffered and
 * asynchronous (a slow log reader never stalls the event loop that answers the MTA) and flushed
 * at exit; fields that JSON.stringify would throw on (cycles, BigInt) are written anyway.
 * The level comes from CHECKID_LOG_LEVEL (debug, info, warn, error; default info).
 */
import { pino } from 'pino';
import type { Logger, LogLevel } from '../engine/engine.ts';

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export interface StructuredLog {
  log: Logger;
  enabled(level: LogLevel): boolean;
  /** writes out what is buffered (before a deliberate exit) */
  flush(): void;
}

export interface StructuredLogOptions {
  level?: LogLevel;
  /** default: stderr, asynchronous; tests pass a stream */
  stream?: { write(line: string): unknown };
}

export function levelFromEnv(value: string | undefined): LogLevel {
  const v = (value ?? '').trim().toLowerCase();
  return (LOG_LEVELS as readonly string[]).includes(v) ? (v as LogLevel) : 'info';
}

export function createStructuredLog(options: StructuredLogOptions = {}): StructuredLog {
  const destination = options.stream ?? pino.destination({ dest: 2, sync: false });
  const logger = pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination as pino.DestinationStream,
  );
  return {
    log: (level, message, fields) => {
      if (fields) logger[level](fields, message);
      else logger[level](message);
    },
    enabled: (level) => logger.isLevelEnabled(level),
    flush: () => {
      if ('flushSync' in destination && typeof destination.flushSync === 'function') {
        try {
          destination.flushSync();
        } catch {
          // not ready yet (nothing written): nothing to flush
        }
      }
    },
  };
}

/**
 * Mail-log lines to stdout, buffered like the JSON log, and written in batches: when 4 KB have
 * gathered or 100 ms after the first line, whichever comes first, and at exit. At hundreds of
 * messages a second one write per message was a few percent of the daemon's CPU
 * (docs/benchmarks.md); a line now reaches the log at most 100 ms late.
 */
export function stdoutLines(): (line: string) => void {
  const out = pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 100 });
  return (line) => {
    out.write(`${line}\n`);
  };
}
