/**
 * The body hashes a message needs, computed while the body streams: one canonicalizer per
 * canonicalization (simple, relaxed), each feeding the hashes registered on it (one per hash
 * algorithm and l= limit). Shared by DKIM signatures and ARC-Message-Signatures.
 */
import { createHash, type Hash } from 'node:crypto';
import { type BodyCanonicalizer, type Canonicalization, createBodyCanonicalizer } from './canon.ts';
import type { HashAlgorithm } from './signature.ts';

/** One body hash: a canonicalization's output, hashed up to an optional l= limit. */
export class BodyHash {
  readonly algorithm: HashAlgorithm;
  readonly limit: number;
  private readonly hash: Hash;
  private digest: Buffer | null = null;
  private hashed = 0;
  constructor(algorithm: HashAlgorithm, limit: number) {
    this.algorithm = algorithm;
    this.limit = limit;
    this.hash = createHash(algorithm);
  }
  update(data: Uint8Array): void {
    const room = this.limit - this.hashed;
    if (room <= 0) return;
    const part = data.length > room ? data.subarray(0, room) : data;
    this.hash.update(part);
    this.hashed += part.length;
  }
  finish(): Buffer {
    this.digest ??= this.hash.digest();
    return this.digest;
  }
}

/** A canonicalizer and the hashes fed from it. */
interface BodyStream {
  canon: BodyCanonicalizer;
  targets: BodyHash[];
}

export class BodyHashes {
  private readonly streams = new Map<Canonicalization, BodyStream>();

  /**
   * The hash for (canonicalization, algorithm, l=), shared with any signature that asked for the
   * same, and a getter for the canonical body length so far (the whole length after finish()).
   */
  target(c: Canonicalization, algorithm: HashAlgorithm, limit: number | undefined): { hash: BodyHash; canonLength: () => number } {
    let stream = this.streams.get(c);
    if (!stream) {
      const targets: BodyHash[] = [];
      const canon = createBodyCanonicalizer(c, (data) => {
        for (let i = 0; i < targets.length; i++) targets[i]!.update(data);
      });
      stream = { canon, targets };
      this.streams.set(c, stream);
    }
    const l = limit ?? Number.POSITIVE_INFINITY;
    let hash = stream.targets.find((t) => t.limit === l && t.algorithm === algorithm);
    if (!hash) {
      hash = new BodyHash(algorithm, l);
      stream.targets.push(hash);
    }
    const canon = stream.canon;
    return { hash, canonLength: () => canon.length };
  }

  /** True when some signature needs the body. */
  get needed(): boolean {
    return this.streams.size > 0;
  }

  /** A piece of the body, in order. */
  update(data: Uint8Array): void {
    for (const s of this.streams.values()) s.canon.update(data);
  }

  /** The end of the body: flushes the canonicalizers and completes every hash. */
  finish(): void {
    for (const s of this.streams.values()) {
      s.canon.finish();
      for (const t of s.targets) t.finish();
    }
  }

  /** Distinct body hashes being computed (one per canonicalization, hash and l=). */
  get count(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.targets.length;
    return n;
  }

  /** Octets of body state held between calls (fixed-size buffers only), for tests. */
  get bufferedBytes(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.canon.bufferedBytes;
    return n;
  }
}
