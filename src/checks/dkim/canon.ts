/**
 * DKIM canonicalization (RFC 6376 §3.4): header fields one at a time, and the body as a stream.
 *
 * The body canonicalizers never hold more than a fixed-size output buffer: the only thing that
 * must wait for more input is the run of line ends (and, for relaxed, white space) at the end of
 * what was seen so far, and that run is kept as counters, not bytes. So a 50 MB body of empty
 * lines or white space costs O(1) memory and one pass.
 *
 * Line ends: CRLF is a line end; so is a bare LF (treated as CRLF, as a mail server converting to
 * the SMTP wire form would). A CR not followed by LF is an ordinary character.
 *
 * Shared with ARC (RFC 8617 §5.1.1 uses the same algorithms for the AMS and the AS).
 */

export type Canonicalization = 'simple' | 'relaxed';

const WSP_RUN = /[ \t]+/g;
const EDGE_WSP = /^ | $/g;
const FOLD = /\r?\n/g;
const UPPER = /[A-Z]+/g;

const NON_ASCII = /[^\x00-\x7f]/;

/** Lower-cases ASCII letters only (header field names are ASCII; nothing else may change). */
export function asciiLower(s: string): string {
  if (!/[A-Z]/.test(s)) return s;
  return NON_ASCII.test(s) ? s.replace(UPPER, (m) => m.toLowerCase()) : s.toLowerCase();
}

/** "simple" header canonicalization (§3.4.1): the field as received, folding kept, CRLF ends. */
export function canonicalizeHeaderSimple(name: string, value: string): string {
  const v = value.includes('\n') ? value.replace(FOLD, '\r\n') : value;
  return `${name}:${v}`;
}

/** The value part of "relaxed" header canonicalization: unfolded, WSP runs as one SP, trimmed. */
export function relaxedHeaderValue(value: string): string {
  let v = value;
  if (v.includes('\n')) v = v.replace(FOLD, '');
  v = v.replace(WSP_RUN, ' ');
  return v.length > 0 && (v.charCodeAt(0) === 0x20 || v.charCodeAt(v.length - 1) === 0x20)
    ? v.replace(EDGE_WSP, '')
    : v;
}

/**
 * "relaxed" header canonicalization (§3.4.2): the name in lower case without trailing WSP, the
 * value unfolded with WSP runs reduced to one SP and no WSP at either end, joined by ":".
 */
export function canonicalizeHeaderRelaxed(name: string, value: string): string {
  return `${asciiLower(name.replace(/[ \t]+$/, ''))}:${relaxedHeaderValue(value)}`;
}

/**
 * One header field canonicalized, without the trailing CRLF (callers add it, except for the
 * signature's own header field, which is hashed without one; §3.7).
 */
export function canonicalizeHeader(c: Canonicalization, name: string, value: string): string {
  return c === 'relaxed' ? canonicalizeHeaderRelaxed(name, value) : canonicalizeHeaderSimple(name, value);
}

/** Where canonical body octets go (a hash, or a set of hashes). */
export type BodySink = (data: Uint8Array) => void;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;

/** 4 KiB of CRLF pairs: held-back line ends are written from here, never from a growing buffer. */
const CRLFS = Buffer.from('\r\n'.repeat(2048), 'latin1');
const CRLF = CRLFS.subarray(0, 2);

/** A streaming body canonicalizer. */
export interface BodyCanonicalizer {
  readonly kind: Canonicalization;
  /** canonical octets emitted so far (after finish(): the canonical body length) */
  readonly length: number;
  /** body octets this canonicalizer holds between calls: always 0 (its state is counters) */
  readonly bufferedBytes: number;
  /** line ends withheld because they may turn out to be trailing empty lines (a counter) */
  readonly heldLineEnds: number;
  update(chunk: Uint8Array): void;
  finish(): void;
}

/**
 * What both body canonicalizers keep between calls: where their output goes, how much they wrote,
 * the line ends held back (counted, written only when content follows them) and a CR that ended
 * the last chunk (the next one says whether it began a CRLF).
 */
abstract class BodyCanonicalizerBase implements BodyCanonicalizer {
  abstract readonly kind: Canonicalization;
  length = 0;
  readonly bufferedBytes = 0;
  protected readonly sink: BodySink;
  protected pending = 0;
  protected heldCr = false;
  protected finished = false;

  constructor(sink: BodySink) {
    this.sink = sink;
  }

  get heldLineEnds(): number {
    return this.pending;
  }

  abstract update(chunk: Uint8Array): void;
  abstract finish(): void;
}

/**
 * "simple" body canonicalization (§3.4.3): the body as is, except that empty lines at the end are
 * dropped and a missing final CRLF is added (an empty body becomes one CRLF). Output is passed to
 * the sink as views of the input, so nothing is copied unless a bare LF needs a CR.
 */
export class SimpleBodyCanonicalizer extends BodyCanonicalizerBase {
  readonly kind = 'simple';

  private emit(data: Uint8Array): void {
    if (data.length === 0) return;
    this.length += data.length;
    this.sink(data);
  }

  private flushPending(): void {
    let n = this.pending;
    this.pending = 0;
    while (n > 0) {
      const k = Math.min(n, CRLFS.length / 2);
      this.emit(CRLFS.subarray(0, 2 * k));
      n -= k;
    }
  }

  /** Emits chunk[start, end) with bare LFs written as CRLF. */
  private emitConverted(chunk: Uint8Array, start: number, end: number): void {
    let run = start;
    let lf = chunk.indexOf(LF, start);
    while (lf >= 0 && lf < end) {
      if (lf === start ? true : chunk[lf - 1] !== CR) {
        // a bare LF (at `start` the byte before was never a pending CR: see update())
        this.emit(chunk.subarray(run, lf));
        this.emit(CRLF);
        run = lf + 1;
      }
      lf = chunk.indexOf(LF, lf + 1);
    }
    this.emit(chunk.subarray(run, end));
  }

  update(chunk: Uint8Array): void {
    if (this.finished) throw new Error('body canonicalizer already finished');
    let start = 0;
    const n = chunk.length;
    if (n === 0) return;
    if (this.heldCr) {
      this.heldCr = false;
      if (chunk[0] === LF) {
        this.pending++;
        start = 1;
      } else {
        this.flushPending();
        this.emit(CRLF.subarray(0, 1));
      }
    }
    let end = n;
    if (end > start && chunk[end - 1] === CR) {
      this.heldCr = true;
      end--;
    }
    // the run of line ends at the end of the chunk is held back as a count
    let tail = 0;
    while (end > start && chunk[end - 1] === LF) {
      tail++;
      end -= end - 1 > start && chunk[end - 2] === CR ? 2 : 1;
    }
    if (end > start) {
      this.flushPending();
      // a LF at `start` after a consumed CRLF is bare; emitConverted treats it so
      this.emitConverted(chunk, start, end);
      this.pending = tail;
    } else {
      this.pending += tail;
    }
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.heldCr) {
      this.heldCr = false;
      this.flushPending();
      this.emit(CRLF.subarray(0, 1));
    }
    this.pending = 0;
    this.emit(CRLF);
  }
}

/** Size of the scratch buffer relaxed canonicalization writes its output through. */
export const RELAXED_BUFFER_SIZE = 16 * 1024;

/**
 * The one output buffer every relaxed canonicalizer writes through. update() and finish() fill it
 * and hand it to the sink before they return, so nothing stays in it between calls and no
 * per-message buffer is allocated. Sinks must therefore consume what they get synchronously (a
 * hash does) and copy anything they keep.
 */
const SCRATCH = new Uint8Array(RELAXED_BUFFER_SIZE);

/**
 * "relaxed" body canonicalization (§3.4.4): white space at the end of lines removed, other runs of
 * WSP reduced to one SP, empty lines at the end dropped, and a CRLF added after a non-empty body
 * that lacks one (an empty body stays empty). Between calls its whole state is two counters and
 * two flags.
 */
export class RelaxedBodyCanonicalizer extends BodyCanonicalizerBase {
  readonly kind = 'relaxed';
  private space = false;

  /** Hands SCRATCH[0, o) to the sink; returns the new fill (0). */
  private flush(o: number): number {
    if (o > 0) {
      this.length += o;
      this.sink(SCRATCH.subarray(0, o));
    }
    return 0;
  }

  /** Writes the held line ends and white space that a following content octet makes real. */
  private release(o: number): number {
    const out = SCRATCH;
    while (this.pending > 0) {
      if (o + 2 > out.length) o = this.flush(o);
      const k = Math.min(this.pending, (out.length - o) >> 1);
      for (let i = 0; i < k; i++) {
        out[o++] = CR;
        out[o++] = LF;
      }
      this.pending -= k;
    }
    if (this.space) {
      if (o === out.length) o = this.flush(o);
      out[o++] = SP;
      this.space = false;
    }
    return o;
  }

  update(chunk: Uint8Array): void {
    if (this.finished) throw new Error('body canonicalizer already finished');
    const out = SCRATCH;
    const cap = out.length;
    const n = chunk.length;
    let o = 0;
    let i = 0;
    if (this.heldCr && n > 0) {
      this.heldCr = false;
      if (chunk[0] === LF) {
        this.space = false;
        this.pending++;
        i = 1;
      } else {
        o = this.release(o);
        out[o++] = CR;
      }
    }
    let pending = this.pending;
    let space = this.space;
    while (i < n) {
      if (pending === 0 && !space) {
        // the fast path: ordinary octets, and single spaces between them, are copied as they are
        let stop = i + (cap - o);
        if (stop > n) stop = n;
        while (i < stop) {
          const b = chunk[i]!;
          if (b > SP || (b === SP && i + 1 < n && chunk[i + 1]! > SP)) {
            out[o++] = b;
            i++;
          } else break;
        }
        if (o === cap) {
          o = this.flush(o);
          continue;
        }
        if (i === n) break;
      }
      const b = chunk[i++]!;
      if (b === SP || b === HTAB) {
        space = true;
      } else if (b === LF) {
        space = false;
        pending++;
      } else if (b === CR && i < n && chunk[i] === LF) {
        space = false;
        pending++;
        i++;
      } else if (b === CR && i === n) {
        this.heldCr = true;
      } else {
        // content (including a CR not followed by LF and other control characters)
        if (pending !== 0 || space) {
          this.pending = pending;
          this.space = space;
          o = this.release(o);
          pending = 0;
          space = false;
        }
        if (o === cap) o = this.flush(o);
        out[o++] = b;
      }
    }
    this.pending = pending;
    this.space = space;
    this.flush(o);
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    let o = 0;
    if (this.heldCr) {
      this.heldCr = false;
      o = this.release(o);
      if (o === SCRATCH.length) o = this.flush(o);
      SCRATCH[o++] = CR;
    }
    this.flush(o);
    this.pending = 0;
    this.space = false;
    if (this.length > 0) {
      this.length += 2;
      this.sink(CRLF);
    }
  }
}

export function createBodyCanonicalizer(c: Canonicalization, sink: BodySink): BodyCanonicalizer {
  return c === 'relaxed' ? new RelaxedBodyCanonicalizer(sink) : new SimpleBodyCanonicalizer(sink);
}

/** A whole body canonicalized at once (tests, signing small messages, and the fuzzer's oracle). */
export function canonicalizeBody(c: Canonicalization, body: Uint8Array | string): Buffer {
  const parts: Buffer[] = [];
  const canon = createBodyCanonicalizer(c, (d) => parts.push(Buffer.from(d)));
  canon.update(typeof body === 'string' ? Buffer.from(body, 'latin1') : body);
  canon.finish();
  return Buffer.concat(parts);
}
