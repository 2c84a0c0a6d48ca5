/** Public types of the DKIM verifier (RFC 6376, RFC 8301, RFC 8463; results as RFC 8601 §2.7.1). */
import type { Clock } from '../../common/clock.ts';
import type { Resolver } from '../../dns/types.ts';
import type { DkimKeyCache } from './key.ts';

/**
 * RFC 8601 §2.7.1 dkim= results:
 * - pass: the signature verified;
 * - fail: it did not (body hash or signature mismatch);
 * - neutral: the DKIM-Signature could not be processed (syntax, missing or unknown tags, i= outside
 *   d=, From not signed, x= before t=, l= longer than the body);
 * - policy: verifiable in principle but refused by local policy (rsa-sha1 and RSA keys under the
 *   minimum, RFC 8301; an expired signature; optionally a future-dated one);
 * - permerror: the key is unusable for good (no key record, revoked, malformed or unsuitable key);
 * - temperror: the key could not be fetched now (DNS failure or timeout);
 * - none: the message has no DKIM-Signature.
 */
export type DkimResultCode = 'pass' | 'fail' | 'neutral' | 'policy' | 'temperror' | 'permerror' | 'none';

export interface DkimResult {
  result: DkimResultCode;
  /** header.d: the signing domain (d=), lower case; '' when unreadable or for none */
  domain: string;
  /** header.s: the selector (s=) */
  selector: string;
  /** header.b: the first characters of b= (8 or more, enough to tell this message's signatures apart) */
  b: string;
  /** a= as written, lower case ('' when absent) */
  algorithm: string;
  /** one human sentence: what decided the result */
  reason: string;
  /** header.i: the AUID (i=, or "@" + d=), when the signature parsed */
  auid?: string;
  /** c= as header/body, when the signature parsed */
  canonicalization?: string;
  /** key size in bits (RSA modulus; 256 for Ed25519), once a key was found */
  keyBits?: number;
  /** the signature has l=: only part of the body is signed */
  bodyLengthLimited?: boolean;
  /** with l=: canonical body octets after the signed part (content a forwarder could have added) */
  unsignedBodyBytes?: number;
  /** the key record has t=y: the signing domain is testing DKIM (§3.6.1) */
  testing?: boolean;
  /** position of the DKIM-Signature field among the message's DKIM-Signature fields, 0 = topmost */
  index?: number;
}

export interface DkimDeps {
  resolver: Resolver;
  /** for t=/x= and the key cache; the system clock by default */
  clock?: Clock;
  /** parsed keys by DNS name; by default one cache per resolver and clock */
  keyCache?: DkimKeyCache;
  /** aborting stops waiting for keys: the signatures still waiting get temperror */
  signal?: AbortSignal;
}

export interface DkimOptions {
  /** DKIM-Signature fields verified per message, topmost first; the rest are ignored (default 5) */
  maxSignatures?: number;
  /** RSA keys shorter than this are refused with policy (RFC 8301 §3.2: 1024) */
  minRsaBits?: number;
  /**
   * Refuse (policy) a signature whose t= is more than this many seconds ahead of the clock.
   * Unset by default: RFC 6376 §3.5 only says verifiers MAY ignore such signatures, and a signer's
   * clock running ahead should not cost it DKIM.
   */
  maxFutureSeconds?: number;
  /** how header values and string body chunks become octets (default 'utf8') */
  encoding?: 'utf8' | 'latin1';
  /**
   * Set when header values come without the white space after the colon (the milter protocol
   * without SMFIP_HDR_LEADSPC): one SP is put back for simple header canonicalization.
   */
  leadingSpaceStripped?: boolean;
  /**
   * Check signatures on libuv's thread pool instead of the event loop (default false). Slower for
   * one message at a time (the hand-off costs more than an RSA check), faster under concurrency:
   * Ed25519 checks, the costly part, then run beside the canonicalization on other cores.
   */
  cryptoThreadPool?: boolean;
  /**
   * Verify what RFC 6376 and RFC 8301 refuse: rsa-sha1 signatures and pre-RFC draft versions
   * (v= absent or 0.x). Both off by default and not meant for production: they exist to run old
   * corpora through the canonicalization and key code. minRsaBits is the separate knob for keys.
   */
  legacy?: { rsaSha1?: boolean; draftVersions?: boolean };
}

export const DEFAULT_DKIM_OPTIONS = Object.freeze({
  maxSignatures: 5,
  minRsaBits: 1024,
  maxFutureSeconds: Number.POSITIVE_INFINITY,
  encoding: 'utf8' as 'utf8' | 'latin1',
  leadingSpaceStripped: false,
  cryptoThreadPool: false,
  legacy: {} as { rsaSha1?: boolean; draftVersions?: boolean },
});
