/**
 * Differential testing against mailauth 7.1.0 as an oracle (test-only): random messages are
 * signed with mailauth's dkimSign, some are mangled, and both verifiers judge them over the same
 * DNS answers. Shared by test/checks/dkim/differential.test.ts (a few hundred cases) and
 * fuzz/dkim.ts (more).
 *
 * mailauth runs in strict mode (its RFC-following mode). Verdicts must be equal, except for the
 * documented classes in `classify()`, each of which names the RFC text that makes ours right.
 */
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { mailauthResolver } from '../../../bench/support/mailauth-resolver.ts';
import { type DkimResult, verifyMessage } from '../../../src/checks/dkim/index.ts';
import { ManualClock } from '../../../src/common/clock.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';
import { between, chance, pick } from '../../../fuzz/support/prng.ts';
import { type DifferentialKeys, differentialKeys, keyRecord } from './sign.ts';

export type Keys = DifferentialKeys;

export function makeKeys(): Keys {
  return differentialKeys();
}

type Rng = () => number;

const WORDS = [
  'hello',
  'world',
  'DKIM',
  'canonical',
  'foo',
  'bar',
  'Grüße',
  '€uro',
  'a',
  'x-y',
  '=?utf-8?q?t=C3=A9st?=',
  '1234',
  '<tag>',
  'semi;colon',
  'colon:',
  'über',
];
const NAMES = [
  'To',
  'Cc',
  'Subject',
  'Date',
  'Message-ID',
  'MIME-Version',
  'Content-Type',
  'Reply-To',
  'X-Mailer',
  'X-Extra',
  'Received',
  'List-Id',
];

function words(rng: Rng, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(pick(rng, WORDS));
  return out.join(pick(rng, [' ', ' ', ' ', '  ', '\t', ' \t ']));
}

/** A header value with random spacing and folding (never a line of only white space). */
function headerValue(rng: Rng, text: string): string {
  let v = pick(rng, [' ', ' ', ' ', '', '  ', '\t']) + text;
  if (chance(rng, 0.3)) {
    const parts = v.split(' ');
    v = parts
      .map((p, i) =>
        i > 0 && p !== '' && chance(rng, 0.3)
          ? pick(rng, ['\r\n ', '\r\n\t', '\r\n   ']) + p
          : (i > 0 ? ' ' : '') + p,
      )
      .join('');
  }
  if (chance(rng, 0.15)) v += pick(rng, [' ', '\t', '  ']);
  return v;
}

function randomName(rng: Rng, name: string): string {
  const r = rng();
  if (r < 0.1) return name.toUpperCase();
  if (r < 0.2) return name.toLowerCase();
  return name;
}

function body(rng: Rng): string {
  const r = rng();
  if (r < 0.05) return '';
  if (r < 0.08) return '\r\n';
  if (r < 0.1) return pick(rng, ['\r\n\r\n\r\n', ' \r\n\t\r\n', 'x', '   ']);
  const lines: string[] = [];
  const n = between(rng, 1, chance(rng, 0.1) ? 200 : 20);
  for (let i = 0; i < n; i++) {
    const k = rng();
    if (k < 0.15) lines.push('');
    else if (k < 0.22) lines.push(pick(rng, [' ', '\t', '  \t ']));
    else if (k < 0.25) lines.push('x'.repeat(between(rng, 100, 1200)));
    else {
      let line = words(rng, between(rng, 1, 12));
      if (chance(rng, 0.2)) line = pick(rng, [' ', '\t', '  ']) + line;
      if (chance(rng, 0.25)) line += pick(rng, [' ', '\t', '  ', ' \t']);
      lines.push(line);
    }
  }
  let b = lines.join('\r\n');
  const end = rng();
  if (end < 0.6) b += '\r\n';
  else if (end < 0.85) b += '\r\n'.repeat(between(rng, 2, 6));
  else if (end < 0.92) b += '\r\n \r\n\t\r\n';
  return b;
}

export interface SignSpec {
  key: 'rsa' | 'ed';
  selector: string;
  algorithm?: string;
  canonicalization: string;
  headerList?: string[];
  maxBodyLength?: number;
  identity?: string;
  expires?: number;
}

export interface Case {
  seed: number;
  /** what was generated and done, for failure messages */
  notes: string[];
  message: Buffer;
  zone: ZoneData;
  now: number;
}

const NOW = Date.parse('2026-01-15T12:00:00Z');
const DOMAIN = 'example.com';

/** Generates, signs (with mailauth) and possibly mangles one case. */
export async function generateCase(seed: number, rng: Rng, keys: Keys): Promise<Case> {
  const notes: string[] = [];
  const headers: Array<[string, string]> = [];
  headers.push([
    randomName(rng, 'From'),
    headerValue(rng, pick(rng, ['a@example.com', 'Joe <joe@example.com>', '"Grüße" <g@sub.example.com>'])),
  ]);
  const count = between(rng, 1, 8);
  for (let i = 0; i < count; i++) {
    const name = pick(rng, NAMES);
    headers.push([randomName(rng, name), headerValue(rng, words(rng, between(rng, 0, 8)))]);
  }
  if (chance(rng, 0.2)) headers.push(['X-Empty', '']);
  // shuffle, keeping From somewhere
  for (let i = headers.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [headers[i], headers[j]] = [headers[j]!, headers[i]!];
  }
  const text = headers.map(([n, v]) => `${n}:${v}\r\n`).join('') + '\r\n' + body(rng);

  const present = [...new Set(headers.map(([n]) => n.toLowerCase()))];
  const specs: SignSpec[] = [];
  const nsig = chance(rng, 0.2) ? between(rng, 2, 3) : 1;
  for (let s = 0; s < nsig; s++) {
    const key = chance(rng, 0.55) ? 'rsa' : 'ed';
    const spec: SignSpec = {
      key,
      selector: key === 'rsa' ? 'rsa' : 'ed',
      // (mailauth's signer takes only the two-name form; the one-name form is in our unit tests)
      canonicalization: pick(rng, ['relaxed/relaxed', 'relaxed/simple', 'simple/relaxed', 'simple/simple']),
    };
    if (key === 'rsa' && chance(rng, 0.04)) spec.algorithm = 'rsa-sha1';
    if (chance(rng, 0.6)) {
      const list = ['from', ...present.filter(() => chance(rng, 0.6))];
      // over-signing: names listed more often than present, or absent
      if (chance(rng, 0.3)) list.push(pick(rng, ['from', 'subject', 'to', 'reply-to', 'x-absent']));
      if (chance(rng, 0.2)) list.push(...list.slice(0, 2));
      spec.headerList = [...new Set(list)].concat(list.filter((n, i) => list.indexOf(n) !== i));
    }
    if (chance(rng, 0.15)) spec.maxBodyLength = between(rng, 0, 200);
    if (chance(rng, 0.15))
      spec.identity = pick(rng, ['user@example.com', '@sub.example.com', 'x+y@a.sub.example.com']);
    if (chance(rng, 0.1)) spec.expires = NOW + pick(rng, [-86_400_000, 3_600_000]);
    specs.push(spec);
  }

  const signTime = new Date(NOW - between(rng, 0, 86_400) * 1000);
  const signatureData = specs.map((s) => ({
    signingDomain: DOMAIN,
    selector: s.selector,
    privateKey: keys[s.key].privatePem,
    canonicalization: s.canonicalization,
    ...(s.algorithm ? { algorithm: s.algorithm } : {}),
    ...(s.headerList ? { headerList: s.headerList } : {}),
    ...(s.maxBodyLength !== undefined ? { maxBodyLength: s.maxBodyLength } : {}),
    ...(s.identity ? { identity: s.identity } : {}),
    ...(s.expires !== undefined ? { expires: new Date(s.expires) } : {}),
    signTime,
  }));
  notes.push(`signatures: ${JSON.stringify(specs)}`);
  const signed = await dkimSign(Buffer.from(text), { signatureData, signTime } as never);
  if (signed.errors.length > 0)
    throw new Error(`seed ${seed}: mailauth could not sign: ${String(signed.errors[0]!.err)}`);
  let message = signed.signatures + text;

  const zone: ZoneData = {
    [`rsa._domainkey.${DOMAIN}`]: [{ TXT: keys.rsa.record }],
    [`ed._domainkey.${DOMAIN}`]: [{ TXT: keys.ed.record }],
  };
  let now = NOW;
  // most cases are mangled once; some twice (a broken key and a changed body, say)
  const mangles = chance(rng, 0.45) ? (chance(rng, 0.2) ? 2 : 1) : 0;
  let lineEndsLf = false;
  for (let i = 0; i < mangles; i++) {
    const m = mangle(rng, message, zone, keys);
    if (m.lf) lineEndsLf = true;
    else message = m.message;
    if (m.now) now = m.now;
    notes.push(`mangle: ${m.what}`);
  }
  if (lineEndsLf) message = message.replace(/\r\n/g, '\n');
  return { seed, notes, message: Buffer.from(message), zone, now };
}

/** One random change to the signed message, its DNS or the clock. */
function mangle(
  rng: Rng,
  message: string,
  zone: ZoneData,
  keys: Keys,
): { message: string; what: string; now?: number; lf?: boolean } {
  const split = message.indexOf('\r\n\r\n');
  const head = message.slice(0, split + 2);
  const rest = message.slice(split + 2);
  const bodyText = rest.slice(2);
  const sigKey = pick(rng, ['rsa', 'ed'] as const);
  const keyName = `${sigKey}._domainkey.${DOMAIN}`;
  const key = keys[sigKey];
  const r = between(rng, 0, 27);
  switch (r) {
    case 0: {
      if (bodyText.length === 0)
        return { message: message + 'tail\r\n', what: 'body appended to an empty body' };
      const at = between(rng, 0, bodyText.length - 1);
      const c = bodyText[at] === 'Z' ? 'Y' : 'Z';
      return {
        message: head + '\r\n' + bodyText.slice(0, at) + c + bodyText.slice(at + 1),
        what: `body octet ${at} changed`,
      };
    }
    case 1:
      return {
        message: message + pick(rng, ['appended line\r\n', '\r\n\r\n', ' \r\n', 'x']),
        what: 'body appended',
      };
    case 2:
      return { message: head + '\r\n' + bodyText.replace(/ /, '  '), what: 'body space doubled' };
    case 3:
      return {
        message: head + '\r\n' + bodyText.replace(/\r\n/, ' \t\r\n'),
        what: 'trailing white space on a body line',
      };
    case 4:
      return { message: head + '\r\n' + bodyText.replace(/(\r\n)+$/, ''), what: 'final line ends removed' };
    case 5:
      return { message: head.replace(/^(Subject:.*)$/im, '$1 changed') + rest, what: 'Subject changed' };
    case 6:
      return { message: head.replace(/^(From:)/im, '$1 ') + rest, what: 'space added after From:' };
    case 7:
      return {
        message: head.replace(/^(To|Subject|Date):/im, (m) => m.toUpperCase()) + rest,
        what: 'header name case changed',
      };
    case 8:
      return {
        message: head.replace(/^(To|Subject|From):[ \t]*/im, (m) => `${m.trimEnd()}\r\n `) + rest,
        what: 'header refolded',
      };
    case 9:
      return {
        message: `${pick(rng, ['From', 'Subject', 'To', 'X-New'])}: injected@evil.example\r\n${message}`,
        what: 'field added on top',
      };
    case 10: {
      const lines = head.split('\r\n');
      const insertAt = lines.length - 1;
      lines.splice(insertAt, 0, `${pick(rng, ['Subject', 'To', 'X-Later', 'Reply-To'])}: added below`);
      return { message: lines.join('\r\n') + rest, what: 'field added at the bottom' };
    }
    case 11:
      return {
        message: head.replace(/^(?:To|Cc|Date|Subject):.*\r\n(?:[ \t].*\r\n)*/im, '') + rest,
        what: 'a field removed',
      };
    case 12:
      return {
        message: message.replace(/ b=([A-Za-z0-9+/])/, (_m, c: string) => ` b=${c === 'A' ? 'B' : 'A'}`),
        what: 'b= altered',
      };
    case 13:
      return {
        message: message.replace(/bh=([A-Za-z0-9+/])/, (_m, c: string) => `bh=${c === 'A' ? 'B' : 'A'}`),
        what: 'bh= altered',
      };
    case 14:
      return {
        message: message.replace(
          /d=example\.com/,
          pick(rng, ['d=example.net', 'd=sub.example.com', 'd=EXAMPLE.com']),
        ),
        what: 'd= altered',
      };
    case 15:
      return {
        message: message.replace(/v=1; /, pick(rng, ['', 'v=2; ', 'v=1; v=1; ', 'v=1; x-junk=1; '])),
        what: 'v= altered',
      };
    case 16:
      return {
        message: message.replace(
          /a=(rsa|ed25519)-sha256/,
          pick(rng, ['a=rsa-sha512', 'a=RSA-SHA256', 'a=ed25519-sha256', 'a=rsa-sha256']),
        ),
        what: 'a= altered',
      };
    case 17:
      return {
        message: message.replace(
          /c=[a-z/]+;/,
          pick(rng, ['c=relaxed/relaxed;', 'c=simple;', 'c=fancy/simple;', '']),
        ),
        what: 'c= altered',
      };
    case 18:
      zone[keyName] = [{ TXT: pick(rng, ['v=DKIM1; p=', 'v=DKIM1; k=rsa; p=', 'p=']) }];
      return { message, what: `${sigKey} key revoked` };
    case 19:
      delete zone[keyName];
      return { message, what: `${sigKey} key NXDOMAIN` };
    case 20:
      zone[keyName] = [pick(rng, ['TIMEOUT', 'SERVFAIL'])];
      return { message, what: `${sigKey} key DNS failure` };
    case 21:
      zone[keyName] = [
        {
          TXT: pick(rng, [
            'v=DKIM2; p=abc',
            'v=DKIM1; k=dsa; p=AAAA',
            'v=DKIM1; p=%%%',
            'garbage',
            keyRecord(keys.rsa, ['s=chat']),
          ]),
        },
      ];
      return { message, what: `${sigKey} key record broken` };
    case 22:
      zone[keyName] = [{ TXT: keys.other.record }];
      return { message, what: `${sigKey} key replaced by another RSA key` };
    case 23:
      zone[keyName] = [{ TXT: keyRecord(key, ['h=sha1']) }];
      return { message, what: `${sigKey} key h=sha1` };
    case 24:
      zone[keyName] = [{ TXT: keyRecord(key, [`t=y${chance(rng, 0.5) ? ':s' : ''}`]) }];
      return { message, what: `${sigKey} key t= flags` };
    case 25:
      zone[keyName] = [{ TXT: (sigKey === 'rsa' ? keys.ed : keys.rsa).record }];
      return { message, what: `${sigKey} key of the other type` };
    case 26:
      return { message, what: 'clock two days later', now: NOW + 2 * 86_400_000 };
    default:
      return { message, what: 'all line ends LF', lf: true };
  }
}

export interface Verdicts {
  ours: DkimResult[];
  theirs: Array<{ result: string; comment: string; b: string }>;
}

/** Both verifiers over the same DNS answers and clock. */
export async function verifyBoth(c: Case): Promise<Verdicts> {
  const resolver = new MemoryResolver(c.zone);
  const ours = await verifyMessage(c.message, { resolver, clock: new ManualClock(c.now) });
  const ma = await dkimVerify(c.message, {
    resolver: mailauthResolver(resolver) as never,
    curTime: new Date(c.now),
    strict: true,
  });
  const theirs = ma.results.map((r) => ({
    result: String(r.status.result),
    comment: String((r.status as { comment?: string }).comment ?? ''),
    b: String(r.signature ?? ''),
  }));
  return { ours, theirs };
}

/**
 * Compares one signature's verdicts. 'agree' when equal; otherwise the name of a documented
 * disagreement class, or null for an undocumented one (a bug on one side).
 *
 * - key-before-hash: we answer from the key (permerror/temperror), mailauth from a body hash it
 *   checked first (fail). RFC 6376 §6.1 orders key retrieval (§6.1.2) before the hash
 *   computation (§6.1.3), and a missing key is final whatever the body says.
 * - key-vocabulary: no key / revoked / unusable key: permerror for us, neutral for mailauth.
 *   RFC 8601 §2.7.1: permerror is "an error that is unrecoverable", which a missing or
 *   revoked key record is; neutral is for signatures with syntax errors.
 * - expired-vocabulary: x= in the past: policy for us, neutral for mailauth. RFC 6376 §3.5 lets
 *   the verifier decide whether to honour x=; RFC 8601 §2.7.1 policy is "some aspect of the
 *   signature ... was not acceptable to the ADMD".
 * - rfc8301-before-hash: an rsa-sha1 signature over a changed body: policy for us, fail for
 *   mailauth, which hashes the body before applying its rsa-sha1 rule. RFC 8301 §3.1: verifiers
 *   MUST NOT consider rsa-sha1 signatures valid, so there is nothing to compute.
 */
export function classify(
  ours: DkimResult,
  theirs: { result: string; comment: string },
): 'agree' | string | null {
  if (ours.result === theirs.result) return 'agree';
  if ((ours.result === 'permerror' || ours.result === 'temperror') && theirs.result === 'fail')
    return 'key-before-hash';
  if (ours.result === 'permerror' && theirs.result === 'neutral') return 'key-vocabulary';
  if (ours.result === 'policy' && theirs.result === 'neutral' && /expired/.test(ours.reason))
    return 'expired-vocabulary';
  if (ours.result === 'policy' && theirs.result === 'fail' && ours.algorithm === 'rsa-sha1')
    return 'rfc8301-before-hash';
  return null;
}

/** Pairs each of our results with mailauth's for the same signature (by b=, else by order). */
export function pairResults(
  v: Verdicts,
): Array<{ ours: DkimResult; theirs: { result: string; comment: string; b: string } | undefined }> {
  return v.ours.map((o, i) => {
    const byB = o.b ? v.theirs.filter((t) => t.b.replace(/\s+/g, '').startsWith(o.b)) : [];
    return { ours: o, theirs: byB.length === 1 ? byB[0] : v.theirs[i] };
  });
}
