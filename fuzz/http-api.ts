/**
 * Fuzzes the HTTP API's request body parser (parseCheckRequest in src/adapters/http/server.ts, the
 * JSON of POST /v1/check): bodies as docs/adapters and the integration tests send them (ip, id,
 * helo, mail_from or mailFrom, rcpt, headers as a raw block or [name, value] pairs, body), mutated
 * at structure level (members dropped, repeated, given the wrong type: numbers, booleans, null,
 * objects, nested arrays, huge strings and lists, escapes of lone surrogates and NUL, "__proto__"),
 * at text level (members dropped, repeated, swapped; braces, quotes, commas inserted) and at byte
 * level (invalid UTF-8, NULs, cuts, random bytes), decoded as the server decodes them. Invariants:
 * - parseCheckRequest returns a request or throws HttpError with status 400 and a message of at
 *   most 500 characters, whatever the body's size; anything else is a crash (a 500);
 * - a request holds only ip, id, helo, mailFrom, rcpt, headers and body, each the body's own value:
 *   ip a non-empty string, rcpt a list of strings ([] when absent), headers a string or a list of
 *   string pairs, id and helo only when non-empty, mailFrom from mail_from (else mailFrom);
 * - a request written back as JSON parses to itself, and so does a generated one;
 * - an input never takes over a second (a hang).
 *
 *   node fuzz/http-api.ts [inputs=1000000] [seed=1]
 *
 * Prints JSON {inputs, requests, refused, crashes, ms, seed}; exit status 1 on any crash.
 */
import { isDeepStrictEqual } from 'node:util';
import { HttpError, parseCheckRequest } from '../src/adapters/http/server.ts';
import { editFields, maybeDamage } from './support/bytes.ts';
import { check } from './support/harness.ts';
import { between, chance, pick, prng } from './support/prng.ts';
import { runSeededFuzzer } from './support/seeded.ts';

export { prng };

type Rng = () => number;
type CheckRequest = ReturnType<typeof parseCheckRequest>;

const KEYS = ['ip', 'id', 'helo', 'mail_from', 'mailFrom', 'rcpt', 'headers', 'body'] as const;
const STRINGS = ['192.0.2.1', '2001:db8::25', 'example.com', 'mx.example.com', 'a@example.com', '', ' ', '\u0000', 'j\u00fcrgen@b\u00fccher.example', '\ud800', '\ud83d\ude00', 'a\r\nb'];
const HEADER_BLOCKS = ['Subject: hi\r\nFrom: a@example.com\r\n', 'Received: from a.example\r\n\tby mx; d\r\n', ''];

/** A request body as a client sends it. */
export function apiBody(rng: Rng): Record<string, unknown> {
  const body: Record<string, unknown> = { ip: pick(rng, ['192.0.2.1', '2001:db8::25', '127.0.0.1']) };
  if (chance(rng, 0.7)) body.id = pick(rng, ['example.com', 'a@example.com', 'mx.example.com']);
  if (chance(rng, 0.5)) body.helo = 'mx.example.com';
  if (chance(rng, 0.5)) body[chance(rng, 0.8) ? 'mail_from' : 'mailFrom'] = pick(rng, ['a@example.com', '']);
  if (chance(rng, 0.5)) body.rcpt = Array.from({ length: between(rng, 0, 3) }, (_, i) => `b${i}@example.org`);
  if (chance(rng, 0.4)) body.headers = chance(rng, 0.5) ? pick(rng, HEADER_BLOCKS) : [['Subject', 'hi'], ['From', 'a@example.com']];
  if (chance(rng, 0.3)) body.body = 'Hello\r\n.\r\n';
  return body;
}

/** A value of a kind the field may not take, or an extreme one of its own kind. */
function oddValue(rng: Rng): unknown {
  const r = rng();
  if (r < 0.15) return pick(rng, [null, 0, -1, 1e308, true, false, {}, [], [null], [1, 2]]);
  if (r < 0.3) return pick(rng, STRINGS);
  if (r < 0.4) return 'x'.repeat(between(rng, 1000, 100_000));
  if (r < 0.5) return Array.from({ length: between(rng, 0, chance(rng, 0.1) ? 20_000 : 5) }, () => pick(rng, STRINGS));
  if (r < 0.6) return [[pick(rng, STRINGS), pick(rng, STRINGS)], pick(rng, [['a'], ['a', 'b', 'c'], ['a', 1], 'a: b', null])];
  if (r < 0.7) {
    let v: unknown = 'deep';
    for (let d = between(rng, 1, 2000); d > 0; d--) v = [v];
    return v;
  }
  if (r < 0.8) return { ip: pick(rng, STRINGS), nested: { rcpt: ['x'] } };
  return Array.from({ length: between(rng, 1, 3) }, () => [pick(rng, STRINGS), pick(rng, STRINGS)]);
}

export const SEEDS: string[] = [
  JSON.stringify({ ip: '192.0.2.1', id: 'example.com' }),
  JSON.stringify({ ip: '192.0.2.1', id: 'example.com', helo: 'mx.example.com', mail_from: 'a@example.com', rcpt: ['b@example.org'], headers: 'Subject: hi\r\n', body: '...' }),
  JSON.stringify({ ip: '2001:db8::25', mailFrom: '', headers: [['Subject', 'hi']] }),
  '{"ip":"192.0.2.1","ip":"192.0.2.2","__proto__":{"rcpt":1},"mail_from":null,"mailFrom":"a@example.com"}',
  '{"ip":"\\ud800\\u0000","rcpt":null,"headers":null,"id":"","helo":null}',
  '{}',
  '[]',
  'null',
  '"192.0.2.1"',
  '',
  `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  '{"ip":"192.0.2.1","rcpt":["a",1]}',
  '{"ip":"192.0.2.1","headers":[["a","b","c"]]}',
  '{"ip":"192.0.2.1","headers":5}',
  '{"ip":1}',
];

const PIECES = ['{', '}', '[', ']', '"', ':', ',', 'null', '"ip":', '\\u0000', '\\ud800', '\\', '1e999', '"__proto__":'];

/** A mutated body: a seed or a fresh body with odd values, then text and byte edits. */
export function generate(rng: Rng): Buffer {
  let text: string;
  if (chance(rng, 0.2)) text = pick(rng, SEEDS);
  else {
    const body = apiBody(rng);
    for (let n = chance(rng, 0.7) ? between(rng, 1, 3) : 0; n > 0; n--) {
      const key = chance(rng, 0.9) ? pick(rng, KEYS) : pick(rng, ['__proto__', 'constructor', 'extra']);
      if (chance(rng, 0.2)) delete body[key];
      else body[key] = oddValue(rng);
    }
    text = JSON.stringify(body);
  }
  if (chance(rng, 0.3)) {
    const members = text.split(',');
    editFields(rng, members, PIECES);
    text = members.join(',');
  }
  return maybeDamage(rng, Buffer.from(text, 'utf8'));
}

/** A request written back as the JSON body of POST /v1/check. */
export function encodeCheckRequest(req: CheckRequest): string {
  const { mailFrom, ...rest } = req;
  return JSON.stringify({ ...rest, ...(mailFrom !== undefined ? { mail_from: mailFrom } : {}) });
}

const isString = (v: unknown): v is string => typeof v === 'string';

/** The request must carry the body's own values, each of its documented type. */
function checkRequest(req: CheckRequest, raw: Record<string, unknown>): void {
  const allowed = new Set(['ip', 'id', 'helo', 'mailFrom', 'rcpt', 'headers', 'body']);
  for (const key of Object.keys(req)) check(allowed.has(key), `unexpected key ${key}`);
  check(isString(req.ip) && req.ip !== '' && req.ip === raw.ip, 'ip');
  check(isDeepStrictEqual(req.rcpt, raw.rcpt ?? []) && req.rcpt.every(isString), 'rcpt');
  for (const key of ['id', 'helo'] as const) check(req[key] === (raw[key] ? raw[key] : undefined), key);
  const mailFrom = raw.mail_from ?? raw.mailFrom;
  check(req.mailFrom === (mailFrom === null ? undefined : mailFrom), 'mailFrom');
  check(req.body === (raw.body === null ? undefined : raw.body), 'body');
  const h = req.headers;
  check(h === undefined || isString(h) || h.every((p) => Array.isArray(p) && p.length === 2 && p.every(isString)), 'headers type');
  check(isDeepStrictEqual(h, raw.headers === null ? undefined : raw.headers), 'headers');
}

/** Checks one body; returns whether it was accepted, or throws when an invariant breaks. */
export function fuzzOne(bytes: Buffer, rng: Rng): { accepted: boolean } {
  const text = bytes.toString('utf8');
  let req: CheckRequest;
  try {
    req = parseCheckRequest(text);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    check(err.status === 400, `status ${err.status}`);
    check(err.message.length <= 500, `error message of ${err.message.length} characters: ${JSON.stringify(err.message.slice(0, 120))}`);
    return { accepted: false };
  }
  checkRequest(req, JSON.parse(text) as Record<string, unknown>);
  check(isDeepStrictEqual(parseCheckRequest(encodeCheckRequest(req)), req), 'written back, the request parses differently');
  const fresh = parseCheckRequest(JSON.stringify(apiBody(rng)));
  check(isDeepStrictEqual(parseCheckRequest(encodeCheckRequest(fresh)), fresh), 'a generated request does not parse back to itself');
  return { accepted: true };
}

if (import.meta.main) {
  await runSeededFuzzer({
    name: 'http-api.ts',
    seeds: SEEDS.map((s) => Buffer.from(s)),
    generate,
    outcomes: ['requests', 'refused'],
    one: (input, rng) => (fuzzOne(input, rng).accepted ? 'requests' : 'refused'),
    show: (input) => input.toString('utf8'),
  });
}
