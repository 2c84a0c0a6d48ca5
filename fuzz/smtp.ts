/**
 * Fuzzes the SMTP front-end's server side: the command parser, the protocol state machine, the
 * DATA reader and the relay's dot-stuffing.
 *
 * - Every command line (generated from the grammar with mutations, or random bytes) is parsed on
 *   its own: a command or an error reply, never a throw, never a malformed reply.
 * - Sessions of such lines, with DATA content, over-long and bare-LF lines, split into random
 *   chunks, run through `SmtpProtocol` against a handler that checks the protocol calls it only
 *   in sequence (no RCPT without MAIL, no ID after MAIL, no content outside DATA, nothing after
 *   close), and every byte written must be well-formed replies of at most 512 octets a line.
 * - Clean messages, dot-stuffed and cut into random chunks, must come out of the reader exactly
 *   as they went in; dirty ones (bare CR/LF) must come out with CRLF line ends only; stuffing what
 *   came out and reading it again must give it back.
 *
 *   node fuzz/smtp.ts [inputs=1000000] [seed=1]
 *
 * `inputs` counts command lines and message lines. Prints JSON {inputs, sessions, replies,
 * messages (ended in a session), roundTrips (reader and stuffing), crashes, ms, seed}; exit status
 * 1 on any crash.
 */
import { dotStuff } from '../src/adapters/smtp-front/relay.ts';
import {
  type BareLineEndPolicy,
  formatReply,
  MessageReader,
  parseCommand,
  type Reply,
  reply,
  type SmtpHandler,
  type SmtpIo,
  SmtpProtocol,
} from '../src/adapters/smtp-front/server.ts';
import { pick, prng } from './support/prng.ts';

export const random = prng;
type Rng = () => number;


const DOMAINS = ['example.com', 'mx.example.com', 'a.b.c.example', 'localhost', '[192.0.2.1]', '[IPv6:2001:db8::1]', 'bücher.example', 'xn--bcher-kva.example', '-bad.example', 'a..b', '1.2.3.4', '', 'x'.repeat(70) + '.example', 'example.com.'];
const LOCALS = ['a', 'first.last', '"quoted local"', '"a\\"b"', 'jörg', '.dot', 'a..b', '', 'x'.repeat(70), 'user+tag', "o'hara", 'postmaster'];
const PARAMS = ['SIZE=100', 'SIZE=99999999999', 'SIZE=', 'SIZE=-1', 'BODY=8BITMIME', 'BODY=7BIT', 'BODY=BINARYMIME', 'BODY=', 'SMTPUTF8', 'SMTPUTF8=x', 'AUTH=<>', 'NOTIFY=NEVER', 'ORCPT=rfc822;a@b', 'X=', '=x', 'size=1', 'SIZE=1 SIZE=2'];
const VERBS = ['EHLO', 'HELO', 'ID', 'XID', 'MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'HELP', 'STARTTLS', 'EXPN', 'AUTH', 'BDAT', 'XCLIENT', 'FOO', 'ehlo', 'mail', 'Rcpt', ''];
const NOISE = ['\x00', '\t', ' ', '  ', '<', '>', '"', '\\', ':', '@', ',', '\u00e9', '\u2028', '\ud800', '😀', '\x7f', '=', '.'];

function path(rng: Rng): string {
  const r = rng();
  const mailbox = r < 0.1 ? '' : `${pick(rng, LOCALS)}@${pick(rng, DOMAINS)}`;
  if (r < 0.05) return mailbox || 'bare@example.com';
  if (r < 0.1) return `<@relay.example,@r2.example:${mailbox}>`;
  if (r < 0.13) return `<${mailbox}`;
  if (r < 0.15) return pick(rng, ['<postmaster>', '<Postmaster>', '<>', '<<a@b>>', '<a@b> <c@d>']);
  return `<${mailbox}>`;
}

function params(rng: Rng): string {
  let out = '';
  while (rng() < 0.35) out += ` ${pick(rng, PARAMS)}`;
  return out;
}

/** A command line from the grammar, often well-formed. */
export function generateCommand(rng: Rng): string {
  const verb = pick(rng, VERBS);
  switch (verb.toUpperCase()) {
    case 'EHLO':
    case 'HELO':
      return `${verb} ${pick(rng, DOMAINS)}`;
    case 'ID':
    case 'XID':
      return rng() < 0.1 ? verb : `${verb} ${pick(rng, DOMAINS)}`;
    case 'MAIL':
      return `${verb} ${pick(rng, ['FROM:', 'FROM: ', 'from:', 'FROM', 'TO:'])}${path(rng)}${params(rng)}`;
    case 'RCPT':
      return `${verb} ${pick(rng, ['TO:', 'TO: ', 'to:', 'FROM:'])}${path(rng)}${rng() < 0.1 ? params(rng) : ''}`;
    case 'VRFY':
    case 'HELP':
    case 'NOOP':
      return rng() < 0.5 ? verb : `${verb} ${pick(rng, LOCALS)}`;
    default:
      return rng() < 0.9 ? verb : `${verb} ${pick(rng, NOISE)}`;
  }
}

/** A mutated command line. */
export function mutateCommand(rng: Rng, line: string): string {
  let s = line;
  const edits = 1 + Math.floor(rng() * 3);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rng() * (s.length + 1));
    const r = rng();
    if (r < 0.4) s = s.slice(0, at) + pick(rng, NOISE) + s.slice(at);
    else if (r < 0.6) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rng() * 3));
    else if (r < 0.7) s = s.slice(0, at) + s.slice(at, at + 10).repeat(1 + Math.floor(rng() * 80)) + s.slice(at);
    else if (r < 0.8) s = s.toUpperCase();
    else s = s.slice(0, at);
  }
  return s;
}

/** Checks a parse result: a command, or a well-formed error reply. */
export function checkParse(line: string, utf8: boolean): 'command' | 'error' {
  const r = parseCommand(line, utf8);
  if ('command' in r) return 'command';
  checkReplyText(formatReply(r.error));
  if (r.error.code < 500 || r.error.code > 599) throw new Error(`parse error with code ${r.error.code}`);
  return 'error';
}

const REPLY_LINE = /^([2-5]\d\d)([ -])(?:([245])\.\d{1,3}\.\d{1,3}(?: |$))?/;

/** Every line of written replies: code, separator, the enhanced code of the same class, ≤ 512 octets. */
export function checkReplyText(text: string): number {
  if (text.length > 0 && !text.endsWith('\r\n')) throw new Error(`reply text does not end with CRLF: ${JSON.stringify(text.slice(-40))}`);
  let replies = 0;
  let code = '';
  for (const line of text.split('\r\n').slice(0, -1)) {
    if (Buffer.byteLength(line) + 2 > 512) throw new Error(`reply line of ${Buffer.byteLength(line) + 2} octets`);
    if (/[\r\n\x00]/.test(line)) throw new Error('control character in a reply line');
    const m = REPLY_LINE.exec(line);
    if (!m) throw new Error(`malformed reply line ${JSON.stringify(line.slice(0, 80))}`);
    if (code && m[1] !== code) throw new Error('reply code changed within a reply');
    if (m[3] && m[3] !== m[1]![0]) throw new Error(`enhanced code class differs: ${line.slice(0, 40)}`);
    code = m[2] === '-' ? m[1]! : '';
    if (m[2] === ' ') replies++;
  }
  if (code) throw new Error('reply ends with a continuation line');
  return replies;
}

/** A handler that models the sequence the protocol must keep, and refuses some commands. */
class ModelHandler implements SmtpHandler {
  private readonly rng: Rng;
  greeted = false;
  esmtp = false;
  idGiven = false;
  mailSinceHelo = false;
  inTx = false;
  recipients = 0;
  inData = false;
  /** endOfHeaders() came for the message being received */
  headersEnded = false;
  closed = false;
  refused = false;
  messages = 0;
  /** kept, not thrown: the protocol turns a handler's exception into a 451 */
  readonly violations: string[] = [];
  constructor(rng: Rng) {
    this.rng = rng;
  }
  private check(ok: boolean, what: string): void {
    if (this.closed) this.violations.push(`${what} after close`);
    else if (!ok) this.violations.push(`${what} out of sequence`);
  }
  private refuse(p: number, code = 550): Reply | null {
    return this.rng() < p ? reply(code, `${String(code)[0]}.7.1`, 'refused by the model') : null;
  }
  async connect() {
    const r = this.refuse(0.04, this.rng() < 0.5 ? 554 : 451);
    if (r) this.refused = true;
    return r;
  }
  async helo(_name: string, esmtp: boolean) {
    this.check(!this.refused && !this.inData, 'HELO');
    this.inTx = false;
    this.idGiven = false;
    this.mailSinceHelo = false;
    const r = this.refuse(0.05);
    this.greeted = r === null;
    this.esmtp = esmtp;
    return r;
  }
  async id(domain: string) {
    this.check(this.greeted && this.esmtp && !this.inTx && !this.mailSinceHelo && !this.idGiven && domain.includes('.'), 'ID');
    this.idGiven = true;
    return this.refuse(0.2);
  }
  async mail() {
    this.check(this.greeted && !this.inTx && !this.inData, 'MAIL');
    this.mailSinceHelo = true;
    const r = this.refuse(0.1);
    this.inTx = r === null;
    this.recipients = 0;
    return r;
  }
  async rcpt() {
    this.check(this.inTx && !this.inData, 'RCPT');
    const r = this.refuse(0.2);
    if (!r) this.recipients++;
    return r;
  }
  async data() {
    this.check(this.inTx && this.recipients > 0 && !this.inData, 'DATA');
    const r = this.refuse(0.05, 554);
    this.inData = r === null;
    this.headersEnded = false;
    return r;
  }
  header(name: string) {
    this.check(this.inData && !this.headersEnded && name.length > 0, 'header');
  }
  endOfHeaders() {
    this.check(this.inData && !this.headersEnded, 'end of headers');
    this.headersEnded = true;
  }
  body() {
    this.check(this.inData && this.headersEnded, 'body');
  }
  async endOfData() {
    this.check(this.inData && this.inTx && this.headersEnded, 'end of data');
    this.inData = false;
    this.inTx = false;
    this.messages++;
    return this.refuse(0.3, 554) ?? reply(250, '2.0.0', 'queued');
  }
  reset() {
    this.check(!this.closed, 'reset');
    this.inTx = false;
    this.inData = false;
  }
  close() {
    this.check(true, 'close');
    this.closed = true;
  }
}

class RecordingIo implements SmtpIo {
  text = '';
  closed = false;
  tlsAsked = false;
  write(data: string) {
    if (this.closed) throw new Error('write after close');
    this.text += data;
  }
  close() {
    this.closed = true;
  }
  startTls() {
    this.tlsAsked = true;
  }
  pause() {}
  resume() {}
}

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A message body's lines: printable text, dots, empty lines, headers, long-ish lines. */
function messageLines(rng: Rng, n: number): string[] {
  const lines: string[] = [];
  if (rng() < 0.8) lines.push('Subject: fuzz', `X-N: ${Math.floor(rng() * 1e6)}`, ' folded', '');
  for (let i = 0; i < n; i++) {
    const r = rng();
    if (r < 0.15) lines.push(pick(rng, ['.', '..', '.x', '...', '. ', '.\t']));
    else if (r < 0.25) lines.push('');
    else if (r < 0.3) lines.push('x'.repeat(Math.floor(rng() * 1100)));
    else lines.push(Array.from({ length: Math.floor(rng() * 12) }, () => pick(rng, ['word', 'ü', '😀', '.', ':', 'a', ' ', 'From ', 'Subject:'])).join(''));
  }
  return lines;
}

const stuffLine = (l: string) => (l.startsWith('.') ? `.${l}` : l);

/** Cuts bytes into random chunks (sometimes one byte each). */
function chunks(rng: Rng, bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  const small = rng() < 0.1;
  while (at < bytes.length) {
    const len = small ? 1 + Math.floor(rng() * 3) : 1 + Math.floor(rng() * rng() * 400);
    out.push(bytes.subarray(at, at + len));
    at += len;
  }
  return out;
}

/** A random line: from the grammar, mutated, or raw bytes. */
function anyLine(rng: Rng): string | Buffer {
  const r = rng();
  if (r < 0.1) return Buffer.from(Array.from({ length: Math.floor(rng() * 40) }, () => Math.floor(rng() * 256)));
  if (r < 0.4) return mutateCommand(rng, generateCommand(rng));
  return generateCommand(rng);
}

/**
 * The command lines of a session: usually a plausible one (EHLO, maybe ID, transactions with
 * recipients and DATA, maybe STARTTLS, QUIT) with lines dropped, swapped or inserted; sometimes
 * lines drawn at random.
 */
function sessionScript(rng: Rng): Array<string | Buffer> {
  if (rng() < 0.3) return Array.from({ length: 1 + Math.floor(rng() * 30) }, () => anyLine(rng));
  const script: Array<string | Buffer> = [pick(rng, ['EHLO client.example', 'EHLO client.example', 'HELO client.example', `EHLO ${pick(rng, DOMAINS)}`])];
  if (rng() < 0.2) script.push('STARTTLS', 'EHLO client.example');
  if (rng() < 0.5) script.push(pick(rng, ['ID example.com', 'XID example.com', `ID ${pick(rng, DOMAINS)}`]));
  const transactions = Math.floor(rng() * 4);
  for (let t = 0; t < transactions; t++) {
    script.push(rng() < 0.7 ? pick(rng, ['MAIL FROM:<a@example.com>', 'MAIL FROM:<> SIZE=100', 'MAIL FROM:<a@example.com> BODY=8BITMIME']) : `MAIL FROM:${path(rng)}${params(rng)}`);
    const n = 1 + Math.floor(rng() * 4);
    for (let i = 0; i < n; i++) script.push(`RCPT TO:${rng() < 0.8 ? `<r${i}@example.org>` : path(rng)}`);
    script.push(rng() < 0.9 ? 'DATA' : 'RSET');
  }
  if (rng() < 0.7) script.push('QUIT');
  const edits = Math.floor(rng() * rng() * 6);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rng() * script.length);
    const r = rng();
    if (r < 0.4) script.splice(at, 0, anyLine(rng));
    else if (r < 0.6) script.splice(at, 1);
    else if (r < 0.8 && at + 1 < script.length) [script[at], script[at + 1]] = [script[at + 1]!, script[at]!];
    else script[at] = anyLine(rng);
  }
  return script;
}

/**
 * One session: lines from the grammar (some mutated, some random bytes), with message content
 * after DATA, fed in random chunks. Returns [lines fed, replies seen, messages ended].
 */
export async function fuzzSession(rng: Rng): Promise<[number, number, number]> {
  const handler = new ModelHandler(rng);
  const io = new RecordingIo();
  const limits = { maxMessageSize: rng() < 0.2 ? 300 : 100_000, maxRecipients: 1 + Math.floor(rng() * 5), maxCommands: 5 + Math.floor(rng() * 60), maxErrors: 3 + Math.floor(rng() * 20) };
  const policy: BareLineEndPolicy = rng() < 0.5 ? 'normalize' : 'reject';
  const p = new SmtpProtocol(handler, io, { remoteAddress: '192.0.2.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 25 }, { hostname: 'mx.fuzz', starttls: rng() < 0.3, bareLineEnd: policy, limits });
  await p.start();
  const parts: Buffer[] = [];
  let lines = 0;
  const ending = () => pick(rng, ['\r\n', '\r\n', '\r\n', '\r\n', '\n', '\r', '\r\r\n']);
  for (const line of sessionScript(rng)) {
    lines++;
    if (typeof line === 'string') checkParse(line, rng() < 0.5);
    parts.push(typeof line === 'string' ? Buffer.from(line) : line, Buffer.from(rng() < 0.97 ? '\r\n' : ending()));
    if (typeof line === 'string' && /^data$/i.test(line) && rng() < 0.9) {
      const body = messageLines(rng, Math.floor(rng() * 20));
      lines += body.length;
      for (const l of body) parts.push(Buffer.from(stuffLine(l)), Buffer.from(rng() < 0.97 ? '\r\n' : ending()));
      parts.push(Buffer.from(rng() < 0.95 ? '.\r\n' : pick(rng, ['.\n', '\n.\r\n', '.\r\r\n'])));
    }
  }
  for (const c of chunks(rng, Buffer.concat(parts))) {
    p.receive(c);
    if (rng() < 0.3) await immediate();
    if (io.tlsAsked && rng() < 0.5) {
      io.tlsAsked = false;
      p.tlsStarted({ protocol: 'TLSv1.3', cipher: 'FUZZ' });
    }
  }
  await immediate();
  const how = rng();
  if (how < 0.2) p.timeout();
  else if (how < 0.35) p.shutdown();
  else p.end();
  await immediate();
  if (handler.violations.length > 0) throw new Error(`the protocol called the handler ${handler.violations.join(', ')}`);
  // the protocol turns its own exceptions into this 421: for the fuzzer, a crash
  if (io.text.includes('Internal error; closing connection')) throw new Error('the protocol threw');
  const replies = checkReplyText(io.text);
  if (replies === 0) throw new Error('not even a greeting');
  return [lines, replies, handler.messages];
}

/**
 * A message through the reader and back through the relay's stuffing: clean content comes out
 * exactly; any content comes out with CRLF line ends only (normalize) and survives a second trip.
 */
export function fuzzMessage(rng: Rng): number {
  const lines = messageLines(rng, Math.floor(rng() * 40)).filter((l) => l.length < 990);
  const dirty = rng() < 0.3;
  let stuffed = '';
  for (const l of lines) stuffed += stuffLine(dirty && rng() < 0.2 ? l.replace('o', pick(rng, ['\n', '\r', '\n.\n'])) : l) + (dirty && rng() < 0.2 ? '\n' : '\r\n');
  stuffed += '.\r\n';
  const read = (bytes: Buffer): Buffer => {
    const headers: string[] = [];
    const body: Buffer[] = [];
    let ended = 0;
    const reader = new MessageReader({
      maxSize: 1_000_000,
      maxLine: 1000,
      bareLineEnd: 'normalize',
      sink: {
        header: (n) => {
          if (ended) throw new Error('a header field after the end of the headers');
          headers.push(n);
        },
        endOfHeaders: () => ended++,
        body: (chunk) => {
          if (!ended) throw new Error('body content before the end of the headers');
          body.push(chunk);
        },
      },
    });
    let end = -1;
    for (const c of chunks(rng, bytes)) {
      if (end !== -1) throw new Error('content after the end of data was read');
      end = reader.push(c);
      if (end !== -1 && end !== c.length) throw new Error(`the end of data came before the end of the input (${end} of ${c.length})`);
    }
    if (end === -1) throw new Error('the end of data was not found');
    if (reader.longLine || reader.oversize) throw new Error('limits tripped on a small message');
    if (headers.length !== reader.message.headers.length) throw new Error('a header field was not streamed');
    if (ended !== 1) throw new Error(`the end of the headers was reported ${ended} times`);
    // the body streamed is what is kept, less the separator line
    const kept = Buffer.concat(reader.message.body);
    if (!Buffer.concat(body).equals(reader.message.separated ? kept.subarray(2) : kept)) throw new Error('the streamed body differs from the kept one');
    return Buffer.concat([...reader.message.headers.map((h) => h.raw), ...reader.message.body]);
  };
  const out = read(Buffer.from(stuffed));
  const text = out.toString('utf8');
  if (!dirty) {
    const expected = lines.map((l) => `${l}\r\n`).join('');
    if (text !== expected) throw new Error(`clean message changed: ${JSON.stringify(expected.slice(0, 80))} → ${JSON.stringify(text.slice(0, 80))}`);
  }
  if (/\r(?!\n)|(?<!\r)\n/.test(text)) throw new Error('a bare CR or LF survived normalisation');
  const again = read(Buffer.concat([...dotStuff(chunks(rng, out))]));
  if (!again.equals(out)) throw new Error('stuffing then reading again changed the message');
  return lines.length;
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 1_000_000);
  const seed = Number(process.argv[3] ?? 1);
  if (!(count > 0) || !Number.isInteger(seed)) {
    console.error('usage: node fuzz/smtp.ts [inputs=1000000] [seed=1]');
    process.exit(2);
  }
  const rng = random(seed);
  let inputs = 0;
  let sessions = 0;
  let replies = 0;
  let messages = 0;
  let roundTrips = 0;
  let crashes = 0;
  const examples: Array<{ seed: number; input: number; error: string }> = [];
  let failure: Error | null = null;
  process.on('unhandledRejection', (err) => {
    failure = err as Error;
  });
  const start = performance.now();
  while (inputs < count) {
    const at = inputs;
    try {
      const r = rng();
      if (r < 0.5) {
        for (let i = 0; i < 20; i++) {
          const line = rng() < 0.5 ? generateCommand(rng) : mutateCommand(rng, generateCommand(rng));
          checkParse(line, rng() < 0.5);
        }
        inputs += 20;
      } else if (r < 0.85) {
        const [lines, seen, ended] = await fuzzSession(rng);
        inputs += lines;
        replies += seen;
        messages += ended;
        sessions++;
      } else {
        inputs += fuzzMessage(rng) + 1;
        roundTrips++;
      }
      if (failure) throw failure;
    } catch (e) {
      failure = null;
      crashes++;
      inputs++;
      if (examples.length < 5) examples.push({ seed, input: at, error: e instanceof Error ? e.message : String(e) });
    }
  }
  const ms = Math.round(performance.now() - start);
  console.log(JSON.stringify({ inputs, sessions, replies, messages, roundTrips, crashes, ms, seed }));
  if (crashes > 0) {
    for (const x of examples) console.error(JSON.stringify(x));
    process.exit(1);
  }
}

if (import.meta.main) await main();
