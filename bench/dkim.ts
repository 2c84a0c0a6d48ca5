/**
 * DKIM verification of ~10 KB messages: ours (verifyMessage) against mailauth 7.1.0's dkimVerify
 * (strict mode) in the same run, over the same in-memory DNS (mailauth reaches it through
 * bench/support/mailauth-resolver.ts), for RSA-2048 and Ed25519 signatures (relaxed/relaxed);
 * and the machine's floor for the same work measured here: node:crypto alone hashing the body
 * (SHA-256) and checking the signature with a ready KeyObject.
 *
 *   node bench/dkim.ts [--seconds 0.5] [--rounds 3] [--messages 200]
 *
 * Rows: `ours` (key records cached, as in production), `oursNoCache` (a fresh key cache per
 * message, so every message parses its key as mailauth does), `oursThreadPool` (the
 * cryptoThreadPool option: signature checks on libuv's pool), `mailauth`, `floor` (one thread).
 * `ratio` is ours / mailauth, `ofFloor` ours / floor. Implementations alternate within each round so drift
 * on a shared machine hits all alike. Every verdict is checked to be pass before timing.
 */
import { createHash, generateKeyPairSync, type KeyObject, verify as cryptoVerify } from 'node:crypto';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { canonicalizeBody } from '../src/checks/dkim/canon.ts';
import {
  headerField,
  indexFields,
  selectFields,
  signedHeaderText,
  splitRawMessage,
} from '../src/checks/dkim/fields.ts';
import { DkimKeyCache, parseKeyRecord } from '../src/checks/dkim/key.ts';
import { parseDkimSignature } from '../src/checks/dkim/signature.ts';
import { verifyMessage } from '../src/checks/dkim/verifier.ts';
import { prng } from '../fuzz/support/prng.ts';
import { Zone } from '../test/support/zone.ts';
import { numberArg } from './support/args.ts';
import { mailauthResolver } from './support/mailauth-resolver.ts';
import { ZoneResolver } from './support/zone-resolver.ts';

const SECONDS = numberArg('seconds', 0.5);
const ROUNDS = Math.floor(numberArg('rounds', 3));
const MESSAGES = Math.floor(numberArg('messages', 200));
const TARGET_BYTES = 10 * 1024;

const rng = prng(2026);
const WORDS = [
  'the',
  'quick',
  'brown',
  'fox',
  'jumps',
  'over',
  'lazy',
  'dog',
  'DKIM',
  'message',
  'gateway',
  'hello,',
  'world.',
  'é',
];

/** A plausible ~10 KB message: a dozen header fields, text lines of 60–78 octets, some blank lines. */
function makeMessage(i: number): string {
  const headers = [
    `From: Sender ${i} <sender${i}@bench.example>`,
    `To: rcpt${i}@dest.example`,
    `Subject: benchmark message ${i} with a subject long enough\r\n to be folded`,
    `Date: Thu, 15 Jan 2026 12:${String(i % 60).padStart(2, '0')}:00 +0000`,
    `Message-ID: <${i}.bench@bench.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Received: from mx${i}.bench.example (mx.bench.example [192.0.2.${i % 250}])\r\n\tby gw.dest.example; Thu, 15 Jan 2026 12:00:00 +0000`,
    'X-Mailer: bench',
  ];
  const lines: string[] = [];
  let size = headers.join('\r\n').length;
  while (size < TARGET_BYTES - 200) {
    let line = '';
    while (line.length < 60) line += `${WORDS[Math.floor(rng() * WORDS.length)]}${rng() < 0.05 ? '  ' : ' '}`;
    if (rng() < 0.08) lines.push('');
    lines.push(line.trimEnd());
    size += line.length + 2;
  }
  return `${headers.join('\r\n')}\r\n\r\n${lines.join('\r\n')}\r\n`;
}

interface Setup {
  name: string;
  messages: Buffer[];
  resolver: ZoneResolver;
  /** the floor's per-message work: body octets to hash, header octets and signature to verify */
  floor: Array<{ body: Buffer; header: Buffer; signature: Buffer }>;
  publicKey: KeyObject;
  ed: boolean;
}

async function setup(kind: 'rsa-2048' | 'ed25519'): Promise<Setup> {
  const pair =
    kind === 'rsa-2048'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ed25519');
  const p =
    kind === 'rsa-2048'
      ? pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')
      : pair.publicKey.export({ type: 'spki', format: 'der' }).subarray(12).toString('base64');
  const record = `v=DKIM1; k=${kind === 'rsa-2048' ? 'rsa' : 'ed25519'}; p=${p}`;
  const resolver = new ZoneResolver(new Zone({ 'bench._domainkey.bench.example': [{ TXT: record }] }));
  const privateKey = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const messages: Buffer[] = [];
  const floor: Setup['floor'] = [];
  for (let i = 0; i < MESSAGES; i++) {
    const text = Buffer.from(makeMessage(i));
    const o = {
      signingDomain: 'bench.example',
      selector: 'bench',
      privateKey,
      canonicalization: 'relaxed/relaxed',
    };
    const signed = await dkimSign(text, { ...o, signatureData: [o] } as never);
    const message = Buffer.concat([Buffer.from(signed.signatures), text]);
    messages.push(message);
    // the floor's inputs, prepared outside the timing: canonical body and header octets
    const { fields, bodyStart } = splitRawMessage(message);
    const sigField = fields.find((f) => f.key === 'dkim-signature')!;
    const parsed = parseDkimSignature(sigField.value);
    if (!parsed.ok) throw new Error(parsed.reason);
    const sig = parsed.signature;
    const others = fields.map((f) => headerField(f.name, f.value));
    const selected = selectFields(others, indexFields(others), sig.signedHeaders, fields.indexOf(sigField));
    floor.push({
      body: canonicalizeBody('relaxed', message.subarray(bodyStart)),
      header: Buffer.from(signedHeaderText(selected, 'relaxed', sigField.name, sig.valueWithoutB), 'latin1'),
      signature: sig.signature,
    });
  }
  const key = parseKeyRecord(record);
  if (!key.ok) throw new Error(key.reason);
  return { name: kind, messages, resolver, floor, publicKey: key.key.publicKey, ed: kind === 'ed25519' };
}

type Impl = 'ours' | 'oursNoCache' | 'oursThreadPool' | 'mailauth' | 'floor';
const IMPLS: Impl[] = ['ours', 'oursNoCache', 'oursThreadPool', 'mailauth', 'floor'];

function runner(impl: Impl, s: Setup): (i: number) => Promise<string> {
  const n = s.messages.length;
  if (impl === 'ours') {
    const deps = { resolver: s.resolver, keyCache: new DkimKeyCache() };
    return async (i) => (await verifyMessage(s.messages[i % n]!, deps))[0]!.result;
  }
  if (impl === 'oursThreadPool') {
    const deps = { resolver: s.resolver, keyCache: new DkimKeyCache() };
    return async (i) =>
      (await verifyMessage(s.messages[i % n]!, deps, { cryptoThreadPool: true }))[0]!.result;
  }
  if (impl === 'oursNoCache') {
    return async (i) =>
      (await verifyMessage(s.messages[i % n]!, { resolver: s.resolver, keyCache: new DkimKeyCache() }))[0]!
        .result;
  }
  if (impl === 'mailauth') {
    const resolver = mailauthResolver(s.resolver);
    return async (i) => {
      const r = await dkimVerify(s.messages[i % n]!, { resolver: resolver as never, strict: true });
      return String(r.results[0]!.status.result);
    };
  }
  return async (i) => {
    const f = s.floor[i % n]!;
    createHash('sha256').update(f.body).digest();
    const ok = s.ed
      ? cryptoVerify(null, createHash('sha256').update(f.header).digest(), s.publicKey, f.signature)
      : cryptoVerify('sha256', f.header, s.publicKey, f.signature);
    return ok ? 'pass' : 'fail';
  };
}

async function measure(
  fn: (i: number) => Promise<unknown>,
  concurrency: number,
  seconds: number,
): Promise<{ ops: number; ms: number }> {
  const start = performance.now();
  const end = start + seconds * 1000;
  let ops = 0;
  let next = 0;
  const worker = async () => {
    while (performance.now() < end) {
      for (let k = 0; k < 8; k++) await fn(next++);
      ops += 8;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ops, ms: performance.now() - start };
}

const started = performance.now();
const cases: Record<string, unknown>[] = [];
let bytes = 0;
for (const kind of ['rsa-2048', 'ed25519'] as const) {
  const s = await setup(kind);
  bytes = Math.round(s.messages.reduce((a, m) => a + m.length, 0) / s.messages.length);
  const verdicts: Record<string, string[]> = {};
  for (const impl of IMPLS) {
    const fn = runner(impl, s);
    verdicts[impl] = [...new Set(await Promise.all(s.messages.map((_m, i) => fn(i))))];
  }
  const allPass = Object.values(verdicts).every((v) => v.length === 1 && v[0] === 'pass');
  const totals: Record<string, { ops: number; ms: number }> = {};
  for (const concurrency of [1, 32]) {
    for (const impl of IMPLS) await measure(runner(impl, s), concurrency, 0.1); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const impl of IMPLS) {
        const m = await measure(runner(impl, s), concurrency, SECONDS);
        const key = `${impl}@${concurrency}`;
        const t = totals[key] ?? { ops: 0, ms: 0 };
        t.ops += m.ops;
        t.ms += m.ms;
        totals[key] = t;
      }
    }
  }
  const rate = (impl: Impl, c: number) =>
    Math.round((totals[`${impl}@${c}`]!.ops / totals[`${impl}@${c}`]!.ms) * 1000);
  const row = (c: number) => ({
    ours: rate('ours', c),
    oursNoCache: rate('oursNoCache', c),
    oursThreadPool: rate('oursThreadPool', c),
    mailauth: rate('mailauth', c),
    floor: rate('floor', c),
    ratio: Number((rate('ours', c) / rate('mailauth', c)).toFixed(2)),
    ratioNoCache: Number((rate('oursNoCache', c) / rate('mailauth', c)).toFixed(2)),
    ofFloor: Number((rate('ours', c) / rate('floor', c)).toFixed(2)),
  });
  cases.push({ key: kind, allPass, verdicts, sequential: row(1), concurrent32: row(32) });
}

const ratios = cases.flatMap((c) => [
  (c['sequential'] as { ratio: number }).ratio,
  (c['concurrent32'] as { ratio: number }).ratio,
]);
console.log(
  JSON.stringify(
    {
      bench: 'dkim',
      unit: 'messages/s',
      node: process.version,
      mailauth: '7.1.0',
      messages: MESSAGES,
      averageMessageBytes: bytes,
      secondsPerSlice: SECONDS,
      rounds: ROUNDS,
      cases,
      minRatio: Math.min(...ratios),
      goal: 'ours >= 3x mailauth',
      goalMet: Math.min(...ratios) >= 3,
      ms: Math.round(performance.now() - started),
    },
    null,
    2,
  ),
);
