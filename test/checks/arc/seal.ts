/**
 * A minimal ARC sealer for unit tests (RFC 8617 §5.1), built on our canonicalizers and node:crypto,
 * so tests can write exactly the tags they need (odd cv=, extra tags, one-name c=, h= with or
 * without the AAR, t=). Independent checking comes from the ValiMail suite and the mailauth
 * differential tests, whose sets are made by other code.
 */
import { createHash, sign as cryptoSign } from 'node:crypto';
import { parseAar, readTagInstance } from '../../../src/checks/arc/parse.ts';
import { type Canonicalization, canonicalizeBody } from '../../../src/checks/dkim/canon.ts';
import {
  type HeaderField,
  headerField,
  indexFields,
  selectFields,
  signedHeaderText,
} from '../../../src/checks/dkim/fields.ts';
import { parseTagList, withoutTagValue } from '../../../src/checks/dkim/tags.ts';
import { parseFields, type TestKey } from '../dkim/sign.ts';

export interface SealSpec {
  key: TestKey;
  /** a different key for the AMS (default: the seal's) */
  amsKey?: TestKey;
  domain?: string;
  selector?: string;
  amsDomain?: string;
  amsSelector?: string;
  /** i= (default: one more than the highest instance on the message) */
  instance?: number;
  /** cv= as written (default none for i=1, else pass) */
  cv?: string;
  /** the AAR payload after "i=N; " */
  authResults?: string;
  /** AMS h= as written (default: from, to, subject, date and arc-authentication-results, when present) */
  h?: string[];
  /** AMS c= as written; null leaves it out (default relaxed/relaxed) */
  c?: string | null;
  /** AMS l= */
  l?: number;
  /** t= of both signatures */
  t?: number;
  /** AMS x= */
  x?: number;
  /** tags put before b= in the AMS / the AS */
  amsExtra?: string;
  sealExtra?: string;
}

function sign(key: TestKey, data: Buffer): string {
  return key.type === 'rsa'
    ? cryptoSign('sha256', data, key.privateKey).toString('base64')
    : cryptoSign(null, createHash('sha256').update(data).digest(), key.privateKey).toString('base64');
}

/** The highest ARC instance on a header block (0 when none). */
function highestInstance(fields: readonly HeaderField[]): number {
  let n = 0;
  for (const f of fields) {
    let i: number | null = null;
    if (f.key === 'arc-authentication-results') {
      const p = parseAar(f.value);
      i = p.ok ? p.instance : null;
    } else if (f.key === 'arc-seal' || f.key === 'arc-message-signature') i = readTagInstance(f.value);
    if (i !== null && i > n) n = i;
  }
  return n;
}

/** The ARC fields of instance i on the message, in the order a seal hashes them (AAR, AMS, AS). */
function setFields(fields: readonly HeaderField[], i: number): HeaderField[] {
  const pick = (key: string) =>
    fields.find(
      (f) =>
        f.key === key &&
        (key === 'arc-authentication-results'
          ? (() => {
              const p = parseAar(f.value);
              return p.ok && p.instance === i;
            })()
          : readTagInstance(f.value) === i),
    );
  const out: HeaderField[] = [];
  for (const key of ['arc-authentication-results', 'arc-message-signature', 'arc-seal']) {
    const f = pick(key);
    if (f) out.push(f);
  }
  return out;
}

/**
 * Adds one ARC Set to a CRLF message ("headers\r\n\r\nbody"): the new ARC-Seal, then
 * ARC-Message-Signature, then ARC-Authentication-Results go on top, as a sealer prepends them.
 */
export function addArcSet(message: string, spec: SealSpec): string {
  const split = message.indexOf('\r\n\r\n');
  const headerBlock = split < 0 ? message : message.slice(0, split + 2);
  const body = split < 0 ? '' : message.slice(split + 4);
  const existing = parseFields(headerBlock).map(([n, v]) => headerField(n, v));
  const i = spec.instance ?? highestInstance(existing) + 1;
  const domain = spec.domain ?? 'sealer.example';
  const aarValue = ` i=${i}; ${spec.authResults ?? `${domain}; spf=pass smtp.mailfrom=a@example.com`}`;
  const aar = headerField('ARC-Authentication-Results', aarValue);
  const withAar = [aar, ...existing];

  const c = spec.c === undefined ? 'relaxed/relaxed' : spec.c;
  const [hc, bc = 'simple'] = (c ?? 'simple/simple').split('/') as [Canonicalization, Canonicalization?];
  let canonBody = canonicalizeBody(bc, Buffer.from(body, 'latin1'));
  if (spec.l !== undefined) canonBody = canonBody.subarray(0, spec.l);
  const bh = createHash('sha256').update(canonBody).digest('base64');
  const h =
    spec.h ??
    ['from', 'to', 'subject', 'date', 'arc-authentication-results'].filter((n) =>
      withAar.some((f) => f.key === n),
    );
  const amsKey = spec.amsKey ?? spec.key;
  const amsTags = [
    `i=${i}`,
    `a=${amsKey.type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256'}`,
    ...(c !== null ? [`c=${c}`] : []),
    `d=${spec.amsDomain ?? domain}`,
    `s=${spec.amsSelector ?? spec.selector ?? 'arc'}`,
    `h=${h.join(':')}`,
    ...(spec.l !== undefined ? [`l=${spec.l}`] : []),
    ...(spec.t !== undefined ? [`t=${spec.t}`] : []),
    ...(spec.x !== undefined ? [`x=${spec.x}`] : []),
    ...(spec.amsExtra ? [spec.amsExtra] : []),
    `bh=${bh}`,
    'b=',
  ];
  const amsUnsigned = ` ${amsTags.join('; ')}`;
  const selected = selectFields(
    withAar,
    indexFields(withAar),
    h.map((n) => n.toLowerCase()),
  );
  const amsText = signedHeaderText(selected, hc, 'ARC-Message-Signature', amsUnsigned);
  const amsValue = amsUnsigned + sign(amsKey, Buffer.from(amsText, 'latin1'));
  const ams = headerField('ARC-Message-Signature', amsValue);

  const sealTags = [
    `i=${i}`,
    `a=${spec.key.type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256'}`,
    `cv=${spec.cv ?? (i === 1 ? 'none' : 'pass')}`,
    `d=${domain}`,
    `s=${spec.selector ?? 'arc'}`,
    ...(spec.t !== undefined ? [`t=${spec.t}`] : []),
    ...(spec.sealExtra ? [spec.sealExtra] : []),
    'b=',
  ];
  const sealUnsigned = ` ${sealTags.join('; ')}`;
  const covered: HeaderField[] = [];
  for (let k = 1; k < i; k++) covered.push(...setFields(existing, k));
  covered.push(aar, ams);
  const list = parseTagList(sealUnsigned);
  if (!list.ok) throw new Error(list.error);
  const sealText = signedHeaderText(
    covered,
    'relaxed',
    'ARC-Seal',
    withoutTagValue(sealUnsigned, list.tags.get('b')!),
  );
  const sealValue = sealUnsigned + sign(spec.key, Buffer.from(sealText, 'latin1'));
  return `ARC-Seal:${sealValue}\r\nARC-Message-Signature:${amsValue}\r\nARC-Authentication-Results:${aarValue}\r\n${message}`;
}

/** A plain test message. */
export function baseMessage(body = 'Hello,\r\n\r\nthis is a test.\r\n'): string {
  return [
    'From: Joe <joe@example.com>',
    'To: list@lists.example.org',
    'Subject: ARC test',
    'Date: Thu, 15 Jan 2026 12:00:00 +0000',
    'Message-ID: <arc-test@example.com>',
    '',
    body,
  ].join('\r\n');
}
