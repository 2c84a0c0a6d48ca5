/**
 * Streaming DKIM verification (RFC 6376 §6.1, RFC 8301, RFC 8463).
 *
 *   const v = new DkimVerifier({ resolver, clock });
 *   v.header('From', ' a@example.com');   // every field, in order, value as received
 *   v.endOfHeaders();                       // signatures parsed, header hashes built, keys asked for
 *   v.body(chunk); v.body(chunk);           // canonicalized and hashed as it arrives
 *   const results = await v.finish();       // one DkimResult per signature (or one "none")
 *
 * Each distinct (body canonicalization, hash, l=) is hashed once however many signatures share
 * it; the body is never stored. Key look-ups start at endOfHeaders(), so DNS overlaps the body.
 */
import { type PreparedSignature, StreamingVerifier, withDefaults } from './streaming.ts';
import { createHash, verify as cryptoVerify } from 'node:crypto';
import {
  type FieldIndex,
  indexFields,
  splitRawMessage,
} from './fields.ts';
import { type DkimKey, keyAllowsHash } from './key.ts';
import {
  type DkimSignature,
  parseDkimSignature,
} from './signature.ts';
import {
  DEFAULT_DKIM_OPTIONS,
  type DkimDeps,
  type DkimOptions,
  type DkimResult,
  type DkimResultCode,
} from './types.ts';

interface Pending extends Partial<PreparedSignature> {
  index: number;
  /** decided before the body (unparsable, refused algorithm, expired…) */
  early?: { result: DkimResultCode; reason: string };
  partial: { domain: string; selector: string; b: string; algorithm: string };
  sig?: DkimSignature;
}

const HEADER_B_MIN = 8;

/** The shortest prefix of each b= value, at least 8 characters, that no other b= of the message shares. */
export function shortBValues(values: readonly string[]): string[] {
  return values.map((b, i) => {
    let len = Math.min(HEADER_B_MIN, b.length);
    while (len < b.length && values.some((o, j) => j !== i && o !== b && o.startsWith(b.slice(0, len))))
      len++;
    return b.slice(0, len);
  });
}

export class DkimVerifier extends StreamingVerifier<DkimResult[]> {
  private readonly options: Required<DkimOptions>;
  private pending: Pending[] = [];
  /** DKIM-Signature fields beyond maxSignatures, not verified */
  skippedSignatures = 0;

  constructor(deps: DkimDeps, options: DkimOptions = {}) {
    const resolved = withDefaults<DkimOptions>(DEFAULT_DKIM_OPTIONS, options);
    super(deps, resolved, 'key look-up abandoned: the verification was aborted');
    this.options = resolved;
  }

  /**
   * The header block is complete: parses the signatures, builds their header hash input, sets up
   * the body hashes and starts the key look-ups. Called by body() and finish() if not before.
   */
  protected prepare(): void {
    const index = indexFields(this.fields);
    const positions = index.get('dkim-signature') ?? [];
    const max = Math.max(0, Math.floor(this.options.maxSignatures));
    this.skippedSignatures = Math.max(0, positions.length - max);
    const now = Math.floor(this.clock.now() / 1000);
    this.pending = positions.slice(0, max).map((at, i) => this.prepareSignature(at, i, index, now));
  }

  private prepareSignature(at: number, i: number, index: FieldIndex, now: number): Pending {
    const field = this.fields[at]!;
    const legacy = this.options.legacy;
    const parsed = parseDkimSignature(field.value, legacy.draftVersions ? { draftVersions: true } : {});
    if (!parsed.ok) {
      const { reason, ...partial } = parsed;
      return { index: i, partial, early: { result: 'neutral', reason } };
    }
    const sig = parsed.signature;
    const partial = { domain: sig.domain, selector: sig.selector, b: sig.b, algorithm: sig.algorithm };
    const p: Pending = { index: i, partial, sig };
    if (sig.hash === 'sha1' && !legacy.rsaSha1) {
      p.early = { result: 'policy', reason: 'rsa-sha1 signatures are not accepted (RFC 8301 §3.1)' };
      return p;
    }
    const ready = this.prepareSigned(sig, at, index, now);
    if (typeof ready === 'string') {
      p.early = { result: 'policy', reason: ready };
      return p;
    }
    return Object.assign(p, ready);
  }

  /** Octets of body state held between body() calls (fixed-size buffers only), for tests. */
  get bufferedBytes(): number {
    return this.bodyHashes.bufferedBytes;
  }

  /** The results, one per verified DKIM-Signature (topmost first), or one `none` (via finish()). */
  protected async conclude(): Promise<DkimResult[]> {
    if (this.pending.length === 0) {
      if (this.skippedSignatures > 0) {
        const reason = `${this.skippedSignatures} DKIM-Signature fields not verified (maxSignatures ${this.options.maxSignatures})`;
        return [{ result: 'neutral', domain: '', selector: '', b: '', algorithm: '', reason }];
      }
      return [
        {
          result: 'none',
          domain: '',
          selector: '',
          b: '',
          algorithm: '',
          reason: 'the message has no DKIM-Signature',
        },
      ];
    }
    const shortB = shortBValues(this.pending.map((p) => p.partial.b));
    return Promise.all(this.pending.map((p, i) => this.evaluate(p, shortB[i]!)));
  }

  private async evaluate(p: Pending, b: string): Promise<DkimResult> {
    const base: DkimResult = {
      result: 'neutral',
      domain: p.partial.domain,
      selector: p.partial.selector,
      b,
      algorithm: p.partial.algorithm,
      reason: '',
      index: p.index,
    };
    const sig = p.sig;
    if (sig) {
      base.auid = sig.auid;
      base.canonicalization = `${sig.headerCanon}/${sig.bodyCanon}`;
      if (sig.bodyLength !== undefined) base.bodyLengthLimited = true;
    }
    if (p.early || !sig)
      return { ...base, ...(p.early ?? { result: 'neutral', reason: 'signature not processed' }) };
    const lookup = await p.key!;
    if (lookup.status !== 'ok') return { ...base, result: lookup.status, reason: lookup.reason };
    const key = lookup.key;
    base.keyBits = key.bits;
    if (key.testing) base.testing = true;
    const done = (result: DkimResultCode, reason: string): DkimResult => ({ ...base, result, reason });
    const keyProblem = this.keyProblem(sig, key);
    if (keyProblem) return done(keyProblem.result, keyProblem.reason);

    const total = p.canonLength!();
    if (sig.bodyLength !== undefined) {
      if (sig.bodyLength > total) {
        return done(
          'neutral',
          `body length l=${sig.bodyLength} exceeds the canonical body (${total} octets; RFC 6376 §3.5)`,
        );
      }
      base.unsignedBodyBytes = total - sig.bodyLength;
    }
    if (!p.target!.finish().equals(sig.bodyHash)) return done('fail', 'body hash did not verify');
    const good = this.options.cryptoThreadPool
      ? await verifySignatureAsync(sig, key, p.headerData!)
      : verifySignature(sig, key, p.headerData!);
    if (!good) return done('fail', 'signature did not verify');
    const partly =
      sig.bodyLength !== undefined ? ` (l=: ${base.unsignedBodyBytes} body octets unsigned)` : '';
    return done('pass', `signature verified with the key ${sig.selector}._domainkey.${sig.domain}${partly}`);
  }

  /** Key vs signature (§6.1.2 steps 6–9, RFC 8301 §3.2); null when usable. */
  private keyProblem(sig: DkimSignature, key: DkimKey): { result: DkimResultCode; reason: string } | null {
    if (key.keyType !== sig.keyType) {
      return {
        result: 'permerror',
        reason: `inappropriate key algorithm: k=${key.keyType} key for a=${sig.algorithm}`,
      };
    }
    if (!keyAllowsHash(key, sig.hash)) {
      return {
        result: 'permerror',
        reason: `inappropriate hash algorithm: the key's h= does not list ${sig.hash}`,
      };
    }
    if (key.strict && sig.auidDomain !== sig.domain) {
      return {
        result: 'permerror',
        reason: `the key has t=s but the i= domain ${sig.auidDomain} is not d=${sig.domain}`,
      };
    }
    if (key.keyType === 'rsa' && key.bits < this.options.minRsaBits) {
      return {
        result: 'policy',
        reason: `RSA key of ${key.bits} bits is shorter than ${this.options.minRsaBits} (RFC 8301 §3.2)`,
      };
    }
    return null;
  }
}

/** The header signature check: RSASSA-PKCS1-v1_5 over the data, or Ed25519 over its SHA-256 (RFC 8463 §3). */
export function verifySignature(
  sig: Pick<DkimSignature, 'keyType' | 'hash' | 'signature'>,
  key: DkimKey,
  data: Buffer,
): boolean {
  try {
    if (sig.keyType === 'ed25519') {
      const digest = createHash('sha256').update(data).digest();
      return cryptoVerify(null, digest, key.publicKey, sig.signature);
    }
    return cryptoVerify(sig.hash, data, key.publicKey, sig.signature);
  } catch {
    return false;
  }
}

/** verifySignature() on libuv's thread pool. */
export function verifySignatureAsync(
  sig: Pick<DkimSignature, 'keyType' | 'hash' | 'signature'>,
  key: DkimKey,
  data: Buffer,
): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      const input = sig.keyType === 'ed25519' ? createHash('sha256').update(data).digest() : data;
      cryptoVerify(
        sig.keyType === 'ed25519' ? null : sig.hash,
        input,
        key.publicKey,
        sig.signature,
        (err, ok) => resolve(!err && ok),
      );
    } catch {
      resolve(false);
    }
  });
}

/**
 * Verifies a whole message at once (a Buffer, or a string encoded with `options.encoding`).
 * Header fields are read byte for byte (latin1), so simple canonicalization sees the octets sent.
 */
export async function verifyMessage(
  raw: Uint8Array | string,
  deps: DkimDeps,
  options: DkimOptions = {},
): Promise<DkimResult[]> {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, options.encoding ?? 'utf8') : raw;
  const { fields, bodyStart } = splitRawMessage(bytes);
  const v = new DkimVerifier(deps, { ...options, encoding: 'latin1', leadingSpaceStripped: false });
  v.headerFields(fields);
  v.endOfHeaders();
  if (bodyStart < bytes.length) v.body(bytes.subarray(bodyStart));
  return v.finish();
}
