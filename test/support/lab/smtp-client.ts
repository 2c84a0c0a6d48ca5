/**
 * A small real SMTP client for the lab: one command at a time (no pipelining), multi-line replies,
 * several transactions per connection, XCLIENT (Postfix) — what a test needs to see exactly the
 * replies an MTA gives.
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

export class SmtpError extends Error {}

export class SmtpClient {
  private readonly socket: net.Socket;
  private buffer = '';
  private pending: string[] = [];
  private readers: Array<() => void> = [];
  private closed: Error | null = null;
  /** every line sent (C: ...) and received (S: ...), for failure messages */
  readonly transcript: string[] = [];
  greeting!: SmtpReply;

  private constructor(socket: net.Socket) {
    this.socket = socket;
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
  static async connect(port: number, host = '127.0.0.1', timeoutMs = 30_000): Promise<SmtpClient> {
    const socket = net.connect(port, host);
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new SmtpError(`no answer from ${host}:${port} in ${timeoutMs} ms`)),
    );
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new SmtpClient(socket);
    client.greeting = await client.read();
    return client;
  }

  private async line(): Promise<string> {
    for (;;) {
      const next = this.pending.shift();
      if (next !== undefined) return next;
      if (this.closed) throw new SmtpError(`${this.closed.message}\n${this.transcript.join('\n')}`);
      await new Promise<void>((resolve) => this.readers.push(resolve));
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
      if (!m) throw new SmtpError(`bad reply line "${line}"\n${this.transcript.join('\n')}`);
      raw.push(line);
      lines.push(m[3]!);
      if (m[2] === ' ') return { code: Number(m[1]), lines, raw };
    }
  }

  /** Sends one command line and reads its reply. */
  async command(line: string): Promise<SmtpReply> {
    this.transcript.push(`C: ${line}`);
    this.socket.write(`${line}\r\n`);
    return this.read();
  }

  /** Like command(), but throws unless the reply code is `expect` (a number or its first digit). */
  async expect(line: string, expect: number): Promise<SmtpReply> {
    const r = await this.command(line);
    const ok = expect < 10 ? Math.floor(r.code / 100) === expect : r.code === expect;
    if (!ok)
      throw new SmtpError(
        `"${line}" got ${replyText(r)}, expected ${expect}${expect < 10 ? 'xx' : ''}\n${this.transcript.join('\n')}`,
      );
    return r;
  }

  ehlo(name = 'client.lab.example'): Promise<SmtpReply> {
    return this.expect(`EHLO ${name}`, 250);
  }

  /** Postfix XCLIENT: the session restarts as if from that client; resolves with the new greeting. */
  async xclient(attributes: Record<string, string>): Promise<SmtpReply> {
    const args = Object.entries(attributes)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    return this.expect(`XCLIENT ${args}`, 220);
  }

  mail(from: string, params = ''): Promise<SmtpReply> {
    return this.command(`MAIL FROM:<${from}>${params ? ` ${params}` : ''}`);
  }

  rcpt(to: string): Promise<SmtpReply> {
    return this.command(`RCPT TO:<${to}>`);
  }

  /**
   * DATA: sends the message (CRLF or LF line ends, dot-stuffed here) and returns the reply to the
   * final dot, or the reply to DATA itself when that is not 354.
   */
  async data(message: string): Promise<SmtpReply> {
    const start = await this.command('DATA');
    if (start.code !== 354) return start;
    const body = message.replace(/\r?\n/g, '\r\n').replace(/\r\n$/, '');
    const stuffed = body
      .split('\r\n')
      .map((l) => (l.startsWith('.') ? `.${l}` : l))
      .join('\r\n');
    this.transcript.push(`C: <message, ${stuffed.length} octets>`);
    this.socket.write(`${stuffed}\r\n.\r\n`);
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
  from: string;
  to: string[];
  message: string;
}

export interface TransactionResult {
  mail: SmtpReply;
  rcpt: SmtpReply[];
  /** the reply to the final dot (or to DATA), null when MAIL or every RCPT was refused */
  data: SmtpReply | null;
  /** the reply that ended the transaction: the final one the client saw */
  final: SmtpReply;
}

/** One transaction on an open connection; refusals are results, not errors. Leaves the connection ready for the next one. */
export async function transaction(client: SmtpClient, t: Transaction): Promise<TransactionResult> {
  const mail = await client.mail(t.from);
  if (mail.code !== 250) return { mail, rcpt: [], data: null, final: mail };
  const rcpt: SmtpReply[] = [];
  for (const to of t.to) rcpt.push(await client.rcpt(to));
  const accepted = rcpt.filter((r) => r.code === 250 || r.code === 251);
  if (accepted.length === 0) {
    await client.rset();
    return { mail, rcpt, data: null, final: rcpt.at(-1)! };
  }
  const data = await client.data(t.message);
  if (data.code === 354) throw new SmtpError('DATA reply mix-up');
  return { mail, rcpt, data, final: data };
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
