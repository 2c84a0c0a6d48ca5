/**
 * A tiny SMTP server that the lab's MTAs relay to: it accepts every transaction and records the
 * envelope and the message exactly as delivered (dot-unstuffed, CRLF kept), so tests can assert
 * on the headers an MTA and its milter produced. Several connections and several transactions per
 * connection are fine. No ESMTP extensions are offered, so MTAs send plain commands one by one.
 */
import net from 'node:net';
import { sleep } from './lab.ts';

export interface SinkMessage {
  /** the HELO/EHLO argument */
  helo: string;
  /** MAIL FROM address without the brackets ('' for the null sender) */
  mailFrom: string;
  rcptTo: string[];
  /** the message as delivered: header, blank line, body, CRLF line ends, dots unstuffed */
  data: string;
  /** the header section as [name, value] pairs in order (value as on the wire: folding kept, CRLF inside) */
  headers: Array<[string, string]>;
  /** the header section's raw lines, unfolded lines kept apart (for order checks) */
  headerLines: string[];
}

export interface Sink {
  port: number;
  readonly messages: SinkMessage[];
  /** connections opened so far */
  readonly connections: number;
  /** resolves once `count` messages have arrived (rejects after timeoutMs) */
  waitFor(count: number, timeoutMs?: number): Promise<SinkMessage[]>;
  /** the first message whose header or envelope contains `needle` (waits up to timeoutMs) */
  find(needle: string, timeoutMs?: number): Promise<SinkMessage>;
  close(): Promise<void>;
}

/** Splits a message into its header fields (folded values kept whole) and raw header lines. */
export function parseHeaders(data: string): { headers: Array<[string, string]>; headerLines: string[] } {
  const end = data.indexOf('\r\n\r\n');
  const block = end < 0 ? data : data.slice(0, end);
  const headerLines = block.split('\r\n');
  const headers: Array<[string, string]> = [];
  for (const line of headerLines) {
    if (/^[ \t]/.test(line) && headers.length) {
      headers[headers.length - 1]![1] += `\r\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) headers.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  return { headers, headerLines };
}

export async function startSink(options: { port?: number; hostname?: string } = {}): Promise<Sink> {
  const messages: SinkMessage[] = [];
  const waiters = new Set<() => void>();
  const sockets = new Set<net.Socket>();
  const hostname = options.hostname ?? 'sink.lab.example';
  let connections = 0;

  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffer = '';
    let inData = false;
    let dataLines: string[] = [];
    let helo = '';
    let mailFrom: string | null = null;
    let rcptTo: string[] = [];
    const reply = (line: string) => socket.write(`${line}\r\n`);
    reply(`220 ${hostname} ESMTP checkid-lab-sink`);

    const onLine = (line: string) => {
      if (inData) {
        if (line === '.') {
          inData = false;
          const data = dataLines.length ? `${dataLines.join('\r\n')}\r\n` : '';
          messages.push({ helo, mailFrom: mailFrom ?? '', rcptTo, data, ...parseHeaders(data) });
          mailFrom = null;
          rcptTo = [];
          dataLines = [];
          reply(`250 2.0.0 Ok: queued as sink-${messages.length}`);
          for (const wake of waiters) wake();
          return;
        }
        dataLines.push(line.startsWith('.') ? line.slice(1) : line);
        return;
      }
      const verb = line.slice(0, 4).toUpperCase();
      const arg = line.slice(4).trim();
      switch (verb) {
        case 'HELO':
        case 'EHLO':
          helo = arg;
          mailFrom = null;
          rcptTo = [];
          return reply(`250 ${hostname}`);
        case 'MAIL': {
          const m = /^FROM:\s*<([^>]*)>/i.exec(arg);
          if (!m) return reply('501 5.5.4 Syntax: MAIL FROM:<address>');
          mailFrom = m[1]!;
          rcptTo = [];
          return reply('250 2.1.0 Ok');
        }
        case 'RCPT': {
          const m = /^TO:\s*<([^>]*)>/i.exec(arg);
          if (mailFrom === null) return reply('503 5.5.1 Error: need MAIL command');
          if (!m) return reply('501 5.5.4 Syntax: RCPT TO:<address>');
          rcptTo.push(m[1]!);
          return reply('250 2.1.5 Ok');
        }
        case 'DATA':
          if (mailFrom === null || rcptTo.length === 0) return reply('503 5.5.1 Error: need RCPT command');
          inData = true;
          return reply('354 End data with <CR><LF>.<CR><LF>');
        case 'RSET':
          mailFrom = null;
          rcptTo = [];
          return reply('250 2.0.0 Ok');
        case 'NOOP':
          return reply('250 2.0.0 Ok');
        case 'QUIT':
          reply('221 2.0.0 Bye');
          socket.end();
          return;
        default:
          return reply('502 5.5.2 Error: command not recognized');
      }
    };

    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        onLine(line);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  const waitUntil = async (ready: () => boolean, timeoutMs: number, what: () => string): Promise<void> => {
    if (ready()) return;
    await new Promise<void>((resolve, reject) => {
      const wake = () => {
        if (!ready()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`sink on port ${port}: ${what()} after ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(wake);
      };
      waiters.add(wake);
    });
  };

  return {
    port,
    messages,
    get connections() {
      return connections;
    },
    async waitFor(count, timeoutMs = 20_000) {
      await waitUntil(
        () => messages.length >= count,
        timeoutMs,
        () => `${messages.length} of ${count} messages arrived`,
      );
      return messages;
    },
    async find(needle, timeoutMs = 20_000) {
      const match = () =>
        messages.find(
          (m) =>
            m.data.includes(needle) ||
            m.mailFrom.includes(needle) ||
            m.rcptTo.some((r) => r.includes(needle)),
        );
      await waitUntil(
        () => match() !== undefined,
        timeoutMs,
        () => `no message with "${needle}" among ${messages.length}`,
      );
      return match()!;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await sleep(0);
    },
  };
}
