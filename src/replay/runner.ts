/**
 * The replay runner: each stored message through the engine, as `checkid check` would run it
 * with the recovered envelope and the message (connect, HELO, ID, MAIL, RCPT, header, body, end
 * of message), `jobs` at a time, results handed on in input order.
 *
 * Per message the outcome is one of:
 * - checked: a verdict (VerdictRecord, src/history/record.ts) with the envelope it was made for;
 * - skipped: no client IP could be recovered (the reason says why);
 * - error: the message or its envelope file is broken, or the envelope is not usable (an HELO
 *   with a line break, an ID that is no domain); the run goes on.
 */
import type { Engine } from '../engine/engine.ts';
import { recordFromEvent, type VerdictRecord } from '../history/record.ts';
import {
  EnvelopeError,
  envelopeFromHeaders,
  type GivenEnvelope,
  type HopChoice,
  messageKey,
  type ReplayEnvelope,
  readEnvelopeFile,
} from './envelope.ts';
import { MessageError, parseStoredMessage } from './message.ts';
import type { SourceItem, SourceKind } from './sources.ts';

export type ReplayStatus = 'checked' | 'skipped' | 'error';

export interface ReplayEntry {
  /** 1-based position in the run */
  n: number;
  file: string;
  kind: SourceKind;
  /** mbox: byte offset of the message's "From " line, and its position in the file */
  offset?: number;
  index?: number;
  messageId: string | null;
  status: ReplayStatus;
  /** skipped: why (and a short code for counting); error: what is wrong */
  problem?: string;
  skipCode?: string;
  envelope?: ReplayEnvelope;
  /** things worth a look that did not stop the check (a private client IP, no MAIL FROM) */
  warnings: string[];
  /** checked: the verdict, as the verdict history records it */
  verdict?: VerdictRecord;
}

export interface ReplayOptions {
  /** messages checked at the same time (default 8) */
  jobs?: number;
  hop?: HopChoice;
  /** the `--envelope` JSON Lines file, by Message-ID (messageKey) */
  envelopes?: Map<string, GivenEnvelope>;
  /** verdict time for the records (default Date.now) */
  now?: () => number;
}

/** Replays one message. Never throws for a bad message; only for a bug. */
export async function replayMessage(engine: Engine, item: SourceItem, options: ReplayOptions = {}): Promise<ReplayEntry> {
  const entry: ReplayEntry = {
    n: item.seq,
    file: item.file,
    kind: item.kind,
    ...(item.offset !== undefined ? { offset: item.offset } : {}),
    ...(item.index !== undefined ? { index: item.index } : {}),
    messageId: null,
    status: 'error',
    warnings: [],
  };
  if (item.error !== undefined || !item.raw) {
    entry.problem = item.error ?? 'no message';
    return entry;
  }
  let message: ReturnType<typeof parseStoredMessage>;
  try {
    message = parseStoredMessage(item.raw);
  } catch (err) {
    if (!(err instanceof MessageError)) throw err;
    entry.problem = `not a message: ${err.message}`;
    return entry;
  }
  entry.messageId = message.messageId ?? null;

  let envelope: ReplayEnvelope | undefined;
  let headers = message.headers;
  if (item.envelopeFile) {
    try {
      const given = await readEnvelopeFile(item.envelopeFile);
      if (given) envelope = { ...given, source: 'envelope-file' };
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
      entry.problem = `envelope file: ${err.message}`;
      return entry;
    }
  }
  if (!envelope && options.envelopes && message.messageId) {
    const given = options.envelopes.get(messageKey(message.messageId));
    if (given) envelope = { ...given, rcpt: [...given.rcpt], source: 'envelope-jsonl' };
  }
  if (!envelope) {
    const recovered = envelopeFromHeaders(message.headers, options.hop ?? {});
    entry.warnings.push(...recovered.warnings);
    if (!recovered.ok) {
      entry.status = 'skipped';
      entry.problem = recovered.reason;
      entry.skipCode = recovered.code;
      return entry;
    }
    envelope = recovered.envelope;
    // the message as the operator's MTA got it: without what its own hops added above
    headers = headers.slice(recovered.firstField);
  }
  entry.envelope = envelope;

  const started = performance.now();
  let result: Awaited<ReturnType<Engine['checkID']>>;
  try {
    result = await engine.checkID({
      ip: envelope.ip,
      ...(envelope.helo !== undefined ? { helo: envelope.helo } : {}),
      ...(envelope.id !== undefined ? { id: envelope.id } : {}),
      ...(envelope.mailFrom !== undefined ? { mailFrom: envelope.mailFrom } : {}),
      rcpt: envelope.rcpt,
      headers,
      body: message.body,
      encoding: 'latin1',
    });
  } catch (err) {
    if (err instanceof Error && err.name === 'SessionError') {
      entry.problem = `envelope not usable: ${err.message}`;
      return entry;
    }
    throw err;
  }
  const ms = performance.now() - started;
  const v = result.verdict;
  entry.status = 'checked';
  entry.verdict = recordFromEvent({ stage: v.stage, verdict: v, facts: result.session.facts, ms }, (options.now ?? Date.now)());
  return entry;
}

/**
 * Replays every item (`seq` 1, 2, 3, …), `jobs` at a time; `onEntry` sees the entries in input
 * order (synchronously: it must not hold the run up).
 */
export async function runReplay(
  engine: Engine,
  items: AsyncIterable<SourceItem>,
  options: ReplayOptions,
  onEntry: (entry: ReplayEntry) => void,
): Promise<void> {
  const jobs = Math.max(1, options.jobs ?? 8);
  const iterator = items[Symbol.asyncIterator]();
  const pending = new Map<number, ReplayEntry>();
  // items are numbered from 1 without gaps (readMessages)
  let expect = 1;
  let failed: unknown = null;
  const drain = () => {
    while (pending.has(expect)) {
      const e = pending.get(expect)!;
      pending.delete(expect);
      expect++;
      onEntry(e);
    }
  };
  const worker = async () => {
    while (failed === null) {
      const next = await iterator.next();
      if (next.done) return;
      const entry = await replayMessage(engine, next.value, options);
      pending.set(entry.n, entry);
      drain();
    }
  };
  await Promise.all(
    Array.from({ length: jobs }, () =>
      worker().catch((err: unknown) => {
        failed ??= err;
      }),
    ),
  );
  if (failed !== null) throw failed;
  // anything left (a gap in the numbering cannot happen, but never lose an entry)
  for (const n of [...pending.keys()].sort((a, b) => a - b)) onEntry(pending.get(n)!);
}
