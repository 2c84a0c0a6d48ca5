/**
 * Fuzzes the SPF record parser and macro expansion: mutations of every record and explanation in
 * the RFC 7208/4408 suites' zone data, plus randomly generated records. Every input must parse to
 * a well-formed record or to a typed syntax error; every macro-string of a parsed record, and every
 * input read as explanation text, must expand to a string without throwing. Anything else (an
 * exception, a malformed answer, one input taking over a second) is a crash.
 *
 *   node fuzz/spf-parse.ts [inputs=100000] [seed=1]
 *
 * Prints JSON {inputs, parsed, rejected, crashes, ms, seed}; exit status 1 on any crash.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { expandMacroString, type MacroString, type MacroValues, parseMacroString, truncateDomain } from '../src/checks/spf/macro.ts';
import { parseRecord, selectRecord } from '../src/checks/spf/parse.ts';
import { pick, prng } from './support/prng.ts';

/** The seeded PRNG, under the name the seed tests use. */
export const random = prng;

/** Records and TXT texts from the suites' zone data. */
export function suiteSeeds(): string[] {
  const seeds = new Set<string>();
  for (const file of ['rfc7208-tests.yml', 'rfc4408-tests.yml']) {
    const url = new URL(`../../shared/testdata/spf/${file}`, import.meta.url);
    let text: string;
    try {
      text = readFileSync(url, 'utf8');
    } catch {
      continue;
    }
    for (const doc of parseAllDocuments(text)) {
      const zone = (doc.toJS() as { zonedata?: Record<string, unknown[] | null> }).zonedata ?? {};
      for (const entries of Object.values(zone)) {
        for (const entry of entries ?? []) {
          if (typeof entry !== 'object' || entry === null) continue;
          for (const [type, value] of Object.entries(entry)) {
            if (type !== 'TXT' && type !== 'SPF') continue;
            const strings = Array.isArray(value) ? value.map(String) : [String(value)];
            seeds.add(strings.join(''));
          }
        }
      }
    }
  }
  return [...seeds];
}

export const HAND_SEEDS = [
  'v=spf1 include:_spf.google.com include:mailgun.org ~all',
  'v=spf1 a mx ip4:192.0.2.0/24 ip6:2001:db8::/32 -all',
  'v=spf1 a:mail.%{d2}/24//64 mx:%{o}//48 ptr:%{d} exists:%{ir}.%{l1r-}.%{v}._spf.%{d} ?all',
  'v=spf1 redirect=_spf.%{d} exp=explain.%{d}',
  'v=spf1 exists:%{i}._i.%{d} exists:%{L}.%{D2R+-=}.x.example -all foo=%{c}bar',
  'v=spf1 ip6:::ffff:1.2.3.4/128 ip6:1:2:3:4:5:6:7:8 ip6:::1.2.3.4 ip4:0.0.0.0/0',
  '%{s} %{l} %{o} %{d} %{i} %{p} %{h} %{c} %{r} %{t} %{v} %% %_ %-',
];

const ALPHABET = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  ...'%{}:/.-+~?=_, ',
  '//',
  '%{',
  '%%',
  '%_',
  '%-',
  'v=spf1 ',
  '\u0000',
  '\t',
  '\r',
  '\n',
  '\u007f',
  '\u0080',
  '\u00ef',
  '\u00ff',
  '\u2028',
  '\ud800',
  '\udfff',
  '😀',
];
const NAMES = ['all', 'include', 'a', 'mx', 'ptr', 'ip4', 'ip6', 'exists', 'redirect', 'exp', 'default', 'x'];
const LETTERS = [...'slodiphvSLODIPHVslodiphvcrtxa'];

function randomNumber(rng: () => number): string {
  const r = rng();
  if (r < 0.05) return '0';
  if (r < 0.07) return '0' + Math.floor(rng() * 40);
  if (r < 0.09) return String(Math.floor(rng() * 1e12));
  if (r < 0.2) return String(Math.floor(rng() * 140));
  return String(Math.floor(rng() * 33));
}

function randomMacro(rng: () => number): string {
  let m = '%{' + pick(rng, LETTERS);
  if (rng() < 0.4) m += randomNumber(rng);
  if (rng() < 0.3) m += pick(rng, ['r', 'R']);
  while (rng() < 0.3) m += pick(rng, [...'.-+,/_=.-+,/_=', 'x', '%']);
  return rng() < 0.99 ? m + '}' : m;
}

function randomDomainSpec(rng: () => number): string {
  const parts: string[] = [];
  const n = 1 + Math.floor(rng() * 4);
  for (let k = 0; k < n; k++) {
    const r = rng();
    if (r < 0.3) parts.push(randomMacro(rng));
    else if (r < 0.33) parts.push(pick(rng, ['%%', '%_', '%-', '%']));
    else {
      let label = '';
      const len = Math.floor(rng() * (rng() < 0.05 ? 80 : 10));
      for (let i = 0; i < len; i++) label += pick(rng, [...'abcxyz0129-_:']);
      parts.push(label);
    }
  }
  const end = rng() < 0.8 ? pick(rng, ['com', 'com', 'org.', 'xn--zckzah', '123', 'c-m', '-com', '']) : null;
  return parts.join(rng() < 0.95 ? '.' : '') + (end === null ? randomMacro(rng) : '.' + end);
}

function randomIp(rng: () => number, six: boolean): string {
  if (!six) return [0, 1, 2, 3].map(() => randomNumber(rng)).join('.');
  const groups = [0, 1, 2, 3, 4, 5, 6, 7].map(() => Math.floor(rng() * 65536).toString(16));
  const r = rng();
  if (r < 0.3) return groups.slice(0, 2).join(':') + '::' + groups[7];
  if (r < 0.4) return '::ffff:' + randomIp(rng, false);
  if (r < 0.5) return groups.slice(0, 3).join(':') + ':::' + groups[5];
  return groups.join(':');
}

function randomTerm(rng: () => number): string {
  const q = rng() < 0.3 ? pick(rng, ['+', '-', '~', '?', '+', '-', '~', '?', '!']) : '';
  const name = rng() < 0.97 ? pick(rng, NAMES) : pick(rng, ['', 'foo', 'ALL', 'Include', 'IP4', '1up']);
  const cidr = () => (rng() < 0.3 ? '/' + randomNumber(rng) : '') + (rng() < 0.3 ? '//' + randomNumber(rng) : '');
  switch (name) {
    case 'all':
      return q + (rng() < 0.9 ? 'all' : 'all' + pick(rng, ['.', ':x', '/8']));
    case 'ip4':
    case 'ip6':
      return q + name + ':' + randomIp(rng, name === 'ip6') + cidr();
    case 'redirect':
    case 'exp':
    case 'default':
      return name + pick(rng, ['=', ':', '']) + randomDomainSpec(rng);
    default:
      return q + name + (rng() < 0.7 ? ':' + randomDomainSpec(rng) : '') + cidr();
  }
}

export function generate(rng: () => number): string {
  const terms: string[] = [];
  const n = Math.floor(rng() * rng() * 12);
  for (let k = 0; k < n; k++) terms.push(randomTerm(rng));
  return pick(rng, ['v=spf1', 'v=spf1', 'V=SPF1', 'v=spf1 ', 'v=spf2']) + (n ? ' ' : '') + terms.join(rng() < 0.9 ? ' ' : '  ');
}

export function mutate(rng: () => number, seeds: readonly string[]): string {
  let s = pick(rng, seeds);
  const edits = 1 + Math.floor(rng() * rng() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rng() * (s.length + 1));
    const r = rng();
    if (r < 0.3) s = s.slice(0, at) + pick(rng, ALPHABET) + s.slice(at);
    else if (r < 0.45) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rng() * 4));
    else if (r < 0.55) s = s.slice(0, at) + randomTerm(rng) + s.slice(at);
    else if (r < 0.65) s = s.slice(0, at) + pick(rng, seeds).slice(Math.floor(rng() * 20));
    else if (r < 0.72) {
      const len = Math.floor(rng() * 30);
      s = s.slice(0, at) + s.slice(at, at + len).repeat(1 + Math.floor(rng() * 50)) + s.slice(at + len);
    } else if (r < 0.8) {
      const terms = s.split(' ');
      terms.sort(() => rng() - 0.5);
      s = terms.join(' ');
    } else if (r < 0.9) s = s.slice(0, at) + randomMacro(rng) + s.slice(at);
    else s = s.slice(0, at);
  }
  return s;
}

function randomValues(rng: () => number): MacroValues {
  const local = pick(rng, ['strong-bad', '~jack&jill=up', 'Macro Error', 'a.b-c+d', 'é😀', '\ud800x', '', 'x'.repeat(300)]);
  const domain = pick(rng, ['example.com', 'a.b.c.d.e.f', `${'long.'.repeat(60)}example.com`, '']);
  return {
    s: `${local}@${domain}`,
    l: local,
    o: domain,
    d: domain,
    i: pick(rng, ['192.0.2.1', '2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1']),
    p: pick(rng, ['unknown', 'mx.example.org']),
    h: pick(rng, ['mail.example.com', "JUMPIN' JUPITER", '[192.0.2.1]', '%%%%']),
    c: '192.0.2.1',
    r: 'unknown',
    t: '1700000000',
    v: 'in-addr',
  };
}

function expandChecked(spec: MacroString, values: MacroValues): void {
  const out = expandMacroString(spec, values);
  if (typeof out !== 'string') throw new Error('expansion did not give a string');
  const cut = truncateDomain(out);
  if (cut.length > 253 && cut.includes('.')) throw new Error(`truncation left ${cut.length} characters`);
}

/**
 * Checks one input; returns whether the parser accepted it, or throws when an invariant breaks.
 */
export function fuzzOne(input: string, rng: () => number): 'parsed' | 'rejected' {
  const result = parseRecord(input);
  const values = randomValues(rng);
  // the same text read as explanation text must never throw either
  const explain = parseMacroString(input, 'explain');
  if (explain.ok) expandChecked(explain.value, values);
  else if (typeof explain.error !== 'string' || explain.error === '') throw new Error('empty macro error');
  selectRecord([[input], [input.slice(0, 3), input.slice(3)]]);
  if (!result.ok) {
    const e = result.error;
    if (typeof e.message !== 'string' || e.message.length === 0) throw new Error('error without a message');
    if (e.term !== null && (typeof e.term !== 'string' || !input.includes(e.term))) {
      throw new Error(`error term ${JSON.stringify(e.term)} is not part of the input`);
    }
    return 'rejected';
  }
  const r = result.record;
  if (r.text !== input) throw new Error('record text differs from the input');
  for (const m of r.mechanisms) {
    if (!input.includes(m.text)) throw new Error(`mechanism text ${m.text} not in the input`);
    if (!'+-~?'.includes(m.qualifier)) throw new Error(`bad qualifier ${m.qualifier}`);
    switch (m.kind) {
      case 'all':
        break;
      case 'ip4':
        if (m.prefix < 0 || m.prefix > 32 || (m.network & ~m.mask) !== 0) throw new Error(`bad ip4 ${m.text}`);
        break;
      case 'ip6':
        if (m.prefix < 0 || m.prefix > 128 || m.network.length !== 16) throw new Error(`bad ip6 ${m.text}`);
        break;
      case 'a':
      case 'mx':
        if (m.cidr4 < 0 || m.cidr4 > 32 || m.cidr6 < 0 || m.cidr6 > 128) throw new Error(`bad cidr ${m.text}`);
        if (m.domain) expandChecked(m.domain, values);
        break;
      case 'ptr':
        if (m.domain) expandChecked(m.domain, values);
        break;
      case 'include':
      case 'exists':
        expandChecked(m.domain, values);
        break;
      default:
        throw new Error(`unknown kind ${(m as { kind: string }).kind}`);
    }
  }
  if (r.redirect) expandChecked(r.redirect, values);
  if (r.exp) expandChecked(r.exp, values);
  return 'parsed';
}

function main(): void {
  const count = Number(process.argv[2] ?? 100_000);
  const seed = Number(process.argv[3] ?? 1);
  if (!(count > 0) || !Number.isInteger(seed)) {
    console.error('usage: node fuzz/spf-parse.ts [inputs=100000] [seed=1]');
    process.exit(2);
  }
  const rng = random(seed);
  const seeds = [...suiteSeeds(), ...HAND_SEEDS];
  let parsed = 0;
  let rejected = 0;
  let crashes = 0;
  const examples: { input: string; error: string }[] = [];
  const start = performance.now();
  for (let k = 0; k < count; k++) {
    const input = k < seeds.length ? seeds[k]! : rng() < 0.6 ? mutate(rng, seeds) : generate(rng);
    const t0 = performance.now();
    try {
      if (fuzzOne(input, rng) === 'parsed') parsed++;
      else rejected++;
      const took = performance.now() - t0;
      if (took > 1000) throw new Error(`took ${Math.round(took)} ms`);
    } catch (e) {
      crashes++;
      if (examples.length < 5) examples.push({ input, error: e instanceof Error ? e.message : String(e) });
    }
  }
  const ms = Math.round(performance.now() - start);
  console.log(JSON.stringify({ inputs: count, parsed, rejected, crashes, ms, seed, seeds: seeds.length }));
  if (crashes > 0) {
    for (const x of examples) console.error(JSON.stringify(x));
    process.exit(1);
  }
}

if (import.meta.main) main();
