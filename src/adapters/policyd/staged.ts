/**
 * Engine sessions for MTAs that ask a question per SMTP stage instead of streaming the whole
 * conversation: Postfix policy delegation, Exim readsocket ACLs and the qmail QMAILQUEUE wrapper
 * share it. Each question names its stage and repeats what the MTA knows (client IP, HELO,
 * sender, recipient); the staged session catches the engine session up to that stage, running
 * the stages the MTA did not ask about (Postfix's smtpd_delay_reject asks about the client only
 * at RCPT), and stops at the first final verdict as the engine's checkID() does.
 *
 * Sessions live in a table keyed by the MTA's idea of one SMTP connection, created on first
 * sight, dropped when the adapter says the conversation ended or after an idle timeout, and
 * bounded in number (least recently used first out).
 */
import type { Engine } from '../../engine/engine.ts';
import type { Session } from '../../engine/session.ts';
import { type HeaderField, type HeaderRemoval, isFinal, type Stage, type Verdict } from '../../engine/verdict.ts';

/** The stages an MTA can ask about; `data` is the last question about a message's content. */
export type AskStage = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data';

export interface Ask {
  stage: AskStage;
  /** the HELO/EHLO name, once given ('' or undefined = not yet) */
  helo?: string;
  /** a declared identity (the seed's ID command), when the MTA can carry one */
  id?: string;
  /** the envelope sender from MAIL on; '' is the null sender. Ignored before the mail stage. */
  sender?: string;
  /** the recipient being asked about (rcpt), or the only recipient (Postfix at DATA) */
  recipient?: string;
  /** at data: every recipient of the message, when the MTA says */
  recipients?: string[];
  /** the MTA's id for the message (Postfix `instance`); a new one starts a new transaction */
  transaction?: string;
  /** at data: the received header fields, when the MTA shows them */
  headers?: Array<[string, string]>;
  /** at data: how many of the message's headers to hand out now (default: all) */
  takeHeaders?: number;
  /** hand out the topmost header first (Postfix PREPEND: the first one prepended ends up on top) */
  topFirst?: boolean;
  /** this is the last question about the message: the next question starts a new one */
  endOfMessage?: boolean;
}

export interface Answer {
  /** the verdict to carry out at the stage asked about (a REJECT from an earlier stage re-coded for it) */
  verdict: Verdict;
  /** at data: header fields to add now, in the engine's order (headers[0] nearest the message) */
  headers: HeaderField[];
  /** header fields still to hand out for this message (Postfix: one PREPEND per reply) */
  headersLeft: number;
  /** at data, when the message is kept: received fields to delete (forged Authentication-Results) */
  removeHeaders: HeaderRemoval[];
  /** at data, FILTER: a subject prefix */
  subjectTag?: string;
}

interface Transaction {
  key: string | undefined;
  sender: string | undefined;
  mailVerdict?: Verdict;
  rcpts: Map<string, Verdict>;
  message?: Verdict;
  pending: HeaderField[];
  done: boolean;
}

/** SMTP reply codes that belong to one command only, re-coded when the verdict answers a later one. */
export function restage(verdict: Verdict, stage: AskStage): Verdict {
  if (verdict.action !== 'REJECT') return verdict;
  const { code, xcode, text } = verdict.reply;
  // 554 answers a connection (RFC 5321 §4.3.2); 501 a HELO argument. Later commands get 550.
  if (code === 554 && stage !== 'connect') return { ...verdict, reply: { code: 550, xcode, text } };
  if (code >= 500 && code <= 504 && stage !== 'helo') return { ...verdict, reply: { code: 550, xcode: '5.7.1', text } };
  return verdict;
}

const keeps = (v: Verdict) => v.action === 'ACCEPT' || v.action === 'FILTER';

/** One SMTP connection as seen through per-stage questions. */
export class StagedSession {
  readonly key: string;
  readonly ip: string;
  lastUsed: number;
  private readonly session: Session;
  private connectVerdict?: Verdict;
  private heloName?: string;
  private heloVerdict?: Verdict;
  private idName?: string;
  private idVerdict?: Verdict;
  private tx?: Transaction;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(engine: Engine, key: string, ip: string, now: number) {
    this.key = key;
    this.ip = ip;
    this.lastUsed = now;
    // throws SessionError for an address that is no IP
    this.session = engine.session(ip);
  }

  /** The engine session's facts (for logs and tests). */
  get facts() {
    return this.session.facts;
  }

  /** Answers one question; questions about one session are answered in the order asked. */
  ask(a: Ask): Promise<Answer> {
    const run = this.queue.then(() => this.answer(a));
    this.queue = run.catch(() => {});
    return run;
  }

  private async answer(a: Ask): Promise<Answer> {
    const verdict = await this.advance(a);
    if (a.stage !== 'data') return { verdict: restage(verdict, a.stage), headers: [], headersLeft: 0, removeHeaders: [] };
    const tx = this.tx!;
    const message = tx.message!;
    const take = Math.max(0, a.takeHeaders ?? tx.pending.length);
    let headers: HeaderField[] = [];
    if (keeps(message)) headers = a.topFirst ? tx.pending.splice(Math.max(0, tx.pending.length - take), take).reverse() : tx.pending.splice(0, take);
    const answer: Answer = {
      verdict: restage(message, 'data'),
      headers,
      headersLeft: keeps(message) ? tx.pending.length : 0,
      removeHeaders: keeps(message) ? [...this.session.facts.forgedAuthResults] : [],
      ...(message.subjectTag ? { subjectTag: message.subjectTag } : {}),
    };
    if (a.endOfMessage) tx.done = true;
    return answer;
  }

  /** Runs the stages up to the one asked about; returns the verdict that answers it. */
  private async advance(a: Ask): Promise<Verdict> {
    this.connectVerdict ??= await this.session.connect();
    const early = (v: Verdict) => (a.stage === 'data' ? this.message(a, v) : v);
    if (a.stage === 'connect') return this.connectVerdict;
    if (isFinal(this.connectVerdict.action)) return early(this.connectVerdict);

    const helo = a.helo?.trim();
    if (helo && helo !== this.heloName) {
      // a new HELO starts over (RFC 5321 §4.1.4): no identity, no transaction
      this.heloName = helo;
      this.idName = undefined;
      this.idVerdict = undefined;
      this.tx = undefined;
      this.heloVerdict = await this.session.helo(helo);
    }
    if (a.stage === 'helo') return this.heloVerdict ?? this.connectVerdict;
    if (this.heloVerdict && isFinal(this.heloVerdict.action)) return early(this.heloVerdict);

    const id = a.id?.trim();
    if (id && id !== this.idName) {
      this.idName = id;
      this.tx = undefined;
      this.idVerdict = await this.session.id(id);
    }
    if (this.idVerdict && isFinal(this.idVerdict.action)) return early(this.idVerdict);

    const tx = await this.transaction(a);
    const before = tx.mailVerdict ?? this.idVerdict ?? this.heloVerdict ?? this.connectVerdict;
    if (a.stage === 'mail') return before;
    if (tx.mailVerdict && isFinal(tx.mailVerdict.action)) return early(tx.mailVerdict);

    let rcptVerdict: Verdict | undefined;
    if (a.recipient && !tx.message) rcptVerdict = await this.recipient(tx, a.recipient);
    if (a.stage === 'rcpt') return rcptVerdict ?? before;
    return this.message(a, undefined);
  }

  private async recipient(tx: Transaction, rcpt: string): Promise<Verdict> {
    const known = tx.rcpts.get(rcpt);
    if (known) return known;
    const v = await this.session.rcpt(rcpt);
    tx.rcpts.set(rcpt, v);
    return v;
  }

  /** The transaction the question is about: the current one, or a new one. */
  private async transaction(a: Ask): Promise<Transaction> {
    const sender = a.sender;
    const tx = this.tx;
    const fresh =
      !tx ||
      tx.done ||
      (a.transaction !== undefined ? a.transaction !== tx.key : a.stage === 'mail') ||
      (sender !== undefined && sender !== tx.sender);
    if (!fresh) return tx;
    const next: Transaction = { key: a.transaction, sender, rcpts: new Map(), pending: [], done: false };
    this.tx = next;
    if (sender !== undefined) next.mailVerdict = await this.session.mailFrom(sender);
    else this.session.resetMessage();
    return next;
  }

  /**
   * The message verdict, decided once per transaction: an earlier final verdict, the recipients'
   * own final verdicts when every kept recipient has one, else the end-of-message stage (the MTA
   * shows no more than it has by now).
   */
  private async message(a: Ask, early: Verdict | undefined): Promise<Verdict> {
    let tx = this.tx;
    if (!tx || tx.done || (a.transaction !== undefined && a.transaction !== tx.key)) {
      tx = { key: a.transaction, sender: a.sender, rcpts: new Map(), pending: [], done: false };
      this.tx = tx;
    }
    if (tx.message) return tx.message;
    for (const [name, value] of a.headers ?? []) this.session.header(name, value);
    let verdict = early;
    if (!verdict) {
      const recipients = [...(a.recipients ?? []), ...(a.recipient ? [a.recipient] : [])];
      for (const r of recipients) await this.recipient(tx, r);
      const all = [...tx.rcpts.values()];
      const kept = all.filter((v) => v.action !== 'REJECT' && v.action !== 'TEMPFAIL');
      if (all.length > 0 && kept.length === 0) verdict = all[0]!;
      else if (kept.length > 0 && kept.every((v) => isFinal(v.action))) verdict = kept[0]!;
      else verdict = await this.session.endOfMessage();
    }
    tx.message = verdict;
    tx.pending = keeps(verdict) ? [...verdict.headers] : [];
    return verdict;
  }
}

export interface SessionTableOptions {
  engine: Engine;
  /** drop a session not asked about for this long (default 10 minutes) */
  idleMs?: number;
  /** at most this many sessions; the least recently used goes first (default 50,000) */
  maxSessions?: number;
  now?: () => number;
}

/** The live sessions of one adapter, by the MTA's connection key. */
export class SessionTable {
  private readonly engine: Engine;
  private readonly idleMs: number;
  private readonly max: number;
  private readonly now: () => number;
  /** in least-recently-used order: a touched session is re-inserted at the end */
  private readonly sessions = new Map<string, StagedSession>();

  constructor(options: SessionTableOptions) {
    this.engine = options.engine;
    this.idleMs = options.idleMs ?? 600_000;
    this.max = options.maxSessions ?? 50_000;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * The session for `key`, made on first sight. A known key with another client IP is another
   * connection (the MTA reused its id): it starts afresh. Throws SessionError for a bad IP.
   */
  get(key: string, ip: string): StagedSession {
    const now = this.now();
    this.expire(now);
    let s = this.sessions.get(key);
    if (s && s.ip !== ip.trim()) s = undefined;
    if (s) this.sessions.delete(key);
    else s = new StagedSession(this.engine, key, ip.trim(), now);
    s.lastUsed = now;
    this.sessions.set(key, s);
    while (this.sessions.size > this.max) this.sessions.delete(this.sessions.keys().next().value!);
    return s;
  }

  drop(key: string): void {
    this.sessions.delete(key);
  }

  private expire(now: number): void {
    for (const [key, s] of this.sessions) {
      if (now - s.lastUsed < this.idleMs) break;
      this.sessions.delete(key);
    }
  }
}

/** The engine stage a question maps to (for logs). */
export function engineStage(stage: AskStage): Stage {
  return stage === 'data' ? 'eom' : stage;
}
