/** What the lab's MTA launchers (postfix.ts, sendmail.ts) take and give. */

export type MtaName = 'postfix' | 'sendmail';

export interface MtaOptions {
  /** where the MTA relays every message: a port on 127.0.0.1 (our sink, or smtp-sink) */
  sinkPort: number;
  /** checkid's milter in checkid/Postfix notation: inet:127.0.0.1:PORT or unix:/path; none = no milter */
  milter?: string;
  /** what the MTA does when the milter is down or fails (Postfix milter_default_action, Sendmail F=); default tempfail */
  milterDefaultAction?: 'tempfail' | 'accept' | 'reject';
  /** the MTA's own port on 127.0.0.1; default: a free one */
  port?: number;
  /** extra main.cf lines (Postfix) or .mc lines (Sendmail), verbatim */
  extra?: string[];
}

export interface RunningMta {
  name: MtaName;
  /** its SMTP port on 127.0.0.1 */
  port: number;
  /** its private directory (config, queue, logs) */
  dir: string;
  /** the MTA's whole log so far */
  logs(): string;
  /** the last lines of the log, for failure messages */
  logTail(lines?: number): string;
  /** messages still in its queue (deferred or in flight) */
  queued(): number;
  /** stops the MTA (and everything it started); idempotent */
  stop(): Promise<void>;
}

/** Splits checkid/Postfix milter notation into its parts. */
export function parseMilterAddress(
  address: string,
): { kind: 'inet'; host: string; port: number } | { kind: 'unix'; path: string } {
  const inet = /^inet:(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(address);
  if (inet) return { kind: 'inet', host: inet[1] ?? inet[2]!, port: Number(inet[3]) };
  const unix = /^(?:unix|local):(\/.+)$/.exec(address);
  if (unix) return { kind: 'unix', path: unix[1]! };
  throw new Error(`milter address "${address}": expected inet:HOST:PORT or unix:/path`);
}
