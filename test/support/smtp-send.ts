/**
 * A small SMTP client for tests that send whole transactions: it can bind the connection to a
 * chosen local address (a loopback alias, or an address added to `lo` in a private network
 * namespace), pipelines MAIL, RCPT and DATA in one write when the server offers PIPELINING
 * (RFC 2920), sends the MAIL FROM line as given (parameters included), and returns every reply.
 * Message text is sent with CRLF line ends and dot-stuffed here. Every wait is bounded.
 */
import net from 'node:net';

export interface SendReply {
  code: number;
  /** the lines as received, e.g. ["250-first", "250 last"] */
  lines: string[];
}

/** "550 5.7.1 text" (lines joined with a space, continuation codes dropped). */
export const replyLine = (r: SendReply): string =>
  r.lines.map((l, i) => (i === 0 ? l.replace(/^(\d{3})-/, '$1 ') : l.slice(4))).join(' ');

export class SmtpSendClient {
  private readonly socket: net.Socket;
  private buffer = '';
  private readonly pending: string[] = [];
  private waiter: (() => void) | null = null;
  private ended: Error | null = null;
  private readonly timeoutMs: number;
  /** C: and S: lines, for failure messages */
  readonly transcript: string[] = [];
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
      this.ended ??= err ?? new Error('connection closed by the server');
      this.wake();
    };
    socket.on('error', end);
    socket.on('close', () => end());
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Connects (from `localAddress` when given) and reads the greeting. */
  static async connect(options: { port: number; host?: string; localAddress?: string; timeoutMs?: number }): Promise<{ client: SmtpSendClient; greeting: SendReply }> {
    const socket = net.connect({
      port: options.port,
      host: options.host ?? '127.0.0.1',
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new SmtpSendClient(socket, options.timeoutMs ?? 20_000);
    return { client, greeting: await client.read() };
  }

  private async line(): Promise<string> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const next = this.pending.shift();
      if (next !== undefined) return next;
      if (this.ended) throw new Error(`${this.ended.message}\n${this.transcript.join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${this.timeoutMs} ms\n${this.transcript.join('\n')}`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, left).unref();
      });
    }
  }

  /** One reply, multi-line or not. */
  async read(): Promise<SendReply> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.line();
      this.transcript.push(`S: ${line}`);
      const m = /^(\d{3})([ -])/.exec(line);
      if (!m) throw new Error(`bad reply line ${JSON.stringify(line)}\n${this.transcript.join('\n')}`);
      lines.push(line);
      if (m[2] === ' ') return { code: Number(m[1]), lines };
    }
  }

  /** Writes command lines in one write, then reads one reply per line. */
  async commands(lines: string[]): Promise<SendReply[]> {
    for (const l of lines) this.transcript.push(`C: ${l}`);
    this.socket.write(lines.map((l) => `${l}\r\n`).join(''));
    const replies: SendReply[] = [];
    for (let i = 0; i < lines.length; i++) replies.push(await this.read());
    return replies;
  }

  async ehlo(name: string): Promise<SendReply> {
    const [r] = await this.commands([`EHLO ${name}`]);
    this.extensions = new Set(r!.lines.slice(1).map((l) => l.slice(4).split(' ')[0]!.toUpperCase()));
    return r!;
  }

  /**
   * One transaction. `mailFrom` is the whole argument after "MAIL FROM:" (e.g. "<a@b.example>
   * BODY=8BITMIME"). MAIL, the RCPTs and DATA go in one write under PIPELINING (RFC 2920 §3.1),
   * else one by one; the message follows only after a 354. A refused transaction is reset.
   */
  async transaction(mailFrom: string, rcpt: string[], message: string): Promise<{ mail: SendReply; rcpt: SendReply[]; data: SendReply | null; final: SendReply }> {
    const group = [`MAIL FROM:${mailFrom}`, ...rcpt.map((r) => `RCPT TO:<${r}>`), 'DATA'];
    let replies: SendReply[];
    if (this.extensions.has('PIPELINING')) replies = await this.commands(group);
    else {
      replies = [];
      for (const line of group) {
        const [r] = await this.commands([line]);
        replies.push(r!);
        if (line.startsWith('MAIL') && r!.code !== 250) break;
      }
    }
    const mail = replies[0]!;
    const rcptReplies = replies.slice(1, 1 + rcpt.length);
    const dataReply = replies[1 + rcpt.length];
    if (dataReply?.code !== 354) {
      await this.commands(['RSET']);
      const final = dataReply ?? rcptReplies.at(-1) ?? mail;
      return { mail, rcpt: rcptReplies, data: null, final: mail.code !== 250 ? mail : final };
    }
    const text = message.replace(/\r?\n/g, '\r\n').replace(/\r\n$/, '');
    const stuffed = text
      .split('\r\n')
      .map((l) => (l.startsWith('.') ? `.${l}` : l))
      .join('\r\n');
    this.transcript.push(`C: <message, ${stuffed.length} octets>`);
    this.socket.write(Buffer.from(`${stuffed}\r\n.\r\n`, 'latin1'));
    const data = await this.read();
    return { mail, rcpt: rcptReplies, data, final: data };
  }

  /** QUIT and close; never throws. */
  async quit(): Promise<void> {
    try {
      if (!this.ended) await this.commands(['QUIT']);
    } catch {
      // already gone
    }
    this.socket.destroy();
  }
}
