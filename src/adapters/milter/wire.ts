/**
 * The milter wire codec (layer 1 of 3): framing, the commands an MTA sends (SMFIC_*), the
 * responses a filter sends (SMFIR_*), and the flag constants of protocol versions 2 to 6. Pure
 * functions and a streaming frame decoder; no sockets, no state beyond the decoder's buffer.
 *
 *   uint32 length (big-endian; counts the command byte and the data) | command byte | data
 *
 * Strings are NUL-terminated; a "string list" is a run of them filling the rest of the frame.
 * Both directions are here: the filter side decodes commands and encodes responses, the MTA side
 * (our test client, the fuzzer) encodes commands and decodes responses.
 */

/** A frame that breaks the protocol: the connection must be closed (the MTA applies its default). */
export class MilterProtocolError extends Error {
  override name = 'MilterProtocolError';
}

/** Commands, MTA → filter. */
export const SMFIC = {
  ABORT: 0x41, // 'A'
  BODY: 0x42, // 'B'
  CONNECT: 0x43, // 'C'
  MACRO: 0x44, // 'D'
  BODYEOB: 0x45, // 'E'
  HELO: 0x48, // 'H'
  QUIT_NC: 0x4b, // 'K'
  HEADER: 0x4c, // 'L'
  MAIL: 0x4d, // 'M'
  EOH: 0x4e, // 'N'
  OPTNEG: 0x4f, // 'O'
  QUIT: 0x51, // 'Q'
  RCPT: 0x52, // 'R'
  DATA: 0x54, // 'T'
  UNKNOWN: 0x55, // 'U'
} as const;

/** Responses, filter → MTA (OPTNEG answers with the command's own byte 'O'). */
export const SMFIR = {
  ADDRCPT: 0x2b, // '+'
  DELRCPT: 0x2d, // '-'
  ADDRCPT_PAR: 0x32, // '2'
  SHUTDOWN: 0x34, // '4'
  OPTNEG: 0x4f, // 'O'
  ACCEPT: 0x61, // 'a'
  REPLBODY: 0x62, // 'b'
  CONTINUE: 0x63, // 'c'
  DISCARD: 0x64, // 'd'
  CHGFROM: 0x65, // 'e'
  CONN_FAIL: 0x66, // 'f'
  ADDHEADER: 0x68, // 'h'
  INSHEADER: 0x69, // 'i'
  SETSYMLIST: 0x6c, // 'l'
  CHGHEADER: 0x6d, // 'm'
  PROGRESS: 0x70, // 'p'
  QUARANTINE: 0x71, // 'q'
  REJECT: 0x72, // 'r'
  SKIP: 0x73, // 's'
  TEMPFAIL: 0x74, // 't'
  REPLYCODE: 0x79, // 'y'
} as const;

/** Action flags (what the filter may do at end of message), SMFIF_*. */
export const SMFIF = {
  ADDHDRS: 0x001,
  CHGBODY: 0x002,
  ADDRCPT: 0x004,
  DELRCPT: 0x008,
  CHGHDRS: 0x010,
  QUARANTINE: 0x020,
  CHGFROM: 0x040,
  ADDRCPT_PAR: 0x080,
  SETSYMLIST: 0x100,
} as const;
/** Actions an MTA that sends 0 means (libmilter's reading), and all of version 6. */
export const SMFI_V1_ACTS = 0x0f;
export const SMFI_V2_ACTS = 0x3f;
export const SMFI_CURR_ACTS = 0x1ff;

/** Protocol flags, SMFIP_*: steps not to send (NO*), steps not answered (NR_*), extras. */
export const SMFIP = {
  NOCONNECT: 0x000001,
  NOHELO: 0x000002,
  NOMAIL: 0x000004,
  NORCPT: 0x000008,
  NOBODY: 0x000010,
  NOHDRS: 0x000020,
  NOEOH: 0x000040,
  /** also known as NOHREPL (version 2): no reply to each header */
  NR_HDR: 0x000080,
  NOUNKNOWN: 0x000100,
  NODATA: 0x000200,
  SKIP: 0x000400,
  RCPT_REJ: 0x000800,
  NR_CONN: 0x001000,
  NR_HELO: 0x002000,
  NR_MAIL: 0x004000,
  NR_RCPT: 0x008000,
  NR_DATA: 0x010000,
  NR_UNKN: 0x020000,
  NR_EOH: 0x040000,
  NR_BODY: 0x080000,
  HDR_LEADSPC: 0x100000,
  MDS_256K: 0x10000000,
  MDS_1M: 0x20000000,
} as const;
export const SMFI_V1_PROT = 0x3f;
export const SMFI_V2_PROT = 0x7f;
export const SMFI_CURR_PROT = 0x1fffff;

/** Macro stages of the SETSYMLIST wish list (SMFIM_*). */
export const SMFIM = { CONNECT: 0, HELO: 1, ENVFROM: 2, ENVRCPT: 3, DATA: 4, EOM: 5, EOH: 6 } as const;

/** MILTER_CHUNK_SIZE: the most body bytes an MTA puts in one BODY frame, and we in one REPLBODY. */
export const MILTER_CHUNK_SIZE = 65535;
/**
 * The default limit on a frame's length field: two body chunks' worth, which also fits one header
 * of Postfix's default header_size_limit (102400). Longer frames are a protocol error.
 */
export const DEFAULT_MAX_FRAME = 2 * (MILTER_CHUNK_SIZE + 1);

/** One frame: the command (or response) byte and its data. */
export interface Frame {
  code: number;
  data: Buffer;
}

export type ConnectFamily = 'inet' | 'inet6' | 'unix' | 'unknown';
const FAMILY_BYTE: Record<ConnectFamily, number> = { inet: 0x34, inet6: 0x36, unix: 0x4c, unknown: 0x55 };

/** Commands, as decoded. Strings are UTF-8; header values keep their raw bytes too. */
export type MilterCommand =
  | { kind: 'OPTNEG'; version: number; actions: number; protocol: number }
  /** stage: the command letter the macros go with ('C', 'H', 'M', 'R', 'T', 'L', 'N', 'B', 'E', 'U') */
  | { kind: 'MACRO'; stage: string; macros: Array<[string, string]> }
  | { kind: 'CONNECT'; hostname: string; family: ConnectFamily; port: number; address: string }
  | { kind: 'HELO'; name: string }
  /** args[0] is the address with its angle brackets; ESMTP parameters follow */
  | { kind: 'MAIL'; args: string[] }
  | { kind: 'RCPT'; args: string[] }
  | { kind: 'DATA' }
  | { kind: 'HEADER'; name: string; value: string; rawValue?: Buffer }
  | { kind: 'EOH' }
  | { kind: 'BODY'; chunk: Buffer }
  /** libmilter accepts a last body chunk riding on end of message */
  | { kind: 'BODYEOB'; chunk: Buffer }
  | { kind: 'ABORT' }
  | { kind: 'QUIT' }
  | { kind: 'QUIT_NC' }
  | { kind: 'UNKNOWN'; line: string };

export type CommandKind = MilterCommand['kind'];

type Bytes = string | Uint8Array;

/** Responses. Text fields are strings (sent as UTF-8) or raw bytes. */
export type MilterResponse =
  | { kind: 'OPTNEG'; version: number; actions: number; protocol: number; symbols?: Array<{ stage: number; macros: string }> }
  | { kind: 'ACCEPT' }
  | { kind: 'CONTINUE' }
  | { kind: 'REJECT' }
  | { kind: 'TEMPFAIL' }
  | { kind: 'DISCARD' }
  | { kind: 'SKIP' }
  | { kind: 'PROGRESS' }
  | { kind: 'CONN_FAIL' }
  | { kind: 'SHUTDOWN' }
  /** the whole reply text, already formatted (see replyCodeText) */
  | { kind: 'REPLYCODE'; text: string }
  | { kind: 'ADDHEADER'; name: string; value: Bytes }
  | { kind: 'INSHEADER'; index: number; name: string; value: Bytes }
  /** index: 1-based among the headers of that name; an empty value deletes the header */
  | { kind: 'CHGHEADER'; index: number; name: string; value: Bytes }
  | { kind: 'ADDRCPT'; rcpt: string }
  | { kind: 'ADDRCPT_PAR'; rcpt: string; args?: string }
  | { kind: 'DELRCPT'; rcpt: string }
  | { kind: 'QUARANTINE'; reason: string }
  | { kind: 'CHGFROM'; sender: string; args?: string }
  | { kind: 'REPLBODY'; chunk: Uint8Array }
  | { kind: 'SETSYMLIST'; stage: number; macros: string };

export type ResponseKind = MilterResponse['kind'];

/** The responses that end a step (as opposed to modifications and PROGRESS). */
export const FINAL_RESPONSES: ReadonlySet<ResponseKind> = new Set(['ACCEPT', 'CONTINUE', 'REJECT', 'TEMPFAIL', 'DISCARD', 'SKIP', 'REPLYCODE', 'SHUTDOWN', 'CONN_FAIL']);

// --- framing ---------------------------------------------------------------------------------

/** One frame's bytes. */
export function encodeFrame(code: number, data: Uint8Array = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(5 + data.length);
  out.writeUInt32BE(data.length + 1, 0);
  out[4] = code;
  out.set(data, 5);
  return out;
}

const EMPTY = Buffer.alloc(0);

/**
 * A streaming frame decoder: feed it whatever the socket delivers (part of a frame, several
 * frames) and get the complete frames back. A length of 0 or over `maxFrame` is refused as soon
 * as its four bytes have arrived, before anything is buffered for it; after an error the decoder
 * stays failed.
 */
export class FrameDecoder {
  readonly maxFrame: number;
  private chunks: Buffer[] = [];
  private size = 0;
  private failed: MilterProtocolError | null = null;

  constructor(maxFrame = DEFAULT_MAX_FRAME) {
    this.maxFrame = maxFrame;
  }

  /** Bytes held for a frame not yet complete. */
  get buffered(): number {
    return this.size;
  }

  push(chunk: Uint8Array): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.size += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.size >= 4) {
      const length = this.peekLength();
      if (length === 0 || length > this.maxFrame) {
        this.failed = new MilterProtocolError(
          length === 0 ? 'frame length 0 (a frame holds at least its command byte)' : `frame length ${length} exceeds the limit of ${this.maxFrame} bytes`,
        );
        this.chunks = [];
        this.size = 0;
        throw this.failed;
      }
      if (this.size < 4 + length) break;
      const bytes = this.take(4 + length);
      frames.push({ code: bytes[4]!, data: bytes.subarray(5) });
    }
    return frames;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.concat(this.chunks, Math.min(this.size, 8));
    return head.readUInt32BE(0);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const want = n - at;
        if (c.length <= want) {
          c.copy(out, at);
          at += c.length;
          this.chunks.shift();
        } else {
          c.copy(out, at, 0, want);
          this.chunks[0] = c.subarray(want);
          at += want;
        }
      }
    }
    this.size -= n;
    return out;
  }
}

// --- field readers ---------------------------------------------------------------------------

function name(code: number): string {
  const c = String.fromCharCode(code);
  return /[\x21-\x7e]/.test(c) ? `'${c}'` : `0x${code.toString(16).padStart(2, '0')}`;
}

/** The NUL-terminated strings filling `data` (every one must be terminated). */
function strings(data: Buffer, what: string): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const nul = data.indexOf(0, at);
    if (nul < 0) throw new MilterProtocolError(`${what}: string not NUL-terminated`);
    out.push(data.subarray(at, nul));
    at = nul + 1;
  }
  return out;
}

/** The first NUL-terminated string of `data` and where the rest starts. */
function cstring(data: Buffer, at: number, what: string): [Buffer, number] {
  const nul = data.indexOf(0, at);
  if (nul < 0) throw new MilterProtocolError(`${what}: string not NUL-terminated`);
  return [data.subarray(at, nul), nul + 1];
}

const utf8 = (b: Buffer): string => b.toString('utf8');

/** Decodes one MTA → filter frame. Throws MilterProtocolError for anything malformed. */
export function decodeCommand(frame: Frame): MilterCommand {
  const d = frame.data;
  switch (frame.code) {
    case SMFIC.OPTNEG:
      if (d.length < 12) throw new MilterProtocolError(`OPTNEG: ${d.length} bytes, need 12`);
      return { kind: 'OPTNEG', version: d.readUInt32BE(0), actions: d.readUInt32BE(4), protocol: d.readUInt32BE(8) };
    case SMFIC.MACRO: {
      if (d.length < 1) throw new MilterProtocolError('MACRO: no stage byte');
      const list = strings(d.subarray(1), 'MACRO');
      if (list.length % 2 !== 0) throw new MilterProtocolError(`MACRO: ${list.length} strings, not name/value pairs`);
      const macros: Array<[string, string]> = [];
      for (let i = 0; i < list.length; i += 2) macros.push([utf8(list[i]!), utf8(list[i + 1]!)]);
      return { kind: 'MACRO', stage: String.fromCharCode(d[0]!), macros };
    }
    case SMFIC.CONNECT: {
      const [host, at] = cstring(d, 0, 'CONNECT hostname');
      if (at >= d.length) throw new MilterProtocolError('CONNECT: no address family');
      const familyByte = d[at]!;
      const family = (Object.keys(FAMILY_BYTE) as ConnectFamily[]).find((f) => FAMILY_BYTE[f] === familyByte);
      if (!family) throw new MilterProtocolError(`CONNECT: unknown address family ${name(familyByte)}`);
      if (family === 'unknown') return { kind: 'CONNECT', hostname: utf8(host), family, port: 0, address: '' };
      if (at + 3 > d.length) throw new MilterProtocolError('CONNECT: no port');
      const port = d.readUInt16BE(at + 1);
      const [address, end] = cstring(d, at + 3, 'CONNECT address');
      if (end !== d.length) throw new MilterProtocolError('CONNECT: bytes after the address');
      return { kind: 'CONNECT', hostname: utf8(host), family, port, address: utf8(address) };
    }
    case SMFIC.HELO: {
      const [helo] = cstring(d, 0, 'HELO');
      return { kind: 'HELO', name: utf8(helo) };
    }
    case SMFIC.MAIL:
    case SMFIC.RCPT: {
      const kind = frame.code === SMFIC.MAIL ? 'MAIL' : 'RCPT';
      const args = strings(d, kind).map(utf8);
      if (args.length === 0) throw new MilterProtocolError(`${kind}: no address`);
      return { kind, args };
    }
    case SMFIC.HEADER: {
      const list = strings(d, 'HEADER');
      if (list.length !== 2) throw new MilterProtocolError(`HEADER: ${list.length} strings, need name and value`);
      return { kind: 'HEADER', name: utf8(list[0]!), value: utf8(list[1]!), rawValue: list[1]! };
    }
    case SMFIC.BODY:
      return { kind: 'BODY', chunk: d };
    case SMFIC.BODYEOB:
      return { kind: 'BODYEOB', chunk: d };
    case SMFIC.UNKNOWN: {
      const [line] = cstring(d, 0, 'UNKNOWN');
      return { kind: 'UNKNOWN', line: utf8(line) };
    }
    // commands without data; libmilter ignores any that comes with them, and so do we
    case SMFIC.DATA:
      return { kind: 'DATA' };
    case SMFIC.EOH:
      return { kind: 'EOH' };
    case SMFIC.ABORT:
      return { kind: 'ABORT' };
    case SMFIC.QUIT:
      return { kind: 'QUIT' };
    case SMFIC.QUIT_NC:
      return { kind: 'QUIT_NC' };
    default:
      throw new MilterProtocolError(`unknown command ${name(frame.code)}`);
  }
}

// --- encoders --------------------------------------------------------------------------------

const bytesOf = (s: Bytes): Buffer => (typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s.buffer, s.byteOffset, s.length));

/** NUL-terminated strings, concatenated. */
function cstrings(...parts: Bytes[]): Buffer {
  const bufs: Buffer[] = [];
  for (const p of parts) bufs.push(bytesOf(p), ZERO);
  return Buffer.concat(bufs);
}
const ZERO = Buffer.from([0]);

function u32(...values: number[]): Buffer {
  const out = Buffer.allocUnsafe(4 * values.length);
  for (let i = 0; i < values.length; i++) out.writeUInt32BE(values[i]! >>> 0, 4 * i);
  return out;
}

/** One MTA → filter frame (used by the test client and the fuzzer). */
export function encodeCommand(cmd: MilterCommand): Buffer {
  switch (cmd.kind) {
    case 'OPTNEG':
      return encodeFrame(SMFIC.OPTNEG, u32(cmd.version, cmd.actions, cmd.protocol));
    case 'MACRO':
      return encodeFrame(SMFIC.MACRO, Buffer.concat([Buffer.from([cmd.stage.charCodeAt(0) & 0xff]), cstrings(...cmd.macros.flat())]));
    case 'CONNECT': {
      const head = Buffer.concat([cstrings(cmd.hostname), Buffer.from([FAMILY_BYTE[cmd.family]])]);
      if (cmd.family === 'unknown') return encodeFrame(SMFIC.CONNECT, head);
      const port = Buffer.allocUnsafe(2);
      port.writeUInt16BE(cmd.port & 0xffff, 0);
      return encodeFrame(SMFIC.CONNECT, Buffer.concat([head, port, cstrings(cmd.address)]));
    }
    case 'HELO':
      return encodeFrame(SMFIC.HELO, cstrings(cmd.name));
    case 'MAIL':
      return encodeFrame(SMFIC.MAIL, cstrings(...cmd.args));
    case 'RCPT':
      return encodeFrame(SMFIC.RCPT, cstrings(...cmd.args));
    case 'HEADER':
      return encodeFrame(SMFIC.HEADER, cstrings(cmd.name, cmd.rawValue ?? cmd.value));
    case 'BODY':
      return encodeFrame(SMFIC.BODY, cmd.chunk);
    case 'BODYEOB':
      return encodeFrame(SMFIC.BODYEOB, cmd.chunk);
    case 'UNKNOWN':
      return encodeFrame(SMFIC.UNKNOWN, cstrings(cmd.line));
    case 'DATA':
      return encodeFrame(SMFIC.DATA);
    case 'EOH':
      return encodeFrame(SMFIC.EOH);
    case 'ABORT':
      return encodeFrame(SMFIC.ABORT);
    case 'QUIT':
      return encodeFrame(SMFIC.QUIT);
    case 'QUIT_NC':
      return encodeFrame(SMFIC.QUIT_NC);
  }
}

/** One filter → MTA frame. */
export function encodeResponse(r: MilterResponse): Buffer {
  switch (r.kind) {
    case 'OPTNEG': {
      const parts = [u32(r.version, r.actions, r.protocol)];
      for (const s of r.symbols ?? []) parts.push(u32(s.stage), cstrings(s.macros));
      return encodeFrame(SMFIR.OPTNEG, Buffer.concat(parts));
    }
    case 'ACCEPT':
    case 'CONTINUE':
    case 'REJECT':
    case 'TEMPFAIL':
    case 'DISCARD':
    case 'SKIP':
    case 'PROGRESS':
    case 'CONN_FAIL':
    case 'SHUTDOWN':
      return encodeFrame(SMFIR[r.kind]);
    case 'REPLYCODE':
      return encodeFrame(SMFIR.REPLYCODE, cstrings(r.text));
    case 'ADDHEADER':
      return encodeFrame(SMFIR.ADDHEADER, cstrings(r.name, r.value));
    case 'INSHEADER':
      return encodeFrame(SMFIR.INSHEADER, Buffer.concat([u32(r.index), cstrings(r.name, r.value)]));
    case 'CHGHEADER':
      return encodeFrame(SMFIR.CHGHEADER, Buffer.concat([u32(r.index), cstrings(r.name, r.value)]));
    case 'ADDRCPT':
      return encodeFrame(SMFIR.ADDRCPT, cstrings(r.rcpt));
    case 'ADDRCPT_PAR':
      return encodeFrame(SMFIR.ADDRCPT_PAR, r.args !== undefined ? cstrings(r.rcpt, r.args) : cstrings(r.rcpt));
    case 'DELRCPT':
      return encodeFrame(SMFIR.DELRCPT, cstrings(r.rcpt));
    case 'QUARANTINE':
      return encodeFrame(SMFIR.QUARANTINE, cstrings(r.reason));
    case 'CHGFROM':
      return encodeFrame(SMFIR.CHGFROM, r.args !== undefined ? cstrings(r.sender, r.args) : cstrings(r.sender));
    case 'REPLBODY':
      return encodeFrame(SMFIR.REPLBODY, r.chunk);
    case 'SETSYMLIST':
      return encodeFrame(SMFIR.SETSYMLIST, Buffer.concat([u32(r.stage), cstrings(r.macros)]));
  }
}

const SIMPLE: Record<number, ResponseKind> = {
  [SMFIR.ACCEPT]: 'ACCEPT',
  [SMFIR.CONTINUE]: 'CONTINUE',
  [SMFIR.REJECT]: 'REJECT',
  [SMFIR.TEMPFAIL]: 'TEMPFAIL',
  [SMFIR.DISCARD]: 'DISCARD',
  [SMFIR.SKIP]: 'SKIP',
  [SMFIR.PROGRESS]: 'PROGRESS',
  [SMFIR.CONN_FAIL]: 'CONN_FAIL',
  [SMFIR.SHUTDOWN]: 'SHUTDOWN',
};

function indexed(d: Buffer, what: string): { index: number; name: string; value: Buffer } {
  if (d.length < 4) throw new MilterProtocolError(`${what}: no index`);
  const list = strings(d.subarray(4), what);
  if (list.length !== 2) throw new MilterProtocolError(`${what}: ${list.length} strings, need name and value`);
  return { index: d.readUInt32BE(0), name: utf8(list[0]!), value: list[1]! };
}

/**
 * Decodes one filter → MTA frame (the MTA side: test client, fuzzer). Header values come back as
 * strings when they are valid UTF-8, else as raw bytes.
 */
export function decodeResponse(frame: Frame): MilterResponse {
  const d = frame.data;
  const simple = SIMPLE[frame.code];
  if (simple) {
    if (d.length > 0) throw new MilterProtocolError(`${simple}: unexpected ${d.length} bytes of data`);
    return { kind: simple } as MilterResponse;
  }
  const text = (b: Buffer): Bytes => (Buffer.from(b.toString('utf8'), 'utf8').equals(b) ? b.toString('utf8') : Buffer.from(b));
  const one = (what: string): string => utf8(cstring(d, 0, what)[0]);
  const oneOrTwo = (what: string): [string, string | undefined] => {
    const list = strings(d, what);
    if (list.length < 1 || list.length > 2) throw new MilterProtocolError(`${what}: ${list.length} strings`);
    return [utf8(list[0]!), list[1] !== undefined ? utf8(list[1]) : undefined];
  };
  switch (frame.code) {
    case SMFIR.OPTNEG: {
      if (d.length < 12) throw new MilterProtocolError(`OPTNEG reply: ${d.length} bytes, need 12`);
      const symbols: Array<{ stage: number; macros: string }> = [];
      let at = 12;
      while (at < d.length) {
        if (at + 4 > d.length) throw new MilterProtocolError('OPTNEG reply: truncated macro list stage');
        const stage = d.readUInt32BE(at);
        const [macros, next] = cstring(d, at + 4, 'OPTNEG reply macro list');
        symbols.push({ stage, macros: utf8(macros) });
        at = next;
      }
      return { kind: 'OPTNEG', version: d.readUInt32BE(0), actions: d.readUInt32BE(4), protocol: d.readUInt32BE(8), ...(symbols.length ? { symbols } : {}) };
    }
    case SMFIR.REPLYCODE:
      return { kind: 'REPLYCODE', text: one('REPLYCODE') };
    case SMFIR.ADDHEADER: {
      const list = strings(d, 'ADDHEADER');
      if (list.length !== 2) throw new MilterProtocolError(`ADDHEADER: ${list.length} strings, need name and value`);
      return { kind: 'ADDHEADER', name: utf8(list[0]!), value: text(list[1]!) };
    }
    case SMFIR.INSHEADER: {
      const h = indexed(d, 'INSHEADER');
      return { kind: 'INSHEADER', index: h.index, name: h.name, value: text(h.value) };
    }
    case SMFIR.CHGHEADER: {
      const h = indexed(d, 'CHGHEADER');
      return { kind: 'CHGHEADER', index: h.index, name: h.name, value: text(h.value) };
    }
    case SMFIR.ADDRCPT:
      return { kind: 'ADDRCPT', rcpt: one('ADDRCPT') };
    case SMFIR.ADDRCPT_PAR: {
      const [rcpt, args] = oneOrTwo('ADDRCPT_PAR');
      return { kind: 'ADDRCPT_PAR', rcpt, ...(args !== undefined ? { args } : {}) };
    }
    case SMFIR.DELRCPT:
      return { kind: 'DELRCPT', rcpt: one('DELRCPT') };
    case SMFIR.QUARANTINE:
      return { kind: 'QUARANTINE', reason: one('QUARANTINE') };
    case SMFIR.CHGFROM: {
      const [sender, args] = oneOrTwo('CHGFROM');
      return { kind: 'CHGFROM', sender, ...(args !== undefined ? { args } : {}) };
    }
    case SMFIR.REPLBODY:
      return { kind: 'REPLBODY', chunk: d };
    case SMFIR.SETSYMLIST: {
      if (d.length < 4) throw new MilterProtocolError('SETSYMLIST: no stage');
      return { kind: 'SETSYMLIST', stage: d.readUInt32BE(0), macros: utf8(cstring(d, 4, 'SETSYMLIST')[0]) };
    }
    default:
      throw new MilterProtocolError(`unknown response ${name(frame.code)}`);
  }
}

// --- REPLYCODE text --------------------------------------------------------------------------

/** libmilter's limits for smfi_setmlreply: 32 lines of at most 980 characters. */
const MAX_REPLY_LINES = 32;
/** RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its CRLF. */
const MAX_REPLY_LINE = 510;

/** Octets on the wire: UTF-8, with every '%' doubled. */
function octetsOf(s: string): number {
  let percents = 0;
  for (let i = s.indexOf('%'); i >= 0; i = s.indexOf('%', i + 1)) percents++;
  return Buffer.byteLength(s) + percents;
}

/**
 * The REPLYCODE payload for an SMTP reply, as libmilter's smfi_setmlreply builds it: every line
 * "code-xcode text" (the last with a space after the code), joined with CRLF; text longer than a
 * reply line is wrapped at spaces; '%' doubled (Sendmail reads the text as a format string).
 * `code` must be 4xx or 5xx; an enhanced code whose class differs from the code's is left out.
 */
export function replyCodeText(code: number, xcode: string, text: string): string {
  if (!Number.isInteger(code) || code < 400 || code > 599) throw new RangeError(`REPLYCODE needs a 4xx or 5xx code, not ${code}`);
  const cls = String(code)[0];
  const enhanced = /^[245]\.\d{1,3}\.\d{1,3}$/.test(xcode) && xcode[0] === cls ? xcode : '';
  const prefixLength = 4 + (enhanced ? enhanced.length + 1 : 0);
  const width = MAX_REPLY_LINE - prefixLength;
  const lines: string[] = [];
  for (const paragraph of text.replace(/\r\n?/g, '\n').split('\n')) {
    // wrap on code points, counting UTF-8 octets, at the last space before the width
    let rest = paragraph.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ' ');
    while (octetsOf(rest) > width) {
      let cut = 0;
      let octets = 0;
      for (const ch of rest) {
        const n = octetsOf(ch);
        if (octets + n > width) break;
        octets += n;
        cut += ch.length;
      }
      const space = rest.lastIndexOf(' ', cut);
      const at = space > 0 ? space : cut;
      lines.push(rest.slice(0, at));
      rest = rest.slice(at).replace(/^ /, '');
    }
    lines.push(rest);
  }
  while (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  const kept = lines.slice(0, MAX_REPLY_LINES);
  return kept
    .map((line, i) => {
      const sep = i === kept.length - 1 ? ' ' : '-';
      const body = (enhanced ? `${enhanced} ${line}` : line).replace(/%/g, '%%');
      return `${code}${sep}${body}`.trimEnd();
    })
    .join('\r\n');
}
