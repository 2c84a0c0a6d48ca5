/**
 * The SMTP front-end adapter: glue between the SMTP server (server.ts), the engine's session,
 * and the back-end MTA (relay.ts). It knows no check: it runs the session's stages as the client's
 * commands arrive and carries out each verdict.
 *
 * - REJECT / TEMPFAIL: the command at hand is refused with the engine's reply (per recipient at
 *   RCPT; a 554 greeting or a 421 at connect).
 * - ACCEPT / FILTER / DISCARD: final for its scope, so later stages of that scope are not asked:
 *   the whole connection at connect, until the next EHLO at HELO/ID, the transaction at MAIL,
 *   and at RCPT once every recipient is decided (as Engine.checkID does).
 * - DISCARD: the client hears 250 and the message is not relayed.
 * - Otherwise the message is relayed: the verdict's headers on top (headers[0] directly above
 *   our Received: field, each later one above the one before), forged Authentication-Results
 *   fields removed, the subject tag applied. The client's final 250 is the back-end's own: no
 *   message is acknowledged before the back-end accepted it.
 */
import { randomBytes } from 'node:crypto';
import { formatIp, parseIp } from '../../common/ip.ts';
import type { Engine, Logger } from '../../engine/engine.ts';
import { type Session, SessionError } from '../../engine/session.ts';
import type { HeaderField, HeaderRemoval, Verdict } from '../../engine/verdict.ts';
import { type ClientIdentity, RelayConnection, RelayError, type RelayOptions } from './relay.ts';
import {
  type BareLineEndPolicy,
  type ConnectionInfo,
  createSmtpServer,
  type MailParams,
  type ReceiptInfo,
  type ReceivedMessage,
  type Reply,
  reply,
  type SmtpHandler,
  type SmtpLimits,
  type SmtpServer,
  type Transaction,
} from './server.ts';

export interface SmtpFrontOptions {
  engine: Engine;
  /** the back-end MTA */
  relay: RelayOptions;
  /** our host name: greeting, EHLO, Received: */
  hostname: string;
  /** certificate and key (PEM) for STARTTLS */
  tls?: { key: string | Buffer; cert: string | Buffer };
  limits?: Partial<SmtpLimits>;
  bareLineEnd?: BareLineEndPolicy;
  maxConnections?: number;
  idleTimeoutMs?: number;
  drainTimeoutMs?: number;
  log?: Logger;
  /** the clock for Received: dates (tests) */
  now?: () => Date;
}

/** Starts nothing yet: `listen()` on the result. */
export function createSmtpFront(options: SmtpFrontOptions): SmtpServer {
  return createSmtpServer({
    hostname: options.hostname,
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.bareLineEnd ? { bareLineEnd: options.bareLineEnd } : {}),
    ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    ...(options.drainTimeoutMs !== undefined ? { drainTimeoutMs: options.drainTimeoutMs } : {}),
    ...(options.log ? { log: options.log } : {}),
    handler: (info) => new FrontSession(options, info),
  });
}

const ACCEPTING = new Set(['ACCEPT', 'FILTER', 'DISCARD']);

/** The engine's reply as an SMTP reply, its class checked against the action. */
export function verdictReply(v: Verdict, successEnhanced = '2.0.0'): Reply {
  let code = v.reply.code;
  let enhanced = v.reply.xcode;
  let text = v.reply.text;
  if (v.action === 'REJECT' && (code < 500 || code > 599)) [code, enhanced, text] = [550, '5.7.1', text || 'Rejected by policy'];
  if (v.action === 'TEMPFAIL' && (code < 400 || code > 499)) [code, enhanced, text] = [451, '4.7.1', text || 'Try again later'];
  if (!ACCEPTING.has(v.action) && v.action !== 'CONTINUE') {
    // an error reply keeps the engine's text; the enhanced code must match the class (RFC 3463)
  } else if (code < 200 || code > 299) [code, enhanced] = [250, successEnhanced];
  const cls = String(code)[0]!;
  if (!/^[245]\.\d{1,3}\.\d{1,3}$/.test(enhanced) || enhanced[0] !== cls) enhanced = cls === '2' ? successEnhanced : `${cls}.0.0`;
  return reply(code, enhanced, text);
}

/** A back-end reply passed on: text bounded, an enhanced code added when it had none. */
export function passOn(r: Reply, successEnhanced = '2.0.0'): Reply {
  const cls = String(r.code)[0]!;
  const enhanced = r.enhanced && r.enhanced[0] === cls ? r.enhanced : cls === '2' ? successEnhanced : `${cls}.0.0`;
  const lines = r.lines.slice(0, 20).map((l) => l.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 400));
  return { code: r.code, enhanced, lines };
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** RFC 5322 §3.3 date-time, in UTC. */
export function rfc5322Date(d: Date): string {
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

export interface ReceivedFields {
  helo: string;
  ip: string;
  /** the client's verified host name */
  reverseName?: string;
  hostname: string;
  esmtp: boolean;
  secure: boolean;
  smtputf8: boolean;
  tlsProtocol?: string;
  tlsCipher?: string;
  id: string;
  recipients: string[];
  date: Date;
}

/** Our Received: field (RFC 5321 §4.4), folded, CRLF-terminated. */
export function receivedHeader(f: ReceivedFields): string {
  const safe = (s: string) => s.replace(/[^\x21-\x7e]/g, '?').replace(/[()\\]/g, '?');
  const parsed = parseIp(f.ip);
  const literal = parsed?.family === 6 ? `[IPv6:${formatIp(parsed)}]` : `[${f.ip}]`;
  const tcpInfo = f.reverseName ? `${safe(f.reverseName)} ${literal}` : literal;
  const protocol = `${f.smtputf8 ? 'UTF8SMTP' : f.esmtp ? 'ESMTP' : 'SMTP'}${f.secure ? 'S' : ''}`;
  let out = `Received: from ${safe(f.helo) || 'unknown'} (${tcpInfo})\r\n`;
  if (f.secure && f.tlsProtocol) out += `\t(using ${safe(f.tlsProtocol)}${f.tlsCipher ? ` with cipher ${safe(f.tlsCipher)}` : ''})\r\n`;
  out += `\tby ${f.hostname} (checkid) with ${protocol} id ${f.id}`;
  if (f.recipients.length === 1) out += `\r\n\tfor <${f.recipients[0]!.replace(/[\x00-\x1f\x7f<>]/g, '?')}>`;
  return `${out}; ${rfc5322Date(f.date)}\r\n`;
}

/** A header field we prepend, CRLF-terminated; a line break in its text must be a fold. */
function headerLine(h: HeaderField): string {
  const text = h.text.replace(/\r?\n(?![ \t])/g, ' ').replace(/\r(?!\n)/g, ' ');
  return `${h.label} ${text}\r\n`;
}

/** The Subject field with the tag in front of its value (once). */
function tagSubject(raw: Buffer, tag: string): Buffer {
  const colon = raw.indexOf(58);
  let rest = raw.subarray(colon + 1);
  if (rest[0] === 32) rest = rest.subarray(1);
  if (rest.toString('utf8').startsWith(tag)) return raw;
  const head = raw.subarray(0, colon + 1);
  const empty = rest.length === 2 && rest[0] === 13;
  return Buffer.concat([head, Buffer.from(empty ? ` ${tag}` : ` ${tag} `), rest]);
}

/**
 * The message as relayed: the verdict's headers (the last one first), our Received:, the
 * received header fields without the removed ones (Subject tagged), the separator, the body.
 */
export function composeMessage(
  message: ReceivedMessage,
  add: { headers: HeaderField[]; received: string; removals: HeaderRemoval[]; subjectTag?: string },
): Buffer[] {
  const top = [...add.headers].reverse().map(headerLine).join('') + add.received;
  const out: Buffer[] = [Buffer.from(top, 'utf8')];
  const remove = new Set(add.removals.map((r) => `${r.name.toLowerCase()}\n${r.occurrence}`));
  const seen = new Map<string, number>();
  let tagged = !add.subjectTag;
  for (const field of message.headers) {
    const key = field.name.toLowerCase();
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (remove.has(`${key}\n${n}`)) continue;
    if (!tagged && key === 'subject') {
      out.push(tagSubject(field.raw, add.subjectTag!));
      tagged = true;
      continue;
    }
    out.push(field.raw);
  }
  if (!tagged) out.push(Buffer.from(`Subject: ${add.subjectTag}\r\n`));
  if (!message.separated) out.push(Buffer.from('\r\n'));
  for (const chunk of message.body) out.push(chunk);
  return out;
}

interface FrontTransaction {
  /** a final verdict that holds for the whole transaction */
  verdict: Verdict | null;
  discard: boolean;
  /** recipients decided ACCEPT/FILTER at RCPT */
  decided: Verdict[];
  /** a recipient left CONTINUE: the end of the message decides */
  open: boolean;
  /** the back-end accepted MAIL */
  relaying: boolean;
}

/** One client connection: its engine session and its back-end connection. */
export class FrontSession implements SmtpHandler {
  private readonly options: SmtpFrontOptions;
  private readonly info: ConnectionInfo;
  private readonly log: Logger;
  private session: Session | null = null;
  private backend: RelayConnection | null = null;
  /** final verdicts: from connect (the whole connection), from HELO/ID (until the next EHLO) */
  private connectionVerdict: Verdict | null = null;
  private identityVerdict: Verdict | null = null;
  private heloName = '';
  private esmtp = false;
  private declaredId = '';
  private tx: FrontTransaction | null = null;
  private closed = false;

  constructor(options: SmtpFrontOptions, info: ConnectionInfo) {
    this.options = options;
    this.info = info;
    this.log = options.log ?? (() => {});
  }

  /** Runs a stage; a SessionError (input the engine refuses) becomes `onBadInput`. */
  private async stage(run: (s: Session) => Promise<Verdict>, onBadInput: (message: string) => Reply): Promise<Verdict | Reply> {
    try {
      return await run(this.session!);
    } catch (err) {
      if (err instanceof SessionError) return onBadInput(err.message);
      throw err;
    }
  }

  async connect(): Promise<Reply | null> {
    try {
      // header values reach the engine byte for byte, leading space kept (DKIM needs the exact octets)
      this.session = this.options.engine.session(this.info.remoteAddress, { headerLeadingSpaceStripped: false, encoding: 'latin1' });
    } catch (err) {
      this.log('error', 'smtp: no session for this client address', { client: this.info.remoteAddress, error: (err as Error).message });
      return reply(421, '4.3.0', 'Cannot identify the client address');
    }
    const v = await this.session.connect();
    if (v.action === 'REJECT' || v.action === 'TEMPFAIL') {
      this.log('info', 'smtp: connection refused', { client: this.info.remoteAddress, action: v.action, reason: v.reason });
      return verdictReply(v);
    }
    if (ACCEPTING.has(v.action)) this.connectionVerdict = v;
    return null;
  }

  async helo(name: string, esmtp: boolean): Promise<Reply | null> {
    this.heloName = name;
    this.esmtp = esmtp;
    this.declaredId = '';
    this.identityVerdict = null;
    if (this.connectionVerdict) return null;
    const v = await this.stage(
      (s) => s.helo(name),
      (m) => reply(501, '5.5.4', m),
    );
    if ('lines' in v) return v;
    if (v.action === 'REJECT' || v.action === 'TEMPFAIL') return verdictReply(v);
    if (ACCEPTING.has(v.action)) this.identityVerdict = v;
    return null;
  }

  async id(domain: string): Promise<Reply | null> {
    this.declaredId = domain;
    if (this.connectionVerdict) return null;
    const v = await this.stage(
      (s) => s.id(domain),
      (m) => reply(501, '5.5.4', m),
    );
    if ('lines' in v) return v;
    if (v.action === 'REJECT' || v.action === 'TEMPFAIL') {
      this.log('info', 'smtp: ID refused', { client: this.info.remoteAddress, id: domain, action: v.action, reason: v.reason });
      return verdictReply(v);
    }
    this.identityVerdict = ACCEPTING.has(v.action) ? v : null;
    return null;
  }

  private identity(): ClientIdentity {
    const name = this.session?.facts.iprev?.validatedName;
    return {
      addr: this.info.remoteAddress,
      port: this.info.remotePort,
      helo: this.heloName,
      esmtp: this.esmtp,
      ...(name ? { name } : {}),
      destAddr: this.info.localAddress,
      destPort: this.info.localPort,
    };
  }

  /** The back-end connection, opened at the first MAIL and kept for the next ones. */
  private async backendConnection(): Promise<RelayConnection> {
    if (this.backend?.alive) return this.backend;
    this.backend?.destroy();
    this.backend = null;
    const connection = await RelayConnection.open(this.options.relay, this.identity());
    if (this.closed) {
      void connection.quit();
      throw new RelayError('lost', 'client went away');
    }
    this.backend = connection;
    return connection;
  }

  private dropBackend(err: unknown): void {
    this.log('warn', 'smtp: back-end connection failed', { client: this.info.remoteAddress, error: (err as Error).message });
    this.backend?.destroy();
    this.backend = null;
  }

  async mail(address: string, params: MailParams): Promise<Reply | null> {
    const tx: FrontTransaction = { verdict: null, discard: false, decided: [], open: false, relaying: false };
    this.tx = null;
    const sticky = this.connectionVerdict ?? this.identityVerdict;
    if (sticky) {
      this.session!.resetMessage();
      tx.verdict = sticky;
    } else {
      const v = await this.stage(
        (s) => s.mailFrom(address),
        (m) => reply(501, '5.1.7', m),
      );
      if ('lines' in v) return v;
      if (v.action === 'REJECT' || v.action === 'TEMPFAIL') return verdictReply(v, '2.1.0');
      if (ACCEPTING.has(v.action)) tx.verdict = v;
    }
    if (tx.verdict?.action === 'DISCARD') {
      tx.discard = true;
      this.tx = tx;
      return null;
    }
    // the back-end: a reused connection may have died meanwhile, so one fresh try on a lost one
    for (let attempt = 0; ; attempt++) {
      const reused = this.backend?.alive === true;
      let backend: RelayConnection;
      try {
        backend = await this.backendConnection();
      } catch (err) {
        this.dropBackend(err);
        return reply(451, '4.4.1', 'The mail server is not available; try again later');
      }
      if (params.smtputf8 && !backend.has('SMTPUTF8')) return reply(555, '5.6.7', 'SMTPUTF8 is not available at the mail server');
      try {
        const r = await backend.mail(address, params, this.identity());
        if (r.code >= 200 && r.code < 300) {
          tx.relaying = true;
          this.tx = tx;
        }
        return passOn(r, '2.1.0');
      } catch (err) {
        this.dropBackend(err);
        if (!reused || attempt > 0) return reply(451, '4.4.1', 'The mail server is not available; try again later');
      }
    }
  }

  async rcpt(address: string, _transaction: Transaction): Promise<Reply | null> {
    const tx = this.tx;
    if (!tx) return reply(503, '5.5.1', 'Need MAIL before RCPT');
    if (!tx.verdict && !tx.discard) {
      const v = await this.stage(
        (s) => s.rcpt(address),
        (m) => reply(501, '5.1.3', m),
      );
      if ('lines' in v) return v;
      if (v.action === 'REJECT' || v.action === 'TEMPFAIL') return verdictReply(v, '2.1.5');
      if (v.action === 'DISCARD') tx.discard = true;
      else if (v.action === 'CONTINUE') tx.open = true;
      else tx.decided.push(v);
    }
    if (tx.discard) return null;
    const backend = this.backend;
    if (!backend?.alive) return reply(451, '4.4.2', 'Lost the connection to the mail server; try again later');
    try {
      return passOn(await backend.rcpt(address), '2.1.5');
    } catch (err) {
      this.dropBackend(err);
      return reply(451, '4.4.2', 'Lost the connection to the mail server; try again later');
    }
  }

  async data(_transaction: Transaction): Promise<Reply | null> {
    const tx = this.tx;
    if (!tx) return reply(503, '5.5.1', 'Need MAIL command');
    if (!tx.discard && !this.backend?.alive) return reply(451, '4.4.2', 'Lost the connection to the mail server; try again later');
    return null;
  }

  header(name: string, value: string): void {
    this.session?.header(name, value);
  }

  endOfHeaders(): void {
    this.session?.endOfHeaders();
  }

  body(chunk: Buffer): void {
    this.session?.body(chunk);
  }

  async endOfData(message: ReceivedMessage, transaction: Transaction, receipt: ReceiptInfo): Promise<Reply> {
    const tx = this.tx;
    this.tx = null;
    if (!tx) return reply(503, '5.5.1', 'Need MAIL command');
    const session = this.session!;
    let v: Verdict;
    // a verdict decided before the content saw no header: the removals come from the facts now
    let removals: HeaderRemoval[];
    if (tx.verdict || (!tx.open && tx.decided.length > 0)) {
      v = tx.verdict ?? tx.decided[0]!;
      removals = [...session.facts.forgedAuthResults];
    } else {
      v = await session.endOfMessage();
      removals = v.removeHeaders;
    }
    const id = randomBytes(6).toString('hex').toUpperCase();
    const fields = {
      id,
      client: this.info.remoteAddress,
      helo: this.heloName,
      ...(this.declaredId ? { declared_id: this.declaredId } : {}),
      from: transaction.mailFrom,
      rcpt: transaction.recipients.length,
      size: message.size,
      action: v.action,
      reason: v.reason,
      stage: v.stage,
    };
    if (tx.discard || v.action === 'DISCARD') {
      this.log('info', 'smtp: message discarded', fields);
      return v.reply.code >= 200 && v.reply.code < 300 ? verdictReply(v) : reply(250, '2.0.0', 'OK');
    }
    if (v.action === 'REJECT' || v.action === 'TEMPFAIL') {
      this.log('info', 'smtp: message refused', fields);
      return verdictReply(v);
    }
    const backend = this.backend;
    if (!backend?.alive) return reply(451, '4.4.2', 'Lost the connection to the mail server; message not accepted, try again later');
    const received = receivedHeader({
      helo: receipt.helo,
      ip: this.info.remoteAddress,
      ...(session.facts.iprev?.validatedName ? { reverseName: session.facts.iprev.validatedName } : {}),
      hostname: this.options.hostname,
      esmtp: receipt.esmtp,
      secure: receipt.secure,
      smtputf8: transaction.params.smtputf8,
      ...(receipt.tlsProtocol ? { tlsProtocol: receipt.tlsProtocol } : {}),
      ...(receipt.tlsCipher ? { tlsCipher: receipt.tlsCipher } : {}),
      id,
      recipients: transaction.recipients,
      date: this.options.now?.() ?? new Date(),
    });
    const keep = v.action === 'ACCEPT' || v.action === 'FILTER';
    const parts = composeMessage(message, {
      headers: keep ? v.headers : [],
      received,
      removals,
      ...(v.subjectTag ? { subjectTag: v.subjectTag } : {}),
    });
    let r: Reply;
    try {
      r = await backend.data(parts);
    } catch (err) {
      this.dropBackend(err);
      this.log('warn', 'smtp: message not relayed', { ...fields, error: (err as Error).message });
      return reply(451, '4.4.2', 'Lost the connection to the mail server; message not accepted, try again later');
    }
    this.log('info', r.code >= 200 && r.code < 300 ? 'smtp: message relayed' : 'smtp: back-end refused the message', {
      ...fields,
      backend: `${r.code} ${r.enhanced} ${r.lines.join(' ')}`.trim(),
    });
    return passOn(r);
  }

  reset(): void {
    this.tx = null;
  }

  close(): void {
    this.closed = true;
    this.tx = null;
    const backend = this.backend;
    this.backend = null;
    if (backend) void backend.quit();
  }
}
