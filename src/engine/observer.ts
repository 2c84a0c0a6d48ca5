/**
 * The engine's observer seam: what logs, metrics and dashboards watch. The session tells the
 * observer each stage's verdict (with the facts behind it) and each check's result and latency.
 * Observers are called synchronously and must not keep `facts` (the session goes on changing it:
 * copy what is needed); a throwing observer is logged and ignored, never changes a verdict.
 */
import type { Facts } from './facts.ts';
import type { Stage, Verdict } from './verdict.ts';
import type { Logger } from './engine.ts';

/** The checks reported one by one: their names in metrics and logs. */
export type CheckName = 'dnsbl' | 'iprev' | 'csa' | 'spf_helo' | 'helo' | 'identity' | 'ratings' | 'spf' | 'siq' | 'dnsbl_domain' | 'dkim' | 'arc' | 'dmarc';

export interface VerdictEvent {
  stage: Stage;
  verdict: Verdict;
  /** the session's facts as the verdict was made (live: read, don't keep) */
  facts: Facts;
  /** the recipient a RCPT-stage verdict is for */
  recipient?: string;
  /** the stage's time: its checks, the policy and the hook, in milliseconds */
  ms: number;
}

export interface CheckEvent {
  name: CheckName;
  /** the check's outcome in one word: pass, fail, listed, score, timeout, … */
  result: string;
  /**
   * the check's own time in milliseconds (dkim and arc: from the end of the message to their
   * results; the hashing happened while the body streamed)
   */
  ms?: number;
}

export interface EngineObserver {
  verdict?(event: VerdictEvent): void;
  check?(event: CheckEvent): void;
}

/** The one-word outcome of a check's result, as the session hands it over. */
export function checkResult(name: CheckName, value: unknown): string {
  if (name === 'dkim' && Array.isArray(value)) {
    // one word for the message: pass when any signature passed, else the first signature's result
    const results = value as Array<{ result: string }>;
    if (results.some((r) => r.result === 'pass')) return 'pass';
    return results[0]?.result ?? 'none';
  }
  const v = value as Record<string, unknown> | undefined;
  if (!v || typeof v !== 'object') return 'none';
  switch (name) {
    case 'dnsbl':
    case 'dnsbl_domain': {
      const d = value as NonNullable<Facts['dnsbl']>;
      if (d.listed.length > 0) return 'listed';
      if (d.allowListed.length > 0) return 'allowlisted';
      if (d.errors.length > 0) return 'error';
      return 'clean';
    }
    case 'helo': {
      const h = value as NonNullable<Facts['helo']>;
      if (h.syntax === 'invalid') return 'invalid';
      if (h.local) return 'local';
      if (h.threeStrikes.pass) return 'pass';
      return h.threeStrikes.temperror ? 'temperror' : 'fail';
    }
    case 'ratings':
      return String(v.status);
    case 'siq':
      return String((value as NonNullable<Facts['siq']>).siq.kind);
    case 'arc':
      return String(v.cv);
    default:
      return String(v.result);
  }
}

/** Tells the observer a stage's verdict; an observer's failure is logged, never passed on. */
export function notifyVerdict(observer: EngineObserver, event: VerdictEvent, log: Logger): void {
  try {
    observer.verdict?.(event);
  } catch (err) {
    log('error', 'engine observer failed', { error: (err as Error).message });
  }
}

/** Tells the observer a check's result; an observer's failure is logged, never passed on. */
export function notifyCheck(observer: EngineObserver, event: CheckEvent, log: Logger): void {
  try {
    observer.check?.(event);
  } catch (err) {
    log('error', 'engine observer failed', { error: (err as Error).message });
  }
}
