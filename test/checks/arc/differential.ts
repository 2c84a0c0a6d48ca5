/**
 * Differential testing of ARC chain validation against mailauth 7.1.0 as an oracle (test-only):
 * random messages go through 1 to 4 sealers (mailauth's sealMessage, RSA and Ed25519 keys, random
 * AMS header lists), forwarders change them between hops, some results are mangled (message,
 * ARC fields, DNS), and both validators judge the same bytes over the same DNS answers. Shared by
 * test/checks/arc/differential.test.ts (a few hundred cases) and fuzz/arc.ts (more).
 *
 * mailauth runs in strict mode (its RFC 8617 mode). The verdicts (cv) must be equal, except for the
 * documented classes in classify(), each naming the RFC text that makes ours right.
 */
import { arc as mailauthArc, sealMessage } from 'mailauth/lib/arc/index.js';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { mailauthResolver } from '../../../bench/support/mailauth-resolver.ts';
import { type ArcResult, verifyArc } from '../../../src/checks/arc/index.ts';
import { ManualClock } from '../../../src/common/clock.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';
import { between, chance, pick } from '../../../fuzz/support/prng.ts';
import { type DifferentialKeys, differentialKeys } from '../dkim/sign.ts';

export type ArcKeys = DifferentialKeys;

/** RSA and Ed25519 sealer keys, and a 1024-bit RSA key for "DNS holds a different key". */
export function makeArcKeys(): ArcKeys {
  return differentialKeys(1024);
}

type Rng = () => number;

const WORDS = [
  'hello',
  'list',
  'ARC',
  'forwarded',
  'Grüße',
  'x',
  '[tag]',
  'semi;colon',
  '=?utf-8?q?a=C3=A9?=',
  '42',
];
const SEALERS = ['lists.example', 'fwd.example.net', 'relay.example.org', 'mx.sub.example.com'];

function text(rng: Rng, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(pick(rng, WORDS));
  return out.join(pick(rng, [' ', ' ', '  ', '\t']));
}

/** A header value with random spacing and, sometimes, folding. */
function value(rng: Rng, t: string): string {
  let v = pick(rng, [' ', ' ', '', '  ']) + t;
  if (chance(rng, 0.25)) v = v.replace(/ (?=\S)/, pick(rng, ['\r\n ', '\r\n\t']));
  if (chance(rng, 0.1)) v += ' ';
  return v;
}

function body(rng: Rng): string {
  const r = rng();
  if (r < 0.05) return '';
  if (r < 0.1) return pick(rng, ['\r\n', '\r\n\r\n', ' \r\n', 'no final line end']);
  const lines: string[] = [];
  for (let i = between(rng, 1, 15); i > 0; i--) {
    const k = rng();
    lines.push(
      k < 0.15 ? '' : k < 0.2 ? ' \t' : text(rng, between(rng, 1, 10)) + (chance(rng, 0.2) ? '  ' : ''),
    );
  }
  return lines.join('\r\n') + pick(rng, ['\r\n', '\r\n', '\r\n\r\n\r\n', '']);
}

export interface ArcCase {
  seed: number;
  notes: string[];
  message: Buffer;
  zone: ZoneData;
}

export const ARC_NOW = Date.parse('2026-01-15T12:00:00Z');

/** Splits a CRLF message into its header block (ending in CRLF) and the rest (from the empty line). */
function split(message: string): { head: string; rest: string } {
  const at = message.indexOf('\r\n\r\n');
  return { head: message.slice(0, at + 2), rest: message.slice(at + 2) };
}

/** What a forwarder may do to the message before sealing it (the chain stays valid). */
function forwarderChange(rng: Rng, message: string): { message: string; what: string } {
  const { head, rest } = split(message);
  switch (between(rng, 0, 4)) {
    case 0:
      return { message: head.replace(/^Subject:/im, 'Subject: [list]') + rest, what: 'subject tagged' };
    case 1:
      return { message: message + '--\r\nlist footer\r\n', what: 'footer added' };
    case 2:
      return { message: `X-Forwarded: ${text(rng, 2)}\r\n${message}`, what: 'field added' };
    case 3:
      return { message: `Received: from x by y; ${text(rng, 3)}\r\n${message}`, what: 'Received added' };
    default:
      return { message: head.replace(/^(To:)[ \t]*/im, '$1\r\n\t') + rest, what: 'To refolded' };
  }
}

/** Generates, seals (with mailauth) and possibly mangles one case. */
export async function generateArcCase(seed: number, rng: Rng, keys: ArcKeys): Promise<ArcCase> {
  const notes: string[] = [];
  const headers: Array<[string, string]> = [
    ['From', value(rng, pick(rng, ['a@example.com', 'Joe <joe@example.com>', '"Grüße" <g@example.org>']))],
    ['To', value(rng, 'list@lists.example')],
    ['Subject', value(rng, text(rng, between(rng, 0, 6)))],
  ];
  if (chance(rng, 0.6)) headers.push(['Date', ' Thu, 15 Jan 2026 11:00:00 +0000']);
  if (chance(rng, 0.5)) headers.push(['Message-ID', ` <${seed}@example.com>`]);
  if (chance(rng, 0.3)) headers.push(['X-Mailer', value(rng, text(rng, 2))]);
  for (let i = headers.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [headers[i], headers[j]] = [headers[j]!, headers[i]!];
  }
  let message = headers.map(([n, v]) => `${n}:${v}\r\n`).join('') + '\r\n' + body(rng);
  const zone: ZoneData = {};
  const hops = chance(rng, 0.05) ? 0 : between(rng, 1, 4);
  const sealers: Array<{ domain: string; type: 'rsa' | 'ed' }> = [];
  for (let i = 1; i <= hops; i++) {
    if (i > 1 && chance(rng, 0.5)) {
      const c = forwarderChange(rng, message);
      message = c.message;
      notes.push(`before hop ${i}: ${c.what}`);
    }
    const type = chance(rng, 0.6) ? 'rsa' : 'ed';
    const domain = pick(rng, SEALERS);
    sealers.push({ domain, type });
    zone[`${type}._domainkey.${domain}`] = [{ TXT: keys[type].record }];
    const headerList = chance(rng, 0.3)
      ? [
          'from',
          ...['to', 'subject', 'date', 'message-id', 'x-mailer', 'x-absent'].filter(() => chance(rng, 0.5)),
        ]
      : undefined;
    const seal = {
      signingDomain: domain,
      selector: type,
      privateKey: keys[type].privatePem,
      authResults: `mx.${domain}; spf=pass smtp.mailfrom=a@example.com; dmarc=${pick(rng, ['pass', 'fail'])} header.from=example.com`,
      cv: i === 1 ? 'none' : 'pass',
      signTime: new Date(ARC_NOW - (hops - i + 1) * 60_000),
      ...(headerList ? { headerList } : {}),
    };
    const added = await sealMessage(Buffer.from(message, 'latin1'), seal as never);
    if (added.length === 0) throw new Error(`seed ${seed}: mailauth did not seal hop ${i}`);
    message = added.toString('latin1') + message;
  }
  notes.push(`sealers: ${JSON.stringify(sealers)}`);
  const mangles = hops > 0 && chance(rng, 0.55) ? (chance(rng, 0.15) ? 2 : 1) : 0;
  for (let k = 0; k < mangles; k++) {
    const m = mangle(rng, message, zone, keys, sealers);
    message = m.message;
    notes.push(`mangle: ${m.what}`);
  }
  return { seed, notes, message: Buffer.from(message, 'latin1'), zone };
}

/** The fields of the message's header block, each with its continuation lines. */
function fieldsOf(head: string): string[] {
  return head.split(/\r\n(?![ \t])/).filter((f) => f !== '');
}

function mangle(
  rng: Rng,
  message: string,
  zone: ZoneData,
  keys: ArcKeys,
  sealers: ReadonlyArray<{ domain: string; type: 'rsa' | 'ed' }>,
): { message: string; what: string } {
  const { head, rest } = split(message);
  const fields = fieldsOf(head);
  const arcAt = fields.map((f, i) => (/^arc-/i.test(f) ? i : -1)).filter((i) => i >= 0);
  const target = pick(rng, sealers);
  const keyName = `${target.type}._domainkey.${target.domain}`;
  const join = (fs: string[]) => fs.join('\r\n') + '\r\n' + rest;
  const kinds: Record<string, RegExp> = {
    any: /^arc-/i,
    aar: /^arc-authentication-results/i,
    ams: /^arc-message-signature/i,
    seal: /^arc-seal/i,
  };
  const choice = between(rng, 0, 21);
  const need = [5, 6, 10, 11, 13].includes(choice)
    ? 'any'
    : choice === 7
      ? 'aar'
      : choice === 8 || choice === 21
        ? 'ams'
        : choice === 9 || choice === 14
          ? 'seal'
          : null;
  const candidates = need ? arcAt.filter((i) => kinds[need]!.test(fields[i]!)) : arcAt;
  // an earlier mangle may have removed every field of the kind: change the body instead
  if (candidates.length === 0) return { message: message + 'x\r\n', what: 'body appended (no field left)' };
  switch (choice) {
    case 0:
      return { message: message + 'appended\r\n', what: 'body appended' };
    case 1:
      return { message: head + rest.replace(/[a-z]/, 'Q'), what: 'body letter changed' };
    case 2:
      return { message: head + rest.replace(/ (?=\S)/, '   '), what: 'body white space widened' };
    case 3:
      return {
        message: head.replace(/^From:.*$/im, 'From: mallory@evil.example') + rest,
        what: 'From replaced',
      };
    case 4:
      return { message: `X-Top: added\r\n${message}`, what: 'unsigned field added on top' };
    case 5: {
      const at = pick(rng, candidates);
      const f = fields[at]!;
      fields[at] = f.replace(
        /^([A-Za-z-]+):/,
        (_m, n: string) => `${pick(rng, [n.toUpperCase(), n.toLowerCase()])}:`,
      );
      return { message: join(fields), what: 'ARC field name case changed' };
    }
    case 6: {
      const at = pick(rng, candidates);
      fields[at] = fields[at]!.replace(/; /, pick(rng, [';\r\n\t', ';  ', ' ;\r\n  ']));
      return { message: join(fields), what: 'ARC field refolded' };
    }
    case 7: {
      const at = pick(rng, candidates);
      fields[at] = fields[at]!.replace(/spf=pass/, 'spf=fail');
      return { message: join(fields), what: 'an AAR changed' };
    }
    case 8: {
      const at = pick(rng, candidates);
      fields[at] = fields[at]!.replace(/t=(\d)/, (_m, d: string) => `t=${d === '9' ? '8' : '9'}`);
      return { message: join(fields), what: 'an AMS t= changed' };
    }
    case 9: {
      const at = pick(rng, candidates);
      fields[at] = fields[at]!.replace(
        /cv=(none|pass)/,
        pick(rng, ['cv=fail', 'cv=pass', 'cv=none', 'cv=PASS']),
      );
      return { message: join(fields), what: 'a seal cv= changed' };
    }
    case 10: {
      const at = pick(rng, candidates);
      fields.splice(at, 1);
      return { message: join(fields), what: 'an ARC field removed' };
    }
    case 11: {
      const at = pick(rng, candidates);
      fields.splice(between(rng, 0, fields.length), 0, fields[at]!);
      return { message: join(fields), what: 'an ARC field duplicated' };
    }
    case 12: {
      // the whole newest set moved to the bottom of the header: grouping is by i=, not position
      const moved = fields.splice(0, 3);
      return { message: join([...fields, ...moved]), what: 'newest set moved to the bottom' };
    }
    case 13: {
      const at = pick(rng, candidates);
      fields[at] = fields[at]!.replace(
        /i=(\d+)/,
        (_m, d: string) => `i=${pick(rng, [String(Number(d) + 1), '0', '51', `0${d}`])}`,
      );
      return { message: join(fields), what: 'an instance changed' };
    }
    case 14: {
      const at = pick(rng, candidates);
      fields[at] = fields[at]!.replace(
        / b=([A-Za-z0-9+/])/,
        (_m, c: string) => ` b=${c === 'A' ? 'B' : 'A'}`,
      );
      return { message: join(fields), what: 'a seal b= changed' };
    }
    case 15:
      delete zone[keyName];
      return { message, what: `${keyName} NXDOMAIN` };
    case 16:
      zone[keyName] = [pick(rng, ['TIMEOUT', 'SERVFAIL'])];
      return { message, what: `${keyName} DNS failure` };
    case 17:
      zone[keyName] = [
        { TXT: pick(rng, ['v=DKIM1; p=', 'v=DKIM1; k=rsa; p=%%', 'garbage', `v=DKIM1; p=${keys.other.p}`]) },
      ];
      return { message, what: `${keyName} broken or replaced` };
    case 18:
      zone[keyName] = [
        {
          TXT: (target.type === 'rsa' ? keys.ed : keys.rsa).record,
        },
      ];
      return { message, what: `${keyName} of the other type` };
    case 19: {
      // a whole older set removed: a gap
      const i = between(rng, 1, sealers.length);
      const kept = fields.filter(
        (f) => !(/^arc-/i.test(f) && new RegExp(`(^|[;:\\s])i\\s*=\\s*${i}\\s*[;\\s]`).test(f)),
      );
      return { message: join(kept), what: `set i=${i} removed` };
    }
    case 20:
      return { message: message.replace(/\r\n/g, '\n'), what: 'all line ends LF' };
    default: {
      const at = pick(rng, candidates);
      fields[at] = fields[at]!.replace(
        /c=relaxed\/relaxed/,
        pick(rng, ['c=simple/simple', 'c=relaxed', 'c=relaxed/simple']),
      );
      return { message: join(fields), what: 'an AMS c= changed' };
    }
  }
}

export interface ArcVerdicts {
  ours: ArcResult;
  theirs: { result: string; comment: string };
}

/** Both validators over the same bytes and DNS answers. */
export async function verifyArcBoth(c: ArcCase): Promise<ArcVerdicts> {
  const resolver = new MemoryResolver(c.zone);
  const ours = await verifyArc(c.message, { resolver, clock: new ManualClock(ARC_NOW) });
  const ma = mailauthResolver(resolver);
  let theirs: { result: string; comment: string };
  try {
    const dk = await dkimVerify(c.message, {
      resolver: ma as never,
      curTime: new Date(ARC_NOW),
      strict: true,
    });
    const r = await mailauthArc(dk.arc as never, { resolver: ma as never, strict: true });
    theirs = { result: String(r.status.result), comment: String(r.status.comment ?? '') };
  } catch (e) {
    theirs = { result: 'exception', comment: String(e) };
  }
  return { ours, theirs };
}

/**
 * 'agree' when the cv values are equal; otherwise the name of a documented disagreement class,
 * or null (a bug on one side). No class is documented yet: every generated case must agree.
 */
export function classifyArc(v: ArcVerdicts): 'agree' | string | null {
  if (v.ours.cv === v.theirs.result) return 'agree';
  return null;
}
