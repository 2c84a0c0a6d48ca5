/**
 * Fuzzes ARC (RFC 8617) parsing and chain assembly:
 * - ARC-Authentication-Results, ARC-Seal and ARC-Message-Signature values (parseAar, parseArcSeal,
 *   parseArcMessageSignature): mutations of every ARC field in the ValiMail suite plus hand-made
 *   ones; each must parse into a consistent result or a rejection with a reason, never throw;
 * - the AAR instance prefix: generated "i=N;" prefixes with random CFWS (nested comments, folding)
 *   against a plain regular-expression reference;
 * - chain assembly (collectArcSets): random header lists built from real and synthetic ARC fields
 *   (shuffled, duplicated, dropped, renumbered, cv= changed) against a slow, obvious reference of
 *   the §5.2 structure rules, plus invariants of the sets it returns;
 * - whole messages (1 in 64 inputs): mutated suite messages through verifyArc over the scenario's
 *   DNS must give a well-formed result.
 * With --differential N, also N mailauth-oracle cases (see test/checks/arc/differential.ts).
 *
 *   node fuzz/arc.ts [inputs=1000000] [seed=1] [--differential N]
 *
 * Prints JSON; exit status 1 on any crash (an exception, a broken invariant, one input > 1 s) or an
 * undocumented disagreement with mailauth.
 */
import { readFileSync } from 'node:fs';
import { isMap, isScalar, parseAllDocuments } from 'yaml';
import {
  type ArcChain,
  collectArcSets,
  isArcField,
  parseAar,
  parseArcMessageSignature,
  parseArcSeal,
  readTagInstance,
  verifyArc,
} from '../src/checks/arc/index.ts';
import { type HeaderField, headerField, splitRawMessage } from '../src/checks/dkim/fields.ts';
import { decodeBase64, parseTagList } from '../src/checks/dkim/tags.ts';
import { ManualClock } from '../src/common/clock.ts';
import { MemoryResolver, type ZoneData } from '../test/support/zone.ts';
import { check, countVerdicts, finish, fuzzArgs, runInputs } from './support/harness.ts';
import { mutate } from './support/mutate.ts';
import { pick, prng } from './support/prng.ts';

const SUITE = new URL('../../shared/testdata/arc/arc-draft-validation-tests.yml', import.meta.url);

export interface ArcSeeds {
  aar: string[];
  ams: string[];
  seal: string[];
  messages: Array<{ message: Buffer; zone: ZoneData }>;
}

/** Every ARC field value and message of the ValiMail suite (empty when the file is missing). */
export function arcSeeds(): ArcSeeds {
  const out: ArcSeeds = { aar: [], ams: [], seal: [], messages: [] };
  let text: string;
  try {
    text = readFileSync(SUITE, 'utf8');
  } catch {
    return out;
  }
  const sets = { aar: new Set<string>(), ams: new Set<string>(), seal: new Set<string>() };
  for (const doc of parseAllDocuments(text, { uniqueKeys: false })) {
    const root = doc.contents;
    if (!isMap(root)) continue;
    const zone: ZoneData = {};
    const txt = root.get('txt-records');
    if (isMap(txt)) {
      for (const p of txt.items) {
        zone[String(isScalar(p.key) ? p.key.value : p.key)] = [
          { TXT: String((p.value as { toJSON(): unknown }).toJSON()) },
        ];
      }
    }
    const tests = root.get('tests');
    if (!isMap(tests)) continue;
    for (const p of tests.items) {
      const t = (p.value as { toJSON(): { message?: string } }).toJSON();
      const message = Buffer.from(String(t.message ?? '').replace(/\r?\n/g, '\r\n'), 'latin1');
      out.messages.push({ message, zone });
      for (const f of splitRawMessage(message).fields) {
        if (f.key === 'arc-authentication-results') sets.aar.add(f.value);
        else if (f.key === 'arc-message-signature') sets.ams.add(f.value);
        else if (f.key === 'arc-seal') sets.seal.add(f.value);
      }
    }
  }
  out.aar = [...sets.aar, ...HAND_AAR];
  out.ams = [...sets.ams, ...HAND_AMS];
  out.seal = [...sets.seal, ...HAND_SEALS];
  return out;
}

const B = 'dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZQ==';
export const HAND_AAR = [
  ' i=1; mx.example.org; spf=pass smtp.mailfrom=a@example.com',
  ' (hop) i = 50 (last) ; "quoted id"; none',
  ' i=01;',
];
export const HAND_AMS = [
  ` i=1; a=ed25519-sha256; c=relaxed; d=a.example; s=s; h=from:from; l=0; t=1; x=2; bh=${B}; b=${B}`,
  ` i=50; a=rsa-sha256; d=a.example; s=s; h=From : arc-authentication-results; bh=; b=`,
];
export const HAND_SEALS = [
  ` i=1; a=rsa-sha256; cv=none; d=a.example; s=s; t=1; b=${B}`,
  ` i=2; a=ed25519-sha256; cv=PASS; d=a.example; s=s; h=x; b=${B}`,
];

const ARC_TOKENS = [
  'i=1; ',
  'i=2; ',
  'i=0; ',
  'i=51; ',
  'i=01; ',
  'cv=none; ',
  'cv=pass; ',
  'cv=fail; ',
  'h=arc-seal; ',
  '(c)',
  ';;',
];

/** The tag-list mutations (support/mutate.ts), plus ARC's own tokens inserted. */
export function mutateArc(rng: () => number, seeds: readonly string[]): string {
  let s = mutate(rng, seeds);
  if (rng() < 0.3) {
    const at = Math.floor(rng() * (s.length + 1));
    s = s.slice(0, at) + pick(rng, ARC_TOKENS) + s.slice(at);
  }
  return s;
}

/** One ARC-Authentication-Results value; returns whether it parsed. */
export function fuzzAar(input: string): boolean {
  const r = parseAar(input);
  if (!r.ok) {
    check(r.reason.length > 0, 'AAR rejection without a reason');
    return false;
  }
  check(Number.isInteger(r.instance) && r.instance >= 1 && r.instance <= 50, `AAR instance ${r.instance}`);
  check(!/[\r\n\t]| {2}/.test(r.payload) && r.payload === r.payload.trim(), 'AAR payload not on one line');
  check(input.replace(/[\r\n \t]+/g, ' ').includes(r.payload), 'AAR payload not from the input');
  return true;
}

/** An AAR prefix with random CFWS around its parts, against a regular-expression reference. */
export function fuzzAarPrefix(rng: () => number): void {
  const cfws = () => {
    let s = '';
    for (let k = Math.floor(rng() * 3); k > 0; k--) {
      const r = rng();
      s += r < 0.4 ? ' ' : r < 0.55 ? '\t' : r < 0.7 ? '\r\n ' : r < 0.85 ? '(c)' : '(a (nested \\) ) b)';
    }
    return s;
  };
  const digits = pick(rng, ['1', '7', '50', '51', '0', '01', '100', '', 'x']);
  const name = rng() < 0.9 ? 'i' : pick(rng, ['I', 'j', 'ii']);
  const sep = rng() < 0.9 ? ';' : pick(rng, [',', '', ' x;']);
  const input = `${cfws()}${name}${cfws()}=${cfws()}${digits}${cfws()}${sep} mx.example;${cfws()} spf=pass`;
  // reference: comments become a space, then one regular expression
  let flat = input;
  for (let k = 0; k < 4; k++) flat = flat.replace(/\((?:[^()\\]|\\.)*\)/g, ' ');
  const m = /^[ \t\r\n]*i[ \t\r\n]*=[ \t\r\n]*([0-9]{1,2})[ \t\r\n]*;/.exec(flat);
  const want = m && Number(m[1]) >= 1 && Number(m[1]) <= 50 ? Number(m[1]) : null;
  const got = parseAar(input);
  check(
    (got.ok ? got.instance : null) === want,
    `AAR prefix ${JSON.stringify(input)}: got ${JSON.stringify(got)}, want ${want}`,
  );
}

/** One ARC-Seal value; returns whether it parsed. */
export function fuzzSeal(input: string): boolean {
  const r = parseArcSeal(input);
  if (!r.ok) {
    check(r.reason.length > 0, 'seal rejection without a reason');
    check(
      [r.domain, r.selector, r.cv].every((x) => typeof x === 'string'),
      'partial seal fields',
    );
    return false;
  }
  const s = r.seal;
  check(s.instance >= 1 && s.instance <= 50, 'seal instance');
  check(s.cv === 'none' || s.cv === 'pass' || s.cv === 'fail', 'seal cv');
  check(s.hash === 'sha256', 'seal hash');
  check(!s.tags.has('h'), 'seal with h=');
  check(s.domain === s.domain.toLowerCase() && s.domain.length > 0, 'seal domain');
  check(decodeBase64(s.b)?.equals(s.signature) === true && s.signature.length > 0, 'seal b=');
  const hashed = parseTagList(s.valueWithoutB);
  check(
    hashed.ok && hashed.tags.get('b')?.value === '' && hashed.list.length === s.tags.size,
    'seal b= not emptied',
  );
  return true;
}

/** One ARC-Message-Signature value; returns whether it parsed. */
export function fuzzAms(input: string): boolean {
  const r = parseArcMessageSignature(input);
  if (!r.ok) {
    check(r.reason.length > 0, 'AMS rejection without a reason');
    return false;
  }
  const s = r.signature;
  check(s.instance !== undefined && s.instance >= 1 && s.instance <= 50, 'AMS instance');
  check(s.instance === readTagInstance(input), 'AMS instance differs from the lenient read');
  check(!s.signedHeaders.includes('arc-seal') && s.signedHeaders.length > 0, 'AMS h=');
  check(s.auid === '', 'AMS with an AUID');
  return true;
}

/** §5.2 steps 1-3 the slow, obvious way: 'none', 'fail', or the number of sets. */
export function referenceStructure(fields: readonly HeaderField[]): 'none' | 'fail' | number {
  const arc = fields.filter((f) => isArcField(f.key));
  if (arc.length === 0) return 'none';
  const entries = arc.map((f) => {
    let i: number | null;
    if (f.key === 'arc-authentication-results') {
      const p = parseAar(f.value);
      i = p.ok ? p.instance : null;
    } else i = readTagInstance(f.value);
    return { key: f.key, i, value: f.value };
  });
  if (entries.some((e) => e.i === null)) return 'fail';
  const n = Math.max(...entries.map((e) => e.i!));
  const cvOf = (v: string) => (parseTagList(v).tags.get('cv')?.value ?? '').toLowerCase();
  if (entries.some((e) => e.key === 'arc-seal' && e.i === n && cvOf(e.value) === 'fail')) return 'fail';
  for (let i = 1; i <= n; i++) {
    for (const key of ['arc-authentication-results', 'arc-message-signature', 'arc-seal']) {
      if (entries.filter((e) => e.key === key && e.i === i).length !== 1) return 'fail';
    }
    const seal = parseArcSeal(entries.find((e) => e.key === 'arc-seal' && e.i === i)!.value);
    if (!seal.ok || seal.seal.cv !== (i === 1 ? 'none' : 'pass')) return 'fail';
  }
  return n;
}

const NAMES = ['ARC-Seal', 'ARC-Message-Signature', 'ARC-Authentication-Results'];

/** A synthetic ARC field of a random kind and instance. */
function syntheticField(rng: () => number, seeds: ArcSeeds): HeaderField {
  const kind = Math.floor(rng() * 3);
  const i = pick(rng, [1, 1, 2, 2, 3, 4, 50, 0, 51]);
  const cv = pick(rng, ['none', 'pass', 'pass', 'fail', 'Pass', 'x']);
  if (kind === 0) {
    const base = rng() < 0.5 ? pick(rng, seeds.seal) : ` a=rsa-sha256; cv=${cv}; d=s.example; s=s; b=${B}`;
    return headerField(
      NAMES[0]!,
      base
        .replace(/i=[0-9]+/, `i=${i}`)
        .replace(/cv=[a-z]+/i, `cv=${cv}`)
        .replace(/^(?!.*i=)/s, ` i=${i};`),
    );
  }
  if (kind === 1) return headerField(NAMES[1]!, pick(rng, seeds.ams).replace(/i=[0-9]+/, `i=${i}`));
  return headerField(NAMES[2]!, ` i=${i}; mx${i}.example; spf=pass`);
}

/** A random header list of ARC and other fields; collectArcSets against the reference. */
export function fuzzChain(rng: () => number, seeds: ArcSeeds): ArcChain {
  let fields: HeaderField[] = [];
  const source = rng() < 0.6 && seeds.messages.length > 0 ? pick(rng, seeds.messages).message : null;
  if (source) fields = splitRawMessage(source).fields;
  for (let k = Math.floor(rng() * 6); k > 0; k--) {
    const r = rng();
    if (r < 0.35) fields.splice(Math.floor(rng() * (fields.length + 1)), 0, syntheticField(rng, seeds));
    else if (r < 0.55 && fields.length > 0) fields.splice(Math.floor(rng() * fields.length), 1);
    else if (r < 0.7 && fields.length > 0) fields.push(fields[Math.floor(rng() * fields.length)]!);
    else if (r < 0.85) fields.sort(() => rng() - 0.5);
    else if (fields.length > 0) {
      const at = Math.floor(rng() * fields.length);
      const f = fields[at]!;
      fields[at] = headerField(f.name, mutateArc(rng, [f.value]));
    }
  }
  const got = collectArcSets(fields);
  const want = referenceStructure(fields);
  const summary = got.status === 'ok' ? got.sets.length : got.status;
  check(summary === want, `chain: got ${summary}, reference ${want}`);
  if (got.status === 'ok') {
    got.sets.forEach((s, k) => {
      check(s.instance === k + 1, 'set order');
      check(fields[s.aar.at] === s.aar.field && s.aar.field.key === 'arc-authentication-results', 'AAR ref');
      check(fields[s.ams.at] === s.ams.field && s.ams.field.key === 'arc-message-signature', 'AMS ref');
      check(fields[s.seal.at] === s.seal.field && s.seal.field.key === 'arc-seal', 'seal ref');
      check(s.seal.parsed.instance === k + 1, 'seal instance');
    });
    check(got.sealers.length === got.sets.length, 'one sealer per set');
  } else if (got.status === 'fail') {
    check(got.reason.length > 0, 'failure without a reason');
    check(
      got.failedInstance === undefined || (got.failedInstance >= 1 && got.failedInstance <= 50),
      'failedInstance',
    );
    for (let k = 1; k < got.sealers.length; k++)
      check(got.sealers[k]!.i > got.sealers[k - 1]!.i, 'sealers order');
  }
  return got;
}

const CLOCK = new ManualClock(Date.parse('2018-11-09T00:00:00Z'));

/** A mutated suite message through verifyArc: the result must be well formed. */
export async function fuzzArcMessage(rng: () => number, seeds: ArcSeeds): Promise<void> {
  const { message, zone } = pick(rng, seeds.messages);
  const text = message.toString('latin1');
  const input = Buffer.from(rng() < 0.7 ? mutateArc(rng, [text]) : text.replace(/\r\n/g, '\n'), 'latin1');
  const r = await verifyArc(
    input,
    { resolver: new MemoryResolver(zone), clock: CLOCK },
    { oldestPass: rng() < 0.5 },
  );
  check(r.cv === 'none' || r.cv === 'pass' || r.cv === 'fail', `cv ${r.cv}`);
  check(r.reason.length > 0, 'result without a reason');
  check(r.temperror === undefined || (r.temperror && r.cv === 'fail'), 'temperror without fail');
  check(r.cv !== 'none' || (r.instances === 0 && r.sealers.length === 0), 'none with sets');
  check(r.cv !== 'pass' || (r.instances >= 1 && r.sealers.length === r.instances), 'pass without sets');
  check(
    r.oldestPass === undefined || (r.cv === 'pass' && r.oldestPass >= 1 && r.oldestPass <= r.instances),
    'oldestPass',
  );
}

async function differential(cases: number, seed: number): Promise<Record<string, number>> {
  const { classifyArc, generateArcCase, makeArcKeys, verifyArcBoth } = await import(
    '../test/checks/arc/differential.ts'
  );
  const keys = makeArcKeys();
  return countVerdicts(cases, seed, async (caseSeed) => {
    const c = await generateArcCase(caseSeed, prng(caseSeed), keys);
    const v = await verifyArcBoth(c);
    const cls = classifyArc(v);
    if (cls === null) return [{ undocumented: { notes: c.notes, ours: v.ours, theirs: v.theirs } }];
    return [{ key: cls === 'agree' ? `agree:${v.ours.cv}${v.ours.temperror ? '+temperror' : ''}` : cls }];
  });
}

async function main(): Promise<void> {
  const args = fuzzArgs('usage: node fuzz/arc.ts [inputs=1000000] [seed=1] [--differential N]', 1_000_000);
  const rng = prng(args.seed);
  const seeds = arcSeeds();
  const stats = {
    aar: [0, 0],
    aarPrefixes: 0,
    seals: [0, 0],
    ams: [0, 0],
    chains: { none: 0, fail: 0, ok: 0 } as Record<string, number>,
    messages: 0,
  };
  const run = await runInputs(args.inputs, async (k, probe) => {
    const r = rng();
    if (k % 64 === 63 && seeds.messages.length > 0) {
      probe.kind = 'message';
      await fuzzArcMessage(rng, seeds);
      stats.messages++;
    } else if (r < 0.2) {
      probe.kind = 'aar';
      probe.input = mutateArc(rng, seeds.aar);
      stats.aar[fuzzAar(probe.input) ? 0 : 1]!++;
    } else if (r < 0.3) {
      probe.kind = 'aar-prefix';
      fuzzAarPrefix(rng);
      stats.aarPrefixes++;
    } else if (r < 0.5) {
      probe.kind = 'seal';
      probe.input = mutateArc(rng, seeds.seal);
      stats.seals[fuzzSeal(probe.input) ? 0 : 1]!++;
    } else if (r < 0.7) {
      probe.kind = 'ams';
      probe.input = mutateArc(rng, seeds.ams);
      stats.ams[fuzzAms(probe.input) ? 0 : 1]!++;
    } else {
      probe.kind = 'chain';
      const c = fuzzChain(rng, seeds);
      stats.chains[c.status]!++;
    }
  });
  await finish(
    args,
    {
      inputs: args.inputs,
      aar: { parsed: stats.aar[0], rejected: stats.aar[1], prefixes: stats.aarPrefixes },
      seals: { parsed: stats.seals[0], rejected: stats.seals[1] },
      ams: { parsed: stats.ams[0], rejected: stats.ams[1] },
      chains: stats.chains,
      messages: stats.messages,
      crashes: run.crashes,
      ms: run.ms,
      seed: args.seed,
      seeds: {
        aar: seeds.aar.length,
        ams: seeds.ams.length,
        seals: seeds.seal.length,
        messages: seeds.messages.length,
      },
    },
    run,
    differential,
  );
}

if (import.meta.main) await main();
