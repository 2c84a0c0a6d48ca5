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

/** Mail-log lines to stdout, buffered like the JSON log. */
export function stdoutLines(): (line: string) => void {
  const out = pino.destination({ dest: 1, sync: false });
  return (line) => {
    out.write(`${line}\n`);
  };
}
