/**
 * The SMTP client half of the front-end: one connection to the back-end MTA per client
 * connection, reused for its transactions. It greets with EHLO (HELO as a fallback), upgrades
 * with STARTTLS when asked to and offered, and tells the back-end who the real client is:
 *
 * - XCLIENT (Postfix `smtpd_authorized_xclient_hosts`) when offered: the back-end then treats the
 *   session as coming from the client itself (its access rules, milters and logs see the client's
 *   address, name and HELO). After XCLIENT the back-end greets again, so we send EHLO again, with
 *   the client's own HELO name (as Postfix's XCLIENT_README does).
 * - else XFORWARD (`smtpd_authorized_xforward_hosts`) before each MAIL: logging only.
 *
 * Replies are matched to commands in order; with PIPELINING offered, the commands of a group
 * (RSET, XFORWARD, MAIL) go out in one write. Message content is dot-stuffed on the way out, and
 * the back-end's final reply is what the client gets: nothing is acknowledged before the
 * back-end accepted it.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { MailParams, Reply } from './server.ts';

export interface RelayOptions {
  host: string;
  port: number;
  /** our name in EHLO (before XCLIENT, or always without it) */
  heloName: string;
  /** STARTTLS to the back-end when it offers it (default false) */
  starttls?: boolean;
  /** verify the back-end's certificate (default false: it is the operator's own MTA) */
  verifyTls?: boolean;
  /** default 30 s */
  connectTimeoutMs?: number;
  /** a reply to a command (default 300 s, RFC 5321 §4.5.3.2) */
  commandTimeoutMs?: number;
  /** the reply after the final dot (default 600 s, RFC 5321 §4.5.3.2.6) */
  dataTimeoutMs?: number;
}

/** The real client, for XCLIENT/XFORWARD. */
export interface ClientIdentity {
  addr: string;
  port: number;
  helo: string;
  esmtp: boolean;
  /** the client's verified host name, when known */
  name?: string;
  /** our address and port the client connected to */
  destAddr?: string;
  destPort?: number;
}

export type RelayErrorKind = 'connect' | 'lost' | 'timeout' | 'protocol' | 'refused';

export class RelayError extends Error {
  override name = 'RelayError';
  readonly kind: RelayErrorKind;
  readonly reply?: Reply;
  constructor(kind: RelayErrorKind, message: string, reply?: Reply) {
    super(message);
    this.kind = kind;
    if (reply) this.reply = reply;
  }
}

/** xtext (RFC 3461 §4): "+" and "=" and anything outside 33..126 as "+HH". */
export function xtext(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte >= 33 && byte <= 126 && byte !== 43 && byte !== 61 ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/;

/** A reply from its lines ("250-...", "250 ..."), with the enhanced code split off when present. */
export function parseReply(lines: string[]): Reply {
  const code = Number(lines[0]!.slice(0, 3));
  const texts = lines.map((l) => l.slice(4));
  const m = ENHANCED.exec(texts[0] ?? '');
  if (m && m[1] === String(code)[0]) {
    const enhanced = `${m[1]}.${m[2]}.${m[3]}`;
    return { code, enhanced, lines: texts.map((t) => (t.startsWith(enhanced) ? t.slice(enhanced.length).replace(/^ /, '') : t)) };
  }
  return { code, enhanced: '', lines: texts };
}

/**
 * Message content as sent after DATA (RFC 5321 §4.5.2): a dot added to every line that starts
 * with one, a CRLF after an unterminated last line, then the terminating ".\r\n". The content's
 * lines must already end in CRLF (the server made them so).
 */
export function* dotStuff(parts: Iterable<Buffer>): Generator<Buffer> {
  let atLineStart = true;
  let any = false;
  for (const part of parts) {
    if (part.length === 0) continue;
    any = true;
    let from = 0;
    if (atLineStart && part[0] === 46) yield DOT;
    for (let i = part.indexOf('\n.'); i !== -1; i = part.indexOf('\n.', i + 1)) {
      yield part.subarray(from, i + 1);
      yield DOT;
      from = i + 1;
    }
    yield part.subarray(from);
    atLineStart = part[part.length - 1] === 10;
  }
  if (any && !atLineStart) yield CRLF;
  yield END;
}

const MAX_REPLY_LINES = 100;
const MAX_LINE = 4096;
const DOT = Buffer.from('.');
const CRLF = Buffer.from('\r\n');
const END = Buffer.from('.\r\n');

interface Waiting {
  resolve(r: Reply): void;
  reject(e: RelayError): void;
  timeoutMs: number;
  timer?: NodeJS.Timeout;
}

export class RelayConnection {
  /** EHLO keywords (upper case) → their parameters */
  readonly capabilities = new Map<string, string>();
  /** how the real client was passed: 'xclient' (once per connection), 'xforward' (per transaction) */
  mode: 'xclient' | 'xforward' | 'none' = 'none';
  /**
   * A reply that refuses every transaction on this connection: the back-end did not accept the
   * client's HELO name after XCLIENT (its own HELO rules apply to the real client).
   */
  refusal: Reply | null = null;
  private socket: net.Socket;
  private readonly options: RelayOptions;
  private waiting: Waiting[] = [];
  private lines: string[] = [];
  private partial: Buffer = Buffer.alloc(0);
  private failure: RelayError | null = null;
  /** a MAIL was sent since the last RSET or final reply: RSET before the next one */
  private inTransaction = false;
  private client: ClientIdentity | null = null;

  private constructor(socket: net.Socket, options: RelayOptions) {
    this.socket = socket;
    this.options = options;
    this.attach(socket);
  }

  /** Connects, reads the greeting, EHLO, STARTTLS (if asked and offered), and passes the client. */
  static async open(options: RelayOptions, client?: ClientIdentity): Promise<RelayConnection> {
    const socket = await connect(options.host, options.port, options.connectTimeoutMs ?? 30_000);
    const c = new RelayConnection(socket, options);
    try {
      const greeting = await c.expect(options.commandTimeoutMs ?? 300_000);
      if (greeting.code !== 220) throw new RelayError('refused', `back-end greeting: ${greeting.code} ${greeting.lines.join(' ')}`, greeting);
      await c.hello(options.heloName);
      if (options.starttls && c.has('STARTTLS')) {
        await c.startTls();
        await c.hello(options.heloName);
      }
      if (client) await c.passClient(client);
      return c;
    } catch (err) {
      c.destroy();
      throw err;
    }
  }

  /** Whether the connection can still be used. */
  get alive(): boolean {
    return this.failure === null && !this.socket.destroyed;
  }

  has(keyword: string): boolean {
    return this.capabilities.has(keyword.toUpperCase());
  }

  get secure(): boolean {
    return this.socket instanceof tls.TLSSocket;
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new RelayError('lost', `back-end connection: ${err.message}`)));
    socket.on('close', () => this.fail(new RelayError('lost', 'back-end closed the connection')));
  }

  private onData(chunk: Buffer): void {
    let buf = this.partial.length > 0 ? Buffer.concat([this.partial, chunk]) : chunk;
    for (let lf = buf.indexOf(10); lf !== -1; lf = buf.indexOf(10)) {
      const line = buf
        .subarray(0, lf)
        .toString('utf8')
        .replace(/\r$/, '');
      buf = buf.subarray(lf + 1);
      this.onLine(line);
      if (this.failure) return;
    }
    if (buf.length > MAX_LINE) {
      this.fail(new RelayError('protocol', 'back-end sent an over-long line'), true);
      return;
    }
    this.partial = Buffer.from(buf);
  }

  private onLine(line: string): void {
    let problem = '';
    if (!/^[2-5]\d\d(?:[ -]|$)/.test(line)) problem = `back-end sent a malformed reply line: ${JSON.stringify(line.slice(0, 80))}`;
    else if (this.lines.length > 0 && line.slice(0, 3) !== this.lines[0]!.slice(0, 3)) problem = 'back-end changed the reply code within a reply';
    else if (this.lines.length >= MAX_REPLY_LINES) problem = 'back-end sent an over-long reply';
    if (problem) {
      this.fail(new RelayError('protocol', problem), true);
      return;
    }
    this.lines.push(line);
    if (line[3] === '-') return;
    const r = parseReply(this.lines);
    this.lines = [];
    const w = this.waiting.shift();
    if (!w) {
      // unsolicited: a 421 before closing (e.g. the back-end's idle timeout)
      this.fail(new RelayError('lost', `back-end said ${r.code} ${r.lines.join(' ')}`, r), true);
      return;
    }
    if (w.timer) clearTimeout(w.timer);
    this.armTimer();
    w.resolve(r);
  }

  /** Starts the timer of the oldest reply awaited (one at a time, so pipelined waits add up). */
  private armTimer(): void {
    const w = this.waiting[0];
    if (!w || w.timer) return;
    w.timer = setTimeout(() => this.fail(new RelayError('timeout', `no reply from the back-end within ${w.timeoutMs} ms`), true), w.timeoutMs);
  }

  private fail(err: RelayError, destroy = false): void {
    if (!this.failure) this.failure = err;
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(this.failure);
    }
    if (destroy) this.socket.destroy();
  }

  /** The next reply (greeting, or the reply to a command written just before). */
  private expect(timeoutMs = this.options.commandTimeoutMs ?? 300_000): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.push({ resolve, reject, timeoutMs });
      this.armTimer();
    });
  }

  /** Writes one command line and waits for its reply. */
  command(line: string, timeoutMs?: number): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    this.socket.write(`${line}\r\n`);
    return this.expect(timeoutMs);
  }

  /** Several commands: in one write when PIPELINING is offered, else one after the other. */
  async pipeline(lines: string[]): Promise<Reply[]> {
    if (this.failure) throw this.failure;
    if (lines.length > 1 && this.has('PIPELINING')) {
      this.socket.write(lines.map((l) => `${l}\r\n`).join(''));
      return Promise.all(lines.map(() => this.expect()));
    }
    const out: Reply[] = [];
    for (const l of lines) out.push(await this.command(l));
    return out;
  }

  private async hello(name: string): Promise<void> {
    this.capabilities.clear();
    let r = await this.command(`EHLO ${name}`);
    if (r.code === 250) {
      for (const line of r.lines.slice(1)) {
        const [keyword = '', ...rest] = line.trim().split(/\s+/);
        if (keyword) this.capabilities.set(keyword.toUpperCase(), rest.join(' '));
      }
      return;
    }
    if (r.code >= 500) r = await this.command(`HELO ${name}`);
    if (r.code !== 250) throw new RelayError('refused', `back-end refused our greeting: ${r.code} ${r.lines.join(' ')}`, r);
  }

  private async startTls(): Promise<void> {
    const r = await this.command('STARTTLS');
    if (r.code !== 220) throw new RelayError('refused', `back-end refused STARTTLS: ${r.code} ${r.lines.join(' ')}`, r);
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    plain.on('error', () => {});
    const secure = tls.connect({ socket: plain, servername: net.isIP(this.options.host) ? undefined : this.options.host, rejectUnauthorized: this.options.verifyTls ?? false });
    this.socket = secure;
    this.partial = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new RelayError('timeout', 'TLS handshake with the back-end timed out')), this.options.connectTimeoutMs ?? 30_000);
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        resolve();
      });
      secure.once('error', (err) => {
        clearTimeout(timer);
        reject(new RelayError('connect', `TLS with the back-end: ${err.message}`));
      });
    });
    this.attach(secure);
  }

  /** XCLIENT attributes for the client, as offered, each "NAME=xtext". */
  private xclientAttributes(client: ClientIdentity, offered: Set<string>): string[][] {
    const v6 = net.isIPv6(client.addr);
    const all: Array<[string, string | undefined]> = [
      ['PROTO', client.esmtp ? 'ESMTP' : 'SMTP'],
      ['HELO', client.helo],
      ['PORT', String(client.port)],
      ['DESTADDR', client.destAddr ? (net.isIPv6(client.destAddr) ? `IPV6:${client.destAddr}` : client.destAddr) : undefined],
      ['DESTPORT', client.destPort !== undefined ? String(client.destPort) : undefined],
      // NAME and ADDR last (Postfix XCLIENT_README: the access checks run when they arrive)
      ['NAME', client.name ?? '[UNAVAILABLE]'],
      ['ADDR', v6 ? `IPV6:${client.addr}` : client.addr],
    ];
    const attrs = all.filter(([k, v]) => v !== undefined && offered.has(k)).map(([k, v]) => `${k}=${k === 'NAME' && v === '[UNAVAILABLE]' ? v : xtext(v!)}`);
    // one command line stays within 512 octets (RFC 5321 §4.5.3.1.4): split between attributes
    const groups: string[][] = [];
    let group: string[] = [];
    let length = 'XCLIENT'.length + 2;
    for (const a of attrs) {
      if (group.length > 0 && length + 1 + a.length > 512) {
        groups.push(group);
        group = [];
        length = 'XCLIENT'.length + 2;
      }
      group.push(a);
      length += 1 + a.length;
    }
    if (group.length > 0) groups.push(group);
    return groups;
  }

  /** Tells the back-end who the client is (XCLIENT once, or XFORWARD before each MAIL). */
  private async passClient(client: ClientIdentity): Promise<void> {
    this.client = client;
    if (this.has('XCLIENT')) {
      const offered = new Set((this.capabilities.get('XCLIENT') ?? '').toUpperCase().split(/\s+/));
      let ok = true;
      for (const group of this.xclientAttributes(client, offered)) {
        const r = await this.command(`XCLIENT ${group.join(' ')}`);
        if (r.code !== 220) {
          ok = false;
          break;
        }
      }
      if (ok) {
        this.mode = 'xclient';
        this.capabilities.clear();
        // the back-end greeted anew: EHLO again, with the client's own name
        let r = await this.command(`${client.esmtp ? 'EHLO' : 'HELO'} ${client.helo}`);
        if (r.code !== 250 && client.esmtp && r.code >= 500 && r.code !== 550 && r.code !== 554) r = await this.command(`HELO ${client.helo}`);
        if (r.code === 250) {
          for (const line of r.lines.slice(1)) {
            const [keyword = '', ...rest] = line.trim().split(/\s+/);
            if (keyword) this.capabilities.set(keyword.toUpperCase(), rest.join(' '));
          }
          this.refusal = null;
        } else this.refusal = r;
        return;
      }
    }
    if (this.has('XFORWARD')) this.mode = 'xforward';
  }

  /** The XFORWARD commands for the next transaction. */
  private xforwardCommands(): string[] {
    const client = this.client;
    if (this.mode !== 'xforward' || !client) return [];
    const offered = new Set((this.capabilities.get('XFORWARD') ?? '').toUpperCase().split(/\s+/));
    const all: Array<[string, string]> = [
      ['NAME', client.name ?? '[UNAVAILABLE]'],
      ['ADDR', net.isIPv6(client.addr) ? `IPV6:${client.addr}` : client.addr],
      ['PORT', String(client.port)],
      ['PROTO', client.esmtp ? 'ESMTP' : 'SMTP'],
      ['HELO', client.helo],
      ['SOURCE', 'REMOTE'],
    ];
    const attrs = all.filter(([k]) => offered.has(k)).map(([k, v]) => `${k}=${k === 'NAME' && v === '[UNAVAILABLE]' ? v : xtext(v)}`);
    const out: string[] = [];
    let line = 'XFORWARD';
    for (const a of attrs) {
      if (line.length + 1 + a.length > 510 && line !== 'XFORWARD') {
        out.push(line);
        line = 'XFORWARD';
      }
      line += ` ${a}`;
    }
    if (line !== 'XFORWARD') out.push(line);
    return out;
  }

  /**
   * Starts a transaction: RSET if one is open, the client's HELO again if it changed (XCLIENT),
   * XFORWARD, then MAIL FROM with the parameters the back-end supports. Returns MAIL's reply.
   */
  async mail(address: string, params: MailParams, client?: ClientIdentity): Promise<Reply> {
    if (this.inTransaction) {
      await this.command('RSET');
      this.inTransaction = false;
    }
    if (client) {
      const changed = this.client?.helo !== client.helo || this.client.esmtp !== client.esmtp;
      this.client = client;
      // a new EHLO from the client: the back-end hears the new name too
      if (changed && this.mode === 'xclient') await this.passClient(client);
    }
    if (this.refusal) return this.refusal;
    let mail = `MAIL FROM:<${address}>`;
    if (params.size !== undefined && this.has('SIZE')) mail += ` SIZE=${params.size}`;
    if (params.body && this.has('8BITMIME')) mail += ` BODY=${params.body}`;
    if (params.smtputf8) mail += ' SMTPUTF8';
    const replies = await this.pipeline([...this.xforwardCommands(), mail]);
    // even a refused MAIL gets an RSET before the next one: Postfix keeps the refused SIZE= and
    // refuses the next MAIL for it until RSET
    this.inTransaction = true;
    return replies[replies.length - 1]!;
  }

  rcpt(address: string): Promise<Reply> {
    return this.command(`RCPT TO:<${address}>`);
  }

  /**
   * DATA, then the content (CRLF lines, not yet dot-stuffed) and the final dot. Returns DATA's
   * reply if it was not 354, else the final reply. The transaction is over either way.
   */
  async data(parts: Iterable<Buffer>): Promise<Reply> {
    const go = await this.command('DATA');
    if (go.code !== 354) return go;
    this.inTransaction = false;
    // the pieces (many small around stuffed dots) go out in writes of up to 64 KiB
    let batch: Buffer[] = [];
    let size = 0;
    for (const piece of dotStuff(parts)) {
      batch.push(piece);
      size += piece.length;
      if (size >= 65_536) {
        await this.write(Buffer.concat(batch, size));
        batch = [];
        size = 0;
      }
    }
    await this.write(Buffer.concat(batch, size));
    return this.expect(this.options.dataTimeoutMs ?? 600_000);
  }

  /** Writes, waiting for the socket to drain when its buffer is full. */
  private async write(buf: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (buf.length === 0 || this.socket.write(buf)) return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        if (this.failure) reject(this.failure);
        else resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** QUIT (aborting any open transaction), then close; never throws. */
  async quit(): Promise<void> {
    if (!this.alive) {
      this.destroy();
      return;
    }
    try {
      await this.command('QUIT', 5_000);
    } catch {
      // closing anyway
    }
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 5_000).unref();
  }

  destroy(): void {
    this.fail(new RelayError('lost', 'closed'));
    this.socket.destroy();
  }
}

function connect(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new RelayError('connect', `connecting to the back-end ${host}:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      // commands and the end of a message go out at once (we batch writes ourselves)
      socket.setNoDelay(true);
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new RelayError('connect', `cannot connect to the back-end ${host}:${port}: ${err.message}`));
    });
  });
}
