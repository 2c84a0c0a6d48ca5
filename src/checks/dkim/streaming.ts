/**
 * What DKIM's and ARC's verifiers share: a message fed header field by header field, then the
 * body in chunks, then finish(). Calls come from the network, so a wrong order never throws: a
 * field after the end of the header block, or body after finish(), is ignored and counted.
 * Also the steps both take to get a signature ready for the body: its times, its header hash
 * input, its body hash and its key look-up.
 */
import { type Clock, systemClock } from '../../common/clock.ts';
import { type BodyHash, BodyHashes } from './body-hash.ts';
import { type FieldIndex, type HeaderField, headerField, selectFields, signedHeaderText } from './fields.ts';
import { type DkimKeyCache, defaultKeyCache, type KeyLookup } from './key.ts';
import { checkSignatureTimes, type DkimSignature } from './signature.ts';
import type { DkimDeps } from './types.ts';

export interface MessageFormat {
  /** header values come without the white space after the colon (milter without HDR_LEADSPC) */
  leadingSpaceStripped: boolean;
  /** how string header values and body chunks become octets */
  encoding: 'utf8' | 'latin1';
}

/** What a verifier is set up with, besides its own options. */
export interface VerifierSetup extends MessageFormat {
  /** a t= more than this many seconds ahead of the clock refuses the signature */
  maxFutureSeconds: number;
}

/** A signature ready for its body: what checking it needs once the body hashes are complete. */
export interface PreparedSignature {
  /** the header hash input (RFC 6376 §3.7) */
  headerData: Buffer;
  /** the body hash it signs, computed as body() feeds it */
  target: BodyHash;
  /** the canonical body length so far */
  canonLength: () => number;
  /** the key look-up, never rejected: a failure or an abort is temperror */
  key: Promise<KeyLookup>;
}

/** The options given, those left undefined taking the defaults. */
export function withDefaults<T extends object>(defaults: Readonly<Required<T>>, options: T): Required<T> {
  const set: Partial<T> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (set as Record<string, unknown>)[k] = v;
  return { ...defaults, ...set } as Required<T>;
}

export abstract class StreamingVerifier<R> {
  protected readonly fields: HeaderField[] = [];
  protected readonly bodyHashes = new BodyHashes();
  protected headersDone = false;
  protected readonly clock: Clock;
  private readonly format: VerifierSetup;
  private readonly deps: DkimDeps;
  private readonly cache: DkimKeyCache;
  /** the reason a key look-up abandoned by the abort signal gives */
  private readonly abandoned: string;
  private finished = false;
  private outcome: Promise<R> | null = null;
  /** header() after endOfHeaders() and body() after finish(): ignored, counted here */
  ignoredCalls = 0;

  constructor(deps: DkimDeps, format: VerifierSetup, abandoned: string) {
    this.format = format;
    this.deps = deps;
    this.clock = deps.clock ?? systemClock;
    this.cache = deps.keyCache ?? defaultKeyCache(deps.resolver, this.clock);
    this.abandoned = abandoned;
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

  /**
   * Gets the parsed signature in the field at `at` ready for the body: its header hash input, its
   * body hash (registered now) and its key look-up (started now, so DNS overlaps the body). A
   * signature its times refuse (`now` in seconds) gives the reason instead, and costs nothing.
   */
  protected prepareSigned(sig: DkimSignature, at: number, index: FieldIndex, now: number): PreparedSignature | string {
    const late = checkSignatureTimes(sig, now, this.format.maxFutureSeconds);
    if (late) return late;
    const selected = selectFields(this.fields, index, sig.signedHeaders, at);
    const text = signedHeaderText(selected, sig.headerCanon, this.fields[at]!.name, sig.valueWithoutB);
    const body = this.bodyHashes.target(sig.bodyCanon, sig.hash, sig.bodyLength);
    return {
      headerData: Buffer.from(text, this.format.encoding),
      target: body.hash,
      canonLength: body.canonLength,
      key: this.lookupKey(sig.selector, sig.domain),
    };
  }

  /** The key record at `selector`._domainkey.`domain`; a failed or abandoned look-up is temperror. */
  protected lookupKey(selector: string, domain: string): Promise<KeyLookup> {
    // the look-up itself is not aborted with our signal: it is shared with other messages and
    // its answer still fills the cache; only our waiting for it stops
    const key = this.cache.lookup(this.deps.resolver, selector, domain);
    // a rejected look-up (a broken resolver) must not surface as an unhandled rejection
    const safe = key.catch(
      (e: unknown): KeyLookup => ({ status: 'temperror', reason: `key unavailable: ${String(e)}` }),
    );
    return this.deps.signal ? untilAborted(safe, this.deps.signal, this.abandoned) : safe;
  }
}

/** The look-up's answer, or temperror as soon as the signal aborts. */
function untilAborted(lookup: Promise<KeyLookup>, signal: AbortSignal, reason: string): Promise<KeyLookup> {
  const aborted: KeyLookup = { status: 'temperror', reason };
  if (signal.aborted) return Promise.resolve(aborted);
  return new Promise((resolve) => {
    const onAbort = () => resolve(aborted);
    signal.addEventListener('abort', onAbort, { once: true });
    lookup.then((v) => {
      signal.removeEventListener('abort', onAbort);
      resolve(v);
    });
  });
}
