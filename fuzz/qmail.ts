/**
 * Fuzzes qmail-queue's envelope as the QMAILQUEUE wrapper reads it on fd 1 and writes it back to
 * the real qmail-queue (src/adapters/qmail/envelope.ts): envelopes as qmail-smtpd writes them
 * (F<sender>\0, T<recipient>\0 per recipient, \0; null senders, many recipients, UTF-8 and 8-bit
 * addresses), mutated at field level (fields dropped, repeated, swapped, emptied, blown up; F, T,
 * NUL inserted) and at byte level (invalid UTF-8, NULs, cuts, random bytes). Invariants:
 * - parseEnvelope returns an envelope or throws EnvelopeError with exit code 54 (cut short) or 91
 *   (malformed) and a one-line message of at most 500 characters; anything else is a crash;
 * - the outcome is the one a reference reading of qmail-queue(8) gives (a regular expression over
 *   the bytes): the same exit code, or the same number of recipients;
 * - an envelope has at least one recipient, and no address holds a NUL or is longer than the input;
 * - written back with encodeEnvelope, a parsed UTF-8 envelope is byte for byte the input (an 8-bit
 *   one is never re-encoded: the wrapper hands qmail-queue the bytes it read), and a generated
 *   envelope parses back to itself;
 * - an input never takes over a second (a hang).
 *
 *   node fuzz/qmail.ts [inputs=1000000] [seed=1]
 *
 * Prints JSON {inputs, envelopes, readErrors, formatErrors, crashes, ms, seed}; exit status 1 on any crash.
 */
import { isUtf8 } from 'node:buffer';
import { isDeepStrictEqual } from 'node:util';
import { EnvelopeError, encodeEnvelope, parseEnvelope, QQ_ENVELOPE_FORMAT, QQ_READ_ERROR, type QmailEnvelope } from '../src/adapters/qmail/envelope.ts';
import { editFields, maybeDamage } from './support/bytes.ts';
import { check } from './support/harness.ts';
import { between, chance, pick, prng } from './support/prng.ts';
import { runSeededFuzzer } from './support/seeded.ts';

export { prng };

type Rng = () => number;

const ADDRESSES = ['a@example.com', 'postmaster@example.org', 'j\u00fcrgen@b\u00fccher.example', '\u7528\u6237@\u4f8b\u5b50.example', 'bounce-123-b=example.org@lists.example', 'x', '"a b"@example.com', '@'];

/** An envelope as qmail-smtpd writes it. */
export function qmailEnvelope(rng: Rng): QmailEnvelope {
  return {
    sender: chance(rng, 0.2) ? '' : pick(rng, ADDRESSES),
    recipients: Array.from({ length: chance(rng, 0.05) ? between(rng, 50, 500) : between(rng, 1, 4) }, () => pick(rng, ADDRESSES)),
  };
}

/** 8-bit addresses as qmail passes them: Latin-1 bytes, not UTF-8. */
const LATIN1 = Buffer.from('Fj\xfcrgen@b\xfccher.example\0Tb@example.org\0T\xe9t\xe9@example.org\0\0', 'latin1');

export const SEEDS: Buffer[] = [
  encodeEnvelope({ sender: 'a@example.com', recipients: ['b@example.org', 'c@example.org'] }),
  encodeEnvelope({ sender: '', recipients: ['postmaster@example.org'] }),
  encodeEnvelope({ sender: 'j\u00fcrgen@b\u00fccher.example', recipients: ['\u7528\u6237@\u4f8b\u5b50.example'] }),
  encodeEnvelope({ sender: 'a@example.com', recipients: [''] }),
  LATIN1,
  ...['', '\0', '\0\0', 'F', 'F\0', 'F\0\0', 'Fa@b\0Tc@d\0', 'Fa@b\0Tc@d', 'Xa@b\0Tc@d\0\0', 'Fa@b\0Qc@d\0\0', 'Fa@b\0Tc@d\0\0extra', 'Fa@b\0Tc@d\0\0\0', 'T\0F\0\0'].map((s) => Buffer.from(s, 'latin1')),
];

const PIECES = ['F', 'T', 'Fa@example.com', 'Tb@example.org', '@', '<>'];

/** A mutated envelope: a seed or a fresh one, then field and byte edits. */
export function generate(rng: Rng): Buffer {
  const base = chance(rng, 0.3) ? pick(rng, SEEDS) : encodeEnvelope(qmailEnvelope(rng));
  let bytes = base;
  if (chance(rng, 0.8)) {
    const fields = base.toString('latin1').split('\0');
    // the fields as Latin-1 text, so every byte survives the edits
    editFields(rng, fields, PIECES);
    bytes = Buffer.from(fields.join('\0'), 'latin1');
  }
  return maybeDamage(rng, bytes);
}

/**
 * qmail-queue(8) read off the bytes: fields of one or more non-NUL bytes each ended by a NUL, then
 * one more NUL and nothing after it; the first field F..., the others T..., at least one of those.
 */
function reference(bytes: Buffer): { exitCode: number } | { recipients: number } {
  const text = bytes.toString('latin1');
  const m = /^(?:[^\0]+\0)*\0/.exec(text);
  if (!m) return { exitCode: QQ_READ_ERROR };
  if (m[0].length !== text.length) return { exitCode: QQ_ENVELOPE_FORMAT };
  const fields = text.slice(0, -1).split('\0').slice(0, -1);
  const [first, ...rest] = fields;
  if (!first?.startsWith('F') || rest.length === 0 || !rest.every((f) => f.startsWith('T'))) return { exitCode: QQ_ENVELOPE_FORMAT };
  return { recipients: rest.length };
}

/** Checks one input; returns its outcome, or throws when an invariant breaks. */
export function fuzzOne(bytes: Buffer, rng: Rng): { exitCode: number } | { recipients: number } {
  let envelope: QmailEnvelope;
  const want = reference(bytes);
  try {
    envelope = parseEnvelope(bytes);
  } catch (err) {
    if (!(err instanceof EnvelopeError)) throw err;
    check(err.message.length <= 500 && !/[\r\n]/.test(err.message), `error message ${JSON.stringify(err.message.slice(0, 120))}`);
    check(isDeepStrictEqual(want, { exitCode: err.exitCode }), `exit code ${err.exitCode} (${err.message}) where qmail-queue(8) gives ${JSON.stringify(want)}`);
    return want;
  }
  check(isDeepStrictEqual(want, { recipients: envelope.recipients.length }), `${envelope.recipients.length} recipients where qmail-queue(8) gives ${JSON.stringify(want)}`);
  for (const a of [envelope.sender, ...envelope.recipients]) check(!a.includes('\0') && a.length <= bytes.length, `address ${JSON.stringify(a.slice(0, 80))}`);
  // an all-UTF-8 envelope is its own encoding; an 8-bit one is not re-encoded at all (the wrapper
  // hands qmail-queue the bytes it read), so only the number of fields must survive
  const back = encodeEnvelope(envelope);
  if (isUtf8(bytes)) check(back.equals(bytes), `written back, the envelope is ${JSON.stringify(back.toString('latin1').slice(0, 200))}`);
  const fresh = qmailEnvelope(rng);
  check(isDeepStrictEqual(parseEnvelope(encodeEnvelope(fresh)), fresh), `generated envelope ${JSON.stringify(fresh).slice(0, 200)} does not parse back`);
  return want;
}

if (import.meta.main) {
  await runSeededFuzzer({
    name: 'qmail.ts',
    seeds: SEEDS,
    generate,
    outcomes: ['envelopes', 'readErrors', 'formatErrors'],
    one: (input, rng) => {
      const r = fuzzOne(input, rng);
      return 'recipients' in r ? 'envelopes' : r.exitCode === QQ_READ_ERROR ? 'readErrors' : 'formatErrors';
    },
    show: (input) => input.toString('base64'),
  });
}
