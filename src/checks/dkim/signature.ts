/**
 * The DKIM-Signature header field (RFC 6376 §3.5) parsed and validated as §6.1.1 asks, before any
 * DNS is touched. rsa-sha1 parses (it is a syntactically valid signature); refusing it is the
 * verifier's policy (RFC 8301), so ARC can reuse this parser and decide the same way.
 *
 * The same tags make up ARC-Message-Signature (RFC 8617 §4.1.2), where i= is the instance number
 * and there is no v=; parseSignatureTags(value, 'ams') reads that form.
 */
import type { Canonicalization } from './canon.ts';
import { decodeBase64, parseTagList, splitColonList, stripFws, type Tag, withoutTagValue } from './tags.ts';

export type KeyType = 'rsa' | 'ed25519';
export type HashAlgorithm = 'sha256' | 'sha1';

export interface DkimSignature {
  /** the header field value as received */
  value: string;
  tags: Map<string, Tag>;
  /** a= as written, lower case: rsa-sha256, ed25519-sha256 or rsa-sha1 */
  algorithm: string;
  keyType: KeyType;
  hash: HashAlgorithm;
  /** b= without folding white space (for header.b) */
  b: string;
  signature: Buffer;
  bodyHash: Buffer;
  headerCanon: Canonicalization;
  bodyCanon: Canonicalization;
  /** d=, lower case (the SDID) */
  domain: string;
  /** s= as written */
  selector: string;
  /** h= names, lower case, in order (duplicates kept: over-signing) */
  signedHeaders: string[];
  /** i= decoded (the AUID); "@" + d= when absent. For an AMS: '' */
  auid: string;
  /** the domain part of the AUID, lower case */
  auidDomain: string;
  /** ARC instance (i= of an AMS); undefined for DKIM */
  instance?: number;
  /** l=, canonical body octets covered */
  bodyLength?: number;
  /** t=, seconds since the epoch */
  timestamp?: number;
  /** x=, seconds since the epoch */
  expiration?: number;
  /** the value with the b= value removed, as hashed (§3.7) */
  valueWithoutB: string;
}

export type SignatureParse =
  | { ok: true; signature: DkimSignature }
  | {
      ok: false;
      /** why the signature cannot be processed (an RFC 6376 §6.1.1 reason where one fits) */
      reason: string;
      /** what could be read, for the result's header.d / header.s / header.b */
      domain: string;
      selector: string;
      b: string;
      algorithm: string;
    };

const REQUIRED_DKIM = ['v', 'a', 'b', 'bh', 'd', 'h', 's'];
const REQUIRED_AMS = ['i', 'a', 'b', 'bh', 'd', 'h', 's'];

const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
/** RFC 5322 field-name: printable ASCII except ":". */
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/**
 * A domain name as d= and the i= domain allow it: dot-separated labels of letters, digits and
 * hyphens (underscore tolerated), at most 63 octets each, at most 253 in all; `minLabels` labels.
 */
export function isDkimDomain(name: string, minLabels = 2): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  if (labels.length < minLabels) return false;
  for (const l of labels) if (!LABEL.test(l)) return false;
  return true;
}

/** s=: one or more labels (RFC 6376 §3.1, selector = sub-domain *( "." sub-domain )). */
export function isSelector(name: string): boolean {
  return isDkimDomain(name, 1);
}

/** a=: the algorithms this implementation knows; anything else is unsupported. */
export function parseAlgorithm(value: string): { keyType: KeyType; hash: HashAlgorithm } | null {
  switch (value.toLowerCase()) {
    case 'rsa-sha256':
      return { keyType: 'rsa', hash: 'sha256' };
    case 'ed25519-sha256':
      return { keyType: 'ed25519', hash: 'sha256' };
    case 'rsa-sha1':
      return { keyType: 'rsa', hash: 'sha1' };
    default:
      return null;
  }
}

/** c=: "header/body"; one name means that for the header and simple for the body (§3.5). */
export function parseCanonicalization(
  value: string | undefined,
): { header: Canonicalization; body: Canonicalization } | null {
  if (value === undefined) return { header: 'simple', body: 'simple' };
  const parts = value.split('/');
  if (parts.length > 2) return null;
  const h = parts[0]!.toLowerCase();
  const b = parts.length === 2 ? parts[1]!.toLowerCase() : 'simple';
  if ((h !== 'simple' && h !== 'relaxed') || (b !== 'simple' && b !== 'relaxed')) return null;
  return { header: h, body: b };
}

/** h=: the field names, lower case; null when a name is empty or not a field-name. */
export function parseSignedHeaderList(value: string): string[] | null {
  const names = splitColonList(value);
  const out: string[] = [];
  for (const n of names) {
    if (!FIELD_NAME.test(n)) return null;
    out.push(n.toLowerCase());
  }
  return out;
}

/** dkim-quoted-printable (§2.11) decoded: FWS removed, "=XX" hex pairs as octets (latin1). */
export function decodeDkimQuotedPrintable(value: string): string | null {
  const s = stripFws(value);
  if (!s.includes('=')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '=') {
      out += c;
      continue;
    }
    const hex = s.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
    out += String.fromCharCode(Number.parseInt(hex, 16));
    i += 2;
  }
  return out;
}

function parseUnsigned(value: string, maxDigits: number): number | null {
  if (value.length === 0 || value.length > maxDigits || !/^[0-9]+$/.test(value)) return null;
  return Number(value);
}

/** A DKIM-Signature header field value parsed and checked (§3.5, §6.1.1 without the clock). */
export function parseDkimSignature(value: string, options: SignatureParseOptions = {}): SignatureParse {
  return parseSignatureTags(value, 'dkim', options);
}

export interface SignatureParseOptions {
  /**
   * Accept the pre-RFC drafts' forms: v= absent or "0.x" (draft-ietf-dkim-base). Off by default:
   * RFC 6376 §3.5 makes v=1 required. For measuring old corpora, not for production.
   */
  draftVersions?: boolean;
}

/**
 * The common parser of DKIM-Signature ('dkim') and ARC-Message-Signature ('ams') values. Checks,
 * in order: tag-list syntax, required tags, v=, a=, c=, d=, s=, h= (must list From for DKIM),
 * i=, l=, t=, x=, q=, bh= and b= as base64. Time is checked by checkSignatureTimes().
 */
export function parseSignatureTags(
  value: string,
  kind: 'dkim' | 'ams',
  options: SignatureParseOptions = {},
): SignatureParse {
  const list = parseTagList(value);
  const get = (name: string) => list.tags.get(name)?.value;
  const partial = () => ({
    domain: (get('d') ?? '').toLowerCase(),
    selector: get('s') ?? '',
    b: stripFws(get('b') ?? ''),
    algorithm: (get('a') ?? '').toLowerCase(),
  });
  const fail = (reason: string): SignatureParse => ({ ok: false, reason, ...partial() });
  if (!list.ok) return fail(`signature syntax error: ${list.error}`);
  const draft = kind === 'dkim' && options.draftVersions === true;
  for (const t of kind === 'dkim' ? REQUIRED_DKIM : REQUIRED_AMS) {
    if (!list.tags.has(t) && !(draft && t === 'v')) return fail(`signature missing required tag ${t}=`);
  }
  const v = get('v');
  if (kind === 'dkim' && v !== '1' && !(draft && (v === undefined || /^0\.[0-9]+$/.test(v)))) {
    return fail(`incompatible version v=${v}`);
  }
  let instance: number | undefined;
  if (kind === 'ams') {
    const i = parseUnsigned(get('i')!, 2);
    if (i === null || i < 1 || i > 50) return fail(`invalid instance i=${get('i')}`);
    instance = i;
  }
  const algorithm = get('a')!.toLowerCase();
  const alg = parseAlgorithm(algorithm);
  if (!alg) return fail(`unsupported algorithm a=${get('a')}`);
  const canon = parseCanonicalization(get('c'));
  if (!canon) return fail(`unsupported canonicalization c=${get('c')}`);
  const d = get('d')!;
  if (!isDkimDomain(d)) return fail(`invalid signing domain d=${d}`);
  const domain = d.toLowerCase();
  const selector = get('s')!;
  if (!isSelector(selector)) return fail(`invalid selector s=${selector}`);
  const signedHeaders = parseSignedHeaderList(get('h')!);
  if (!signedHeaders || signedHeaders.length === 0) return fail('invalid signed header list h=');
  if (kind === 'dkim' && !signedHeaders.includes('from')) return fail('From field not signed');

  let auid = '';
  let auidDomain = domain;
  if (kind === 'dkim') {
    const i = get('i');
    if (i === undefined) auid = `@${domain}`;
    else {
      const decoded = decodeDkimQuotedPrintable(i);
      const at = decoded === null ? -1 : decoded.lastIndexOf('@');
      if (decoded === null || at < 0) return fail(`invalid identity i=${i}`);
      auid = decoded;
      auidDomain = decoded.slice(at + 1).toLowerCase();
      if (!isDkimDomain(auidDomain)) return fail(`invalid identity i=${i}`);
      if (auidDomain !== domain && !auidDomain.endsWith(`.${domain}`)) {
        return fail(`domain mismatch: i=${i} is not within d=${d}`);
      }
    }
  }

  let bodyLength: number | undefined;
  if (list.tags.has('l')) {
    const l = parseUnsigned(get('l')!, 76);
    if (l === null) return fail(`invalid body length l=${get('l')}`);
    bodyLength = l;
  }
  let timestamp: number | undefined;
  if (list.tags.has('t')) {
    const t = parseUnsigned(get('t')!, 12);
    if (t === null) return fail(`invalid timestamp t=${get('t')}`);
    timestamp = t;
  }
  let expiration: number | undefined;
  if (list.tags.has('x')) {
    const x = parseUnsigned(get('x')!, 12);
    if (x === null) return fail(`invalid expiration x=${get('x')}`);
    expiration = x;
  }
  if (timestamp !== undefined && expiration !== undefined && expiration < timestamp) {
    return fail(`expiration x=${expiration} is before the timestamp t=${timestamp}`);
  }
  if (list.tags.has('q')) {
    // "dns" alone is the pre-RFC form some old signers wrote; it means the same
    const methods = splitColonList(get('q')!).map((m) => m.toLowerCase());
    if (!methods.some((m) => m === 'dns/txt' || m === 'dns'))
      return fail(`unsupported query method q=${get('q')}`);
  }
  const bodyHash = decodeBase64(get('bh')!);
  if (!bodyHash || bodyHash.length === 0) return fail('body hash bh= is not base64');
  const b = stripFws(get('b')!);
  const signature = decodeBase64(b);
  if (!signature || signature.length === 0) return fail('signature b= is not base64');

  const bTag = list.tags.get('b')!;
  return {
    ok: true,
    signature: {
      value,
      tags: list.tags,
      algorithm,
      keyType: alg.keyType,
      hash: alg.hash,
      b,
      signature,
      bodyHash,
      headerCanon: canon.header,
      bodyCanon: canon.body,
      domain,
      selector,
      signedHeaders,
      auid,
      auidDomain,
      ...(instance !== undefined ? { instance } : {}),
      ...(bodyLength !== undefined ? { bodyLength } : {}),
      ...(timestamp !== undefined ? { timestamp } : {}),
      ...(expiration !== undefined ? { expiration } : {}),
      valueWithoutB: withoutTagValue(value, bTag),
    },
  };
}

/**
 * t= and x= against the clock (§3.5): null when acceptable, else the reason. A signature whose
 * x= has passed is expired; a t= more than `maxFutureSeconds` ahead is refused, as §3.5 allows
 * (pass Infinity to accept any t=).
 */
export function checkSignatureTimes(
  sig: DkimSignature,
  nowSeconds: number,
  maxFutureSeconds: number,
): string | null {
  if (sig.expiration !== undefined && sig.expiration < nowSeconds)
    return `signature expired (x=${sig.expiration})`;
  if (sig.timestamp !== undefined && sig.timestamp > nowSeconds + maxFutureSeconds) {
    return `signature timestamp t=${sig.timestamp} is in the future`;
  }
  return null;
}
