/**
 * The three ARC header fields (RFC 8617 §4.1) parsed, and the ARC Sets of a message collected and
 * checked for structure (§5.2 steps 1–3). Nothing here touches DNS or hashes anything.
 *
 * - ARC-Authentication-Results (AAR, §4.1.1): "i=N;" then an Authentication-Results payload.
 * - ARC-Message-Signature (AMS, §4.1.2): a DKIM-Signature with i= as the instance and no v=; read
 *   by the DKIM signature parser (parseSignatureTags(value, 'ams')), plus ARC's own rules.
 * - ARC-Seal (AS, §4.1.3): a=, b=, cv=, d=, i=, s=, optional t=; no h= and no body hash.
 */
import { authservIdOf } from '../../headers/authentication-results.ts';
import type { HeaderField } from '../dkim/fields.ts';
import {
  type HashAlgorithm,
  isDkimDomain,
  isSelector,
  type KeyType,
  parseAlgorithm,
  parseSignatureTags,
  type SignatureParse,
} from '../dkim/signature.ts';
import {
  decodeBase64,
  parseTagList,
  stripFws,
  type Tag,
  type TagListResult,
  withoutTagValue,
} from '../dkim/tags.ts';
import { type ArcSealer, type ChainValidation, MAX_ARC_INSTANCE } from './types.ts';

export const ARC_SEAL = 'arc-seal';
export const ARC_MESSAGE_SIGNATURE = 'arc-message-signature';
export const ARC_AUTHENTICATION_RESULTS = 'arc-authentication-results';

/** Whether a lower-case field name is one of the three ARC header fields. */
export function isArcField(key: string): boolean {
  return key === ARC_SEAL || key === ARC_MESSAGE_SIGNATURE || key === ARC_AUTHENTICATION_RESULTS;
}

const INSTANCE = /^[0-9]{1,2}$/;

/** i-val (§4.2.1: 1*2DIGIT) as a number from 1 to 50, or null. */
export function parseInstanceValue(value: string): number | null {
  if (!INSTANCE.test(value)) return null;
  const n = Number(value);
  return n >= 1 && n <= MAX_ARC_INSTANCE ? n : null;
}

/**
 * A tag-list with an empty tag-spec (";;", or only white space between semicolons) other than
 * after the last ";". RFC 6376 §3.2's grammar has no empty tag-spec; the shared tag parser
 * tolerates them for DKIM key records, ARC does not (signers write these fields fresh).
 */
export function hasEmptyTagSpec(value: string): boolean {
  let start = 0;
  for (;;) {
    const semi = value.indexOf(';', start);
    if (semi < 0) return false;
    if (/^[ \t\r\n]*$/.test(value.slice(start, semi))) return true;
    start = semi + 1;
  }
}

/** The instance of an AMS or AS read leniently (only its i= tag), for grouping the sets. */
export function readTagInstance(value: string): number | null {
  const tag = parseTagList(value).tags.get('i');
  return tag ? parseInstanceValue(tag.value) : null;
}

export type AarParse =
  | {
      ok: true;
      instance: number;
      /** what follows "i=N;" on one line: line breaks and white-space runs as one SP, trimmed */
      payload: string;
      authservId: string | null;
    }
  | { ok: false; reason: string };

/** Skips CFWS (RFC 5322 §3.2.2: white space, line breaks and nested comments) from `i`. */
function skipCfws(s: string, i: number): number {
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) {
      i++;
      continue;
    }
    if (c !== 0x28) break;
    let depth = 0;
    for (; i < n; i++) {
      const d = s.charCodeAt(i);
      if (d === 0x5c) i++;
      else if (d === 0x28) depth++;
      else if (d === 0x29 && --depth === 0) break;
    }
    if (depth !== 0) return n;
    i++;
  }
  return i;
}

/**
 * An ARC-Authentication-Results value: `[CFWS] "i" [CFWS] "=" [CFWS] 1*2DIGIT [CFWS] ";"` and
 * then the payload (§4.1.1, §4.2.1). The i= must come first and end with ";".
 */
export function parseAar(value: string): AarParse {
  let i = skipCfws(value, 0);
  if (value.charCodeAt(i) !== 0x69) return { ok: false, reason: 'does not start with i=' };
  i = skipCfws(value, i + 1);
  if (value.charCodeAt(i) !== 0x3d) return { ok: false, reason: 'does not start with i=' };
  i = skipCfws(value, i + 1);
  const start = i;
  while (i < value.length && i - start < 3 && value.charCodeAt(i) >= 0x30 && value.charCodeAt(i) <= 0x39) i++;
  const instance = parseInstanceValue(value.slice(start, i));
  if (instance === null) {
    const written = value.slice(start).split(';')[0]!.trim();
    return { ok: false, reason: `has an invalid instance i=${clip(written)}` };
  }
  i = skipCfws(value, i);
  if (value.charCodeAt(i) !== 0x3b) return { ok: false, reason: `i=${instance} is not followed by ";"` };
  const payload = oneLine(value.slice(i + 1));
  return { ok: true, instance, payload, authservId: authservIdOf(payload) };
}

export interface ArcSeal {
  /** the header field value as received */
  value: string;
  tags: Map<string, Tag>;
  instance: number;
  /** a= as written, lower case */
  algorithm: string;
  keyType: KeyType;
  hash: HashAlgorithm;
  cv: ChainValidation;
  /** d=, lower case */
  domain: string;
  selector: string;
  /** b= without folding white space */
  b: string;
  signature: Buffer;
  timestamp?: number;
  /** the value with the b= value removed, as hashed */
  valueWithoutB: string;
}

export type SealParse =
  | { ok: true; seal: ArcSeal }
  | { ok: false; reason: string; domain: string; selector: string; cv: string };

const REQUIRED_SEAL = ['a', 'b', 'cv', 'd', 'i', 's'];

/**
 * An ARC-Seal value (§4.1.3). Refused: tag-list syntax errors (RFC 6376 §3.2, including empty
 * tag-specs and duplicate tags), a missing required tag, an h= tag (the fields a seal covers are
 * fixed by §5.1.1; a seal naming some is invalid), an unknown or refused algorithm (rsa-sha1:
 * RFC 8301 §3.1), a cv= other than none/pass/fail, an invalid d=, s=, t= or b=. `parsed` is
 * parseTagList(value) when the caller has it already.
 */
export function parseArcSeal(value: string, parsed?: TagListResult): SealParse {
  const list = parsed ?? parseTagList(value);
  const get = (name: string) => list.tags.get(name)?.value;
  const fail = (reason: string): SealParse => ({
    ok: false,
    reason,
    domain: (get('d') ?? '').toLowerCase(),
    selector: get('s') ?? '',
    cv: (get('cv') ?? '').toLowerCase(),
  });
  if (!list.ok) return fail(`seal syntax error: ${list.error}`);
  if (hasEmptyTagSpec(value)) return fail('seal syntax error: empty tag-spec');
  for (const t of REQUIRED_SEAL) if (!list.tags.has(t)) return fail(`seal missing required tag ${t}=`);
  if (list.tags.has('h')) return fail('seal has an h= tag (RFC 8617 §4.1.3)');
  const instance = parseInstanceValue(get('i')!);
  if (instance === null) return fail(`invalid instance i=${get('i')}`);
  const algorithm = get('a')!.toLowerCase();
  const alg = parseAlgorithm(algorithm);
  if (!alg) return fail(`unsupported algorithm a=${get('a')}`);
  if (alg.hash === 'sha1') return fail('rsa-sha1 is not accepted (RFC 8301 §3.1)');
  const cv = get('cv')!.toLowerCase();
  if (cv !== 'none' && cv !== 'pass' && cv !== 'fail') return fail(`invalid cv=${get('cv')}`);
  const d = get('d')!;
  if (!isDkimDomain(d)) return fail(`invalid signing domain d=${d}`);
  const selector = get('s')!;
  if (!isSelector(selector)) return fail(`invalid selector s=${selector}`);
  let timestamp: number | undefined;
  const t = get('t');
  if (t !== undefined) {
    if (!/^[0-9]{1,12}$/.test(t)) return fail(`invalid timestamp t=${t}`);
    timestamp = Number(t);
  }
  const b = stripFws(get('b')!);
  const signature = decodeBase64(b);
  if (!signature || signature.length === 0) return fail('signature b= is not base64');
  return {
    ok: true,
    seal: {
      value,
      tags: list.tags,
      instance,
      algorithm,
      keyType: alg.keyType,
      hash: alg.hash,
      cv,
      domain: d.toLowerCase(),
      selector,
      b,
      signature,
      ...(timestamp !== undefined ? { timestamp } : {}),
      valueWithoutB: withoutTagValue(value, list.tags.get('b')!),
    },
  };
}

/**
 * An ARC-Message-Signature value (§4.1.2): "the same syntax and semantics as the DKIM-Signature
 * field", with i= as the instance and no v=. So the DKIM-Signature checks apply, From must be
 * signed (RFC 6376 §6.1.1: an AMS that does not sign From binds nothing of the author to the
 * sealer's ARC-Authentication-Results), no empty tag-specs, and h= must not name ARC-Seal
 * (§4.1.2). rsa-sha1 parses here (the verifier refuses it, as for DKIM).
 */
export function parseArcMessageSignature(value: string): SignatureParse {
  const parsed = parseSignatureTags(value, 'ams');
  if (!parsed.ok) return parsed;
  const sig = parsed.signature;
  const partial = { domain: sig.domain, selector: sig.selector, b: sig.b, algorithm: sig.algorithm };
  if (hasEmptyTagSpec(value))
    return { ok: false, reason: 'signature syntax error: empty tag-spec', ...partial };
  if (sig.signedHeaders.includes(ARC_SEAL))
    return { ok: false, reason: 'h= signs ARC-Seal (RFC 8617 §4.1.2)', ...partial };
  if (!sig.signedHeaders.includes('from'))
    return { ok: false, reason: 'From field not signed (RFC 6376 §6.1.1)', ...partial };
  return parsed;
}

/** Where one ARC header field is among the message's fields. */
export interface ArcFieldRef {
  /** position among all header fields, 0 = topmost */
  at: number;
  field: HeaderField;
}

/** One complete ARC Set (§4.1), structurally sound. */
export interface ArcSet {
  instance: number;
  aar: ArcFieldRef & { payload: string; authservId: string | null };
  ams: ArcFieldRef;
  seal: ArcFieldRef & { parsed: ArcSeal };
}

export type ArcChain =
  | { status: 'none' }
  | {
      status: 'fail';
      reason: string;
      failedInstance?: number;
      /** the highest instance seen (0 when none could be read) */
      instances: number;
      sealers: ArcSealer[];
    }
  | { status: 'ok'; sets: ArcSet[]; sealers: ArcSealer[] };

/** A field as collected; AMS and AS keep their tag list, parsed once. */
type Collected = ArcFieldRef & { tags: TagListResult };

interface Found {
  aar: Array<ArcFieldRef & { payload: string; authservId: string | null }>;
  ams: Collected[];
  seal: Collected[];
}

const DISPLAY: Record<keyof Found, string> = {
  aar: 'ARC-Authentication-Results',
  ams: 'ARC-Message-Signature',
  seal: 'ARC-Seal',
};

/**
 * Collects the ARC Sets of a message and checks the chain's structure (§5.2 steps 1–3): none
 * without any ARC header field; fail when a field's instance cannot be read, when the newest
 * seal says cv=fail, when an instance from 1 to N lacks a field or has two, when a seal is
 * malformed, or when cv= breaks the rule (i=1 none, later ones pass). Fields are grouped by their
 * i= wherever they are in the header.
 */
export function collectArcSets(fields: readonly HeaderField[]): ArcChain {
  const byInstance = new Map<number, Found>();
  let bad: { reason: string } | null = null;
  let any = false;
  for (let at = 0; at < fields.length; at++) {
    const field = fields[at]!;
    const key = field.key;
    if (!isArcField(key)) continue;
    any = true;
    let kind: keyof Found;
    let instance: number | null;
    let extra: { payload: string; authservId: string | null } | null = null;
    let tags: TagListResult | null = null;
    if (key === ARC_AUTHENTICATION_RESULTS) {
      kind = 'aar';
      const aar = parseAar(field.value);
      instance = aar.ok ? aar.instance : null;
      if (aar.ok) extra = { payload: aar.payload, authservId: aar.authservId };
      else bad ??= { reason: `an ARC-Authentication-Results ${aar.reason}` };
    } else {
      kind = key === ARC_SEAL ? 'seal' : 'ams';
      tags = parseTagList(field.value);
      const i = tags.tags.get('i');
      instance = i ? parseInstanceValue(i.value) : null;
      if (instance === null) bad ??= { reason: `an ${DISPLAY[kind]} has no valid instance i= (1 to 50)` };
    }
    if (instance === null) continue;
    let found = byInstance.get(instance);
    if (!found) {
      found = { aar: [], ams: [], seal: [] };
      byInstance.set(instance, found);
    }
    if (kind === 'aar') found.aar.push({ at, field, ...extra! });
    else found[kind].push({ at, field, tags: tags! });
  }
  if (!any) return { status: 'none' };
  const n = byInstance.size === 0 ? 0 : Math.max(...byInstance.keys());
  const sealers = describeSets(byInstance, n);
  const fail = (reason: string, failedInstance?: number): ArcChain => ({
    status: 'fail',
    reason,
    instances: n,
    sealers,
    ...(failedInstance !== undefined ? { failedInstance } : {}),
  });
  if (bad) return fail(bad.reason);
  // step 2: the newest seal gave up on the chain already
  const newest = byInstance.get(n)!;
  for (const s of newest.seal) {
    if (s.tags.tags.get('cv')?.value.toLowerCase() === 'fail')
      return fail(`the newest ARC-Seal (i=${n}) has cv=fail`, n);
  }
  // step 3: one of each field per instance, 1..N without gaps
  const sets: ArcSet[] = [];
  for (let i = 1; i <= n; i++) {
    const found = byInstance.get(i);
    if (!found) return fail(`ARC Set i=${i} is missing (the chain goes up to i=${n})`, i);
    for (const kind of ['aar', 'ams', 'seal'] as const) {
      if (found[kind].length === 0) return fail(`ARC Set i=${i} has no ${DISPLAY[kind]}`, i);
      if (found[kind].length > 1)
        return fail(`ARC Set i=${i} has ${found[kind].length} ${DISPLAY[kind]} fields`, i);
    }
    const seal = found.seal[0]!;
    const parsed = parseArcSeal(seal.field.value, seal.tags);
    if (!parsed.ok) return fail(`ARC-Seal i=${i}: ${parsed.reason}`, i);
    const want = i === 1 ? 'none' : 'pass';
    if (parsed.seal.cv !== want)
      return fail(`ARC-Seal i=${i} has cv=${parsed.seal.cv} where ${want} is required`, i);
    const ams = found.ams[0]!;
    sets.push({
      instance: i,
      aar: found.aar[0]!,
      ams: { at: ams.at, field: ams.field },
      seal: { at: seal.at, field: seal.field, parsed: parsed.seal },
    });
  }
  return { status: 'ok', sets, sealers };
}

/** What can be read of each instance's fields, for the result (exactly-one fields only). */
function describeSets(byInstance: Map<number, Found>, n: number): ArcSealer[] {
  const out: ArcSealer[] = [];
  for (let i = 1; i <= n; i++) {
    const found = byInstance.get(i);
    if (!found) continue;
    const seal = found.seal.length === 1 ? found.seal[0]!.tags.tags : null;
    const ams = found.ams.length === 1 ? found.ams[0]!.tags.tags : null;
    const aar = found.aar.length === 1 ? found.aar[0]! : null;
    const s: ArcSealer = {
      i,
      d: (seal?.get('d')?.value ?? '').toLowerCase(),
      s: seal?.get('s')?.value ?? '',
      cvSeen: (seal?.get('cv')?.value ?? '').toLowerCase(),
    };
    const amsD = ams?.get('d')?.value;
    if (amsD !== undefined) s.amsDomain = amsD.toLowerCase();
    const amsS = ams?.get('s')?.value;
    if (amsS !== undefined) s.amsSelector = amsS;
    if (aar) {
      if (aar.authservId !== null) s.authservId = aar.authservId;
      s.authResults = aar.payload;
    }
    out.push(s);
  }
  return out;
}

/** Text on one line: line breaks (folding or stray CR/LF) and white-space runs as one SP, trimmed. */
function oneLine(s: string): string {
  return s.replace(/[\r\n \t]+/g, ' ').trim();
}

function clip(s: string): string {
  return s.length > 20 ? `${s.slice(0, 20)}…` : s;
}
