/**
 * Fuzzes the DKIM parsers and canonicalizers:
 * - DKIM-Signature values (parseDkimSignature) and key records (parseKeyRecord): mutations of every
 *   signature and key record in the DKIM corpora plus generated ones; each must parse into a
 *   consistent result or a typed rejection with a reason, never throw;
 * - tag lists (parseTagList): offsets and values must describe the input;
 * - body canonicalization: random bodies (heavy in white space, CR, LF) fed in random chunks must
 *   equal a whole-string reference implementation; header canonicalization must be idempotent;
 * - whole messages (1 in 64 inputs): mutated corpus messages through verifyMessage must give
 *   well-formed results.
 * With --differential N, also N mailauth-oracle cases (see test/checks/dkim/differential.ts).
 *
 *   node fuzz/dkim.ts [inputs=100000] [seed=1] [--differential N]
 *
 * Prints JSON; exit status 1 on any crash (an exception, a broken invariant, one input > 1 s) or an
 * undocumented disagreement with mailauth.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import {
  type Canonicalization,
  canonicalizeHeader,
  createBodyCanonicalizer,
  relaxedHeaderValue,
} from '../src/checks/dkim/canon.ts';
import { splitRawMessage } from '../src/checks/dkim/fields.ts';
import { parseKeyRecord } from '../src/checks/dkim/key.ts';
import { isDkimDomain, parseDkimSignature } from '../src/checks/dkim/signature.ts';
import { decodeBase64, parseTagList, stripFws } from '../src/checks/dkim/tags.ts';
import { verifyMessage } from '../src/checks/dkim/verifier.ts';
import { ManualClock } from '../src/common/clock.ts';
import { MemoryResolver, type ZoneData } from '../test/support/zone.ts';
import { check, countVerdicts, finish, fuzzArgs, runInputs } from './support/harness.ts';
import { mutate } from './support/mutate.ts';
import { pick, prng } from './support/prng.ts';

export { mutate };

const TESTDATA = new URL('../../shared/testdata/', import.meta.url);

/**
 * Body canonicalization the slow, obvious way, over the whole body as a latin1 string
 * (RFC 6376 §3.4.3, §3.4.4; bare LF read as CRLF, like ours). The fuzzer's oracle.
 */
export function referenceBody(c: Canonicalization, body: Uint8Array): Buffer {
  let s = Buffer.from(body)
    .toString('latin1')
    .replace(/(?<!\r)\n/g, '\r\n');
  if (c === 'relaxed') {
    s = s
      .split('\r\n')
      .map((line) => line.replace(/[ \t]+/g, ' ').replace(/ $/, ''))
      .join('\r\n');
  }
  s = s.replace(/(?:\r\n)+$/, '');
  if (c === 'simple' || s.length > 0) s += '\r\n';
  return Buffer.from(s, 'latin1');
}

function readText(path: string): string | null {
  try {
    return readFileSync(new URL(path, TESTDATA), 'latin1');
  } catch {
    return null;
  }
}

function corpusMessages(): Buffer[] {
  const out: Buffer[] = [];
  for (const dir of ['dkim-mail-dkim/corpus/', 'dkim-dkimpy/', 'dkim-rfc8463-mailauth/']) {
    let names: string[];
    try {
      names = readdirSync(new URL(dir, TESTDATA));
    } catch {
      continue;
    }
    for (const n of names) {
      if (
        !/\.(txt|msg|eml|message)$/.test(n) ||
        /^(test|test2|badk|badversion|test_bad|test_tlsrpt)\.txt$/.test(n)
      )
        continue;
      const text = readText(dir + n);
      if (text !== null) out.push(Buffer.from(text.replace(/(?<!\r)\n/g, '\r\n'), 'latin1'));
    }
  }
  return out;
}

/** DKIM-Signature values and key records from the corpora. */
export function corpusSeeds(): { signatures: string[]; keys: string[]; messages: Buffer[] } {
  const messages = corpusMessages();
  const signatures = new Set<string>();
  for (const m of messages) {
    for (const f of splitRawMessage(m).fields) if (f.key === 'dkim-signature') signatures.add(f.value);
  }
  const keys = new Set<string>();
  const fake = readText('dkim-mail-dkim/FAKE_DNS.dat') ?? '';
  for (const line of fake.split('\n')) {
    const m = /^(\S+)\s+(.+)$/.exec(line.trim());
    if (m && !line.startsWith('#')) keys.add(m[2]!);
  }
  for (const f of [
    'test.txt',
    'test2.txt',
    'badk.txt',
    'badversion.txt',
    'test_bad.txt',
    'test_tlsrpt.txt',
    'ed25519test.dns',
    'eximtest.dns',
  ]) {
    const t = readText(`dkim-dkimpy/${f}`);
    if (t !== null) keys.add(t.trim());
  }
  const cases = readText('dkim-dkimpy/verify-cases.yml');
  if (cases !== null) {
    const dns = (parseYaml(cases) as { dns?: Record<string, { txt?: string }> }).dns ?? {};
    for (const v of Object.values(dns)) if (v.txt) keys.add(v.txt);
  }
  const rfc = readText('dkim-rfc8463-mailauth/dns.json');
  if (rfc !== null) {
    for (const types of Object.values(JSON.parse(rfc) as Record<string, Record<string, string[][]>>)) {
      for (const rec of types['TXT'] ?? []) keys.add(rec.join(''));
    }
  }
  return { signatures: [...signatures], keys: [...keys], messages };
}

export const HAND_SIGNATURES = [
  ' v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel; h=from:to:subject; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA',
  ' v=1; a=ed25519-sha256; c=relaxed; d=example.com; i=@sub.example.com; s=sel; h=From : From; l=0; t=1; x=2; q=dns/txt; bh=; b=',
  ' v=1; a=rsa-sha1; d=a.b; s=x.y_z; h=from; i==40a.b; z=From:=20a|To:b; bh=AA==; b=AA==',
];
export const HAND_KEYS = [
  'v=DKIM1; k=rsa; p=',
  'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=',
  'v=DKIM1; h=sha1:sha256; s=email:*; t=y:s; n=notes; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBALgSoqXVSEmfcIsOzw7oRuCCOwsmtX/SJnTWxYyj2leFxfS/AVJ+dYfY+hXqMsT7l+MZvvh/R1WzN4MO/kI/7XsCAwEAAQ==',
];

/** One DKIM-Signature value; returns whether it parsed. Throws when an invariant breaks. */
export function fuzzSignature(input: string): boolean {
  const r = parseDkimSignature(input);
  if (!r.ok) {
    check(typeof r.reason === 'string' && r.reason.length > 0, 'rejection without a reason');
    check(
      [r.domain, r.selector, r.b, r.algorithm].every((x) => typeof x === 'string'),
      'partial fields not strings',
    );
    return false;
  }
  const s = r.signature;
  check(isDkimDomain(s.domain) && s.domain === s.domain.toLowerCase(), `bad domain ${s.domain}`);
  check(s.auidDomain === s.domain || s.auidDomain.endsWith(`.${s.domain}`), 'i= outside d=');
  check(s.signedHeaders.includes('from'), 'From not in h=');
  check(s.signature.length > 0 && s.bodyHash.length > 0, 'empty b= or bh=');
  check(decodeBase64(s.b)?.equals(s.signature) === true, 'b= does not round-trip');
  check(s.keyType === 'rsa' || s.keyType === 'ed25519', 'key type');
  check(s.headerCanon === 'simple' || s.headerCanon === 'relaxed', 'header canon');
  check(s.bodyLength === undefined || (Number.isFinite(s.bodyLength) && s.bodyLength >= 0), 'l=');
  check(s.timestamp === undefined || s.expiration === undefined || s.expiration >= s.timestamp, 'x < t');
  const hashed = parseTagList(s.valueWithoutB);
  check(
    hashed.ok && hashed.tags.get('b')?.value === '' && hashed.list.length === s.tags.size,
    'b= not emptied in the hashed form',
  );
  return true;
}

/** One key record; returns whether it parsed. */
export function fuzzKey(input: string): boolean {
  const r = parseKeyRecord(input);
  if (!r.ok) {
    check(typeof r.reason === 'string' && r.reason.length > 0, 'key rejection without a reason');
    return false;
  }
  const k = r.key;
  check(k.publicKey.type === 'public', 'not a public key');
  check(
    k.publicKey.asymmetricKeyType === (k.keyType === 'rsa' ? 'rsa' : 'ed25519'),
    'key object of the wrong type',
  );
  check(k.bits > 0, 'bits');
  check(k.record === input, 'record text');
  return true;
}

/** One tag list: offsets and values must describe the input. */
export function fuzzTagList(input: string): boolean {
  const r = parseTagList(input);
  for (const t of r.list) {
    check(t.valueStart > 0 && input[t.valueStart - 1] === '=', 'valueStart not after "="');
    check(t.specEnd <= input.length && (t.specEnd === input.length || input[t.specEnd] === ';'), 'specEnd');
    check(
      input.slice(t.valueStart, t.specEnd).replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '') === t.value,
      'value not the trimmed spec',
    );
  }
  if (!r.ok) {
    check(r.error.length > 0, 'error without text');
    return false;
  }
  // the tags written back out parse to the same thing
  const again = parseTagList(r.list.map((t) => `${t.name}=${t.value}`).join('; '));
  check(again.ok && again.list.length === r.list.length, 'round trip');
  return true;
}

const BODY_ALPHABET = [
  'a',
  'b',
  'xyz',
  ' ',
  '\t',
  '  ',
  '\r',
  '\n',
  '\r\n',
  '\r\n',
  '\r\n\r\n',
  ' \r\n',
  '\t\r\n',
  '\u0000',
  '\u00e9',
  '\u00a0',
];

/** A random body, streamed in random chunks, against the reference; and header idempotence. */
export function fuzzCanon(rng: () => number): void {
  let s = '';
  const len = Math.floor(rng() * (rng() < 0.05 ? 2000 : 80));
  for (let i = 0; i < len; i++) s += pick(rng, BODY_ALPHABET);
  const bytes = Buffer.from(s, 'latin1');
  for (const c of ['simple', 'relaxed'] as const) {
    const parts: Buffer[] = [];
    const canon = createBodyCanonicalizer(c, (d) => parts.push(Buffer.from(d)));
    let at = 0;
    while (at < bytes.length) {
      const n = 1 + Math.floor(rng() * (rng() < 0.5 ? 4 : 200));
      canon.update(bytes.subarray(at, at + n));
      at += n;
    }
    canon.finish();
    const got = Buffer.concat(parts);
    const want = referenceBody(c, bytes);
    check(got.equals(want), `${c} body canonicalization differs for ${JSON.stringify(s.slice(0, 80))}`);
    check(canon.length === got.length, 'length counter');
    check(canon.bufferedBytes === 0, 'body octets held between calls');
  }
  // header canonicalization: relaxed is idempotent, simple is the identity on CRLF text
  const value = s.replace(/\r?\n(?![ \t])/g, '\r\n ');
  const once = relaxedHeaderValue(value);
  check(relaxedHeaderValue(once) === once, 'relaxed header value not idempotent');
  check(
    !once.includes('\n') && !/ {2}|\t/.test(once) && !/^ | $/.test(once),
    'relaxed header value not canonical',
  );
  check(
    canonicalizeHeader('simple', 'X', value) === `X:${value.replace(/(?<!\r)\n/g, '\r\n')}`,
    'simple header changed the value',
  );
}

const VALID = new Set(['pass', 'fail', 'neutral', 'policy', 'temperror', 'permerror', 'none']);

/** A whole (mutated) message through the verifier: results must be well formed. */
export async function fuzzMessage(message: Buffer, zone: ZoneData, rng: () => number): Promise<void> {
  const resolver = new MemoryResolver(zone);
  const results = await verifyMessage(
    message,
    { resolver, clock: new ManualClock(Date.parse('2023-06-01')) },
    {
      maxSignatures: 1 + Math.floor(rng() * 6),
    },
  );
  check(results.length > 0, 'no results');
  for (const r of results) {
    check(VALID.has(r.result), `result ${r.result}`);
    check(typeof r.reason === 'string' && r.reason.length > 0, 'result without a reason');
    check(r.b.length <= stripFws(r.b).length, 'header.b has white space');
  }
}

function fakeDnsZone(): ZoneData {
  const zone: ZoneData = {};
  const text = readText('dkim-mail-dkim/FAKE_DNS.dat') ?? '';
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(.+)$/.exec(line.trim());
    if (!m || line.startsWith('#')) continue;
    const v = m[2]!;
    if (v === 'NXDOMAIN') continue;
    zone[m[1]!] = v.startsWith('~~Query')
      ? ['TIMEOUT']
      : v === '~~SERVFAIL~~'
        ? ['SERVFAIL']
        : [{ TXT: v === '""' ? '' : v }];
  }
  return zone;
}

function mutateMessage(rng: () => number, messages: readonly Buffer[]): Buffer {
  const m = pick(rng, messages).toString('latin1');
  return Buffer.from(mutate(rng, [m, m, m.replace(/\r\n/g, '\n')]), 'latin1');
}

async function differential(cases: number, seed: number): Promise<Record<string, number>> {
  const { classify, generateCase, makeKeys, pairResults, verifyBoth } = await import(
    '../test/checks/dkim/differential.ts'
  );
  const keys = makeKeys();
  return countVerdicts(cases, seed, async (caseSeed) => {
    const c = await generateCase(caseSeed, prng(caseSeed), keys);
    return pairResults(await verifyBoth(c)).map((p) => {
      const cls = p.theirs ? classify(p.ours, p.theirs) : null;
      if (cls === null) return { undocumented: { notes: c.notes, ours: p.ours, theirs: p.theirs } };
      return { key: cls === 'agree' ? `agree:${p.ours.result}` : cls };
    });
  });
}

async function main(): Promise<void> {
  const args = fuzzArgs('usage: node fuzz/dkim.ts [inputs=100000] [seed=1] [--differential N]', 100_000);
  const rng = prng(args.seed);
  const corpus = corpusSeeds();
  const sigSeeds = [...corpus.signatures, ...HAND_SIGNATURES];
  const keySeeds = [...corpus.keys, ...HAND_KEYS];
  const zone = fakeDnsZone();
  const stats = { signatures: [0, 0], keys: [0, 0], tagLists: [0, 0], canon: 0, messages: 0 };
  const run = await runInputs(args.inputs, async (k, probe) => {
    const r = rng();
    if (k % 64 === 63 && corpus.messages.length > 0) {
      probe.kind = 'message';
      const m = mutateMessage(rng, corpus.messages);
      probe.input = m.toString('latin1', 0, 300);
      await fuzzMessage(m, zone, rng);
      stats.messages++;
    } else if (r < 0.3) {
      probe.kind = 'signature';
      probe.input = k < sigSeeds.length ? sigSeeds[k]! : mutate(rng, sigSeeds);
      stats.signatures[fuzzSignature(probe.input) ? 0 : 1]!++;
    } else if (r < 0.5) {
      probe.kind = 'key';
      probe.input = k < keySeeds.length ? keySeeds[k]! : mutate(rng, keySeeds);
      stats.keys[fuzzKey(probe.input) ? 0 : 1]!++;
    } else if (r < 0.7) {
      probe.kind = 'tag-list';
      probe.input = mutate(rng, rng() < 0.5 ? sigSeeds : keySeeds);
      stats.tagLists[fuzzTagList(probe.input) ? 0 : 1]!++;
    } else {
      probe.kind = 'canon';
      fuzzCanon(rng);
      stats.canon++;
    }
  });
  await finish(
    args,
    {
      inputs: args.inputs,
      signatures: { parsed: stats.signatures[0], rejected: stats.signatures[1] },
      keys: { parsed: stats.keys[0], rejected: stats.keys[1] },
      tagLists: { parsed: stats.tagLists[0], rejected: stats.tagLists[1] },
      canonicalizations: stats.canon,
      messages: stats.messages,
      crashes: run.crashes,
      ms: run.ms,
      seed: args.seed,
      seeds: { signatures: sigSeeds.length, keys: keySeeds.length, messages: corpus.messages.length },
    },
    run,
    differential,
  );
}

if (import.meta.main) await main();
