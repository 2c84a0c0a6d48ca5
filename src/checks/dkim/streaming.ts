/**
 * What DKIM's and ARC's verifiers share: a message fed header field by header field, then the
 * body in chunks, then finish(). Calls come from the network, so a wrong order never throws: a
 * field after the end of the header block, or body after finish(), is ignored and counted.
 */
import { BodyHashes } from './body-hash.ts';
import { type HeaderField, headerField } from './fields.ts';

export interface MessageFormat {
  /** header values come without the white space after the colon (milter without HDR_LEADSPC) */
  leadingSpaceStripped: boolean;
  /** how string header values and body chunks become octets */
  encoding: 'utf8' | 'latin1';
}

export abstract class StreamingVerifier<R> {
  protected readonly fields: HeaderField[] = [];
  protected readonly bodyHashes = new BodyHashes();
  protected headersDone = false;
  private readonly format: MessageFormat;
  private finished = false;
  private outcome: Promise<R> | null = null;
  /** header() after endOfHeaders() and body() after finish(): ignored, counted here */
  ignoredCalls = 0;

  constructor(format: MessageFormat) {
    this.format = format;
  }

  /** One header field: name without the colon, value = everything after it, folding kept. */
  header(name: string, value: string): void {
    if (this.headersDone) {
      this.ignoredCalls++;
      return;
    }
    this.fields.push(headerField(name, this.format.leadingSpaceStripped ? ` ${value}` : value));
  }

  /** Header fields already split (by splitRawMessage, or shared with another verifier), in order. */
  headerFields(fields: readonly HeaderField[]): void {
    if (this.headersDone) {
      this.ignoredCalls++;
      return;
    }
    for (const f of fields) this.fields.push(f);
  }

  /** The header block is complete; called by body() and finish() if not before. Idempotent. */
  endOfHeaders(): void {
    if (this.headersDone) return;
    this.headersDone = true;
    this.prepare();
  }

  /** Parses the signatures in `fields`, registers their body hashes, starts the key look-ups. */
  protected abstract prepare(): void;

  /** A piece of the body, in order. Strings are encoded with the `encoding` option. */
  body(chunk: Uint8Array | string): void {
    if (this.finished) {
      this.ignoredCalls++;
      return;
    }
    if (!this.headersDone) this.endOfHeaders();
    if (!this.bodyHashes.needed) return;
    this.bodyHashes.update(typeof chunk === 'string' ? Buffer.from(chunk, this.format.encoding) : chunk);
  }

  /** Distinct body hashes being computed (one per canonicalization, hash and l=). */
  get bodyHashCount(): number {
    return this.bodyHashes.count;
  }

  /** Ends the body and settles the outcome. Idempotent. */
  finish(): Promise<R> {
    this.outcome ??= this.settle();
    return this.outcome;
  }

  private settle(): Promise<R> {
    if (!this.headersDone) this.endOfHeaders();
    this.finished = true;
    this.bodyHashes.finish();
    return this.conclude();
  }

  /** The outcome once the body hashes are complete. */
  protected abstract conclude(): Promise<R>;
}
