/**
 * The qmail adapter: a QMAILQUEUE program (docs/adapters/qmail.md). qmail-smtpd runs it in place
 * of qmail-queue with the message on fd 0 and the envelope on fd 1 (read after the message), and
 * turns its exit code into the SMTP reply to the final dot:
 *
 *   ACCEPT, FILTER  our header fields prepended (forged Authentication-Results removed, subject
 *                   tagged), then the message and envelope handed to the real qmail-queue, whose
 *                   exit code we return
 *   REJECT          31 (permanent), or 82 with "D<text>" on fd 6 where qmail-smtpd reads it
 *   TEMPFAIL        71 (temporary), or 82 with "Z<text>" on fd 6
 *   DISCARD         0, nothing queued
 *
 * The client IP comes from tcpserver's TCPREMOTEIP; the HELO name from SMTPHELOHOST when a patch
 * exports it, else from the Received: line qmail-smtpd writes first. Without TCPREMOTEIP (local
 * injection) the message passes unchecked. qmail decides once per message: a recipient refused
 * by the policy refuses the whole message. Knows qmail and the engine, no check.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { type Engine, type Logger, parseHeaderBlock } from '../../engine/engine.ts';
import type { HeaderField, HeaderRemoval, Verdict } from '../../engine/verdict.ts';
import { type Answer, StagedSession } from '../policyd/staged.ts';
import { EnvelopeError, parseEnvelope, QQ_ENVELOPE_FORMAT, type QmailEnvelope } from './envelope.ts';

/** qmail-queue exit codes (qmail-queue(8)) the wrapper itself uses. */
export const QQ_OK = 0;
export const QQ_PERMANENT = 31;
export const QQ_TEMPORARY = 71;
export const QQ_INTERNAL = 81;
export const QQ_CUSTOM_ERROR = 82;

export interface QmailQueueIo {
  /** fd 0: the message */
  message: Readable;
  /** fd 1: the envelope */
  envelope: Readable;
  env: Record<string, string | undefined>;
  /** writes the custom error text (fd 6); null when qmail-smtpd does not read one */
  customError: ((text: string) => void) | null;
  /** fd numbers handed on to the real qmail-queue as its fd 6 (so it can tell its own errors), or null */
  passErrorFd: number | null;
}

export interface QmailQueueOptions {
  engine: Engine;
  /** the real qmail-queue */
  qmailQueue: string;
  log?: Logger;
  now?: () => number;
}

export interface QmailOutcome {
  exitCode: number;
  verdict?: Verdict;
  /** the message as handed to qmail-queue (when it was) */
  queued?: Buffer;
}

async function readAll(stream: Readable, max = Number.POSITIVE_INFINITY, tooLong?: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : (chunk as Buffer);
    size += b.length;
    if (size > max) throw tooLong?.() ?? new Error(`over ${max} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/**
 * The most envelope bytes read (an address is at most about 1,000 bytes: 16 MiB is some 16,000
 * recipients); more is refused as a bad envelope rather than held. The message itself is bounded
 * by qmail-smtpd's databytes.
 */
export const MAX_ENVELOPE_BYTES = 16 * 1024 * 1024;

/** Where the header block ends: the index of the blank line's first byte, and the separator length. */
function headerEnd(message: Buffer): { end: number; sep: number } {
  const lf = message.indexOf('\n\n');
  const crlf = message.indexOf('\r\n\r\n');
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return { end: crlf + 2, sep: 2 };
  if (lf !== -1) return { end: lf + 1, sep: 1 };
  return { end: message.length, sep: 0 };
}

/**
 * The HELO name qmail-smtpd recorded: its Received: line reads
 * "Received: from REMOTEHOST (HELO name) (INFO@IP)" and leaves "(HELO ...)" out when the name
 * equals REMOTEHOST. Only a line naming the client's own IP counts.
 */
export function heloFromReceived(headerBlock: string, ip: string): string | undefined {
  const first = /^Received: from (\S+)(?: \(HELO ([^)]*)\))? \((?:[^@)]*@)?([^)\s]*)\)/i.exec(headerBlock);
  if (!first || first[3] !== ip) return undefined;
  return first[2] !== undefined ? first[2] || undefined : first[1];
}

interface Field {
  name: string;
  /** raw bytes of the field, latin1, continuation lines included, with their line ends */
  raw: string;
}

function splitFields(block: string): Field[] {
  const fields: Field[] = [];
  const lines = block.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && fields.length > 0) {
      fields[fields.length - 1]!.raw += line;
      continue;
    }
    const colon = line.indexOf(':');
    fields.push({ name: colon > 0 ? line.slice(0, colon).trim() : '', raw: line });
  }
  return fields;
}

/**
 * The message qmail-queue gets: our fields on top (the last of `headers` first, so headers[0]
 * sits directly above the received block), the listed received fields removed, the subject
 * tagged. Line ends follow the message's own (qmail uses LF).
 */
export function rewriteMessage(message: Buffer, headers: HeaderField[], removals: HeaderRemoval[], subjectTag?: string): Buffer {
  const { end } = headerEnd(message);
  const nl = message.indexOf('\r\n') !== -1 && message.indexOf('\r\n') < end ? '\r\n' : '\n';
  const block = message.subarray(0, end).toString('latin1');
  const counts = new Map<string, number>();
  const kept: string[] = [];
  let tagged = false;
  for (const f of splitFields(block)) {
    const key = f.name.toLowerCase();
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    if (f.name && removals.some((r) => r.name.toLowerCase() === key && r.occurrence === n)) continue;
    if (subjectTag && key === 'subject' && !tagged) {
      tagged = true;
      const value = f.raw.slice(f.raw.indexOf(':') + 1).replace(/^[ \t]/, '');
      if (!value.startsWith(subjectTag)) {
        kept.push(`${f.raw.slice(0, f.raw.indexOf(':') + 1)} ${Buffer.from(subjectTag, 'utf8').toString('latin1')} ${value}`);
        continue;
      }
    }
    kept.push(f.raw);
  }
  const top = [...headers].reverse().map((h) => `${h.label} ${h.text.replace(/\r?\n/g, nl)}${nl}`);
  if (subjectTag && !tagged) top.push(`Subject: ${subjectTag}${nl}`);
  return Buffer.concat([Buffer.from(top.join(''), 'utf8'), Buffer.from(kept.join(''), 'latin1'), message.subarray(end)]);
}

/**
 * Runs the real qmail-queue with the message on fd 0 and the envelope on fd 1 (the bytes qmail
 * gave us: qmail is 8-bit clean); resolves with its exit code.
 */
export function handOver(qmailQueue: string, message: Buffer, envelope: Buffer, passErrorFd: number | null, env: Record<string, string | undefined>): Promise<number> {
  return new Promise((resolve, reject) => {
    const stdio: Array<'pipe' | 'inherit' | 'ignore' | number> = ['pipe', 'pipe', 'inherit'];
    if (passErrorFd !== null) stdio.push('ignore', 'ignore', 'ignore', passErrorFd);
    const child = spawn(qmailQueue, [], { stdio, env: env as NodeJS.ProcessEnv });
    child.once('error', reject);
    child.stdin!.on('error', () => {});
    child.stdout!.on('error', () => {});
    // like qmail_open's caller: the whole message first, then the envelope
    // (Node's stdio pipes are socket pairs: the child's fd 1 can be written to)
    const envelopeSide = child.stdout as unknown as NodeJS.WritableStream;
    child.stdin!.end(message, () => envelopeSide.end(envelope));
    child.once('exit', (code, signal) => resolve(code ?? (signal ? QQ_INTERNAL : QQ_TEMPORARY)));
  });
}

/** One QMAILQUEUE run: reads fd 0 and fd 1, decides, hands over or refuses. Never throws. */
export async function runQmailQueueWrapper(io: QmailQueueIo, options: QmailQueueOptions): Promise<QmailOutcome> {
  const log = options.log ?? (() => {});
  const refuse = (exitCode: number, kind: 'D' | 'Z', v: Verdict | undefined, text: string): QmailOutcome => {
    if (io.customError) {
      try {
        io.customError(`${kind}${text}`);
        return { exitCode: QQ_CUSTOM_ERROR, ...(v ? { verdict: v } : {}) };
      } catch (err) {
        log('warn', 'could not write the custom error text; using the plain exit code', { error: (err as Error).message });
      }
    }
    return { exitCode, ...(v ? { verdict: v } : {}) };
  };
  let message: Buffer;
  let envelopeBytes: Buffer;
  let envelope: QmailEnvelope;
  try {
    message = await readAll(io.message);
    envelopeBytes = await readAll(io.envelope, MAX_ENVELOPE_BYTES, () => new EnvelopeError(QQ_ENVELOPE_FORMAT, `envelope over ${MAX_ENVELOPE_BYTES} bytes`));
    envelope = parseEnvelope(envelopeBytes);
  } catch (err) {
    if (err instanceof EnvelopeError) {
      log('warn', 'bad envelope from qmail', { error: err.message, exit: err.exitCode });
      return { exitCode: err.exitCode };
    }
    log('error', 'could not read the message or envelope', { error: (err as Error).message });
    return { exitCode: 54 };
  }
  const pass = async (body: Buffer, verdict?: Verdict): Promise<QmailOutcome> => {
    try {
      const exitCode = await handOver(options.qmailQueue, body, envelopeBytes, io.passErrorFd, io.env);
      return { exitCode, queued: body, ...(verdict ? { verdict } : {}) };
    } catch (err) {
      log('error', 'could not run the real qmail-queue', { path: options.qmailQueue, error: (err as Error).message });
      return refuse(QQ_TEMPORARY, 'Z', verdict, '4.3.0 checkid could not hand the message to qmail-queue');
    }
  };
  const ip = io.env.TCPREMOTEIP?.trim();
  if (!ip) {
    log('debug', 'no TCPREMOTEIP (local injection): passed on unchecked');
    return pass(message);
  }
  let answer: Answer;
  try {
    const { end } = headerEnd(message);
    const block = message.subarray(0, end).toString('utf8');
    const helo = io.env.SMTPHELOHOST?.trim() || heloFromReceived(block, ip);
    const session = new StagedSession(options.engine, 'qmail', ip, (options.now ?? Date.now)());
    const base = { ...(helo ? { helo } : {}), sender: envelope.sender };
    answer = await session.ask({ stage: 'mail', ...base });
    // one answer for the whole message: the first recipient the policy refuses refuses it
    for (const rcpt of envelope.recipients) {
      if (answer.verdict.action === 'REJECT' || answer.verdict.action === 'TEMPFAIL') break;
      answer = await session.ask({ stage: 'rcpt', ...base, recipient: rcpt });
    }
    if (answer.verdict.action !== 'REJECT' && answer.verdict.action !== 'TEMPFAIL') {
      answer = await session.ask({ stage: 'data', ...base, headers: parseHeaderBlock(block), endOfMessage: true });
    }
  } catch (err) {
    if ((err as Error).name === 'SessionError') {
      log('warn', 'the engine cannot check this message; passed on unchecked', { error: (err as Error).message });
      return pass(message);
    }
    log('error', 'internal error while checking; temporary failure', { error: (err as Error).message, stack: (err as Error).stack });
    return refuse(QQ_TEMPORARY, 'Z', undefined, '4.3.0 Temporary internal error; try again later');
  }
  const v = answer.verdict;
  const reply = `${v.reply.xcode ? `${v.reply.xcode} ` : ''}${v.reply.text}`;
  log('info', 'qmail-queue verdict', { client: ip, sender: envelope.sender, recipients: envelope.recipients.length, action: v.action, reason: v.reason });
  switch (v.action) {
    case 'REJECT':
      return refuse(QQ_PERMANENT, 'D', v, reply);
    case 'TEMPFAIL':
      return refuse(QQ_TEMPORARY, 'Z', v, reply);
    case 'DISCARD':
      return { exitCode: QQ_OK, verdict: v };
    default:
      return pass(rewriteMessage(message, answer.headers, answer.removeHeaders, answer.subjectTag), v);
  }
}
