/**
 * An MTA-side milter client for tests and benchmarks, behaving as Postfix 3.7 does on the wire
 * (mta.md §1.3–1.9), or as Sendmail 8.17 with `flavor: 'sendmail'`:
 * - OPTNEG offering version 6, actions 0x1ff, protocol 0x1fffff (or what the test asks for);
 * - a MACRO frame before every step (Postfix: even an empty one, before each header too;
 *   Sendmail: only when it has macros, none for headers, EOH and body), with the filter's macro
 *   wish list honoured, Postfix's default lists otherwise;
 * - steps the filter declined (NO*) are not sent, steps it will not answer (NR_*) are not waited
 *   for; a version-2 filter gets no DATA and no UNKNOWN, version 3 no DATA (Postfix masks);
 * - header values with one leading space removed unless HDR_LEADSPC, folded lines joined by LF;
 * - bodies in chunks of at most 65535 bytes; a SKIP ends the body;
 * - PROGRESS is counted and the wait goes on; a modification outside end of message, or one the
 *   filter was not granted, is an error (the MTA would drop the filter), as is any reply where
 *   none is owed (it would desynchronise Postfix);
 * - after end of message Postfix sends ABORT (twice with `doubleAbort`), Sendmail nothing.
 * `deliver()` applies the modifications the way Postfix's cleanup does, giving the header block
 * as delivered. Every wait is bounded (`timeoutMs`) so a broken filter fails a test, never hangs it.
 */
import net from 'node:net';
import {
  type ConnectFamily,
  decodeResponse,
  encodeCommand,
  encodeFrame,
  FINAL_RESPONSES,
  type Frame,
  FrameDecoder,
  MILTER_CHUNK_SIZE,
  type MilterCommand,
  type MilterResponse,
  SMFIF,
  SMFIM,
  SMFIP,
} from '../../src/adapters/milter/wire.ts';

export interface MtaOptions {
  version?: number;
  actions?: number;
  protocol?: number;
  flavor?: 'postfix' | 'sendmail';
  /** Postfix often sends ABORT twice after a message */
  doubleAbort?: boolean;
  /** longest wait for any reply (default 10 s) */
  timeoutMs?: number;
  /** macro values the MTA knows (merged over a Postfix-like set) */
  macros?: Record<string, string>;
}

export interface Negotiation {
  version: number;
  actions: number;
  protocol: number;
  symbols: Map<number, string[]>;
}

export interface EndOfMessage {
  modifications: MilterResponse[];
  final: MilterResponse;
}

/** Postfix 3.7's default macro lists (milter_*_macros), by the stage letter they go with. */
const POSTFIX_DEFAULTS: Record<string, string[]> = {
  C: ['j', '{daemon_name}', '{daemon_addr}', 'v', '_'],
  H: ['{tls_version}', '{cipher}', '{cipher_bits}', '{cert_subject}', '{cert_issuer}'],
  M: ['i', '{auth_type}', '{auth_authen}', '{auth_author}', '{mail_addr}', '{mail_host}', '{mail_mailer}'],
  R: ['i', '{rcpt_addr}', '{rcpt_host}', '{rcpt_mailer}'],
  T: ['i'],
  L: ['i'],
  N: ['i'],
  B: ['i'],
  E: ['i'],
};
/** Sendmail 8.17's defaults (confMILTER_MACROS_*). */
const SENDMAIL_DEFAULTS: Record<string, string[]> = {
  C: ['j', '_', '{daemon_name}', '{if_name}', '{if_addr}'],
  H: ['{tls_version}', '{cipher}', '{cipher_bits}', '{cert_subject}', '{cert_issuer}'],
  M: ['i', '{auth_type}', '{auth_authen}', '{auth_ssf}', '{auth_author}', '{mail_mailer}', '{mail_host}', '{mail_addr}'],
  R: ['{rcpt_mailer}', '{rcpt_host}', '{rcpt_addr}'],
  E: ['{msg_id}'],
};
const STAGE_LETTER: Record<number, string> = {
  [SMFIM.CONNECT]: 'C',
  [SMFIM.HELO]: 'H',
  [SMFIM.ENVFROM]: 'M',
  [SMFIM.ENVRCPT]: 'R',
  [SMFIM.DATA]: 'T',
  [SMFIM.EOM]: 'E',
  [SMFIM.EOH]: 'N',
};

const MODIFICATION_ACTION: Partial<Record<MilterResponse['kind'], number>> = {
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

export class MilterClient {
  readonly options: Required<Omit<MtaOptions, 'macros'>>;
  readonly macroValues: Record<string, string>;
  /** the agreed options, after negotiate() */
  negotiated: Negotiation | null = null;
  /** PROGRESS frames seen */
  progress = 0;
  /** every frame read from the filter, as the bytes on the wire */
  readonly received: Buffer[] = [];
  /** every MACRO frame sent: stage letter and names */
  readonly macrosSent: Array<{ stage: string; names: string[] }> = [];
  private readonly socket: net.Socket;
  private readonly decoder = new FrameDecoder(1 << 20);
  private readonly frames: Frame[] = [];
  private waiter: (() => void) | null = null;
  private ended = false;
  private error: Error | null = null;

  private constructor(socket: net.Socket, options: MtaOptions) {
    this.socket = socket;
    this.options = {
      version: options.version ?? 6,
      actions: options.actions ?? 0x1ff,
      protocol: options.protocol ?? 0x1fffff,
      flavor: options.flavor ?? 'postfix',
      doubleAbort: options.doubleAbort ?? false,
      timeoutMs: options.timeoutMs ?? 10_000,
    };
    const postfix = this.options.flavor === 'postfix';
    this.macroValues = {
      j: 'mx.test.example',
      '{daemon_name}': 'mx.test.example',
      '{daemon_addr}': '127.0.0.1',
      v: postfix ? 'Postfix 3.7.11' : '8.17.1.9',
      '{mail_host}': '[127.0.0.1]:10026',
      '{mail_mailer}': 'smtp',
      '{rcpt_mailer}': 'smtp',
      ...options.macros,
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of this.decoder.push(chunk)) this.frames.push(f);
      } catch (err) {
        this.error = err as Error;
      }
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
      this.wake();
    });
  }

  /** Connects to a filter: "inet:HOST:PORT", "unix:/path", or {host, port}. */
  static async connect(address: string | { host: string; port: number }, options: MtaOptions = {}): Promise<MilterClient> {
    let socket: net.Socket;
    if (typeof address === 'string' && /^(unix|local):/.test(address)) socket = net.connect(address.replace(/^(unix|local):/, ''));
    else if (typeof address === 'string') {
      const m = /^(?:inet6?:)?(?:\[([^\]]+)\]|(.+)):(\d+)$/.exec(address);
      if (!m) throw new Error(`cannot connect to ${address}`);
      socket = net.connect(Number(m[3]), m[1] ?? m[2]!);
    } else socket = net.connect(address.port, address.host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    return new MilterClient(socket, options);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** True once the filter closed the connection. */
  get closed(): boolean {
    return this.ended;
  }

  /** Waits for the filter to close the connection (bounded). */
  async waitClosed(): Promise<void> {
    const deadline = Date.now() + this.options.timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('the filter did not close the connection');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50).unref();
      });
    }
  }

  /** The next frame from the filter (null when it closed the connection). */
  async nextFrame(): Promise<Frame | null> {
    const deadline = Date.now() + this.options.timeoutMs;
    for (;;) {
      if (this.error) throw this.error;
      const f = this.frames.shift();
      if (f) {
        this.received.push(encodeFrame(f.code, f.data));
        return f;
      }
      if (this.ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer from the filter within ${this.options.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, left).unref();
      });
    }
  }

  /** Frames the filter sent that nobody has read (a reply where none was owed shows up here). */
  pending(): number {
    return this.frames.length;
  }

  send(cmd: MilterCommand): void {
    this.socket.write(encodeCommand(cmd));
  }

  /** Writes raw bytes (fuzz seeds, malformed frames). */
  writeRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  private flag(f: number): boolean {
    return ((this.negotiated?.protocol ?? 0) & f) !== 0;
  }

  /** The next response that ends a step; PROGRESS is counted, anything else is an error. */
  private async final(step: string): Promise<MilterResponse> {
    for (;;) {
      const f = await this.nextFrame();
      if (!f) throw new Error(`the filter closed the connection at ${step}`);
      const r = decodeResponse(f);
      if (r.kind === 'PROGRESS') {
        this.progress++;
        continue;
      }
      if (!FINAL_RESPONSES.has(r.kind)) throw new Error(`${r.kind} at ${step}: modifications are allowed only at end of message`);
      if (r.kind === 'SKIP' && (step !== 'BODY' || !this.flag(SMFIP.SKIP))) throw new Error(`SKIP at ${step}`);
      return r;
    }
  }

  async negotiate(): Promise<Negotiation> {
    const o = this.options;
    this.send({ kind: 'OPTNEG', version: o.version, actions: o.actions, protocol: o.protocol });
    const f = await this.nextFrame();
    if (!f) throw new Error('the filter closed the connection at OPTNEG');
    const r = decodeResponse(f);
    if (r.kind !== 'OPTNEG') throw new Error(`answer to OPTNEG: ${r.kind}`);
    // the checks Postfix and Sendmail make (mta.md §1.6)
    if (r.version < 2 || r.version > o.version) throw new Error(`filter version ${r.version} against the MTA's ${o.version}`);
    if ((r.actions & o.actions) !== r.actions) throw new Error(`filter actions 0x${r.actions.toString(16)} not within 0x${o.actions.toString(16)}`);
    if ((r.protocol & o.protocol) !== r.protocol) throw new Error(`filter protocol 0x${r.protocol.toString(16)} not within 0x${o.protocol.toString(16)}`);
    const symbols = new Map<number, string[]>();
    for (const s of r.symbols ?? []) symbols.set(s.stage, s.macros.split(' ').filter(Boolean));
    if (symbols.size > 0 && (r.actions & SMFIF.SETSYMLIST) === 0) throw new Error('a macro list without SETSYMLIST');
    let protocol = r.protocol;
    // what Postfix masks for older filters; Sendmail does the same for NOUNKNOWN/NODATA
    if (r.version <= 2) protocol |= SMFIP.NOUNKNOWN;
    if (r.version <= 3) protocol |= SMFIP.NODATA;
    this.negotiated = { version: r.version, actions: r.actions, protocol, symbols };
    return this.negotiated;
  }

  /** Sends the MACRO frame for a step, as the MTA would. */
  private macros(stage: string, extra: Record<string, string> = {}): void {
    const postfix = this.options.flavor === 'postfix';
    const byStage = Object.entries(STAGE_LETTER).find(([, letter]) => letter === stage);
    const requested = byStage ? this.negotiated?.symbols.get(Number(byStage[0])) : undefined;
    const names = requested ?? (postfix ? POSTFIX_DEFAULTS : SENDMAIL_DEFAULTS)[stage] ?? [];
    const values = { ...this.macroValues, ...extra };
    const pairs: Array<[string, string]> = [];
    for (const n of names) if (values[n] !== undefined) pairs.push([n, values[n]!]);
    if (pairs.length === 0 && !postfix) return;
    this.macrosSent.push({ stage, names: pairs.map(([n]) => n) });
    this.send({ kind: 'MACRO', stage, macros: pairs });
  }

  /** A step: its macros, the command, and its reply unless the filter declined it (null). */
  private async step(cmd: MilterCommand, stage: string, skip: number, noReply: number, extra?: Record<string, string>): Promise<MilterResponse | null> {
    if (this.flag(skip)) return null;
    this.macros(stage, extra);
    this.send(cmd);
    if (this.flag(noReply)) return null;
    return this.final(cmd.kind);
  }

  connectEvent(info: { hostname: string; family: ConnectFamily; port?: number; address?: string }, macros?: Record<string, string>) {
    const cmd: MilterCommand = { kind: 'CONNECT', hostname: info.hostname, family: info.family, port: info.port ?? 0, address: info.address ?? '' };
    const ip = info.address?.replace(/^IPv6:/i, '');
    const extra = { '{client_addr}': ip ?? '', _: `${info.hostname} [${ip ?? ''}]`, ...macros };
    return this.step(cmd, 'C', SMFIP.NOCONNECT, SMFIP.NR_CONN, extra);
  }

  helo(name: string) {
    return this.step({ kind: 'HELO', name }, 'H', SMFIP.NOHELO, SMFIP.NR_HELO);
  }

  mail(args: string[], macros?: Record<string, string>) {
    return this.step({ kind: 'MAIL', args }, 'M', SMFIP.NOMAIL, SMFIP.NR_MAIL, { '{mail_addr}': args[0]!.replace(/^<|>$/g, ''), ...macros });
  }

  rcpt(args: string[], macros?: Record<string, string>) {
    return this.step({ kind: 'RCPT', args }, 'R', SMFIP.NORCPT, SMFIP.NR_RCPT, { '{rcpt_addr}': args[0]!.replace(/^<|>$/g, ''), ...macros });
  }

  data() {
    return this.step({ kind: 'DATA' }, 'T', SMFIP.NODATA, SMFIP.NR_DATA);
  }

  /**
   * One header; `value` as it stands after the colon in the message (usually with a leading
   * space; folded lines with CRLF).
   */
  async header(name: string, value: string): Promise<MilterResponse | null> {
    if (this.flag(SMFIP.NOHDRS)) return null;
    let v = value.replace(/\r\n/g, '\n');
    if (!this.flag(SMFIP.HDR_LEADSPC) && v.startsWith(' ')) v = v.slice(1);
    if (this.options.flavor === 'postfix') this.macros('L');
    this.send({ kind: 'HEADER', name, value: v });
    if (this.flag(SMFIP.NR_HDR)) return null;
    return this.final('HEADER');
  }

  async eoh(): Promise<MilterResponse | null> {
    if (this.flag(SMFIP.NOEOH)) return null;
    if (this.options.flavor === 'postfix') this.macros('N');
    this.send({ kind: 'EOH' });
    if (this.flag(SMFIP.NR_EOH)) return null;
    return this.final('EOH');
  }

  /** The body in chunks; returns the last reply ('SKIP' ends early), null when none was owed. */
  async body(bytes: Uint8Array | string): Promise<MilterResponse | null> {
    if (this.flag(SMFIP.NOBODY)) return null;
    const all = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes);
    let last: MilterResponse | null = null;
    for (let at = 0; at < all.length; at += MILTER_CHUNK_SIZE) {
      if (this.options.flavor === 'postfix') this.macros('B');
      this.send({ kind: 'BODY', chunk: all.subarray(at, at + MILTER_CHUNK_SIZE) });
      if (this.flag(SMFIP.NR_BODY)) continue;
      last = await this.final('BODY');
      if (last.kind !== 'CONTINUE') break;
    }
    return last;
  }

  /** End of message: the modifications, checked against the granted actions, and the final reply. */
  async eom(): Promise<EndOfMessage> {
    this.macros('E');
    this.send({ kind: 'BODYEOB', chunk: Buffer.alloc(0) });
    const modifications: MilterResponse[] = [];
    for (;;) {
      const f = await this.nextFrame();
      if (!f) throw new Error('the filter closed the connection at end of message');
      const r = decodeResponse(f);
      if (r.kind === 'PROGRESS') {
        this.progress++;
        continue;
      }
      if (FINAL_RESPONSES.has(r.kind)) {
        if (r.kind === 'SKIP') throw new Error('SKIP at end of message');
        if (this.options.flavor === 'postfix') {
          this.send({ kind: 'ABORT' });
          if (this.options.doubleAbort) this.send({ kind: 'ABORT' });
        }
        return { modifications, final: r };
      }
      const need = MODIFICATION_ACTION[r.kind];
      if (need === undefined) throw new Error(`${r.kind} at end of message`);
      if (((this.negotiated?.actions ?? 0) & need) === 0) throw new Error(`${r.kind} without the action it needs`);
      modifications.push(r);
    }
  }

  abort(): void {
    this.send({ kind: 'ABORT' });
  }

  unknown(line: string) {
    return this.step({ kind: 'UNKNOWN', line }, 'U', SMFIP.NOUNKNOWN, SMFIP.NR_UNKN);
  }

  quit(): void {
    this.send({ kind: 'QUIT' });
  }

  quitNewConnection(): void {
    this.send({ kind: 'QUIT_NC' });
  }

  close(): void {
    this.socket.destroy();
  }

  /**
   * One whole transaction, stopping where the MTA would: a refused MAIL ends it, refused
   * recipients are left out, no recipient left ends it (the MTA sends ABORT).
   */
  async transaction(m: { from: string; to: string[]; headers?: Array<[string, string]>; body?: string }): Promise<Transaction> {
    const result: Transaction = { mail: null, rcpt: [], eom: null };
    result.mail = await this.mail([`<${m.from}>`]);
    if (result.mail && !['CONTINUE', 'ACCEPT'].includes(result.mail.kind)) {
      this.abort();
      return result;
    }
    for (const to of m.to) result.rcpt.push({ to, reply: await this.rcpt([`<${to}>`]) });
    const kept = result.rcpt.filter((r) => !r.reply || r.reply.kind === 'CONTINUE' || r.reply.kind === 'ACCEPT');
    if (kept.length === 0 || result.rcpt.some((r) => r.reply?.kind === 'DISCARD')) {
      this.abort();
      return result;
    }
    await this.data();
    for (const [name, value] of m.headers ?? []) await this.header(name, ` ${value}`);
    await this.eoh();
    await this.body(m.body ?? 'Hello.\r\n');
    result.eom = await this.eom();
    return result;
  }
}

export interface Transaction {
  mail: MilterResponse | null;
  rcpt: Array<{ to: string; reply: MilterResponse | null }>;
  eom: EndOfMessage | null;
}

/**
 * The header block as Postfix delivers it after the modifications (mta.md §1.9): INSHEADER
 * counts from the top of the delivered message (index 0 above Postfix's own Received:),
 * CHGHEADER counts the received headers of that name (a deletion renumbers the rest), ADDHEADER
 * appends. Without HDR_LEADSPC the MTA puts a space after the colon itself. Lines come back as
 * "Name: value" with CRLF folding.
 */
export function deliver(received: Array<[string, string]>, modifications: MilterResponse[], options: { leadingSpace: boolean; ownReceived?: string }): string[] {
  type H = { name: string; value: string; received: boolean };
  const space = (v: string) => (options.leadingSpace ? v : ` ${v}`);
  const text = (v: string | Uint8Array) => (typeof v === 'string' ? v : Buffer.from(v).toString('utf8'));
  const list: H[] = [
    { name: 'Received', value: ` ${options.ownReceived ?? 'from client by mx.test.example (Postfix)'}`, received: false },
    ...received.map(([name, value]) => ({ name, value: ` ${value}`, received: true })),
  ];
  for (const m of modifications) {
    if (m.kind === 'INSHEADER') list.splice(Math.min(m.index, list.length), 0, { name: m.name, value: space(text(m.value)), received: false });
    else if (m.kind === 'ADDHEADER') list.push({ name: m.name, value: space(text(m.value)), received: false });
    else if (m.kind === 'CHGHEADER') {
      const same = list.filter((h) => h.received && h.name.toLowerCase() === m.name.toLowerCase());
      const target = same[Math.max(1, m.index) - 1];
      const value = text(m.value);
      if (!target) {
        if (value !== '') list.push({ name: m.name, value: space(value), received: false });
      } else if (value === '') list.splice(list.indexOf(target), 1);
      else target.value = space(value);
    }
  }
  return list.map((h) => `${h.name}:${h.value.replace(/\r?\n/g, '\r\n')}`);
}
