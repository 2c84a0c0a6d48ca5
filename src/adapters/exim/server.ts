/**
 * The Exim readsocket adapter: Exim's ACLs ask checkid at connect, HELO, MAIL, RCPT and DATA
 * with `${readsocket{...}}` (a new connection per question) and carry out the answer themselves:
 * `deny`/`defer` with our message, `discard`, `add_header`, `remove_header`
 * (docs/adapters/exim.md). Knows the readsocket protocol and the engine, no check.
 *
 * Exim runs one process per SMTP connection; the ACL snippet names the connection
 * ($pid, client address and port), so one engine session serves every question about it.
 * Without a session name each question is answered on its own (its fields replayed).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { type Engine, type Logger, parseHeaderBlock } from '../../engine/engine.ts';
import type { HeaderField, Verdict } from '../../engine/verdict.ts';
import { askStaged, stagedSessions } from '../common/staged-handler.ts';
import type { Answer, Ask, SessionTable } from '../policyd/staged.ts';
import { encodeReadsocketResponse, parseReadsocketRequest, type ReadsocketRequest } from './protocol.ts';

export interface ReadsocketServerOptions {
  engine: Engine;
  log?: Logger;
  /** bytes one request may take (default 1 MiB: the DATA question carries the header block) */
  maxRequestBytes?: number;
  /** drop a session not asked about for this long (default 10 minutes) */
  sessionIdleMs?: number;
  maxSessions?: number;
  /** close a connection that sent no complete request in this long (default 60 s) */
  requestTimeoutMs?: number;
}

/** One header field as Exim's add_header takes it: folded lines joined with LF. */
function eximHeaderLine(h: HeaderField): string {
  return `${h.label} ${h.text.replace(/\r\n/g, '\n')}`;
}

const ACTION: Record<Verdict['action'], string> = {
  ACCEPT: 'ACCEPT',
  CONTINUE: 'CONTINUE',
  FILTER: 'FILTER',
  REJECT: 'REJECT',
  TEMPFAIL: 'DEFER',
  DISCARD: 'DISCARD',
};

/** The response pairs for an answer; `received` is the message's header block when known. */
export function readsocketResponse(answer: Answer, received: Array<[string, string]> | undefined): Array<[string, string]> {
  const v = answer.verdict;
  const { code, xcode, text } = v.reply;
  const adds = answer.headers.map((h) => `:at_start:${eximHeaderLine(h)}`);
  const removes = new Set(answer.removeHeaders.map((r) => r.name));
  if (answer.subjectTag) {
    const subject = received?.find(([name]) => name.toLowerCase() === 'subject')?.[1];
    const old = subject?.replace(/\r?\n/g, '\n').trim() ?? '';
    if (!old.startsWith(answer.subjectTag)) {
      removes.add('Subject');
      adds.push(`Subject: ${answer.subjectTag}${old ? ` ${old}` : ''}`);
    }
  }
  return [
    ['action', ACTION[v.action]],
    ['message', `${code} ${xcode ? `${xcode} ` : ''}${text}`],
    ['reason', v.reason],
    ['add_header', adds.join('\n')],
    ['remove_header', [...removes].join(':')],
  ];
}

const CONTINUE: Array<[string, string]> = [
  ['action', 'CONTINUE'],
  ['message', '250 OK'],
];

export interface ReadsocketHandler {
  handle(req: ReadsocketRequest): Promise<Array<[string, string]>>;
  readonly sessions: SessionTable;
}

export function createReadsocketHandler(options: ReadsocketServerOptions): ReadsocketHandler {
  const log = options.log ?? (() => {});
  const sessions = stagedSessions(options);
  return {
    sessions,
    async handle(req) {
      const key = req.session ?? `once:${randomUUID()}`;
      if (req.stage === 'quit') {
        sessions.drop(key);
        return [...CONTINUE, ['reason', 'quit']];
      }
      // local submissions (exim -bs, -bm) have no client address: nothing to check
      if (!req.ip) return [...CONTINUE, ['reason', 'no-client-ip']];
      const received = req.headers !== undefined ? parseHeaderBlock(req.headers) : undefined;
      const ask: Ask = { stage: req.stage };
      if (req.helo) ask.helo = req.helo;
      if (req.id) ask.id = req.id;
      if (req.stage !== 'connect' && req.stage !== 'helo' && req.sender !== undefined) ask.sender = req.sender;
      if (req.recipient) ask.recipient = req.recipient;
      if (req.recipients) ask.recipients = req.recipients;
      if (req.stage === 'data') {
        ask.endOfMessage = true;
        if (received) ask.headers = received;
      }
      const answer = await askStaged(sessions, key, req.ip, ask, (error) =>
        log('warn', 'readsocket request the engine cannot check; answering CONTINUE', { stage: req.stage, error }),
      );
      if (!answer) return [...CONTINUE, ['reason', 'bad-input']];
      if (!req.session) sessions.drop(key);
      const pairs = readsocketResponse(answer, received);
      log('debug', 'readsocket answer', { stage: req.stage, client: req.ip, action: pairs[0]![1], reason: answer.verdict.reason });
      return pairs;
    },
  };
}

export interface ReadsocketServer {
  server: Server;
  handler: ReadsocketHandler;
  /** Stops accepting; resolves when the questions in progress are answered. */
  shutdown(): Promise<void>;
}

/**
 * The server: reads one request (to an empty line or the end of the stream), writes one
 * response line, closes. A request it cannot read is answered with action="DEFER" so the ACL
 * defers instead of failing open.
 */
export function createReadsocketServer(options: ReadsocketServerOptions): ReadsocketServer {
  const log = options.log ?? (() => {});
  const handler = createReadsocketHandler(options);
  const max = options.maxRequestBytes ?? 1024 * 1024;
  const timeout = options.requestTimeoutMs ?? 60_000;
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let answered = false;
    let content = false;
    let carry = '';
    socket.setTimeout(timeout, () => socket.destroy());
    socket.on('error', () => {});
    const respond = (text: string) => {
      socket.end(text);
    };
    const finish = () => {
      if (answered) return;
      answered = true;
      socket.setTimeout(0);
      const text = Buffer.concat(chunks, size).toString('utf8');
      let req: ReadsocketRequest;
      try {
        req = parseReadsocketRequest(text);
      } catch (err) {
        log('warn', 'readsocket request refused', { error: (err as Error).message });
        respond(encodeReadsocketResponse([['action', 'DEFER'], ['message', '451 4.3.0 checkid could not read the request'], ['reason', 'bad-request']]));
        return;
      }
      handler.handle(req).then(
        (pairs) => respond(encodeReadsocketResponse(pairs)),
        (err: unknown) => {
          log('error', 'readsocket request failed', { error: (err as Error).message, stack: (err as Error).stack });
          respond(encodeReadsocketResponse([['action', 'DEFER'], ['message', '451 4.3.0 Temporary internal error; try again later'], ['reason', 'internal-error']]));
        },
      );
    };
    socket.on('data', (chunk: Buffer) => {
      if (answered) return;
      size += chunk.length;
      if (size > max) {
        answered = true;
        log('warn', 'readsocket request too long', { bytes: size });
        respond(encodeReadsocketResponse([['action', 'DEFER'], ['message', '451 4.3.0 checkid request too long'], ['reason', 'bad-request']]));
        return;
      }
      chunks.push(chunk);
      // an empty line after some content ends the request (needed with readsocket's shutdown=no)
      const text = carry + chunk.toString('latin1');
      carry = text.slice(-2);
      if (!content) {
        const at = text.search(/\S/);
        if (at === -1) return;
        content = true;
        if (/\n\r?\n/.test(text.slice(at))) finish();
      } else if (/\n\r?\n/.test(text)) finish();
    });
    socket.on('end', finish);
  });
  return {
    server,
    handler,
    shutdown: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
