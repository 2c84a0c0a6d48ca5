/**
 * Streaming ARC chain validation (RFC 8617 §5.2), on the DKIM building blocks: the same tag lists,
 * canonicalizers, h= selection, key records and key cache.
 *
 *   const v = new ArcVerifier({ resolver, clock });
 *   v.header('ARC-Seal', ' i=1; a=rsa-sha256; ...'); // every field, in order, value as received
 *   v.endOfHeaders();          // sets collected, structure checked, header hashes built, keys asked for
 *   v.body(chunk);             // canonicalized and hashed for the ARC-Message-Signature(s)
 *   const result = await v.finish();   // { cv: 'pass', instances: 2, sealers: [...], ... }
 *
 * A message without ARC header fields costs one pass over the field names; a chain that fails its
 * structure costs no DNS and no hashing. The body is never stored.
 */
import { type PreparedSignature, StreamingVerifier, withDefaults } from '../dkim/streaming.ts';
import {
  relaxedHeaderValue,
} from '../dkim/canon.ts';
import {
  type FieldIndex,
  type HeaderField,
  indexFields,
  signedHeaderText,
  splitRawMessage,
} from '../dkim/fields.ts';
import {
  type DkimKey,
  type KeyLookup,
  keyAllowsHash,
} from '../dkim/key.ts';
import type { DkimSignature, HashAlgorithm, KeyType } from '../dkim/signature.ts';
import { verifySignature } from '../dkim/verifier.ts';
import {
  type ArcChain,
  type ArcSeal,
  type ArcSet,
  collectArcSets,
  parseArcMessageSignature,
} from './parse.ts';
import { type ArcDeps, type ArcOptions, type ArcResult, DEFAULT_ARC_OPTIONS } from './types.ts';

type Outcome = { status: 'pass' } | { status: 'fail' | 'temperror'; reason: string };

/** One ARC-Message-Signature to verify. */
interface AmsCheck extends Partial<PreparedSignature> {
  instance: number;
  /** decided before the body: why it cannot pass */
  early?: string;
  sig?: DkimSignature;
}

/** One ARC-Seal to verify. */
interface SealCheck {
  instance: number;
  seal: ArcSeal;
  early?: string;
  data?: Buffer;
  key?: Promise<KeyLookup>;
}

export class ArcVerifier extends StreamingVerifier<ArcResult> {
  private readonly options: Required<ArcOptions>;
  private chain: ArcChain | null = null;
  private ams: AmsCheck[] = [];
  private seals: SealCheck[] = [];

  constructor(deps: ArcDeps, options: ArcOptions = {}) {
    const resolved = withDefaults<ArcOptions>(DEFAULT_ARC_OPTIONS, options);
    super(deps, resolved, 'key look-up abandoned: validation aborted');
    this.options = resolved;
  }

  /**
   * The header block is complete: collects the ARC Sets, checks their structure, builds the
   * header hash input of the newest AMS (every AMS with `oldestPass`) and of every seal, and
   * starts the key look-ups. Called by body() and finish() if not before.
   */
  protected prepare(): void {
    const chain = collectArcSets(this.fields);
    this.chain = chain;
    if (chain.status !== 'ok') return;
    const sets = chain.sets;
    const n = sets.length;
    const now = Math.floor(this.clock.now() / 1000);
    const index = indexFields(this.fields);
    const newest = this.prepareAms(sets[n - 1]!, index, now);
    this.ams.push(newest);
    // the newest AMS cannot pass: the chain fails whatever the seals say, so fetch no keys
    if (newest.early) return;
    if (this.options.oldestPass)
      for (let i = n - 1; i >= 1; i--) this.ams.push(this.prepareAms(sets[i - 1]!, index, now));
    // the seals' hash inputs share their prefixes: each ARC field is canonicalized once
    const canonical = sets.map((s) => ({
      aarAms: relaxedLine(s.aar.field) + relaxedLine(s.ams.field),
      seal: relaxedLine(s.seal.field),
    }));
    const prefixes: string[] = [''];
    for (let k = 0; k < n; k++) prefixes.push(prefixes[k]! + canonical[k]!.aarAms + canonical[k]!.seal);
    for (let i = n; i >= 1; i--) {
      this.seals.push(this.prepareSeal(sets[i - 1]!, prefixes[i - 1]! + canonical[i - 1]!.aarAms, now));
    }
  }

  private prepareAms(set: ArcSet, index: FieldIndex, now: number): AmsCheck {
    const check: AmsCheck = { instance: set.instance };
    const parsed = parseArcMessageSignature(set.ams.field.value);
    if (!parsed.ok) {
      check.early = parsed.reason;
      return check;
    }
    const sig = parsed.signature;
    if (sig.instance !== set.instance) {
      check.early = `i=${sig.instance} does not match its set`;
      return check;
    }
    if (sig.hash === 'sha1') {
      check.early = 'rsa-sha1 is not accepted (RFC 8301 §3.1)';
      return check;
    }
    const ready = this.prepareSigned(sig, set.ams.at, index, now);
    if (typeof ready === 'string') {
      check.early = ready;
      return check;
    }
    check.sig = sig;
    return Object.assign(check, ready);
  }

  /**
   * The seal of a set over the sets 1..i (§5.1.1): the AAR, AMS and AS of each older set, then
   * this set's AAR and AMS (`covered`, already canonicalized), then the seal itself with b=
   * emptied and no final CRLF, all in relaxed header canonicalization.
   */
  private prepareSeal(set: ArcSet, covered: string, now: number): SealCheck {
    const seal = set.seal.parsed;
    const check: SealCheck = { instance: set.instance, seal };
    if (seal.timestamp !== undefined && seal.timestamp > now + this.options.maxFutureSeconds) {
      check.early = `timestamp t=${seal.timestamp} is in the future`;
      return check;
    }
    const own = signedHeaderText([], 'relaxed', set.seal.field.name, seal.valueWithoutB);
    check.data = Buffer.from(covered + own, this.options.encoding);
    check.key = this.lookupKey(seal.selector, seal.domain);
    return check;
  }

  /** The Chain Validation Status and what decided it (via finish()). */
  protected async conclude(): Promise<ArcResult> {
    const chain = this.chain!;
    if (chain.status === 'none')
      return { cv: 'none', instances: 0, sealers: [], reason: 'the message has no ARC header fields' };
    if (chain.status === 'fail') {
      return {
        cv: 'fail',
        instances: chain.instances,
        sealers: chain.sealers,
        reason: chain.reason,
        ...(chain.failedInstance !== undefined ? { failedInstance: chain.failedInstance } : {}),
      };
    }
    const n = chain.sets.length;
    const base = { instances: n, sealers: chain.sealers };
    // §5.2 step 4: the newest AMS; step 6: every seal, newest first. Checked one after the other
    // (the keys were all asked for at endOfHeaders) so the first definite failure ends the work; a
    // key that could not be fetched only leaves the result open (temperror) while the rest is
    // checked, since a definite failure further on still decides.
    let open: { instance: number; what: string; reason: string } | null = null;
    const steps: Array<[number, string, () => Promise<Outcome>]> = [
      [n, 'ARC-Message-Signature', () => this.checkAms(this.ams[0]!)],
      ...this.seals.map((c): [number, string, () => Promise<Outcome>] => [
        c.instance,
        'ARC-Seal',
        () => this.checkSeal(c),
      ]),
    ];
    for (const [instance, what, run] of steps) {
      const o = await run();
      if (o.status === 'fail')
        return {
          cv: 'fail',
          ...base,
          reason: `${what} i=${instance}: ${o.reason}`,
          failedInstance: instance,
        };
      if (o.status === 'temperror') open ??= { instance, what, reason: o.reason };
    }
    if (open) {
      return {
        cv: 'fail',
        ...base,
        reason: `${open.what} i=${open.instance} could not be verified: ${open.reason}`,
        temperror: true,
        failedInstance: open.instance,
      };
    }
    const result: ArcResult = {
      cv: 'pass',
      ...base,
      reason: `chain of ${n} ARC Set${n === 1 ? '' : 's'} verified`,
    };
    if (this.options.oldestPass) {
      // step 5: down from N-1 while the older AMSs still verify
      let oldest = n;
      for (let k = 1; k < this.ams.length; k++) {
        if ((await this.checkAms(this.ams[k]!)).status !== 'pass') break;
        oldest = this.ams[k]!.instance;
      }
      result.oldestPass = oldest;
    }
    return result;
  }

  private async checkAms(c: AmsCheck): Promise<Outcome> {
    if (c.early || !c.sig) return { status: 'fail', reason: c.early ?? 'not processed' };
    const sig = c.sig;
    const lookup = await c.key!;
    if (lookup.status !== 'ok') {
      return lookup.status === 'temperror'
        ? { status: 'temperror', reason: lookup.reason }
        : { status: 'fail', reason: lookup.reason };
    }
    const problem = this.keyProblem(sig, lookup.key);
    if (problem) return { status: 'fail', reason: problem };
    if (sig.bodyLength !== undefined && sig.bodyLength > c.canonLength!()) {
      return {
        status: 'fail',
        reason: `body length l=${sig.bodyLength} exceeds the canonical body (${c.canonLength!()} octets)`,
      };
    }
    if (!c.target!.finish().equals(sig.bodyHash))
      return { status: 'fail', reason: 'body hash did not verify' };
    if (!verifySignature(sig, lookup.key, c.headerData!))
      return { status: 'fail', reason: 'signature did not verify' };
    return { status: 'pass' };
  }

  private async checkSeal(c: SealCheck): Promise<Outcome> {
    if (c.early) return { status: 'fail', reason: c.early };
    const lookup = await c.key!;
    if (lookup.status !== 'ok') {
      return lookup.status === 'temperror'
        ? { status: 'temperror', reason: lookup.reason }
        : { status: 'fail', reason: lookup.reason };
    }
    const problem = this.keyProblem(c.seal, lookup.key);
    if (problem) return { status: 'fail', reason: problem };
    if (!verifySignature(c.seal, lookup.key, c.data!))
      return { status: 'fail', reason: 'seal signature did not verify' };
    return { status: 'pass' };
  }

  /** Key vs signature (RFC 6376 §6.1.2, RFC 8301 §3.2); null when usable. */
  private keyProblem(sig: { keyType: KeyType; hash: HashAlgorithm; algorithm: string }, key: DkimKey) {
    if (key.keyType !== sig.keyType)
      return `inappropriate key algorithm: k=${key.keyType} key for a=${sig.algorithm}`;
    if (!keyAllowsHash(key, sig.hash))
      return `inappropriate hash algorithm: the key's h= does not list ${sig.hash}`;
    if (key.keyType === 'rsa' && key.bits < this.options.minRsaBits)
      return `RSA key of ${key.bits} bits is shorter than ${this.options.minRsaBits} (RFC 8301 §3.2)`;
    return null;
  }
}

/** One field in relaxed header canonicalization (RFC 6376 §3.4.2) with its CRLF, as a seal hashes it. */
function relaxedLine(f: HeaderField): string {
  return `${f.key}:${relaxedHeaderValue(f.value)}\r\n`;
}

/**
 * Validates the ARC chain of a whole message at once (a Buffer, or a string encoded with
 * `options.encoding`). Header fields are read byte for byte (latin1).
 */
export async function verifyArc(
  raw: Uint8Array | string,
  deps: ArcDeps,
  options: ArcOptions = {},
): Promise<ArcResult> {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, options.encoding ?? 'utf8') : raw;
  const { fields, bodyStart } = splitRawMessage(bytes);
  const v = new ArcVerifier(deps, { ...options, encoding: 'latin1', leadingSpaceStripped: false });
  v.headerFields(fields);
  v.endOfHeaders();
  if (bodyStart < bytes.length) v.body(bytes.subarray(bodyStart));
  return v.finish();
}
