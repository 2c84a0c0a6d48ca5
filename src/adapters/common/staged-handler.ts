/**
 * What the adapters that ask one question per SMTP stage over a line protocol (Postfix policy
 * delegation, Exim readsocket) do alike around their session table: make it from their options
 * and ask it, taking input the engine refuses as "no opinion" rather than a failure.
 */
import type { Engine } from '../../engine/engine.ts';
import { type Answer, type Ask, SessionTable } from '../policyd/staged.ts';

export interface StagedHandlerOptions {
  engine: Engine;
  /** drop a session not asked about for this long (default 10 minutes) */
  sessionIdleMs?: number;
  maxSessions?: number;
}

/** The session table an adapter's options ask for (the table's own defaults where they say nothing). */
export function stagedSessions(options: StagedHandlerOptions): SessionTable {
  return new SessionTable({
    engine: options.engine,
    ...(options.sessionIdleMs !== undefined ? { idleMs: options.sessionIdleMs } : {}),
    ...(options.maxSessions !== undefined ? { maxSessions: options.maxSessions } : {}),
  });
}

/**
 * Asks the session `key` (made on first sight for `ip`) one question. Input the engine refuses
 * (a SessionError: no or a bad IP, a line break in HELO) is handed to `refused` with its message
 * and gives undefined, so the adapter can answer with no opinion; any other failure is thrown.
 */
export async function askStaged(
  sessions: SessionTable,
  key: string,
  ip: string,
  ask: Ask,
  refused: (error: string) => void,
): Promise<Answer | undefined> {
  try {
    return await sessions.get(key, ip).ask(ask);
  } catch (err) {
    if ((err as Error).name !== 'SessionError') throw err;
    refused((err as Error).message);
    return undefined;
  }
}
