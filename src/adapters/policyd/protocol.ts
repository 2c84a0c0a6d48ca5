/**
 * The Postfix SMTP access policy delegation protocol (SMTPD_POLICY_README): a request is
 * `name=value` lines ended by an empty line; the reply is `action=...` and an empty line. One
 * connection carries many requests. This file knows the wire format only: the incremental,
 * bounded request parser (fuzzed by fuzz/policyd.ts) and the reply encoder.
 */

export class PolicyProtocolError extends Error {
  override name = 'PolicyProtocolError';
  /** the requests the same chunk completed before the error (valid: they may be answered) */
  completed: PolicyRequest[] = [];
}

export interface PolicyParserOptions {
  /** bytes one request may take, attribute lines and their newlines (default 64 KiB) */
  maxRequestBytes?: number;
  /** attributes one request may carry (default 256; Postfix 3.7 sends 29) */
  maxAttributes?: number;
}

export type PolicyRequest = Map<string, string>;

const NEWLINE = 0x0a;

/**
 * Turns a byte stream into requests. `push` returns the requests completed by the chunk, or
 * throws PolicyProtocolError carrying those completed before the error (they are answered; the
 * connection is then closed without a reply to the bad one, as the protocol asks of a server
 * that cannot answer). After an error the parser takes nothing more. Lines end with LF; a CR
 * before it is dropped. A line without `=`, a NUL, an empty attribute name, invalid UTF-8, a
 * request over the byte or attribute bound are errors. A repeated attribute keeps its last value.
 */
export class PolicyParser {
  private readonly maxBytes: number;
  private readonly maxAttributes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** bytes of the current request already turned into attributes */
  private requestBytes = 0;
  private current: PolicyRequest = new Map();
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private failed: string | null = null;

  constructor(options: PolicyParserOptions = {}) {
    this.maxBytes = options.maxRequestBytes ?? 64 * 1024;
    this.maxAttributes = options.maxAttributes ?? 256;
  }

  /** True between requests (nothing of a next request received yet). */
  get idle(): boolean {
    return this.pendingBytes === 0 && this.current.size === 0;
  }

  push(chunk: Uint8Array): PolicyRequest[] {
    if (this.failed) throw new PolicyProtocolError(`input after a protocol error: ${this.failed}`);
    const out: PolicyRequest[] = [];
    try {
      this.parse(chunk, out);
    } catch (err) {
      if (err instanceof PolicyProtocolError) {
        err.completed = out;
        this.failed = err.message;
      }
      throw err;
    }
    return out;
  }

  private parse(chunk: Uint8Array, out: PolicyRequest[]): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl === -1) break;
      let line: Buffer;
      const piece = Buffer.from(chunk.buffer, chunk.byteOffset + start, nl - start);
      if (this.pendingBytes > 0) {
        this.pending.push(piece);
        line = Buffer.concat(this.pending, this.pendingBytes + piece.length);
        this.pending = [];
        this.pendingBytes = 0;
      } else line = piece;
      start = nl + 1;
      this.requestBytes += line.length + 1;
      if (this.requestBytes > this.maxBytes) throw new PolicyProtocolError(`request longer than ${this.maxBytes} bytes`);
      const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
      if (end === 0) {
        out.push(this.current);
        this.current = new Map();
        this.requestBytes = 0;
        continue;
      }
      this.attribute(line.subarray(0, end));
    }
    if (start < chunk.length) {
      const rest = chunk.length - start;
      if (this.requestBytes + this.pendingBytes + rest > this.maxBytes) throw new PolicyProtocolError(`request longer than ${this.maxBytes} bytes`);
      // copy: the caller may reuse its buffer
      this.pending.push(Buffer.from(chunk.subarray(start)));
      this.pendingBytes += rest;
    }
  }

  private attribute(bytes: Buffer): void {
    if (bytes.includes(0)) throw new PolicyProtocolError('NUL in a request line');
    let text: string;
    try {
      text = this.decoder.decode(bytes);
    } catch {
      throw new PolicyProtocolError('request line is not UTF-8');
    }
    const eq = text.indexOf('=');
    if (eq === -1) throw new PolicyProtocolError(`request line without "=": ${JSON.stringify(text.slice(0, 60))}`);
    if (eq === 0) throw new PolicyProtocolError('request line with an empty attribute name');
    const name = text.slice(0, eq);
    if (!this.current.has(name) && this.current.size >= this.maxAttributes) throw new PolicyProtocolError(`more than ${this.maxAttributes} attributes`);
    this.current.set(name, text.slice(eq + 1));
  }
}

/** Encodes a request (for tests, the fuzzer and clients): attributes, then an empty line. */
export function encodeRequest(attributes: Iterable<[string, string]>): string {
  let out = '';
  for (const [name, value] of attributes) {
    if (name === '' || /[=\n\0]/.test(name) || /[\n\0]/.test(value)) throw new PolicyProtocolError(`cannot encode attribute ${JSON.stringify(name)}`);
    out += `${name}=${value}\n`;
  }
  return `${out}\n`;
}

/** The reply line for an action text (no line breaks allowed in it). */
export function encodeReply(action: string): string {
  return `action=${action.replace(/[\r\n\0]+/g, ' ')}\n\n`;
}
