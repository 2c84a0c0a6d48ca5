/**
 * Fuzzes the DMARC record parser and the From-field (address list) parser: mutations of seed
 * records and From fields (hand-written ones, and those of the authentication_milter suite), plus
 * generated ones. Every record must parse to a well-formed record or be rejected with a message;
 * every From value must parse to well-formed mailboxes or give a positioned syntax error; the
 * Author Domain extraction must give normalised, distinct domains. Every 64th input also runs the
 * whole check (checkDmarc) over an in-memory zone holding the fuzzed record, with the fuzzed From.
 * Anything else (an exception, a broken invariant, one input taking over a second) is a crash.
 *
 *   node fuzz/dmarc.ts [inputs=1000000] [seed=1]
 *
 * Prints JSON {inputs, records: {parsed, rejected}, from: {parsed, rejected}, checks, crashes, ms,
 * seed, seeds}; exit status 1 on any crash.
 */
import { readdirSync, readFileSync } from 'node:fs';
import {
  checkDmarc,
  effectiveRecord,
  extractAuthorDomains,
  isDmarcRecord,
  isValidReportingUri,
  normalizeAuthorDomain,
  parseAddressList,
  parseDmarcRecord,
  salvageDomains,
  selectDmarcRecord,
} from '../src/checks/dmarc/index.ts';
import type { DnsResult, RecordType, Resolver } from '../src/dns/types.ts';
import { pick, prng } from './support/prng.ts';

export const random = prng;

export const RECORD_SEEDS = [
  'v=DMARC1; p=none',
  'v=DMARC1; p=reject; sp=quarantine; np=reject; adkim=s; aspf=s; pct=50; t=y; psd=n',
  'v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com,mailto:x@example.net!10m; ruf=mailto:f@example.com; fo=0:d:s',
  'v=DMARC1; p=none; psd=y; rua=mailto:psd@example',
  'v=DMARC1; rua=mailto:only-rua@example.com',
  'v=DMARC1;p=reject;pct=100;rf=afrf;ri=86400',
  'V = DMARC1 ; P = Reject ; ADKIM = S',
  'v=DMARC1; p=bogus; sp=; np=maybe; pct=101; t=yes; psd=x',
  'v=DMARC1;; ;p=none;;',
  'v=DMARC2; p=none',
  'p=none; v=DMARC1',
  'v=spf1 -all',
];

export const FROM_SEEDS = [
  'user@example.com',
  'Jane Doe <jane@example.com>',
  '"Doe, Jane" <jane@example.com>',
  'jane(comment (nested))@(x)example.com (trailing)',
  'Marc <marc@ marcbradshaw.net>',
  'a@one.example, B <b@two.example>, ,',
  'Team: a@one.example, Bob <b@two.example>;, c@three.example',
  'Undisclosed recipients:;',
  '<@relay.example,@other.example:user@example.com>',
  'user@[192.0.2.1]',
  'Jürgen <jürgen@bücher.example>',
  '=?UTF-8?Q?J=C3=BCrgen?= <j@example.com>',
  '"john..doe"@example.com',
  'first . last @ example . com',
  'CEO <ceo@bank.example',
  'evil@attacker.example <ceo@bank.example>',
  '"Dear Customer\r\n \r\n Happy\r\n ",\r\n        <noreply@example.com>',
];

/** From fields and DMARC records of the authentication_milter end-to-end data, when present. */
export function suiteSeeds(): { records: string[]; from: string[] } {
  const dir = new URL('../../shared/testdata/authmilter-e2e/', import.meta.url);
  const records: string[] = [];
  const from: string[] = [];
  try {
    for (const line of readFileSync(new URL('zonefile', dir), 'utf8').split('\n')) {
      const m = /^_dmarc\.\S+\s.*?TXT\s+\(?\s*"([^"]*)"/.exec(line);
      if (m) records.push(m[1]!);
    }
    for (const file of readdirSync(new URL('source/', dir))) {
      const text = readFileSync(new URL(`source/${file}`, dir), 'latin1');
      const header = text.split(/\r?\n\r?\n/)[0]!;
      for (const m of header.matchAll(/^from\s*:(.*(?:\r?\n[ \t].*)*)/gim)) from.push(m[1]!);
    }
  } catch {
    // the shared data is optional for the fuzzer
  }
  return { records, from };
}

const RECORD_PIECES = [
  ';',
  ' ',
  '=',
  'v=DMARC1',
  'p=',
  'none',
  'quarantine',
  'reject',
  'sp=',
  'np=',
  'adkim=',
  'aspf=',
  's',
  'r',
  'pct=',
  '100',
  '0',
  '-1',
  't=y',
  'psd=',
  'y',
  'n',
  'u',
  'rua=mailto:a@b.example',
  ',',
  '!',
  '10m',
  '\t',
  '\u0000',
  '\u00ff',
  '😀',
  '\ud800',
];

const FROM_PIECES = [
  '"',
  '(',
  ')',
  '<',
  '>',
  '@',
  ',',
  ';',
  ':',
  '.',
  '[',
  ']',
  '\\',
  ' ',
  '\t',
  '\r\n ',
  '\r\n',
  'a',
  'example.com',
  'xn--bcher-kva',
  'bücher',
  '食狮',
  '=?UTF-8?Q?x?=',
  'Group:',
  '@route:',
  '\u0000',
  '\u007f',
  '\ud800',
  '😀',
];

export function generateRecord(rng: () => number): string {
  const tags = [pick(rng, ['v=DMARC1', 'v=DMARC1', 'V=DMARC1', ' v = DMARC1 ', 'v=DMARC2', 'p=none'])];
  const n = Math.floor(rng() * rng() * 14);
  const names = [
    'p',
    'sp',
    'np',
    'adkim',
    'aspf',
    'pct',
    't',
    'psd',
    'rua',
    'ruf',
    'fo',
    'rf',
    'ri',
    'x',
    'P',
    '',
  ];
  const values = [
    'none',
    'quarantine',
    'reject',
    'Reject',
    'r',
    's',
    'y',
    'n',
    'u',
    '0',
    '50',
    '100',
    '101',
    'mailto:a@b.example',
    '',
    'x;y',
  ];
  for (let k = 0; k < n; k++)
    tags.push(`${pick(rng, names)}${pick(rng, ['=', ' = ', '', '=='])}${pick(rng, values)}`);
  return tags.join(pick(rng, [';', '; ', ' ;', ';;']));
}

function randomLabel(rng: () => number): string {
  if (rng() < 0.05) return pick(rng, ['', '-x', 'x-', 'a'.repeat(64), 'bücher', '食狮', 'xn--', '_dmarc']);
  let s = '';
  const len = 1 + Math.floor(rng() * 8);
  for (let i = 0; i < len; i++) s += pick(rng, [...'abcxyz019-']);
  return s;
}

function randomDomain(rng: () => number): string {
  if (rng() < 0.05) return `[${pick(rng, ['192.0.2.1', 'IPv6:2001:db8::1', ''])}]`;
  const n = 1 + Math.floor(rng() * 4);
  return Array.from({ length: n }, () => randomLabel(rng)).join(pick(rng, ['.', '.', '.', ' . ', '..']));
}

function randomMailbox(rng: () => number): string {
  const local = pick(rng, ['a', 'john.doe', '"quoted local"', 'x+tag', 'ü', '']);
  const addr = `${local}@${rng() < 0.1 ? ' ' : ''}${randomDomain(rng)}`;
  const r = rng();
  if (r < 0.3) return addr;
  const name = pick(rng, [
    'Jane',
    '"Doe, Jane"',
    'J. R. R.',
    '=?UTF-8?B?SsO8cmdlbg==?=',
    '"a@b.example"',
    '',
  ]);
  const comment = rng() < 0.2 ? ` (${pick(rng, ['c', 'nested (c)', 'esc \\) x'])})` : '';
  if (r < 0.9) return `${name} <${rng() < 0.05 ? '@r.example:' : ''}${addr}>${comment}`;
  return `${addr}${comment}`;
}

export function generateFrom(rng: () => number): string {
  const n = 1 + Math.floor(rng() * rng() * 4);
  const items = Array.from({ length: n }, () => randomMailbox(rng));
  if (rng() < 0.1) return `${pick(rng, ['Team', 'Undisclosed recipients'])}: ${items.join(', ')};`;
  return items.join(pick(rng, [', ', ',', ' ,\r\n ', ' ']));
}

export function mutate(rng: () => number, seeds: readonly string[], pieces: readonly string[]): string {
  let s = pick(rng, seeds);
  const edits = 1 + Math.floor(rng() * rng() * 5);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rng() * (s.length + 1));
    const r = rng();
    if (r < 0.4) s = s.slice(0, at) + pick(rng, pieces) + s.slice(at);
    else if (r < 0.6) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rng() * 4));
    else if (r < 0.7) s = s.slice(0, at) + pick(rng, seeds).slice(Math.floor(rng() * 20));
    else if (r < 0.78) {
      const len = Math.floor(rng() * 20);
      s = s.slice(0, at) + s.slice(at, at + len).repeat(1 + Math.floor(rng() * 200)) + s.slice(at + len);
    } else if (r < 0.9) s = s.slice(0, at) + s.slice(at).toUpperCase();
    else s = s.slice(0, at);
  }
  return s;
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

const POLICIES = new Set([null, 'none', 'quarantine', 'reject']);

/** One record input; returns whether it parsed, or throws when an invariant breaks. */
export function fuzzRecord(input: string): 'parsed' | 'rejected' {
  const parsed = parseDmarcRecord(input);
  check(parsed.ok === isDmarcRecord(input), 'parse and isDmarcRecord disagree');
  const selected = selectDmarcRecord([[input], [input.slice(0, 5), input.slice(5)]]);
  check(selected.record === null, 'two identical records must be discarded');
  const single = selectDmarcRecord([[input.slice(0, 3), input.slice(3)]]);
  check((single.record !== null) === parsed.ok, 'joined character-strings parse differently');
  if (!parsed.ok) {
    check(typeof parsed.error === 'string' && parsed.error.length > 0, 'rejection without a message');
    return 'rejected';
  }
  const r = parsed.record;
  check(r.text === input, 'record text differs from the input');
  check(POLICIES.has(r.p) && POLICIES.has(r.sp) && POLICIES.has(r.np), 'bad policy value');
  check(!(r.pInvalid && r.p !== null), 'p both invalid and set');
  check(r.adkim === 'r' || r.adkim === 's', 'bad adkim');
  check(r.aspf === 'r' || r.aspf === 's', 'bad aspf');
  check(Number.isInteger(r.pct) && r.pct >= 0 && r.pct <= 100, `bad pct ${r.pct}`);
  check(r.psd === 'y' || r.psd === 'n' || r.psd === 'u', 'bad psd');
  check(r.tags[0]?.[0] === 'v', 'v is not the first tag');
  const names = r.tags.map(([k]) => k);
  check(new Set(names).size === names.length, 'repeated tag');
  check(
    names.every((k) => /^[a-z]+$/.test(k)),
    'tag name not lower-case letters',
  );
  check(
    r.rua.every((u) => u.length > 0 && !u.includes(',')),
    'bad rua entry',
  );
  const eff = effectiveRecord(r);
  const valid = r.p !== null && !r.spInvalid && !r.npInvalid;
  if (valid) check(eff === r, 'a valid record was changed');
  else if (eff !== null) {
    check(eff.p === 'none' && eff.sp === null && eff.np === null, 'the fallback is not p=none');
    check(r.rua.some(isValidReportingUri), 'p=none fallback without a valid rua');
  }
  return 'parsed';
}

/** One From input; returns whether it parsed, or throws when an invariant breaks. */
export function fuzzFrom(input: string): 'parsed' | 'rejected' {
  const parsed = parseAddressList(input);
  const extraction = extractAuthorDomains([input]);
  for (const d of extraction.domains) {
    check(normalizeAuthorDomain(d) === d, `domain ${d} is not normalised`);
    check(d.length <= 253 && !d.endsWith('.'), `bad domain ${d}`);
  }
  check(new Set(extraction.domains).size === extraction.domains.length, 'repeated domain');
  for (const d of salvageDomains(input))
    check(normalizeAuthorDomain(d) === d, `salvaged ${d} is not normalised`);
  if (!parsed.ok) {
    check(parsed.error.length > 0, 'syntax error without a message');
    check(parsed.at >= 0 && parsed.at <= input.length, `error offset ${parsed.at} outside the input`);
    check(extraction.problems.includes('syntax'), 'extraction missed the syntax error');
    return 'rejected';
  }
  check(!extraction.problems.includes('syntax'), 'extraction saw a syntax error the parser did not');
  for (const m of parsed.mailboxes) {
    check(m.localPart.length > 0, 'empty local part');
    check(m.domain.length > 0, 'empty domain');
    if (!m.domain.startsWith('[')) {
      for (const label of m.domain.split('.'))
        check(label.length > 0 && input.includes(label), `label ${label} not in the input`);
    }
  }
  return 'parsed';
}

/** A resolver answering every _dmarc query with the one fuzzed record. */
function recordResolver(record: string): Resolver {
  return {
    async query<T extends RecordType>(name: string, type: T): Promise<DnsResult<T>> {
      if (type === 'TXT' && name.startsWith('_dmarc.')) {
        return { status: 'ok', records: [[record]] as never, ttl: 60, authenticated: false };
      }
      return { status: name.startsWith('x') ? 'nxdomain' : 'nodata', ttl: 60 } as DnsResult<T>;
    },
  };
}

const RESULTS = new Set(['pass', 'fail', 'none', 'temperror', 'permerror']);

/** The whole check over a fuzzed record and From value. */
export async function fuzzCheck(record: string, from: string, rng: () => number): Promise<void> {
  const r = await checkDmarc(
    {
      from: [from],
      spf: {
        result: pick(rng, ['pass', 'fail']),
        domain: pick(rng, ['example.com', 'x.example.com', 'other.example']),
        identity: 'mailfrom',
      },
      dkim: [{ result: 'pass', domain: pick(rng, ['example.com', 'a.b.example.com', 'bücher.example']) }],
    },
    { resolver: recordResolver(record), random: rng },
  );
  check(RESULTS.has(r.result), `bad result ${r.result}`);
  check(r.result === 'fail' || r.disposition === 'none', 'a disposition without a failure');
  check(r.queries <= 64, `${r.queries} queries`);
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 1_000_000);
  const seed = Number(process.argv[3] ?? 1);
  if (!(count > 0) || !Number.isInteger(seed)) {
    console.error('usage: node fuzz/dmarc.ts [inputs=1000000] [seed=1]');
    process.exit(2);
  }
  const rng = random(seed);
  const suite = suiteSeeds();
  const recordSeeds = [...RECORD_SEEDS, ...suite.records];
  const fromSeeds = [...FROM_SEEDS, ...suite.from];
  const records = { parsed: 0, rejected: 0 };
  const from = { parsed: 0, rejected: 0 };
  let checks = 0;
  let crashes = 0;
  const examples: { input: string; error: string }[] = [];
  const start = performance.now();
  const fail = (input: string, e: unknown) => {
    crashes++;
    if (examples.length < 5) examples.push({ input, error: e instanceof Error ? e.message : String(e) });
  };
  for (let k = 0; k < count; k++) {
    const recordInput =
      k < recordSeeds.length
        ? recordSeeds[k]!
        : rng() < 0.6
          ? mutate(rng, recordSeeds, RECORD_PIECES)
          : generateRecord(rng);
    const fromInput =
      k < fromSeeds.length
        ? fromSeeds[k]!
        : rng() < 0.5
          ? mutate(rng, fromSeeds, FROM_PIECES)
          : generateFrom(rng);
    let t0 = performance.now();
    try {
      records[fuzzRecord(recordInput)]++;
      if (performance.now() - t0 > 1000) throw new Error(`took ${Math.round(performance.now() - t0)} ms`);
    } catch (e) {
      fail(recordInput, e);
    }
    t0 = performance.now();
    try {
      from[fuzzFrom(fromInput)]++;
      if (performance.now() - t0 > 1000) throw new Error(`took ${Math.round(performance.now() - t0)} ms`);
    } catch (e) {
      fail(fromInput, e);
    }
    if (k % 64 === 0) {
      try {
        await fuzzCheck(recordInput, fromInput, rng);
        checks++;
      } catch (e) {
        fail(`${recordInput} | ${fromInput}`, e);
      }
    }
  }
  const ms = Math.round(performance.now() - start);
  const seeds = recordSeeds.length + fromSeeds.length;
  console.log(JSON.stringify({ inputs: count, records, from, checks, crashes, ms, seed, seeds }));
  if (crashes > 0) {
    for (const x of examples) console.error(JSON.stringify(x));
    process.exit(1);
  }
}

if (import.meta.main) await main();
