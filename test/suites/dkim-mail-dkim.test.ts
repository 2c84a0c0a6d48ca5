/**
 * The Mail::DKIM verifier corpus (79 messages; testdata/dkim-mail-dkim, see its README and
 * expected.yml), run twice over its FAKE_DNS.dat:
 *
 * 1. As we run in production (RFC 6376 + RFC 8301): every message has an exact expected result
 *    per signature below, and is judged against Mail::DKIM's verdict as expected.yml says: its
 *    passes that RFC 8301 refuses (rsa-sha1, RSA keys under 1024 bits, DomainKeys) must not pass.
 * 2. With the legacy switches (rsa-sha1, pre-RFC v=, 512-bit keys), so that the canonicalization,
 *    key-record and error paths are exercised on every message: compared with Mail::DKIM's
 *    pass / fail / invalid directly; each difference is listed with the RFC text behind it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type DkimOptions, type DkimResult, verifyMessage } from '../../src/checks/dkim/index.ts';
import { ManualClock } from '../../src/common/clock.ts';
import { mailDkimExpected, mailDkimZone, readData } from '../checks/dkim/corpus.ts';
import { MemoryResolver } from '../support/zone.ts';

const entries = mailDkimExpected();
const resolver = new MemoryResolver(mailDkimZone());
// the corpus' signatures date from 2005–2023; ignore_7 expired in 2007
const clock = new ManualClock(Date.parse('2023-06-01T00:00:00Z'));
const LEGACY: DkimOptions = { legacy: { rsaSha1: true, draftVersions: true }, minRsaBits: 512 };

const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}.txt`);

/** Per-signature results in production mode, with why. */
const RFC: Array<{ files: string[]; results: string[]; why: string }> = [
  {
    files: [
      ...range('good_ietf00_', 1, 5),
      ...range('mine_ietf01_', 1, 4),
      ...range('good_ietf01_', 1, 2),
      ...range('bad_ietf01_', 1, 3),
      'bad_1.txt',
    ],
    results: ['neutral'],
    why: 'no v= tag: pre-RFC drafts; v= is REQUIRED (RFC 6376 §3.5, §6.1.1)',
  },
  {
    files: ['multiple_1.txt'],
    results: ['neutral', 'neutral', 'neutral', 'neutral'],
    why: 'four draft signatures without v=',
  },
  {
    files: [
      'mine_ietf05_1.txt',
      ...range('no_body_', 1, 3),
      'ignore_1.txt',
      'ignore_2.txt',
      'ignore_3.txt',
      'ignore_4.txt',
      ...range('badkey_', 1, 7),
    ],
    results: ['neutral'],
    why: 'v=0.5 or v=5: incompatible version (RFC 6376 §6.1.1); the v=0.5 ones are drafts, ignore_1 is the test of it',
  },
  {
    files: [
      'good_rfc4871_3.txt',
      'good_rfc4871_4.txt',
      'good_1878523.txt',
      'good_83176.txt',
      ...range('good_qp_', 1, 3),
      'bad_1878954.txt',
      ...range('goodkey_', 1, 4),
      'badkey_8.txt',
      'badkey_9.txt',
      'badkey_10.txt',
      'badkey_12.txt',
      'badkey_13.txt',
      'badkey_14.txt',
      'badkey_15.txt',
      'ignore_7.txt',
    ],
    results: ['policy'],
    why: 'rsa-sha1 (RFC 8301 §3.1: verifiers MUST NOT consider it valid)',
  },
  {
    files: ['multiple_2.txt'],
    results: ['neutral', 'policy', 'policy', 'neutral'],
    why: 'c=foobar, two rsa-sha1, unparsable',
  },
  {
    files: ['ignore_5.txt', 'ignore_6.txt'],
    results: ['neutral'],
    why: 'no supported q= method (RFC 6376 §3.5)',
  },
  { files: ['ignore_8.txt'], results: ['neutral'], why: 'i= not within d= (RFC 6376 §6.1.1)' },
  {
    files: ['badkey_11.txt'],
    results: ['permerror'],
    why: "the key's h= does not list sha256 (RFC 6376 §3.6.1)",
  },
  { files: ['goodkey_ed25519.txt'], results: ['pass'], why: 'valid ed25519-sha256 (RFC 8463)' },
  {
    files: ['badkey1_ed25519.txt'],
    results: ['permerror'],
    why: 'p= is a SubjectPublicKeyInfo, not the raw 32-octet key (RFC 8463 §4)',
  },
  { files: ['badkey2_ed25519.txt'], results: ['fail'], why: 'header altered' },
  { files: ['badkey3_ed25519.txt'], results: ['fail'], why: 'body altered' },
  { files: ['badkey4_ed25519.txt'], results: ['permerror'], why: 'key NXDOMAIN (RFC 6376 §6.1.2)' },
  {
    files: ['badkey5_ed25519.txt'],
    results: ['permerror'],
    why: 'empty key record: no p= (RFC 6376 §3.6.1)',
  },
];
const DOMAINKEYS_RESULT = {
  results: ['none'],
  why: 'DomainKeys (RFC 4870, historic) is not implemented: no DKIM-Signature',
};

function rfcExpectation(file: string, kind: string): { results: string[]; why: string } {
  if (kind === 'domainkeys') return DOMAINKEYS_RESULT;
  const hit = RFC.find((r) => r.files.includes(file));
  if (!hit) throw new Error(`no expectation for ${file}`);
  return hit;
}

/** Mail::DKIM-vs-us differences in legacy mode, each with the text that makes ours right. */
const LEGACY_DIFFERENCES: Record<string, string> = {
  'good_ietf00_1.txt': 'draft-00 signature without bh=; upstream skips it too',
  'good_ietf00_2.txt': 'draft-00 signature without bh=; upstream skips it too',
  'good_ietf00_3.txt': 'draft-00 signature without bh=; upstream skips it too',
  'good_ietf00_4.txt': 'draft-00 signature without bh=; upstream skips it too',
  'good_ietf00_5.txt': 'draft-00 signature without bh=; upstream skips it too',
  'badkey_8.txt': 'key g= is RFC 4871 (§6.1.2 step 6); RFC 6376 dropped it and §3.6.1 ignores unknown tags',
  'badkey_9.txt': 'key g= is RFC 4871 (§6.1.2 step 6); RFC 6376 dropped it and §3.6.1 ignores unknown tags',
  'badkey_12.txt': 'key g= is RFC 4871 (§6.1.2 step 6); RFC 6376 dropped it and §3.6.1 ignores unknown tags',
  'badkey_13.txt': 'key g= is RFC 4871 (§6.1.2 step 6); RFC 6376 dropped it and §3.6.1 ignores unknown tags',
};

/** The message's verdict: pass if any signature passes, else fail if any fails, else the first result. */
function verdict(results: DkimResult[]): string {
  if (results.some((r) => r.result === 'pass')) return 'pass';
  if (results.some((r) => r.result === 'fail')) return 'fail';
  return results[0]!.result;
}

const ACCEPTABLE_RSA_BITS = 1024;
/** Mail::DKIM's result judged by RFC 8301, as expected.yml describes. */
function judged(e: (typeof entries)[number]): 'pass' | 'fail' | 'not pass' {
  if (e.expected === 'pass') return e.rfc8301 === 'still pass' ? 'pass' : 'not pass';
  if (e.expected === 'fail') {
    const ok =
      e.algs.every((a) => a === 'ed25519-sha256' || a === 'rsa-sha256') &&
      e.key_bits.every((b) => b === 'ed25519' || (typeof b === 'number' && b >= ACCEPTABLE_RSA_BITS));
    return ok ? 'fail' : 'not pass';
  }
  return 'not pass';
}

/** Documented disagreements with the RFC 8301 judgement. */
const RFC_DIFFERENCES: Record<string, string> = {
  'mine_ietf01_3.txt':
    'valid rsa-sha256 with a 1024-bit key, but no v= tag: RFC 6376 §3.5 makes v= REQUIRED and §6.1.1 refuses the signature',
  'mine_ietf01_4.txt':
    'valid rsa-sha256 with a 1024-bit key, but no v= tag: RFC 6376 §3.5 makes v= REQUIRED and §6.1.1 refuses the signature',
};

const counts = { rfcAgree: 0, rfcDocumented: 0, legacyAgree: 0, legacyDocumented: 0, legacyDomainKeys: 0 };

test('the corpus has 79 messages', () => {
  assert.equal(entries.length, 79);
});

for (const e of entries) {
  test(`Mail::DKIM ${e.file} (RFC 8301 mode)`, async () => {
    const raw = readData(`dkim-mail-dkim/corpus/${e.file}`);
    const results = await verifyMessage(raw, { resolver, clock });
    const want = rfcExpectation(e.file, e.kind);
    assert.deepEqual(
      results.map((r) => r.result),
      want.results,
      `${want.why}; reasons: ${results.map((r) => r.reason).join(' | ')}`,
    );
    for (const r of results) assert.ok(r.reason.length > 0);
    const j = judged(e);
    const v = verdict(results);
    const agrees = j === 'pass' ? v === 'pass' : j === 'fail' ? v === 'fail' : v !== 'pass';
    if (agrees) counts.rfcAgree++;
    else {
      assert.ok(
        RFC_DIFFERENCES[e.file],
        `undocumented disagreement with the RFC 8301 judgement (${j}, ours ${v})`,
      );
      counts.rfcDocumented++;
    }
  });

  test(`Mail::DKIM ${e.file} (legacy mode, against Mail::DKIM's own result)`, async () => {
    const raw = readData(`dkim-mail-dkim/corpus/${e.file}`);
    const results = await verifyMessage(raw, { resolver, clock }, LEGACY);
    const v = verdict(results);
    const agrees =
      e.expected === 'invalid'
        ? ['permerror', 'temperror', 'neutral', 'policy'].includes(v)
        : v === e.expected;
    if (e.kind === 'domainkeys') {
      assert.equal(v, 'none', DOMAINKEYS_RESULT.why);
      counts.legacyDomainKeys++;
    } else if (LEGACY_DIFFERENCES[e.file]) {
      assert.equal(agrees, false, `documented as a difference but agrees: ${LEGACY_DIFFERENCES[e.file]}`);
      counts.legacyDocumented++;
    } else {
      assert.ok(
        agrees,
        `Mail::DKIM says ${e.expected}, we say ${results.map((r) => `${r.result} (${r.reason})`).join(' | ')}`,
      );
      counts.legacyAgree++;
    }
  });
}

test('multiple_2: per signature as upstream checks them (invalid, pass, fail; the fourth unparsable)', async () => {
  const results = await verifyMessage(
    readData('dkim-mail-dkim/corpus/multiple_2.txt'),
    { resolver, clock },
    LEGACY,
  );
  assert.deepEqual(
    results.map((r) => r.result),
    ['neutral', 'pass', 'fail', 'neutral'],
  );
});

test('DNS failures give temperror (badkey_14 timeout, badkey_15 SERVFAIL)', async () => {
  for (const f of ['badkey_14.txt', 'badkey_15.txt']) {
    const [r] = await verifyMessage(readData(`dkim-mail-dkim/corpus/${f}`), { resolver, clock }, LEGACY);
    assert.equal(r!.result, 'temperror', f);
  }
});

test('corpus totals', (t) => {
  t.diagnostic(
    `RFC 8301 mode: ${counts.rfcAgree} agree with the judged Mail::DKIM result, ${counts.rfcDocumented} documented differences`,
  );
  t.diagnostic(
    `legacy mode: ${counts.legacyAgree} agree with Mail::DKIM, ${counts.legacyDocumented} documented differences, ${counts.legacyDomainKeys} DomainKeys messages (not implemented)`,
  );
  assert.deepEqual(counts, {
    rfcAgree: 77,
    rfcDocumented: 2,
    legacyAgree: 53,
    legacyDocumented: 9,
    legacyDomainKeys: 17,
  });
});
