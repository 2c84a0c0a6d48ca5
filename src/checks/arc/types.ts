/** Public types of ARC chain validation (RFC 8617). */
import type { Clock } from '../../common/clock.ts';
import type { Resolver } from '../../dns/types.ts';
import type { DkimKeyCache } from '../dkim/key.ts';

/** RFC 8617 §4.1.3 cv= values, and the Chain Validation Status of §5.2. */
export type ChainValidation = 'none' | 'pass' | 'fail';

/** One ARC Set as found, for the policy (trusted sealers) and for diagnostics. */
export interface ArcSealer {
  /** the instance (i=) */
  i: number;
  /** d= of the ARC-Seal, lower case: the sealing domain */
  d: string;
  /** s= of the ARC-Seal */
  s: string;
  /** cv= of the ARC-Seal as written, lower case ('' when absent) */
  cvSeen: string;
  /** d= and s= of the ARC-Message-Signature of the set, when readable */
  amsDomain?: string;
  amsSelector?: string;
  /** the authserv-id of the ARC-Authentication-Results, when readable */
  authservId?: string;
  /** the ARC-Authentication-Results payload after "i=N;" on one line (what the sealer saw) */
  authResults?: string;
}

export interface ArcResult {
  /**
   * The Chain Validation Status (§5.2): none (no ARC header field), pass (structure, the newest
   * ARC-Message-Signature and every ARC-Seal verified), fail (anything else, including a chain
   * that could not be validated because a key was unavailable: see `temperror`).
   */
  cv: ChainValidation;
  /** the number of ARC Sets (the highest instance N when the structure is sound); 0 for none */
  instances: number;
  /**
   * With the `oldestPass` option and cv=pass: the lowest instance k such that the
   * ARC-Message-Signatures k..N all verify (1 when every one does). Sets above it were added without
   * changing what their own AMS signed. A-R renders it as RFC 8617's header.oldest-pass (0 when 1).
   */
  oldestPass?: number;
  /** the ARC Sets in instance order (those that could be read; complete only when cv=pass) */
  sealers: ArcSealer[];
  /** one sentence: what decided */
  reason: string;
  /**
   * true when cv=fail only because a key could not be fetched (DNS failure or timeout): the chain
   * may well be valid. Callers should treat it as "unknown", not as a broken chain.
   */
  temperror?: boolean;
  /** the instance whose header field decided a failure, when one did */
  failedInstance?: number;
}

export interface ArcDeps {
  resolver: Resolver;
  /** for t=/x= and the key cache; the system clock by default */
  clock?: Clock;
  /** parsed keys by DNS name (shared with DKIM: same records); by default one per resolver and clock */
  keyCache?: DkimKeyCache;
  /** aborting stops waiting for keys; keys still missing then count as temperror */
  signal?: AbortSignal;
}

export interface ArcOptions {
  /** RSA keys shorter than this fail the signature that uses them (RFC 8301 §3.2: 1024) */
  minRsaBits?: number;
  /**
   * Also verify the older ARC-Message-Signatures, to report oldestPass (§5.2 step 5, optional
   * there). Costs a key look-up and a signature check per set. Default false.
   */
  oldestPass?: boolean;
  /** a t= more than this many seconds ahead of the clock fails the signature (default: any t=) */
  maxFutureSeconds?: number;
  /** how header values and string body chunks become octets (default 'utf8') */
  encoding?: 'utf8' | 'latin1';
  /** header values come without the white space after the colon (milter without HDR_LEADSPC) */
  leadingSpaceStripped?: boolean;
}

export const DEFAULT_ARC_OPTIONS = Object.freeze({
  minRsaBits: 1024,
  oldestPass: false,
  maxFutureSeconds: Number.POSITIVE_INFINITY,
  encoding: 'utf8' as 'utf8' | 'latin1',
  leadingSpaceStripped: false,
});

/** RFC 8617 §4.2.1: instances run from 1 to 50. */
export const MAX_ARC_INSTANCE = 50;
