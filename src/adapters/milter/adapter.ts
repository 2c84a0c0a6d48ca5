/**
 * The milter adapter (layer 3 of 3): glue between the protocol session (session.ts) and the
 * engine's staged session. One MilterAdapter serves one filter connection; each SMTP session on
 * it (a new one after QUIT_NC) gets its own engine Session.
 *
 *   CONNECT → session.connect()      HELO → helo()      MAIL → mailFrom(first argument)
 *   RCPT → rcpt() (per recipient)    HEADER → header()  EOH → endOfHeaders()
 *   BODY → body()                    end of message → endOfMessage()
 * Header values reach the engine byte for byte as the MTA sent them (as latin1 strings, folding
 * with CRLF), the engine told whether the MTA dropped the space after the colon (no HDR_LEADSPC):
 * what DKIM's simple canonicalization needs.
 *
 * What the MTA sends and waits for is derived from the policy (milterWants, policyNeeds): the
 * MTA does not wait at CONNECT and HELO (unless answer_at: connect), nor at MAIL with answer_at:
 * end_of_message, nor at RCPT without per-recipient
 * rules, nor at any header, the end of headers or the body; it sends no body without DKIM or ARC.
 * The steps still run the engine's stages (their facts feed the later ones and the logs); a
 * verdict the MTA did not wait for is carried out at the next step it waits for.
 *
 * Verdicts are carried out as milter responses:
 * - REJECT / TEMPFAIL: REPLYCODE with the engine's code, enhanced code and text, as the answer to
 *   the step that reached it, or (CONNECT, HELO not waited for) to every MAIL of the session (at
 *   RCPT it refuses that recipient only);
 * - ACCEPT / FILTER before the end of the message: CONTINUE now, and no further checks for the
 *   message (or, from CONNECT and HELO, for the connection): headers can only be added at the end
 *   of the message, so that is where the decision is carried out;
 * - at the end of the message: CHGHEADER deletions of forged Authentication-Results (highest
 *   occurrence first), the subject tag (FILTER), INSHEADER 0 for each header in list order (each
 *   lands on top of the previous one, so headers[0] ends up directly above the received block),
 *   QUARANTINE when configured (FILTER), then ACCEPT;
 * - DISCARD: DISCARD (from MAIL on; decided at CONNECT or HELO it is carried out at each MAIL).
 * An engine that throws, or a step that outlives the adapter's own timeout, gets the configured
 * on_error default (TEMPFAIL 451 4.3.0, or ACCEPT) for the rest of the SMTP session.
 * Imports from the engine and nothing from the checks.
 */
import { isIP } from 'node:net';
import type { Engine, Logger, Prepared } from '../../engine/engine.ts';
import { Session, SessionError } from '../../engine/session.ts';
import type { HeaderRemoval, SmtpReply, Verdict } from '../../engine/verdict.ts';
import type { Config, MilterAnswerAt } from '../../policy/config.ts';
import type { LoadedPolicy } from '../../policy/store.ts';
import {
  type ConnectInfo,
  type EndOfMessageReply,
  type FilterWants,
  type MilterHandler,
  type StepContext,
  type StepReply,
  wireHeaderValue,
} from './session.ts';
import { type MilterResponse, replyCodeText, SMFIF, SMFIM, SMFIP } from './wire.ts';

export interface MilterAdapterOptions {
  engine: Engine;
  log?: Logger;
  /**
   * A step still unanswered after this many ms gets the on_error default, and the rest of the
   * SMTP session too (default: twice the engine's deadline_ms plus one second — the checks and
   * the policy hook each have deadline_ms, so only a bug gets here).
   */
  stageTimeoutMs?: number;
  /** FILTER verdicts also put the message on hold with this reason ('' or absent: no quarantine) */
  quarantine?: string;
  /**
   * Have the MTA wait for an answer at CONNECT and HELO, so that a refusal there reaches the
   * client before MAIL: the same as the policy's `milter.answer_at: connect`, whatever the policy
   * says. Without it the policy decides (by default 'mail': the MTA does not wait at CONNECT and
   * HELO (NR_CONN, NR_HELO) and their verdicts are carried out at MAIL, as Postfix's own
   * smtpd_delay_reject does: two round trips fewer per SMTP session).
   */
  earlyReplies?: boolean;
}

/**
 * The macros checkid asks for (mta.md §1.8), by SMFIM stage: only those it reads. `v` tells
 * Postfix (PROGRESS at every step) from Sendmail, `{client_addr}` is the client's address when
 * CONNECT carries none, `i` (the queue id) goes into the log lines. Every stage is listed, because
 * an MTA sends its own default list for a stage missing from ours (and Postfix for an empty one),
 * before every step, the steps it does not send too. Unknown ones are simply not sent.
 */
export const CHECKID_MACROS: Readonly<Partial<Record<number, readonly string[]>>> = {
  [SMFIM.CONNECT]: ['v', '{client_addr}'],
  [SMFIM.HELO]: ['i'],
  [SMFIM.ENVFROM]: ['i'],
  [SMFIM.ENVRCPT]: ['i'],
  [SMFIM.DATA]: ['i'],
  [SMFIM.EOH]: ['i'],
  [SMFIM.EOM]: ['i'],
};

/**
 * What a loaded policy needs from the MTA beyond what every policy needs (CONNECT, HELO, MAIL with
 * its answer, RCPT, the header fields and the end of the message with its answer).
 */
export interface PolicyNeeds {
  /**
   * RCPT can decide per recipient: per-recipient rating thresholds, or a policy hook (which sees
   * every stage). Otherwise RCPT decides what MAIL decided, and the MTA need not wait for it.
   */
  rcptReply: boolean;
  /** DKIM or ARC: the body (body hashes) and the end of the headers (key look-ups start there) */
  body: boolean;
  /** milter.answer_at: the first step the MTA waits at (default 'mail') */
  answerAt?: MilterAnswerAt;
}

/** What `config` (and a hook, if the policy has one) needs the MTA to send and to wait for. */
export function policyNeeds(config: Config, hook = false): PolicyNeeds {
  return {
    rcptReply: hook || config.ratings.recipients.length > 0,
    body: config.dkim.enabled || config.arc.enabled,
    answerAt: config.milter.answerAt,
  };
}

/**
 * What the adapter negotiates, derived from the policy's needs (mta.md §1.6): header edits (and
 * QUARANTINE when configured) and the macro list; never DATA or UNKNOWN; the header fields always
 * (forged Authentication-Results, DMARC's From, the subject tag) but no answer to each; the body
 * and the end of headers only for DKIM or ARC, never answered; CONNECT and HELO answered only
 * with answer_at 'connect' (or `earlyReplies`), MAIL unless 'end_of_message' (their verdicts are
 * carried out at the next step answered); RCPT answered only when the policy can decide per
 * recipient; the end of the message always answered. HDR_LEADSPC for the exact header bytes;
 * SKIP for an MTA that would still want body replies.
 */
export function milterWants(
  options: Pick<MilterAdapterOptions, 'quarantine' | 'earlyReplies'> = {},
  needs: PolicyNeeds = { rcptReply: true, body: true },
): FilterWants {
  let protocol =
    SMFIP.NODATA |
    SMFIP.NOUNKNOWN |
    SMFIP.NR_HDR |
    SMFIP.NR_DATA |
    SMFIP.NR_UNKN |
    SMFIP.HDR_LEADSPC |
    SMFIP.SKIP;
  const answerAt = options.earlyReplies ? 'connect' : (needs.answerAt ?? 'mail');
  if (answerAt !== 'connect') protocol |= SMFIP.NR_CONN | SMFIP.NR_HELO;
  if (answerAt === 'end_of_message') protocol |= SMFIP.NR_MAIL;
  if (!needs.rcptReply) protocol |= SMFIP.NR_RCPT;
  protocol |= needs.body ? SMFIP.NR_EOH | SMFIP.NR_BODY : SMFIP.NOEOH | SMFIP.NOBODY;
  return {
    version: 6,
    actions: SMFIF.ADDHDRS | SMFIF.CHGHDRS | SMFIF.SETSYMLIST | (options.quarantine ? SMFIF.QUARANTINE : 0),
    protocol,
    macros: CHECKID_MACROS,
  };
}

const CONTINUE: StepReply = { kind: 'CONTINUE' };
const ACCEPT: StepReply = { kind: 'ACCEPT' };
const SKIP: StepReply = { kind: 'SKIP' };
const DISCARD: StepReply = { kind: 'DISCARD' };

class StageTimeoutError extends Error {
  override name = 'StageTimeoutError';
}

/** The REPLYCODE for a REJECT (class 5) or TEMPFAIL (class 4) reply; a code of the wrong class gets the default. */
export function replyFor(reply: SmtpReply, cls: 4 | 5): MilterResponse {
  const fits = Math.floor(reply.code / 100) === cls;
  const code = fits ? reply.code : cls === 5 ? 550 : 451;
  const xcode = fits ? reply.xcode : cls === 5 ? '5.7.1' : '4.3.0';
  return { kind: 'REPLYCODE', text: replyCodeText(code, xcode, reply.text) };
}

/** The response that carries out a verdict's action (ACCEPT and FILTER: accept). */
function actionOf(v: Verdict): StepReply {
  switch (v.action) {
    case 'REJECT':
      return replyFor(v.reply, 5);
    case 'TEMPFAIL':
      return replyFor(v.reply, 4);
    case 'DISCARD':
      return DISCARD;
    case 'ACCEPT':
    case 'FILTER':
      return ACCEPT;
    default:
      return CONTINUE;
  }
}

const refuses = (v: Verdict): boolean => v.action === 'REJECT' || v.action === 'TEMPFAIL';

/** "<a@b.example>" → "a@b.example" (ESMTP parameters are separate arguments already). */
function stripAngles(address: string | undefined): string {
  const a = (address ?? '').trim();
  return a.startsWith('<') && a.endsWith('>') ? a.slice(1, -1) : a;
}

/**
 * The client's IP: CONNECT's address for TCP clients (Sendmail writes "IPv6:" before IPv6
 * addresses), else the {client_addr} macro; null for a client without one (a local socket).
 */
export function clientAddress(info: ConnectInfo, macro: (name: string) => string | undefined): string | null {
  const candidates = [
    info.family === 'inet' || info.family === 'inet6' ? info.address : undefined,
    macro('{client_addr}'),
  ];
  for (const c of candidates) {
    if (!c) continue;
    const ip = c
      .trim()
      .replace(/^\[(.*)\]$/, '$1')
      .replace(/^ipv6:/i, '')
      .replace(/%.*$/, '');
    if (isIP(ip)) return ip;
  }
  return null;
}

interface MessageState {
  /** a final verdict reached before the end of the message (or inherited from the connection) */
  verdict: Verdict | null;
  /** some recipient is still undecided (CONTINUE): the end of message decides */
  open: boolean;
  /** final verdicts that keep the message, per accepted recipient */
  accepted: Verdict[];
  subject: { name: string; raw: Buffer } | null;
  /**
   * MAIL's refusal of its own (a refused HELO argument, a malformed sender) when the MTA did not
   * wait for MAIL's answer: the next step answered carries it out
   */
  refusal: StepReply | null;
}

const newMessage = (): MessageState => ({
  verdict: null,
  open: false,
  accepted: [],
  subject: null,
  refusal: null,
});

export class MilterAdapter implements MilterHandler {
  private readonly engine: Engine;
  private readonly options: MilterAdapterOptions;
  private readonly log: Logger;
  /**
   * The policy as it was when this connection negotiated: its sessions use it even if a reload
   * comes before CONNECT, so they never need a step the MTA was told not to send.
   */
  private policy: LoadedPolicy<Prepared> | null = null;
  private session: Session | null = null;
  private ip = '';
  /** a final verdict of the connect stage (holds for the SMTP session) */
  private connectionVerdict: Verdict | null = null;
  /** a final verdict of the last HELO (a new HELO starts over) */
  private heloVerdict: Verdict | null = null;
  /** the last HELO's argument was refused while the MTA did not wait: MAIL carries the refusal */
  private heloRefusal: StepReply | null = null;
  private message: MessageState = newMessage();
  /** the engine failed or timed out: the rest of the SMTP session gets the default */
  private failed = false;

  constructor(options: MilterAdapterOptions) {
    this.engine = options.engine;
    this.options = options;
    this.log = options.log ?? (() => {});
  }

  /** What to negotiate: from the policy in force now (a reload is seen by the next connection). */
  wants(): FilterWants {
    const policy = this.engine.context.policy.current();
    this.policy = policy;
    return milterWants(this.options, policyNeeds(policy.config, Boolean(policy.hook)));
  }

  private current(): LoadedPolicy<Prepared> {
    return this.policy ?? this.engine.context.policy.current();
  }

  private config(): Config {
    return this.session?.config ?? this.current().config;
  }

  /** The on_error default: TEMPFAIL with the engine's internal-error reply, or ACCEPT. */
  private fallback(): StepReply {
    if (this.config().onError === 'accept') return ACCEPT;
    return replyFor({ code: 451, xcode: '4.3.0', text: 'Temporary internal error; try again later' }, 4);
  }

  /**
   * Runs an engine stage within the adapter's own timeout. Null when the engine threw or timed out
   * (logged; the rest of the session gets the default). A SessionError (bad input) is rethrown.
   */
  private async guard(stage: string, work: () => Promise<Verdict>): Promise<Verdict | null> {
    const ms = this.options.stageTimeoutMs ?? 2 * this.config().deadlineMs + 1000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const running = work();
      running.catch(() => {}); // it may settle after the timeout
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StageTimeoutError(`${stage}: no verdict within ${ms} ms`)), ms);
      });
      return await Promise.race([running, timeout]);
    } catch (err) {
      if (err instanceof SessionError) throw err;
      this.failed = true;
      const timedOut = err instanceof StageTimeoutError;
      this.log(
        'error',
        timedOut
          ? 'milter: a stage timed out; answering with on_error'
          : 'milter: the engine failed; answering with on_error',
        {
          stage,
          ip: this.ip,
          on_error: this.config().onError,
          error: (err as Error)?.message ?? String(err),
          ...(timedOut ? {} : { stack: (err as Error)?.stack }),
        },
      );
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  private note(v: Verdict, ctx: StepContext): void {
    if (v.action === 'CONTINUE' || v.action === 'ACCEPT' || v.action === 'FILTER') return;
    this.log('info', 'milter verdict', {
      ip: this.ip,
      stage: v.stage,
      action: v.action,
      reason: v.reason,
      reply: `${v.reply.code} ${v.reply.xcode} ${v.reply.text}`.replace(/ {2,}/g, ' '),
      ...(ctx.macro('i') ? { queue_id: ctx.macro('i') } : {}),
    });
  }

  private resetConnection(): void {
    this.session = null;
    this.ip = '';
    this.connectionVerdict = null;
    this.heloVerdict = null;
    this.heloRefusal = null;
    this.message = newMessage();
    this.failed = false;
  }

  async connect(info: ConnectInfo, ctx: StepContext): Promise<StepReply> {
    this.resetConnection();
    const ip = clientAddress(info, (n) => ctx.macro(n));
    if (!ip) {
      // a local client (unix socket, or no address at all): nothing to authenticate
      this.log('info', 'milter: client without an IP address accepted unchecked', {
        hostname: info.hostname,
        family: info.family,
      });
      return ACCEPT;
    }
    this.ip = ip;
    let session: Session;
    try {
      // header values go to the engine as the MTA sent them, byte for byte (latin1 keeps every
      // octet), with DKIM told whether the MTA dropped the space after the colon
      const leadingSpace = (ctx.negotiated.protocol & SMFIP.HDR_LEADSPC) !== 0;
      const options = { headerLeadingSpaceStripped: !leadingSpace, encoding: 'latin1' } as const;
      const policy = this.current();
      // a reload since OPTNEG: this session keeps the policy the MTA was told what to send for
      session =
        this.engine.context.policy.current() === policy
          ? this.engine.session(ip, options)
          : new Session({ ...this.engine.context, policy: { current: () => policy } }, ip, options);
    } catch (err) {
      this.failed = true;
      this.log('error', 'milter: cannot start an engine session; answering with on_error', {
        ip,
        error: (err as Error).message,
      });
      return this.fallback();
    }
    this.session = session;
    const v = await this.guard('connect', () => session.connect());
    if (!v) return this.fallback();
    if (v.action !== 'CONTINUE') this.connectionVerdict = v;
    this.note(v, ctx);
    // ACCEPT, FILTER and DISCARD are carried out per message
    return refuses(v) ? actionOf(v) : CONTINUE;
  }

  async helo(name: string, ctx: StepContext): Promise<StepReply> {
    const session = this.session;
    if (this.failed) return this.fallback();
    if (!session) return CONTINUE;
    if (this.connectionVerdict)
      return refuses(this.connectionVerdict) ? actionOf(this.connectionVerdict) : CONTINUE;
    this.heloVerdict = null;
    this.heloRefusal = null;
    let v: Verdict | null;
    try {
      v = await this.guard('helo', () => session.helo(name));
    } catch (err) {
      this.log('info', 'milter: HELO argument refused', { ip: this.ip, error: (err as Error).message });
      const refusal = replyFor({ code: 501, xcode: '5.5.2', text: 'Invalid HELO argument' }, 5);
      // the MTA did not wait for this answer: the next MAIL gets it
      if ((ctx.negotiated.protocol & SMFIP.NR_HELO) !== 0) this.heloRefusal = refusal;
      return refusal;
    }
    if (!v) return this.fallback();
    if (v.action !== 'CONTINUE') this.heloVerdict = v;
    this.note(v, ctx);
    return refuses(v) ? actionOf(v) : CONTINUE;
  }

  async mail(args: string[], ctx: StepContext): Promise<StepReply> {
    const r = await this.mailStep(args, ctx);
    // an answer the MTA does not wait for (answer_at: end_of_message): a refusal of MAIL's own
    // is kept for the next step answered; a verdict is in message.verdict already
    if (
      (ctx.negotiated.protocol & SMFIP.NR_MAIL) !== 0 &&
      r.kind === 'REPLYCODE' &&
      !this.message.verdict &&
      !this.failed
    )
      this.message.refusal = r;
    return r;
  }

  private async mailStep(args: string[], ctx: StepContext): Promise<StepReply> {
    this.message = newMessage();
    const session = this.session;
    if (this.failed) return this.fallback();
    // a client without an IP address: accepted unchecked (the MTA did not wait at CONNECT)
    if (!session) return ACCEPT;
    if (this.heloRefusal) return this.heloRefusal;
    // a new message, even if MAIL is refused below (Sendmail sends no ABORT between messages)
    session.resetMessage();
    const inherited = this.connectionVerdict ?? this.heloVerdict;
    if (inherited) {
      this.message.verdict = inherited;
      return inherited.action === 'ACCEPT' || inherited.action === 'FILTER' ? CONTINUE : actionOf(inherited);
    }
    let v: Verdict | null;
    try {
      v = await this.guard('mail', () => session.mailFrom(stripAngles(args[0])));
    } catch (err) {
      this.log('info', 'milter: MAIL FROM address refused', { ip: this.ip, error: (err as Error).message });
      return replyFor({ code: 553, xcode: '5.1.7', text: 'Malformed sender address' }, 5);
    }
    if (!v) return this.fallback();
    this.note(v, ctx);
    if (v.action === 'CONTINUE') return CONTINUE;
    this.message.verdict = v;
    return v.action === 'ACCEPT' || v.action === 'FILTER' ? CONTINUE : actionOf(v);
  }

  async rcpt(args: string[], ctx: StepContext): Promise<StepReply> {
    const session = this.session;
    if (this.failed) return this.fallback();
    if (!session) return CONTINUE;
    if (this.message.refusal) return this.message.refusal;
    const decided = this.message.verdict;
    if (decided)
      return decided.action === 'ACCEPT' || decided.action === 'FILTER' ? CONTINUE : actionOf(decided);
    let v: Verdict | null;
    try {
      v = await this.guard('rcpt', () => session.rcpt(stripAngles(args[0])));
    } catch (err) {
      this.log('info', 'milter: RCPT TO address refused', { ip: this.ip, error: (err as Error).message });
      return replyFor({ code: 553, xcode: '5.1.3', text: 'Malformed recipient address' }, 5);
    }
    if (!v) return this.fallback();
    this.note(v, ctx);
    if (refuses(v)) return actionOf(v); // this recipient only
    if (v.action === 'CONTINUE') this.message.open = true;
    else this.message.accepted.push(v);
    return CONTINUE;
  }

  /** Runs a synchronous engine step (header, end of headers, body); a throw fails the session. */
  private feed(what: string, work: (session: Session) => void): void {
    const session = this.session;
    if (!session || this.failed) return;
    try {
      work(session);
    } catch (err) {
      this.failed = true;
      this.log('error', 'milter: the engine failed; answering with on_error', {
        stage: what,
        ip: this.ip,
        on_error: this.config().onError,
        error: (err as Error)?.message,
        stack: (err as Error)?.stack,
      });
    }
  }

  header(name: string, _value: string, raw: Buffer): StepReply {
    if (!this.message.subject && name.toLowerCase() === 'subject')
      this.message.subject = { name, raw: Buffer.from(raw) };
    // every header, even of a decided message: forged Authentication-Results must still go
    this.feed('header', (s) => s.header(name, raw.toString('latin1').replace(/\r?\n/g, '\r\n')));
    return CONTINUE;
  }

  endOfHeaders(): StepReply {
    // DKIM starts its key look-ups here; a decided message needs none
    if (!this.decided()) this.feed('eoh', (s) => s.endOfHeaders());
    return CONTINUE;
  }

  /** The message is decided without its end: no need for the body. */
  private decided(): boolean {
    return (
      this.message.verdict !== null ||
      this.message.refusal !== null ||
      (!this.message.open && this.message.accepted.length > 0)
    );
  }

  body(chunk: Buffer): StepReply {
    if (!this.session || this.failed || this.decided()) return SKIP;
    this.feed('body', (s) => s.body(chunk));
    return this.failed ? SKIP : CONTINUE;
  }

  async endOfMessage(ctx: StepContext): Promise<EndOfMessageReply> {
    const session = this.session;
    if (this.failed) return { modifications: [], final: this.fallback() };
    if (!session) return { modifications: [], final: ACCEPT };
    if (this.message.refusal) return { modifications: [], final: this.message.refusal };
    let v = this.message.verdict;
    if (!v) {
      if (this.message.open || this.message.accepted.length === 0) {
        v = await this.guard('eom', () => session.endOfMessage());
        if (!v) return { modifications: [], final: this.fallback() };
      } else v = this.message.accepted[0]!;
    }
    this.note(v, ctx);
    if (refuses(v) || v.action === 'DISCARD') return { modifications: [], final: actionOf(v) };
    // a verdict reached before the headers arrived did not see the forged ones
    const removals = v.stage === 'eom' ? v.removeHeaders : session.facts.forgedAuthResults;
    return { modifications: this.modifications(v, removals, ctx), final: ACCEPT };
  }

  private modifications(v: Verdict, removals: readonly HeaderRemoval[], ctx: StepContext): MilterResponse[] {
    const leading = (ctx.negotiated.protocol & SMFIP.HDR_LEADSPC) !== 0;
    const mods: MilterResponse[] = [];
    // deletions first, from the highest occurrence down: Postfix renumbers after each one, and
    // our own inserted Authentication-Results must not be counted among them
    for (const r of [...removals].sort((a, b) => b.occurrence - a.occurrence)) {
      mods.push({ kind: 'CHGHEADER', index: r.occurrence, name: r.name, value: '' });
    }
    if (v.action === 'FILTER' && v.subjectTag) {
      const tag = v.subjectTag;
      const subject = this.message.subject;
      if (!subject) mods.push({ kind: 'ADDHEADER', name: 'Subject', value: wireHeaderValue(tag, leading) });
      else {
        const current =
          leading && (subject.raw[0] === 0x20 || subject.raw[0] === 0x09)
            ? subject.raw.subarray(1)
            : subject.raw;
        if (!current.toString('utf8').startsWith(tag)) {
          const value = Buffer.concat([
            Buffer.from(`${leading ? ' ' : ''}${tag}${current.length > 0 ? ' ' : ''}`, 'utf8'),
            current,
          ]);
          mods.push({ kind: 'CHGHEADER', index: 1, name: subject.name, value });
        }
      }
    }
    for (const h of v.headers) {
      mods.push({
        kind: 'INSHEADER',
        index: 0,
        name: h.label.replace(/:$/, ''),
        value: wireHeaderValue(h.text, leading),
      });
    }
    if (v.action === 'FILTER' && this.options.quarantine) {
      mods.push({ kind: 'QUARANTINE', reason: this.options.quarantine.replace(/[\r\n]+/g, ' ') });
    }
    return mods;
  }

  abort(): void {
    this.session?.resetMessage();
    this.message = newMessage();
  }

  close(): void {
    this.resetConnection();
  }
}
