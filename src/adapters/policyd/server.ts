/**
 * The Postfix policy delegation adapter (`check_policy_service`): a TCP or unix-socket server
 * that maps each request's `protocol_state` to an engine stage and answers with an access(5)
 * action. Knows the policy protocol and the engine, no check.
 *
 * Sessions: Postfix repeats the client address, HELO name and sender in every request and says
 * nothing when a connection ends, so one engine session is kept per SMTP connection (client and
 * server address and port), made on first sight, dropped after END-OF-MESSAGE or when idle.
 * `instance` marks the message: a new one on the same connection starts a new transaction.
 *
 * Replies: CONTINUE → DUNNO; ACCEPT → OK; FILTER → DUNNO; REJECT → "550 5.7.1 text" (our code);
 * TEMPFAIL → DEFER_IF_PERMIT before DATA (a definite reject by a later restriction still wins),
 * "451 4.4.3 text" at DATA and END-OF-MESSAGE; DISCARD → DISCARD. Headers are added with
 * PREPEND, which Postfix allows only before END-OF-MESSAGE and only one per reply: at DATA the
 * message verdict is decided and each DATA request hands out the next header (list
 * check_policy_service once per header in smtpd_data_restrictions); docs/adapters/postfix-policy.md.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Engine, Logger } from '../../engine/engine.ts';
import type { HeaderField, Verdict } from '../../engine/verdict.ts';
import { askStaged, stagedSessions } from '../common/staged-handler.ts';
import { encodeReply, PolicyParser, PolicyProtocolError, type PolicyRequest } from './protocol.ts';
import type { Ask, AskStage, SessionTable } from './staged.ts';

export interface PolicyServerOptions {
  engine: Engine;
  log?: Logger;
  /** bytes one request may take (default 64 KiB) */
  maxRequestBytes?: number;
  /** drop a session not asked about for this long (default 10 minutes) */
  sessionIdleMs?: number;
  /** close a policy connection silent for this long (default 20 minutes; Postfix's max_idle is 300 s) */
  connectionIdleMs?: number;
  maxSessions?: number;
}

const STAGES: Record<string, AskStage> = {
  CONNECT: 'connect',
  EHLO: 'helo',
  HELO: 'helo',
  MAIL: 'mail',
  RCPT: 'rcpt',
  DATA: 'data',
  'END-OF-MESSAGE': 'data',
  BDAT: 'data',
};

/** One header line, unfolded: the policy protocol has no line breaks inside a reply. */
export function headerLine(h: HeaderField): string {
  return `${h.label} ${h.text.replace(/\r?\n[ \t]*/g, ' ')}`.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, ' ');
}

function replyWords(v: Verdict): string {
  const { xcode, text } = v.reply;
  return xcode ? `${xcode} ${text}` : text;
}

/**
 * The access(5) action answering a verdict at a stage. `header` is a header to PREPEND now
 * (only while the message is kept, and never at END-OF-MESSAGE).
 */
export function policyAction(v: Verdict, stage: AskStage, header?: HeaderField, endOfMessage = false): string {
  // one line, whatever a hook put in the reply text
  return accessAction(v, stage, header, endOfMessage).replace(/[\x00-\x1f\x7f]+/g, ' ');
}

function accessAction(v: Verdict, stage: AskStage, header: HeaderField | undefined, endOfMessage: boolean): string {
  switch (v.action) {
    case 'REJECT':
      return `${v.reply.code} ${replyWords(v)}`;
    case 'TEMPFAIL':
      return stage === 'data' || endOfMessage ? `${v.reply.code} ${replyWords(v)}` : `DEFER_IF_PERMIT ${replyWords(v)}`;
    case 'DISCARD':
      return `DISCARD ${v.reply.text}`;
    case 'ACCEPT':
      return header ? `PREPEND ${headerLine(header)}` : 'OK';
    case 'FILTER':
    case 'CONTINUE':
      return header ? `PREPEND ${headerLine(header)}` : 'DUNNO';
  }
}

/** What one policy request asks; null for requests that need no engine (VRFY, ETRN, other kinds). */
export function requestToAsk(req: PolicyRequest): { key: string; ip: string; ask: Ask; state: string } | null {
  const kind = req.get('request');
  if (kind !== 'smtpd_access_policy') return null;
  const state = (req.get('protocol_state') ?? '').toUpperCase();
  const stage = STAGES[state];
  if (!stage) return null;
  const ip = req.get('client_address') ?? '';
  const instance = req.get('instance') ?? '';
  const port = req.get('client_port') ?? '';
  // one SMTP connection: client and server endpoints (client_port is there since Postfix 3.0;
  // older ones only give `instance`, which then keys one message)
  const key = port
    ? `${ip}:${port}>${req.get('server_address') ?? ''}:${req.get('server_port') ?? ''}|${req.get('policy_context') ?? ''}`
    : `${ip}|${instance}|${req.get('policy_context') ?? ''}`;
  const ask: Ask = { stage, helo: req.get('helo_name') ?? '' };
  if (instance) ask.transaction = instance;
  if (stage === 'mail' || stage === 'rcpt' || stage === 'data') ask.sender = req.get('sender') ?? '';
  const rcpt = req.get('recipient');
  if (rcpt) ask.recipient = rcpt;
  if (stage === 'data') {
    // one PREPEND per reply, none at END-OF-MESSAGE; the first one prepended ends up on top
    ask.takeHeaders = state === 'END-OF-MESSAGE' ? 0 : 1;
    ask.topFirst = true;
  }
  if (state === 'END-OF-MESSAGE') ask.endOfMessage = true;
  return { key, ip, ask, state };
}

export interface PolicyHandler {
  /** Answers one request with the action text (without "action="). */
  handle(req: PolicyRequest): Promise<string>;
  readonly sessions: SessionTable;
}

export function createPolicyHandler(options: PolicyServerOptions): PolicyHandler {
  const log = options.log ?? (() => {});
  const sessions = stagedSessions(options);
  return {
    sessions,
    async handle(req) {
      const q = requestToAsk(req);
      if (!q) return 'DUNNO';
      const answer = await askStaged(sessions, q.key, q.ip, q.ask, (error) =>
        log('warn', 'policy request the engine cannot check; answering DUNNO', { state: q.state, error }),
      );
      // input the engine refuses (no IP, a line break in HELO): no opinion, as Postfix would get from no server
      if (!answer) return 'DUNNO';
      if (q.ask.endOfMessage) sessions.drop(q.key);
      const v = answer.verdict;
      const action = policyAction(v, q.ask.stage, answer.headers[0], q.ask.endOfMessage);
      log('debug', 'policy answer', { state: q.state, client: q.ip, action, reason: v.reason, headers_left: answer.headersLeft });
      return action;
    },
  };
}

/** Ends a connection after what was written is flushed; a peer that keeps it open is cut off. */
function finish(socket: Socket): void {
  socket.end();
  setTimeout(() => socket.destroy(), 2000).unref();
}

export interface PolicyServer {
  server: Server;
  handler: PolicyHandler;
  /** Stops accepting, answers the requests already received, then closes every connection. */
  shutdown(): Promise<void>;
}

/**
 * The server. Requests on one connection are answered in order; a protocol error closes the
 * connection without a reply (Postfix then retries on a new one).
 */
export function createPolicyServer(options: PolicyServerOptions): PolicyServer {
  const log = options.log ?? (() => {});
  const handler = createPolicyHandler(options);
  const idle = options.connectionIdleMs ?? 1_200_000;
  const open = new Map<Socket, { busy: number }>();
  let draining = false;
  const server = createServer((socket: Socket) => {
    const parser = new PolicyParser(options.maxRequestBytes !== undefined ? { maxRequestBytes: options.maxRequestBytes } : {});
    const state = { busy: 0 };
    open.set(socket, state);
    let chain: Promise<void> = Promise.resolve();
    let closed = false;
    const close = () => {
      closed = true;
      socket.destroy();
    };
    socket.setTimeout(idle, close);
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      open.delete(socket);
    });
    socket.on('data', (chunk: Buffer) => {
      let requests: PolicyRequest[];
      let broken: PolicyProtocolError | null = null;
      try {
        requests = parser.push(chunk);
      } catch (err) {
        if (!(err instanceof PolicyProtocolError)) throw err;
        broken = err;
        requests = err.completed;
        socket.pause();
      }
      for (const req of requests) {
        state.busy++;
        chain = chain.then(async () => {
          try {
            if (closed) return;
            let action: string;
            try {
              action = await handler.handle(req);
            } catch (err) {
              // a failure of ours: say nothing and close, so Postfix applies its default_action
              log('error', 'policy request failed; closing the connection', { error: (err as Error).message, stack: (err as Error).stack });
              close();
              return;
            }
            if (!closed) socket.write(encodeReply(action));
          } finally {
            state.busy--;
            if (draining && state.busy === 0) finish(socket);
          }
        });
      }
      if (broken) {
        const error = broken.message;
        // the requests before the bad one are answered; then the connection closes without a reply
        chain = chain.then(() => {
          log('warn', 'policy protocol error; closing the connection', { error, remote: socket.remoteAddress ?? 'unix' });
          close();
        });
      }
    });
  });
  return {
    server,
    handler,
    shutdown() {
      draining = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const [socket, state] of open) if (state.busy === 0) finish(socket);
      return done;
    },
  };
}
