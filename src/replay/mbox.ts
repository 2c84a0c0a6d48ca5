/**
 * A streaming mbox reader: bytes in, one message at a time out, never the whole file in memory.
 *
 * Separators. A message starts at a "From " line (the postmark, e.g.
 * `From alice@example.com Mon Jun  3 10:00:00 2024`). Writers quote body lines that would look
 * like one, so in a well-written file every "From " line is a separator; to survive files whose
 * body lines were not quoted, a "From " line only counts when it is at most 1000 octets and
 * carries a time of day (`h:mm` or `hh:mm`), as every asctime-style postmark does. The first
 * line of the file is a separator whatever it holds. Content-Length (mboxcl/mboxcl2) is ignored.
 *
 * Unquoting. mboxrd (the default) removes one ">" from every line matching `>+From `; mboxo
 * removes it only from `>From ` (mboxo writers quote just that form, so `>>From ` is literal).
 *
 * The blank line a writer puts after each message (before the next postmark, or at the end of
 * the file) is removed; line ends are kept as stored (LF or CRLF). A message larger than
 * `maxMessageBytes` is reported as an error item (its bytes are not kept) and reading goes on.
 */
import { createReadStream } from 'node:fs';

export type MboxFormat = 'mboxrd' | 'mboxo';

export interface MboxOptions {
  format?: MboxFormat;
  /** a message larger than this (after unquoting) becomes an error item; default 64 MiB */
  maxMessageBytes?: number;
}

export type MboxItem =
  | {
      kind: 'message';
      /** byte offset of the postmark line in the file */
      offset: number;
      /** 1-based position in the file */
      index: number;
      /** the postmark line without "From " and the line end */
      postmark: string;
      raw: Buffer;
    }
  | { kind: 'error'; offset: number; index: number; error: string };

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** longer "From " lines are never postmarks, so an incomplete line longer than this is content */
const MAX_POSTMARK = 1000;
const LF = 0x0a;
const CR = 0x0d;
const GT = 0x3e;
const FROM_ = Buffer.from('From ', 'latin1');
const TIME = /\d{1,2}:\d\d/;

function startsWithFrom(buf: Buffer, at: number): boolean {
  return buf.length - at >= 5 && buf[at] === 0x46 && buf.compare(FROM_, 0, 5, at, at + 5) === 0;
}

function isBlank(line: Buffer): boolean {
  return (line.length === 1 && line[0] === LF) || (line.length === 2 && line[0] === CR && line[1] === LF);
}

/** The push parser: feed chunks, collect items; `end()` flushes the last message. */
export class MboxSplitter {
  private readonly format: MboxFormat;
  private readonly max: number;
  /** bytes of an incomplete line carried to the next chunk (at most MAX_POSTMARK + chunk) */
  private carry: Buffer | null = null;
  /** file offset of the first byte of the next chunk (or of `carry` when there is one) */
  private base = 0;
  /** inside a line longer than MAX_POSTMARK, already passed on as content */
  private midLine = false;
  private started = false;
  private index = 0;
  private current: { offset: number; postmark: string; parts: Buffer[]; size: number; tooBig: boolean } | null = null;
  /** a blank line held back: dropped if a postmark (or the end) follows, else content */
  private pendingBlank: Buffer | null = null;
  private out: MboxItem[] = [];
  /** text came before the first postmark (reported once) */
  private preamble = false;

  constructor(options: MboxOptions = {}) {
    this.format = options.format ?? 'mboxrd';
    this.max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  push(chunk: Buffer): MboxItem[] {
    let buf = chunk;
    let base = this.base;
    if (this.carry) {
      buf = Buffer.concat([this.carry, chunk]);
      base -= this.carry.length;
      this.carry = null;
    }
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(LF, pos);
      if (this.midLine) {
        const end = nl < 0 ? buf.length : nl + 1;
        this.content(buf.subarray(pos, end));
        if (nl >= 0) this.midLine = false;
        pos = end;
        continue;
      }
      if (nl < 0) {
        const rest = buf.subarray(pos);
        if (rest.length > MAX_POSTMARK) {
          // too long to be a postmark: content, whatever follows on this line
          this.line(rest, base + pos, false);
          this.midLine = true;
        } else {
          // copied: the chunk may be a view of a buffer its owner reuses
          this.carry = Buffer.from(rest);
        }
        break;
      }
      this.line(buf.subarray(pos, nl + 1), base + pos, true);
      pos = nl + 1;
    }
    // the offset of the next chunk's first byte (a carry is re-based in the next push)
    this.base = base + buf.length;
    return this.take();
  }

  end(): MboxItem[] {
    if (this.carry) {
      const rest = this.carry;
      this.carry = null;
      this.line(rest, this.base - rest.length, true);
    }
    this.pendingBlank = null;
    this.finish();
    return this.take();
  }

  private take(): MboxItem[] {
    const items = this.out;
    this.out = [];
    return items;
  }

  /** One line (with its line end when `complete`), starting at file offset `offset`. */
  private line(line: Buffer, offset: number, complete: boolean): void {
    if (complete && startsWithFrom(line, 0) && line.length <= MAX_POSTMARK) {
      const text = line.toString('latin1', 5).replace(/\r?\n$/, '');
      if (!this.started || TIME.test(text)) {
        this.pendingBlank = null;
        this.finish();
        this.started = true;
        this.current = { offset, postmark: text, parts: [], size: 0, tooBig: false };
        this.index++;
        return;
      }
    }
    if (!this.started) {
      if (!this.preamble) this.out.push({ kind: 'error', offset, index: 0, error: 'text before the first "From " line: skipped' });
      this.preamble = true;
      return;
    }
    if (this.pendingBlank) {
      this.content(this.pendingBlank);
      this.pendingBlank = null;
    }
    if (complete && isBlank(line)) {
      this.pendingBlank = Buffer.from(line);
      return;
    }
    if (line[0] === GT) {
      // mboxrd: >+From → one ">" less; mboxo: only >From
      let i = 1;
      if (this.format === 'mboxrd') while (i < line.length && line[i] === GT) i++;
      if (startsWithFrom(line, i)) {
        this.content(line.subarray(1));
        return;
      }
    }
    this.content(line);
  }

  private content(bytes: Buffer): void {
    const m = this.current;
    if (!m) return;
    if (m.tooBig) return;
    m.size += bytes.length;
    if (m.size > this.max) {
      m.tooBig = true;
      m.parts = [];
      return;
    }
    m.parts.push(bytes);
  }

  private finish(): void {
    const m = this.current;
    if (!m) return;
    this.current = null;
    if (m.tooBig) {
      this.out.push({ kind: 'error', offset: m.offset, index: this.index, error: `message larger than ${this.max} bytes: skipped` });
      return;
    }
    this.out.push({ kind: 'message', offset: m.offset, index: this.index, postmark: m.postmark, raw: Buffer.concat(m.parts, m.size) });
  }
}

/**
 * Reads an mbox file as a stream of items. `onBytes` is told how many bytes were read so far
 * (progress). Consumption drives reading: the file is read only as fast as items are taken.
 */
export async function* readMbox(
  path: string,
  options: MboxOptions & { onBytes?: (bytes: number) => void } = {},
): AsyncGenerator<MboxItem> {
  const splitter = new MboxSplitter(options);
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  let bytes = 0;
  try {
    for await (const chunk of stream) {
      bytes += (chunk as Buffer).length;
      options.onBytes?.(bytes);
      yield* splitter.push(chunk as Buffer);
    }
    yield* splitter.end();
  } finally {
    stream.destroy();
  }
}
