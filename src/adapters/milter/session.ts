/**
 * The milter protocol session (layer 2 of 3): option negotiation and the state machine of one
 * filter connection. It decodes commands, checks they come in an order an MTA can send them,
 * keeps the macros per stage, calls a handler for each step, and sends exactly the replies the
 * negotiation says are owed. It knows nothing of checkid's engine (that is adapter.ts).
 *
 * Order of one connection (mta.md §1.3):
 *   OPTNEG, CONNECT, HELO*, then per message MAIL, RCPT*, DATA, HEADER*, EOH, BODY*, BODYEOB;
 *   ABORT resets the message, QUIT ends, QUIT_NC starts over at OPTNEG. MACRO may precede any
 *   step; UNKNOWN may come any time after OPTNEG.
 * MTA quirks handled here: Postfix sends ABORT after every message, often twice (idempotent);
 * Sendmail sends the next MAIL without ABORT (an implicit abort); a HELO inside a message resets
 * it, as in SMTP. Anything else out of order is a protocol error: the caller closes the
 * connection and the MTA applies its default action.
 */
import {
  type CommandKind,
  type ConnectFamily,
  decodeCommand,
  encodeResponse,
  FINAL_RESPONSES,
  type Frame,
  MILTER_CHUNK_SIZE,
  type MilterCommand,
  MilterProtocolError,
  type MilterResponse,
  type ResponseKind,
  SMFI_V1_ACTS,
  SMFI_V1_PROT,
  SMFIC,
  SMFIF,
  SMFIP,
} from './wire.ts';

export interface MtaOffer {
  version: number;
  actions: number;
  protocol: number;
}

/** What a filter asks for; everything is intersected with what the MTA offers. */
export interface FilterWants {
  /** the highest version the filter speaks (at most 6, the default) */
  version?: number;
  /** SMFIF_* actions the filter may use */
  actions: number;
  /** SMFIP_* flags: steps not to send (NO*), steps it will not answer (NR_*), SKIP, HDR_LEADSPC */
  protocol: number;
  /** macro wish list by SMFIM_* stage; sent only when the MTA offers SETSYMLIST */
  macros?: Partial<Record<number, readonly string[]>>;
}

export interface Negotiated {
  version: number;
  actions: number;
  protocol: number;
  offer: MtaOffer;
  /** the macro wish list rode on the OPTNEG reply */
  macrosRequested: boolean;
}

export const MAX_VERSION = 6;

/**
 * Option negotiation (libmilter's st_optionneg, with Postfix's and Sendmail's checks in mind):
 * the version is the MTA's, capped at 6 (versions below 2 are refused); actions and protocol
 * flags are what the filter wants of what the MTA offers (an offer of 0 means version 1's set),
 * so neither MTA finds a flag it does not know. The wish list is sent only with SETSYMLIST.
 */
export function negotiate(offer: MtaOffer, wants: FilterWants): { reply: MilterResponse & { kind: 'OPTNEG' }; agreed: Negotiated } {
  if (offer.version < 2) throw new MilterProtocolError(`the MTA speaks milter protocol version ${offer.version}; versions 2 to 6 are supported`);
  const version = Math.min(offer.version, wants.version ?? MAX_VERSION, MAX_VERSION);
  const offeredActions = offer.actions === 0 ? SMFI_V1_ACTS : offer.actions;
  const offeredProtocol = offer.protocol === 0 ? SMFI_V1_PROT : offer.protocol;
  let actions = wants.actions & offeredActions;
  const protocol = wants.protocol & offeredProtocol;
  const symbols: Array<{ stage: number; macros: string }> = [];
  if (actions & SMFIF.SETSYMLIST) {
    for (const [stage, names] of Object.entries(wants.macros ?? {})) {
      if (names && names.length > 0) symbols.push({ stage: Number(stage), macros: names.join(' ') });
    }
  }
  // do not claim an ability we will not use
  if (symbols.length === 0) actions &= ~SMFIF.SETSYMLIST;
  return {
    reply: { kind: 'OPTNEG', version, actions, protocol, ...(symbols.length ? { symbols } : {}) },
    agreed: { version, actions, protocol, offer: { ...offer }, macrosRequested: symbols.length > 0 },
  };
}

const NO_REPLY_FLAG: Partial<Record<CommandKind, number>> = {
  CONNECT: SMFIP.NR_CONN,
  HELO: SMFIP.NR_HELO,
  MAIL: SMFIP.NR_MAIL,
  RCPT: SMFIP.NR_RCPT,
  DATA: SMFIP.NR_DATA,
  HEADER: SMFIP.NR_HDR,
  EOH: SMFIP.NR_EOH,
  BODY: SMFIP.NR_BODY,
  UNKNOWN: SMFIP.NR_UNKN,
};

/** The "reply owed" table: does the MTA wait for an answer to this step? */
export function replyOwed(agreed: Pick<Negotiated, 'protocol'>, kind: CommandKind): boolean {
  if (kind === 'OPTNEG' || kind === 'BODYEOB') return true;
  const flag = NO_REPLY_FLAG[kind];
  if (flag === undefined) return false; // MACRO, ABORT, QUIT, QUIT_NC are never answered
  return (agreed.protocol & flag) === 0;
}

/** The no-reply flag of each command byte that can have one. */
const NO_REPLY_FLAG_OF_CODE: Readonly<Record<number, number>> = {
  [SMFIC.CONNECT]: SMFIP.NR_CONN,
  [SMFIC.HELO]: SMFIP.NR_HELO,
  [SMFIC.MAIL]: SMFIP.NR_MAIL,
  [SMFIC.RCPT]: SMFIP.NR_RCPT,
  [SMFIC.DATA]: SMFIP.NR_DATA,
  [SMFIC.HEADER]: SMFIP.NR_HDR,
  [SMFIC.EOH]: SMFIP.NR_EOH,
  [SMFIC.BODY]: SMFIP.NR_BODY,
  [SMFIC.UNKNOWN]: SMFIP.NR_UNKN,
};

/** replyOwed for a frame not decoded yet, by its command byte (unknown bytes: no). */
export function replyOwedFor(agreed: Pick<Negotiated, 'protocol'>, code: number): boolean {
  if (code === SMFIC.OPTNEG || code === SMFIC.BODYEOB) return true;
  const flag = NO_REPLY_FLAG_OF_CODE[code];
  return flag !== undefined && (agreed.protocol & flag) === 0;
}

/** The action each modification needs (mta.md §1.7). */
const MODIFICATION_ACTION: Partial<Record<ResponseKind, number>> = {
  ADDHEADER: SMFIF.ADDHDRS,
  INSHEADER: SMFIF.ADDHDRS,
  CHGHEADER: SMFIF.CHGHDRS,
  ADDRCPT: SMFIF.ADDRCPT,
  DELRCPT: SMFIF.DELRCPT,
  ADDRCPT_PAR: SMFIF.ADDRCPT_PAR,
  QUARANTINE: SMFIF.QUARANTINE,
  CHGFROM: SMFIF.CHGFROM,
  REPLBODY: SMFIF.CHGBODY,
};

/**
 * A header value as the MTA wants it back: folded lines joined with LF (Postfix doubles CRs
 * otherwise), and with HDR_LEADSPC our own space after the colon.
 */
export function wireHeaderValue(text: string, leadingSpace: boolean): string {
  const lf = text.replace(/\r\n/g, '\n').replace(/\r/g, '');
  return leadingSpace && !/^[ \t]/.test(lf) ? ` ${lf}` : lf;
}

/**
 * A received value as the message has it after the colon: folded lines joined with CRLF again.
 * The white space after the colon is there only with HDR_LEADSPC (else the MTA dropped one space).
 */
export function engineHeaderValue(wire: string): string {
  return wire.replace(/\r?\n/g, '\r\n');
}

/** A step's answer: a final response (CONTINUE, ACCEPT, REJECT, TEMPFAIL, DISCARD, REPLYCODE, SKIP...). */
export type StepReply = MilterResponse;

/** The end-of-message answer: modifications, then one final response. */
export interface EndOfMessageReply {
  modifications: MilterResponse[];
  final: MilterResponse;
}

export interface StepContext {
  /** a macro's value: `i`, `j`, `{client_addr}`... (with or without braces for one letter) */
  macro(name: string): string | undefined;
  readonly negotiated: Negotiated;
}

export interface ConnectInfo {
  hostname: string;
  family: ConnectFamily;
  port: number;
  address: string;
}

type Answer<T> = T | Promise<T>;

/** What the session calls; every method is optional (missing ones continue). */
export interface MilterHandler {
  /** what to ask for at OPTNEG (default: nothing) */
  wants?(offer: MtaOffer): FilterWants;
  connect?(info: ConnectInfo, ctx: StepContext): Answer<StepReply>;
  helo?(name: string, ctx: StepContext): Answer<StepReply>;
  /** args[0] is the address as sent (with angle brackets), ESMTP parameters follow */
  mail?(args: string[], ctx: StepContext): Answer<StepReply>;
  rcpt?(args: string[], ctx: StepContext): Answer<StepReply>;
  data?(ctx: StepContext): Answer<StepReply>;
  /** value: the wire value with CRLF folding (engineHeaderValue); raw: the wire bytes */
  header?(name: string, value: string, raw: Buffer, ctx: StepContext): Answer<StepReply>;
  endOfHeaders?(ctx: StepContext): Answer<StepReply>;
  body?(chunk: Buffer, ctx: StepContext): Answer<StepReply>;
  endOfMessage?(ctx: StepContext): Answer<EndOfMessageReply>;
  unknown?(line: string, ctx: StepContext): Answer<StepReply>;
  /** the message is over without an end (ABORT, or a new MAIL or HELO inside a message) */
  abort?(): void;
  /** the SMTP session is over (QUIT, QUIT_NC, lost connection, protocol error); called once */
  close?(): void;
}

export type SessionLog = (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export interface MilterSessionOptions {
  /** writes bytes to the MTA */
  send(bytes: Buffer): void;
  log?: SessionLog;
  /**
   * PROGRESS every this many ms while a step's answer is pending (0 = never; default 5000).
   * Sent while waiting at end of message always; at other steps only to Postfix (which reads it
   * at every step): Sendmail takes a PROGRESS anywhere but end of message for a bogus reply.
   */
  progressIntervalMs?: number;
  /** override the detection of an MTA that takes PROGRESS at every step (macro v = "Postfix ...") */
  progressAtEveryStep?: boolean;
  /**
   * The MTA is waiting for an answer to a step that came after the one being worked on (the
   * caller's queue holds a frame that owes a reply, see replyOwedFor): a slow step the MTA did
   * not wait for (NR_CONN, NR_HELO) then keeps it informed with PROGRESS too.
   */
  mtaWaiting?(): boolean;
  /** headers per message passed to the handler; later ones are answered but not passed (default 10,000) */
  maxHeaders?: number;
  /** bytes of macro names and values kept per connection (default 64 KiB); more is a protocol error */
  maxMacroBytes?: number;
}

type Phase = 'start' | 'open' | 'mail' | 'rcpt' | 'data' | 'header' | 'eoh' | 'body' | 'closed';
const MESSAGE_PHASES: ReadonlySet<Phase> = new Set(['mail', 'rcpt', 'data', 'header', 'eoh', 'body']);
/** which phases each message step may follow */
const ALLOWED_AFTER: Partial<Record<CommandKind, ReadonlySet<Phase>>> = {
  RCPT: new Set(['mail', 'rcpt']),
  DATA: new Set(['mail', 'rcpt']),
  HEADER: new Set(['mail', 'rcpt', 'data', 'header']),
  EOH: new Set(['mail', 'rcpt', 'data', 'header']),
  BODY: new Set(['mail', 'rcpt', 'data', 'header', 'eoh', 'body']),
  BODYEOB: MESSAGE_PHASES,
};
const NEXT_PHASE: Partial<Record<CommandKind, Phase>> = { RCPT: 'rcpt', DATA: 'data', HEADER: 'header', EOH: 'eoh', BODY: 'body' };

/** The MACRO stage letters, in conversation order; the first two outlive a message. */
const MACRO_STAGES = 'CHMRTLNBEU';
const MESSAGE_MACRO_STAGES = 'MRTLNBE';
/** the command each step's macros arrive for */
const STAGE_OF: Partial<Record<CommandKind, string>> = {
  CONNECT: 'C',
  HELO: 'H',
  MAIL: 'M',
  RCPT: 'R',
  DATA: 'T',
  HEADER: 'L',
  EOH: 'N',
  BODY: 'B',
  BODYEOB: 'E',
  UNKNOWN: 'U',
};

const CONTINUE: MilterResponse = { kind: 'CONTINUE' };

export class MilterSession {
  private readonly handler: MilterHandler;
  private readonly options: MilterSessionOptions;
  private readonly log: SessionLog;
  private phase: Phase = 'start';
  private connected = false;
  private agreed: Negotiated | null = null;
  private readonly macros = new Map<string, { values: Map<string, string>; bytes: number }>();
  private macroBytes = 0;
  private headers = 0;
  private headerLimitLogged = false;
  private lost = false;
  private closedHandler = false;
  private postfix = false;
  private readonly dropped = new Set<string>();
  /** a step's reply is being worked out */
  busy = false;

  constructor(handler: MilterHandler, options: MilterSessionOptions) {
    this.handler = handler;
    this.options = options;
    this.log = options.log ?? (() => {});
  }

  /** The agreed options (null before OPTNEG and after QUIT_NC). */
  get negotiated(): Negotiated | null {
    return this.agreed;
  }

  /** True once QUIT arrived (or the connection was lost): the caller closes the socket. */
  get closed(): boolean {
    return this.phase === 'closed' || this.lost;
  }

  /** Bytes of macro names and values held (bounded by maxMacroBytes). */
  get macroBytesHeld(): number {
    return this.macroBytes;
  }

  /** Between messages (or before any): a connection can be closed here at the least cost. */
  get idle(): boolean {
    return !this.busy && !MESSAGE_PHASES.has(this.phase);
  }

  /** The connection is gone: pending replies are dropped, the handler is closed. */
  lose(): void {
    this.lost = true;
    this.closeHandler();
  }

  /** Handles one frame. Throws MilterProtocolError when the MTA broke the protocol. */
  async receive(frame: Frame): Promise<void> {
    if (this.phase === 'closed') throw new MilterProtocolError('a frame after QUIT');
    await this.dispatch(decodeCommand(frame));
  }

  private closeHandler(): void {
    if (this.closedHandler) return;
    this.closedHandler = true;
    this.handler.close?.();
  }

  private context(kind: CommandKind): StepContext {
    const stage = STAGE_OF[kind];
    return { macro: (name) => this.macro(name, stage), negotiated: this.agreed! };
  }

  /** The latest value: the step's own macros first, then later stages before earlier ones. */
  private macro(name: string, stage?: string): string | undefined {
    const names = [name];
    if (/^\{.\}$/.test(name)) names.push(name[1]!);
    else if (name.length === 1) names.push(`{${name}}`);
    const order = stage ? [stage, ...[...MACRO_STAGES].reverse().filter((s) => s !== stage)] : [...MACRO_STAGES].reverse();
    for (const s of order) {
      const values = this.macros.get(s)?.values;
      if (!values) continue;
      for (const n of names) {
        const v = values.get(n);
        if (v !== undefined) return v;
      }
    }
    return undefined;
  }

  private clearMacros(stages: string): void {
    for (const s of stages) {
      const m = this.macros.get(s);
      if (!m) continue;
      this.macroBytes -= m.bytes;
      this.macros.delete(s);
    }
  }

  private setMacros(stage: string, pairs: Array<[string, string]>): void {
    if (!MACRO_STAGES.includes(stage)) throw new MilterProtocolError(`MACRO for unknown step ${JSON.stringify(stage)}`);
    let bytes = 0;
    const values = new Map<string, string>();
    for (const [n, v] of pairs) {
      bytes += n.length + v.length;
      values.set(n, v);
    }
    const old = this.macros.get(stage)?.bytes ?? 0;
    const limit = this.options.maxMacroBytes ?? 65536;
    if (this.macroBytes - old + bytes > limit) throw new MilterProtocolError(`macros over ${limit} bytes`);
    this.macroBytes += bytes - old;
    this.macros.set(stage, { values, bytes });
    const v = values.get('v');
    if (v !== undefined) this.postfix = /^postfix\b/i.test(v);
  }

  private need(condition: boolean, kind: CommandKind, why: string): void {
    if (!condition) throw new MilterProtocolError(`${kind} ${why}`);
  }

  /**
   * An ABORT, explicit or implied: the message is over; connection state stays. An abort implied
   * by the next MAIL keeps that MAIL's macros, which have just arrived.
   */
  private endMessage(keepMailMacros = false): void {
    if (MESSAGE_PHASES.has(this.phase)) this.handler.abort?.();
    if (this.phase !== 'start' && this.phase !== 'closed') this.phase = 'open';
    this.clearMacros(keepMailMacros ? MESSAGE_MACRO_STAGES.slice(1) : MESSAGE_MACRO_STAGES);
    this.headers = 0;
  }

  private async dispatch(cmd: MilterCommand): Promise<void> {
    const kind = cmd.kind;
    if (this.phase === 'start' && kind !== 'OPTNEG' && kind !== 'QUIT') throw new MilterProtocolError(`${kind} before OPTNEG`);
    const h = this.handler;
    switch (cmd.kind) {
      case 'OPTNEG': {
        this.need(this.phase === 'start', kind, 'a second time on one connection');
        const wants = h.wants?.({ version: cmd.version, actions: cmd.actions, protocol: cmd.protocol }) ?? { actions: 0, protocol: 0 };
        const { reply, agreed } = negotiate(cmd, wants);
        this.agreed = agreed;
        this.phase = 'open';
        this.connected = false;
        this.write(reply);
        return;
      }
      case 'MACRO':
        this.setMacros(cmd.stage, cmd.macros);
        return;
      case 'CONNECT': {
        this.need(!this.connected && this.phase === 'open', kind, 'after the connection began');
        this.connected = true;
        const info: ConnectInfo = { hostname: cmd.hostname, family: cmd.family, port: cmd.port, address: cmd.address };
        return this.step(kind, () => h.connect?.(info, this.context(kind)));
      }
      case 'HELO':
        this.needConnect(kind);
        if (MESSAGE_PHASES.has(this.phase)) this.endMessage();
        return this.step(kind, () => h.helo?.(cmd.name, this.context(kind)));
      case 'MAIL':
        this.needConnect(kind);
        if (MESSAGE_PHASES.has(this.phase)) this.endMessage(true);
        this.phase = 'mail';
        this.headers = 0;
        return this.step(kind, () => h.mail?.(cmd.args, this.context(kind)));
      case 'RCPT':
      case 'DATA':
      case 'EOH':
      case 'HEADER':
      case 'BODY': {
        this.need(ALLOWED_AFTER[kind]!.has(this.phase), kind, this.phase === 'open' ? 'outside a message' : `after ${this.phase.toUpperCase()}`);
        this.phase = NEXT_PHASE[kind]!;
        const ctx = this.context(kind);
        switch (cmd.kind) {
          case 'RCPT':
            return this.step(kind, () => h.rcpt?.(cmd.args, ctx));
          case 'DATA':
            return this.step(kind, () => h.data?.(ctx));
          case 'EOH':
            return this.step(kind, () => h.endOfHeaders?.(ctx));
          case 'HEADER': {
            const limit = this.options.maxHeaders ?? 10_000;
            if (++this.headers > limit) {
              if (!this.headerLimitLogged) this.log('warn', 'milter: more headers than the limit; the rest are not checked', { limit });
              this.headerLimitLogged = true;
              return this.step(kind, () => CONTINUE);
            }
            const raw = cmd.rawValue ?? Buffer.from(cmd.value, 'utf8');
            return this.step(kind, () => h.header?.(cmd.name, engineHeaderValue(cmd.value), raw, ctx));
          }
          default:
            return this.step(kind, () => h.body?.(cmd.chunk as Buffer, ctx));
        }
      }
      case 'BODYEOB': {
        this.need(MESSAGE_PHASES.has(this.phase), kind, 'outside a message');
        const ctx = this.context(kind);
        if (cmd.chunk.length > 0) await h.body?.(cmd.chunk, ctx);
        await this.endOfMessage(ctx);
        this.phase = 'open';
        this.endMessage();
        return;
      }
      case 'ABORT':
        this.endMessage();
        return;
      case 'UNKNOWN':
        return this.step(kind, () => h.unknown?.(cmd.line, this.context(kind)));
      case 'QUIT':
        this.phase = 'closed';
        this.closeHandler();
        return;
      case 'QUIT_NC':
        if (MESSAGE_PHASES.has(this.phase)) h.abort?.();
        this.closeHandler();
        // a new SMTP session follows on this connection, starting with OPTNEG
        this.closedHandler = false;
        this.phase = 'start';
        this.agreed = null;
        this.connected = false;
        this.clearMacros(MACRO_STAGES);
        this.headers = 0;
        return;
    }
  }

  private needConnect(kind: CommandKind): void {
    const skipped = (this.agreed!.protocol & SMFIP.NOCONNECT) !== 0;
    this.need(this.connected || skipped, kind, 'before CONNECT');
  }

  private write(r: MilterResponse): void {
    if (this.lost) return;
    this.options.send(encodeResponse(r));
  }

  /** Runs a step's handler, keeping the MTA informed while it works, and answers if owed. */
  private async step(kind: CommandKind, run: () => Answer<StepReply> | undefined): Promise<void> {
    const owed = replyOwed(this.agreed!, kind);
    const reply = await this.waitFor(kind, owed, run);
    const answer = this.checkFinal(kind, reply ?? CONTINUE);
    if (!owed) {
      // a refusal the MTA did not wait for is carried out by the handler at a later step; SKIP
      // to a body the MTA streams without waiting means nothing
      if (answer.kind !== 'CONTINUE' && answer.kind !== 'SKIP') this.log('debug', `milter: ${answer.kind} for ${kind} not sent (the MTA expects no reply)`);
      return;
    }
    this.write(answer);
  }

  private async waitFor<T>(kind: CommandKind, owed: boolean, run: () => Answer<T> | undefined): Promise<T | undefined> {
    const result = run();
    if (!(result instanceof Promise)) return result;
    this.busy = true;
    const every = this.options.progressIntervalMs ?? 5000;
    // Postfix skips PROGRESS wherever it reads an answer, Sendmail only at the end of message
    const progress = every > 0 && (kind === 'BODYEOB' || (this.options.progressAtEveryStep ?? this.postfix));
    // a step the MTA does not wait for needs PROGRESS only once it waits for a later one
    const tick = () => {
      if (owed || this.options.mtaWaiting?.()) this.write({ kind: 'PROGRESS' });
    };
    const timer = progress ? setInterval(tick, every) : undefined;
    timer?.unref();
    try {
      return await result;
    } finally {
      clearInterval(timer);
      this.busy = false;
    }
  }

  private checkFinal(kind: CommandKind, reply: MilterResponse): MilterResponse {
    if (!FINAL_RESPONSES.has(reply.kind) || reply.kind === 'CONN_FAIL') throw new TypeError(`milter handler answered ${kind} with ${reply.kind}`);
    if (reply.kind === 'SKIP') {
      if (kind !== 'BODY') throw new TypeError(`milter handler answered ${kind} with SKIP`);
      // SKIP only where the MTA offered it; CONTINUE means the same minus the saving
      if ((this.agreed!.protocol & SMFIP.SKIP) === 0) return CONTINUE;
    }
    if (reply.kind === 'DISCARD' && (kind === 'CONNECT' || kind === 'HELO')) throw new TypeError(`milter handler answered ${kind} with DISCARD (allowed from MAIL on)`);
    return reply;
  }

  private async endOfMessage(ctx: StepContext): Promise<void> {
    const h = this.handler;
    const reply = (await this.waitFor('BODYEOB', true, () => h.endOfMessage?.(ctx))) ?? { modifications: [], final: CONTINUE };
    const final = this.checkFinal('BODYEOB', reply.final);
    if (final.kind === 'SKIP') throw new TypeError('milter handler answered end of message with SKIP');
    for (const m of reply.modifications) {
      const action = MODIFICATION_ACTION[m.kind];
      if (action === undefined) throw new TypeError(`milter handler sent ${m.kind} as a modification`);
      if ((this.agreed!.actions & action) === 0) {
        if (!this.dropped.has(m.kind)) this.log('warn', `milter: the MTA did not grant the action ${m.kind} needs; not sent`, { offered: this.agreed!.offer.actions });
        this.dropped.add(m.kind);
        continue;
      }
      if (m.kind === 'REPLBODY' && m.chunk.length > MILTER_CHUNK_SIZE) {
        for (let at = 0; at < m.chunk.length; at += MILTER_CHUNK_SIZE) this.write({ kind: 'REPLBODY', chunk: m.chunk.subarray(at, at + MILTER_CHUNK_SIZE) });
        continue;
      }
      this.write(m);
    }
    this.write(final);
  }
}
