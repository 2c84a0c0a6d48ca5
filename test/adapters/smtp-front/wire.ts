/**
 * A raw SMTP client for the front-end's tests: writes exactly the bytes given (so a test can
 * pipeline, split or garble them), reads replies one at a time, binds a chosen local address
 * (127.0.0.2 shows the back-end a client address other than the front-end's own), and upgrades
 * to TLS after STARTTLS.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface WireReply {
  code: number;
  /** text of each line, enhanced code included */
  lines: string[];
  /** the reply as received, lines joined with \n */
  text: string;
}

export class Wire {
  private socket: net.Socket;
  private buffer = '';
  private lines: string[] = [];
  private wake: (() => void) | null = null;
  ended = false;
  greeting!: WireReply;
  /** replies read so far */
  readonly received: WireReply[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
        this.lines.push(this.buffer.slice(0, nl).replace(/\r$/, ''));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.wake?.();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  static async connect(port: number, options: { localAddress?: string; host?: string } = {}): Promise<Wire> {
    const socket = net.connect({ port, host: options.host ?? '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    const w = new Wire(socket);
    w.greeting = await w.reply();
    return w;
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  private async line(): Promise<string> {
    for (;;) {
      const l = this.lines.shift();
      if (l !== undefined) return l;
      if (this.ended) throw new Error(`connection closed; replies so far: ${JSON.stringify(this.received.map((r) => r.text))}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = null;
    }
  }

  async reply(): Promise<WireReply> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line();
      const m = /^(\d{3})([ -])(.*)$/.exec(l);
      if (!m) throw new Error(`bad reply line ${JSON.stringify(l)}`);
      lines.push(m[3]!);
      if (m[2] === ' ') {
        const r = { code: Number(m[1]), lines, text: lines.map((t, i) => `${m[1]}${i === lines.length - 1 ? ' ' : '-'}${t}`).join('\n') };
        this.received.push(r);
        return r;
      }
    }
  }

  /** Whether a reply line is already waiting (to show nothing was answered yet). */
  get pending(): boolean {
    return this.lines.length > 0 || this.buffer.length > 0;
  }

  send(raw: string | Buffer): void {
    this.socket.write(raw);
  }

  async cmd(line: string): Promise<WireReply> {
    this.send(`${line}\r\n`);
    return this.reply();
  }

  /** Several commands in one write; their replies in order. */
  async pipeline(lines: string[]): Promise<WireReply[]> {
    this.send(lines.map((l) => `${l}\r\n`).join(''));
    const out: WireReply[] = [];
    for (let i = 0; i < lines.length; i++) out.push(await this.reply());
    return out;
  }

  /** DATA, the message (CRLF lines, dot-stuffed here), the final reply. */
  async data(message: string): Promise<WireReply> {
    const go = await this.cmd('DATA');
    if (go.code !== 354) return go;
    const body = message
      .split('\r\n')
      .map((l) => (l.startsWith('.') ? `.${l}` : l))
      .join('\r\n');
    this.send(`${body}${body.endsWith('\r\n') || body === '' ? '' : '\r\n'}.\r\n`);
    return this.reply();
  }

  /** After a 220 to STARTTLS. */
  async upgrade(): Promise<tls.TLSSocket> {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
    const secure = tls.connect({ socket: this.socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
    return secure;
  }

  async quit(): Promise<void> {
    if (!this.ended) {
      try {
        await this.cmd('QUIT');
      } catch {
        // gone already
      }
    }
    this.socket.destroy();
  }

  close(): void {
    this.socket.destroy();
  }
}
