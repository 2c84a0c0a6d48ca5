/**
 * A scriptable SMTP back-end for tests: EHLO with chosen extensions (PIPELINING, SIZE, 8BITMIME,
 * SMTPUTF8, ENHANCEDSTATUSCODES, and XCLIENT / XFORWARD like Postfix's), every command and
 * message recorded, and hooks to refuse a MAIL or a RCPT, hold or refuse the final reply, or hang
 * up at the final dot. Written independently of src/adapters/smtp-front (a line-at-a-time
 * server), so the front-end is checked against someone else's reading of the protocol.
 */
import net from 'node:net';

export interface SinkClient {
  /** as told by XCLIENT (else the socket's) */
  addr: string;
  port?: string;
  name?: string;
  helo?: string;
  proto?: string;
}

export interface SinkSession {
  id: number;
  /** every command line received, in order (message content excluded) */
  commands: string[];
  client: SinkClient;
  /** the socket's peer address */
  peer: string;
}

export interface SinkMessage {
  session: number;
  mailFrom: string;
  /** the MAIL FROM parameters as sent ('' for none) */
  mailParams: string;
  rcpt: string[];
  /** dot-unstuffed, CRLF kept */
  data: string;
  /** the client at the time (XCLIENT applied) */
  client: SinkClient;
  /** the XFORWARD attributes given for this transaction */
  xforward: Record<string, string>;
}

export type SinkReply = string | null | 'HANGUP';

export interface SmtpSinkOptions {
  /** EHLO keywords besides XCLIENT/XFORWARD (default PIPELINING, SIZE 52428800, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES) */
  extensions?: string[];
  /** offer XCLIENT NAME ADDR PORT PROTO HELO (and honour it) */
  xclient?: boolean;
  /** offer XFORWARD NAME ADDR PORT PROTO HELO SOURCE */
  xforward?: boolean;
  /** the greeting (default "220 sink.test ESMTP") */
  greeting?: string;
  mail?: (address: string) => SinkReply;
  rcpt?: (address: string) => SinkReply;
  /** the reply to the final dot (default 250 ... queued); may wait; 'HANGUP' closes instead */
  final?: (message: SinkMessage) => SinkReply | Promise<SinkReply>;
}

export interface SmtpSink {
  port: number;
  /** "127.0.0.1:PORT" */
  address: string;
  /** messages that got a 2xx final reply */
  readonly messages: SinkMessage[];
  readonly sessions: SinkSession[];
  readonly connections: number;
  /** messages whose content arrived (accepted or not) */
  readonly received: number;
  waitFor(count: number, timeoutMs?: number): Promise<SinkMessage[]>;
  /** drops every open connection (as a back-end's idle timeout would) */
  hangUp(): void;
  close(): Promise<void>;
}

const DEFAULT_EXTENSIONS = ['PIPELINING', 'SIZE 52428800', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES'];

function xtextDecode(value: string): string {
  return Buffer.from(value.replace(/\+([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))), 'latin1').toString('utf8');
}

function attributes(arg: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const token of arg.trim().split(/\s+/)) {
    const eq = token.indexOf('=');
    if (eq > 0) out[token.slice(0, eq).toUpperCase()] = xtextDecode(token.slice(eq + 1));
  }
  return out;
}

export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const messages: SinkMessage[] = [];
  const sessions: SinkSession[] = [];
  const sockets = new Set<net.Socket>();
  const waiters = new Set<() => void>();
  let received = 0;
  const extensions = [
    ...(options.extensions ?? DEFAULT_EXTENSIONS),
    ...(options.xclient ? ['XCLIENT NAME ADDR PORT PROTO HELO'] : []),
    ...(options.xforward ? ['XFORWARD NAME ADDR PORT PROTO HELO SOURCE'] : []),
  ];

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const session: SinkSession = { id: sessions.length + 1, commands: [], client: { addr: socket.remoteAddress ?? '' }, peer: socket.remoteAddress ?? '' };
    sessions.push(session);
    let greeted = false;
    let mailFrom: string | null = null;
    let mailParams = '';
    let rcpt: string[] = [];
    let xforward: Record<string, string> = {};
    let inData = false;
    let data: string[] = [];
    let buffer = Buffer.alloc(0);
    let busy = Promise.resolve();
    const send = (line: string) => {
      if (!socket.destroyed) socket.write(`${line}\r\n`);
    };
    send(options.greeting ?? '220 sink.test ESMTP');

    const reset = () => {
      mailFrom = null;
      mailParams = '';
      rcpt = [];
      xforward = {};
    };

    const onLine = async (line: string): Promise<void> => {
      if (inData) {
        if (line === '.') {
          inData = false;
          received++;
          const m: SinkMessage = { session: session.id, mailFrom: mailFrom ?? '', mailParams, rcpt, data: data.length ? `${data.join('\r\n')}\r\n` : '', client: { ...session.client }, xforward };
          data = [];
          reset();
          const r = (await options.final?.(m)) ?? `250 2.0.0 Ok: queued as S${received}`;
          if (r === 'HANGUP') {
            socket.destroy();
            return;
          }
          if (r.startsWith('2')) messages.push(m);
          send(r);
          for (const wake of waiters) wake();
          return;
        }
        data.push(line.startsWith('.') ? line.slice(1) : line);
        return;
      }
      session.commands.push(line);
      const sp = line.indexOf(' ');
      const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
      const arg = sp < 0 ? '' : line.slice(sp + 1);
      switch (verb) {
        case 'EHLO':
          greeted = true;
          reset();
          session.client.helo = arg;
          send(extensions.length > 0 ? '250-sink.test' : '250 sink.test');
          for (const [i, e] of extensions.entries()) send(`250${i === extensions.length - 1 ? ' ' : '-'}${e}`);
          return;
        case 'HELO':
          greeted = true;
          reset();
          session.client.helo = arg;
          return send('250 sink.test');
        case 'XCLIENT': {
          if (!options.xclient) return send('502 5.5.1 Error: command not implemented');
          if (mailFrom !== null) return send('503 5.5.1 Error: MAIL transaction in progress');
          const a = attributes(arg);
          if (a.ADDR) session.client.addr = a.ADDR.replace(/^IPV6:/i, '');
          if (a.PORT) session.client.port = a.PORT;
          if (a.NAME) session.client.name = a.NAME;
          if (a.HELO) session.client.helo = a.HELO;
          if (a.PROTO) session.client.proto = a.PROTO;
          greeted = false;
          return send('220 sink.test ESMTP');
        }
        case 'XFORWARD':
          if (!options.xforward) return send('502 5.5.1 Error: command not implemented');
          Object.assign(xforward, attributes(arg));
          return send('250 2.0.0 Ok');
        case 'MAIL': {
          if (!greeted) return send('503 5.5.1 Error: send HELO/EHLO first');
          if (mailFrom !== null) return send('503 5.5.1 Error: nested MAIL command');
          const m = /^FROM:<([^>]*)>\s*(.*)$/i.exec(arg);
          if (!m) return send('501 5.5.4 Syntax: MAIL FROM:<address>');
          const refusal = options.mail?.(m[1]!);
          if (refusal === 'HANGUP') return void socket.destroy();
          if (refusal) return send(refusal);
          mailFrom = m[1]!;
          mailParams = m[2]!;
          return send('250 2.1.0 Ok');
        }
        case 'RCPT': {
          if (mailFrom === null) return send('503 5.5.1 Error: need MAIL command');
          const m = /^TO:<([^>]*)>$/i.exec(arg);
          if (!m) return send('501 5.5.4 Syntax: RCPT TO:<address>');
          const refusal = options.rcpt?.(m[1]!);
          if (refusal === 'HANGUP') return void socket.destroy();
          if (refusal) return send(refusal);
          rcpt.push(m[1]!);
          return send('250 2.1.5 Ok');
        }
        case 'DATA':
          if (mailFrom === null || rcpt.length === 0) return send('554 5.5.1 Error: no valid recipients');
          inData = true;
          return send('354 End data with <CR><LF>.<CR><LF>');
        case 'RSET':
          reset();
          return send('250 2.0.0 Ok');
        case 'NOOP':
          return send('250 2.0.0 Ok');
        case 'QUIT':
          send('221 2.0.0 Bye');
          socket.end();
          return;
        default:
          return send('502 5.5.2 Error: command not recognized');
      }
    };

    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (let lf = buffer.indexOf(10); lf !== -1; lf = buffer.indexOf(10)) {
        const line = buffer.subarray(0, lf).toString('utf8').replace(/\r$/, '');
        buffer = buffer.subarray(lf + 1);
        busy = busy.then(() => onLine(line));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    messages,
    sessions,
    get connections() {
      return sessions.length;
    },
    get received() {
      return received;
    },
    waitFor(count, timeoutMs = 20_000) {
      if (messages.length >= count) return Promise.resolve(messages);
      return new Promise((resolve, reject) => {
        const wake = () => {
          if (messages.length < count) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(messages);
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`sink: ${messages.length} of ${count} messages after ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(wake);
      });
    },
    hangUp() {
      for (const s of sockets) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
