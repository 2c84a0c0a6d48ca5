/**
 * A small real SMTP client for tests that need to see exactly the replies a server gives:
 * multi-line replies, several transactions per connection, XCLIENT (Postfix), a chosen local
 * address (a loopback alias, or an address added to `lo` in a private network namespace), and
 * MAIL, RCPT and DATA pipelined in one write (RFC 2920) when a transaction asks for it and the
 * server offers PIPELINING; otherwise one command at a time. Every wait is bounded, and every line
 * sent and received is kept in a transcript that failure messages carry.
 */
import net from 'node:net';

export interface SmtpReply {
  code: number;
  /** the text of each line, without the code and separator ("5.7.1 Sender ..." ) */
  lines: string[];
  /** the lines as received, e.g. ["550-5.7.1 first", "550 5.7.1 second"] */
  raw: string[];
}

/** The reply as one string, lines joined with LF. */
export const replyText = (r: SmtpReply): string => r.raw.join('\n');

/** The reply on one line: "550 5.7.1 first second" (the code once, the lines' text joined with a space). */
export const replyLine = (r: SmtpReply): string => [String(r.code), ...r.lines].join(' ');

export class SmtpError extends Error {}

/** The argument of MAIL FROM: "<a@b.example> BODY=8BITMIME". */
export const mailArgument = (from: string, params = ''): string => `<${from}>${params ? ` ${params}` : ''}`;

const mailLine = (from: string, params = ''): string => `MAIL FROM:${mailArgument(from, params)}`;

export interface ConnectOptions {
  /** default 127.0.0.1 */
  host?: string;
  /** the address to connect from (it must be on one of this host's interfaces) */
  localAddress?: string;
  /** the longest wait for the connection and for each reply; default 30 s */
  timeoutMs?: number;
}

export class SmtpClient {
  private readonly socket: net.Socket;
  private readonly timeoutMs: number;
  private buffer = '';
  private pending: string[] = [];
  private readers: Array<() => void> = [];
  private closed: Error | null = null;
  /** every line sent (C: ...) and received (S: ...), for failure messages */
  readonly transcript: string[] = [];
  greeting!: SmtpReply;
  /** the EHLO keywords of the last 250 reply to EHLO, upper case ("PIPELINING", "SIZE", ...) */
  extensions = new Set<string>();

  private constructor(socket: net.Socket, timeoutMs: number) {
    this.socket = socket;
    this.timeoutMs = timeoutMs;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
        this.pending.push(this.buffer.slice(0, nl).replace(/\r$/, ''));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.wake();
    });
    const end = (err?: Error) => {
      this.closed ??= err ?? new SmtpError('connection closed by the server');
      this.wake();
    };
    socket.on('error', end);
    socket.on('close', () => end());
  }

  private wake(): void {
    const readers = this.readers;
    this.readers = [];
    for (const r of readers) r();
  }

  /** Connects and reads the greeting. */
  static async connect(port: number, options: ConnectOptions = {}): Promise<SmtpClient> {
    const host = options.host ?? '127.0.0.1';
    const timeoutMs = options.timeoutMs ?? 30_000;
    const socket = net.connect({
      port,
      host,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new SmtpError(`no connection to ${host}:${port} in ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const client = new SmtpClient(socket, timeoutMs);
    client.greeting = await client.read();
    return client;
  }

  private failure(why: string): SmtpError {
    return new SmtpError(`${why}\n${this.transcript.join('\n')}`);
  }

  /** The next line; a reply that does not come in time closes the connection. */
  private async line(): Promise<string> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const next = this.pending.shift();
      if (next !== undefined) return next;
      if (this.closed) throw this.failure(this.closed.message);
      const left = deadline - Date.now();
      if (left <= 0) {
        this.socket.destroy();
        throw this.failure(`no answer from the server in ${this.timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.readers.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Reads one (possibly multi-line) reply. */
  async read(): Promise<SmtpReply> {
    const raw: string[] = [];
    const lines: string[] = [];
    for (;;) {
      const line = await this.line();
      this.transcript.push(`S: ${line}`);
      const m = /^(\d{3})([ -])(.*)$/.exec(line);
      if (!m) throw this.failure(`bad reply line "${line}"`);
      raw.push(line);
      lines.push(m[3]!);
      if (m[2] === ' ') return { code: Number(m[1]), lines, raw };
    }
  }

  /** Sends one command line and reads its reply. */
  async command(line: string): Promise<SmtpReply> {
    return (await this.pipeline([line]))[0]!;
  }

  /** Sends command lines in one write (RFC 2920), then reads one reply per line. */
  async pipeline(lines: readonly string[]): Promise<SmtpReply[]> {
    for (const l of lines) this.transcript.push(`C: ${l}`);
    this.socket.write(lines.map((l) => `${l}\r\n`).join(''));
    const replies: SmtpReply[] = [];
    for (let i = 0; i < lines.length; i++) replies.push(await this.read());
    return replies;
  }

  /** Like command(), but throws unless the reply code is `expect` (a number or its first digit). */
  async expect(line: string, expect: number): Promise<SmtpReply> {
    const r = await this.command(line);
    const ok = expect < 10 ? Math.floor(r.code / 100) === expect : r.code === expect;
    if (!ok)
      throw this.failure(`"${line}" got ${replyText(r)}, expected ${expect}${expect < 10 ? 'xx' : ''}`);
    return r;
  }

  /**
   * EHLO; keeps the keywords of a 250 reply in `extensions`. Throws unless the reply is 250;
   * with `{ strict: false }` any reply is returned (a server under test may refuse the name).
   */
  async ehlo(name = 'client.lab.example', options: { strict?: boolean } = {}): Promise<SmtpReply> {
    const line = `EHLO ${name}`;
    const r = options.strict === false ? await this.command(line) : await this.expect(line, 250);
    this.extensions = new Set(
      r.code === 250 ? r.lines.slice(1).map((l) => l.split(' ')[0]!.toUpperCase()) : [],
    );
    return r;
  }

  /** Postfix XCLIENT: the session restarts as if from that client; resolves with the new greeting. */
  async xclient(attributes: Record<string, string>): Promise<SmtpReply> {
    const args = Object.entries(attributes)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    return this.expect(`XCLIENT ${args}`, 220);
  }

  mail(from: string, params = ''): Promise<SmtpReply> {
    return this.command(mailLine(from, params));
  }

  rcpt(to: string): Promise<SmtpReply> {
    return this.command(`RCPT TO:<${to}>`);
  }

  /**
   * DATA: sends the message (see sendMessage) and returns the reply to the final dot, or the reply
   * to DATA itself when that is not 354.
   */
  async data(message: string): Promise<SmtpReply> {
    const start = await this.command('DATA');
    if (start.code !== 354) return start;
    return this.sendMessage(message);
  }

  /**
   * After a 354: sends the message and reads the reply to the final dot. CRLF or LF line ends;
   * dot-stuffed here; one octet per character (latin1), so a message read as latin1 goes out as
   * it was on disk.
   */
  async sendMessage(message: string): Promise<SmtpReply> {
    const body = message.replace(/\r?\n/g, '\r\n').replace(/\r\n$/, '');
    const stuffed = body
      .split('\r\n')
      .map((l) => (l.startsWith('.') ? `.${l}` : l))
      .join('\r\n');
    this.transcript.push(`C: <message, ${stuffed.length} octets>`);
    this.socket.write(Buffer.from(`${stuffed}\r\n.\r\n`, 'latin1'));
    return this.read();
  }

  rset(): Promise<SmtpReply> {
    return this.expect('RSET', 250);
  }

  /** QUIT and close (never throws). */
  async quit(): Promise<void> {
    try {
      if (!this.closed) await this.command('QUIT');
    } catch {
      // already gone
    }
    this.socket.destroy();
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface Transaction {
  /** the reverse-path without its angle brackets ('' for the null sender) */
  from: string;
  /** ESMTP parameters after the reverse-path, as written ("BODY=8BITMIME SIZE=100") */
  params?: string;
  to: string[];
  message: string;
  /** MAIL, every RCPT and DATA in one write when the server offers PIPELINING (RFC 2920 §3.1) */
  pipeline?: boolean;
}

export interface TransactionResult {
  mail: SmtpReply;
  /** one reply per recipient; empty when MAIL was refused and the RCPTs were not sent */
  rcpt: SmtpReply[];
  /** the reply to the final dot; null when the message was not sent */
  data: SmtpReply | null;
  /** the reply that ended the transaction: a refused MAIL, else the last reply the client saw */
  final: SmtpReply;
}

/**
 * One transaction on an open connection; refusals are results, not errors. One command at a
 * time, stopping at the first refusal that ends the transaction, unless `pipeline` is set and the
 * server offers PIPELINING: then every command goes in one write and every reply is read. A
 * transaction left open (MAIL accepted, message not sent) is reset, so the connection is ready
 * for the next one.
 */
export async function transaction(client: SmtpClient, t: Transaction): Promise<TransactionResult> {
  const rcptLines = t.to.map((to) => `RCPT TO:<${to}>`);
  let mail: SmtpReply;
  let rcpt: SmtpReply[];
  let start: SmtpReply | undefined;
  if (t.pipeline && client.extensions.has('PIPELINING')) {
    const replies = await client.pipeline([mailLine(t.from, t.params), ...rcptLines, 'DATA']);
    mail = replies[0]!;
    rcpt = replies.slice(1, -1);
    start = replies.at(-1)!;
  } else {
    mail = await client.mail(t.from, t.params);
    if (mail.code !== 250) return { mail, rcpt: [], data: null, final: mail };
    rcpt = [];
    for (const line of rcptLines) rcpt.push(await client.command(line));
    if (rcpt.some((r) => r.code === 250 || r.code === 251)) start = await client.command('DATA');
  }
  if (start?.code === 354) {
    const data = await client.sendMessage(t.message);
    return { mail, rcpt, data, final: data };
  }
  if (mail.code === 250) await client.rset();
  return { mail, rcpt, data: null, final: mail.code !== 250 ? mail : (start ?? rcpt.at(-1) ?? mail) };
}

/** A plain message with the given extra header lines above the usual ones. */
export function message(options: {
  subject?: string;
  from?: string;
  to?: string;
  headers?: string[];
  body?: string;
  id?: string;
}): string {
  const lines = [
    ...(options.headers ?? []),
    `From: ${options.from ?? 'sender@lab.example'}`,
    `To: ${options.to ?? 'rcpt@dest.example'}`,
    `Subject: ${options.subject ?? 'lab test'}`,
    `Message-ID: <${options.id ?? `${Date.now()}.${Math.random().toString(36).slice(2)}`}@client.lab.example>`,
    'Date: Mon, 23 Nov 2026 12:00:00 +0000',
    '',
    options.body ?? 'Hello from the checkid lab.',
  ];
  return `${lines.join('\r\n')}\r\n`;
}
