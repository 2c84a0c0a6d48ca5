/**
 * Fuzzes the Exim readsocket protocol (src/adapters/exim/protocol.ts) and the answer mapping
 * behind it (readsocketResponse in src/adapters/exim/server.ts): requests as the ACL snippet that
 * `checkid integrate exim` prints sends them (every stage, base64 header blocks of many shapes),
 * mutated at line level (lines dropped, repeated, swapped, emptied, blown up; "=", NUL, CR, LF,
 * "<", "," inserted) and at byte level (invalid UTF-8, NULs, cuts, random bytes), decoded as the
 * server decodes them. Invariants:
 * - parseReadsocketRequest returns a request or throws ReadsocketProtocolError with a one-line
 *   message of at most 500 characters, whatever the input's size; anything else is a crash;
 * - a request's stage is one of READSOCKET_STAGES; no field holds a line feed; the trimmed ones
 *   (ip, session, helo, id, queue_id, recipient list entries) have no white space at their ends
 *   and the optional ones are not empty; no field is longer than the input;
 * - nothing after the empty line that ends a request is read;
 * - a parsed request written back as the snippet writes it (addresses in <>, headers in base64)
 *   parses to the same request;
 * - encodeReadsocketResponse gives one line with no control character but its final LF, and
 *   decodeReadsocketResponse reads every pair back (CR LF as LF, other controls as spaces);
 *   decodeReadsocketResponse of any text never throws and gives lower-case names;
 * - readsocketResponse, for an answer made from the request, gives the five pairs with a known
 *   action, and every line of add_header is an ":at_start:" field, a folded continuation or the
 *   tagged Subject: no header can be injected;
 * - an input never takes over a second (a hang).
 *
 *   node fuzz/exim.ts [inputs=1000000] [seed=1]
 *
 * Prints JSON {inputs, requests, protocolErrors, crashes, ms, seed}; exit status 1 on any crash.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  decodeReadsocketResponse,
  encodeReadsocketResponse,
  parseReadsocketRequest,
  READSOCKET_STAGES,
  ReadsocketProtocolError,
  type ReadsocketRequest,
} from '../src/adapters/exim/protocol.ts';
import { readsocketResponse } from '../src/adapters/exim/server.ts';
import type { Answer } from '../src/adapters/policyd/staged.ts';
import { parseHeaderBlock } from '../src/engine/engine.ts';
import { ACTIONS } from '../src/engine/verdict.ts';
import { editFields, maybeDamage } from './support/bytes.ts';
import { check } from './support/harness.ts';
import { chance, pick, prng } from './support/prng.ts';
import { runSeededFuzzer } from './support/seeded.ts';

export { prng };

type Rng = () => number;

const IPS = ['192.0.2.1', '2001:db8::25', '::ffff:192.0.2.7', '', ' 192.0.2.9 ', '127.0.0.1'];
const HELOS = ['mx.example.com', '', '[192.0.2.1]', 'b\u00fccher.example', 'localhost'];
const SENDERS = ['a@example.com', '', '<>', '<a@example.com>', 'j\u00fcrgen@b\u00fccher.example', '"a b"@example.com', 'bounce+x=y@lists.example'];
const RECIPIENTS = ['b@example.org', 'c@example.org', '<d@example.org>', 'postmaster', '\u7528\u6237@\u4f8b\u5b50.example'];
const HEADER_BLOCKS = [
  'Subject: hi\nFrom: a@example.com\n',
  'Received: from a.example (a.example [192.0.2.1])\n\tby mx.example.org; Mon, 3 Jun 2024 10:00:00 +0000\nSubject: folded\n  twice\n',
  'Authentication-Results: mx.receiver.example; spf=pass\r\nSubject: [SPAM] x\r\n',
  'Subject: \u00e9t\u00e9 \ud83d\ude00\n',
  ': no name\n\tcontinuation first\nX: y\n\nbody after an empty line\n',
  '',
];

/** A request as the ACL snippet sends it at `stage`. */
export function eximRequest(rng: Rng, stage = pick(rng, READSOCKET_STAGES)): string {
  const ip = pick(rng, IPS);
  const lines = [`stage=${stage}`, `session=${Math.floor(rng() * 99999)}/${ip}/${40000 + Math.floor(rng() * 999)}`, `ip=${ip}`, `helo=${pick(rng, HELOS)}`, `sender=${pick(rng, SENDERS)}`];
  if (stage === 'rcpt') lines.push(`recipient=${pick(rng, RECIPIENTS)}`);
  if (stage === 'data') {
    const rcpts = RECIPIENTS.filter(() => chance(rng, 0.5));
    lines.push(`recipients=${rcpts.join(', ')}`, `queue_id=1t${Math.floor(rng() * 1e6)}-000ABC-XY`, `headers=${Buffer.from(pick(rng, HEADER_BLOCKS)).toString('base64')}`);
  }
  if (chance(rng, 0.1)) lines.push('future=ignored');
  return `${lines.join('\n')}\n\n`;
}

export const SEEDS: string[] = [
  ...READSOCKET_STAGES.map((s, i) => eximRequest(prng(i + 1), s)),
  'stage=connect\nsession=1/::1/5\nip=::1\nhelo=\nsender=\n\n',
  'STAGE= RCPT \r\nIP=192.0.2.1\r\nrecipient=<>\r\n\r\n',
  `stage=data\nip=192.0.2.1\nrecipients=,\nheaders=${Buffer.from(HEADER_BLOCKS[1]!).toString('base64').replace(/(.{8})/g, '$1 ')}\n`,
  'stage=mail\nip=192.0.2.1\nsender=<<a@example.com>>\n\nstage=bogus\n',
  '\n\n\nstage=helo\nip=192.0.2.1\nhelo=a=b\n',
  'stage=data\nip=192.0.2.1\nheaders=A\n',
  'stage=data\nip=192.0.2.1\nheaders=not base64!\n',
  'junk line\n',
  '',
];

const PIECES = ['=', 'stage=', 'ip=', 'headers=', 'sender=', 'recipients=', '<', '>', ',', ' ', 'x'.repeat(300), '\u00ff', '\ud83d\ude00'];

/** A mutated request: a seed or a fresh request, then line and byte edits. */
export function generate(rng: Rng): Buffer {
  const text = chance(rng, 0.3) ? pick(rng, SEEDS) : eximRequest(rng);
  const lines = text.split('\n');
  if (chance(rng, 0.8)) editFields(rng, lines, PIECES, 60_000);
  return maybeDamage(rng, Buffer.from(lines.join('\n'), 'utf8'));
}

/** A request written back as the snippet writes it, addresses in <> so their own brackets survive. */
export function encodeRequest(req: ReadsocketRequest): string {
  const lines = [`stage=${req.stage}`, `ip=${req.ip}`];
  const plain: Array<[string, string | undefined]> = [
    ['session', req.session],
    ['helo', req.helo],
    ['id', req.id],
    ['queue_id', req.queueId],
  ];
  for (const [name, value] of plain) if (value !== undefined) lines.push(`${name}=${value}`);
  if (req.sender !== undefined) lines.push(`sender=<${req.sender}>`);
  if (req.recipient !== undefined) lines.push(`recipient=<${req.recipient}>`);
  // an empty list is one the request named: "," says so
  if (req.recipients) lines.push(`recipients=${req.recipients.map((r) => `<${r}>`).join(',') || ','}`);
  // an empty header block: "=" is base64 for no bytes, where an empty value means "not sent"
  if (req.headers !== undefined) lines.push(`headers=${Buffer.from(req.headers).toString('base64') || '='}`);
  return `${lines.join('\n')}\n\n`;
}

type Outcome = { req: ReadsocketRequest } | { error: string };

function parse(text: string): Outcome {
  try {
    return { req: parseReadsocketRequest(text) };
  } catch (err) {
    if (!(err instanceof ReadsocketProtocolError)) throw err;
    return { error: err.message };
  }
}

const TRIMMED = ['ip', 'session', 'helo', 'id', 'queueId'] as const;
const OPTIONAL = ['session', 'helo', 'id', 'queueId'] as const;
const CONTROL = /[\x00-\x1f\x7f]/;

/** Checks the request's bounds and shape. */
function checkRequest(req: ReadsocketRequest, text: string): void {
  check((READSOCKET_STAGES as readonly string[]).includes(req.stage), `stage ${JSON.stringify(req.stage)}`);
  for (const name of TRIMMED) {
    const v = req[name];
    if (v !== undefined) check(v === v.trim(), `${name} not trimmed: ${JSON.stringify(v)}`);
  }
  for (const name of OPTIONAL) check(req[name] !== '', `${name} present but empty`);
  const values = [req.ip, req.session, req.helo, req.id, req.queueId, req.sender, req.recipient, ...(req.recipients ?? [])];
  for (const v of values) {
    if (v === undefined) continue;
    check(!v.includes('\n'), `a field with a line feed: ${JSON.stringify(v.slice(0, 80))}`);
    check(v.length <= text.length, 'a field longer than the request');
  }
  for (const r of req.recipients ?? []) check(r !== '', 'an empty recipient list entry');
  if (req.headers !== undefined) check(req.headers.length <= text.length, 'a header block longer than the request');
}

/** Response pairs round trip through Exim's ${extract} rules; returns the decoded pairs. */
function checkResponse(pairs: Array<[string, string]>): Map<string, string> {
  const line = encodeReadsocketResponse(pairs);
  check(line.endsWith('\n') && !CONTROL.test(line.slice(0, -1)), `response not one clean line: ${JSON.stringify(line.slice(0, 120))}`);
  const back = decodeReadsocketResponse(line);
  check(back.size === new Set(pairs.map(([k]) => k)).size, 'response pairs lost');
  for (const [k, v] of pairs) {
    const want = v.replace(/\r\n/g, '\n').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ' ');
    check(back.get(k) === want, `response pair ${k} reads back as ${JSON.stringify(back.get(k)?.slice(0, 80))}`);
  }
  return back;
}

/** An answer like the engine's, carrying the request's own values into every text. */
function answerFor(req: ReadsocketRequest, rng: Rng): Answer {
  const action = pick(rng, ACTIONS);
  const said = [req.helo, req.sender, req.recipient, ...(req.recipients ?? [])].filter((v): v is string => v !== undefined);
  return {
    verdict: {
      action,
      reply: { code: action === 'REJECT' ? 550 : action === 'TEMPFAIL' ? 451 : 250, xcode: chance(rng, 0.5) ? '5.7.1' : '', text: `fuzz ${said.join('\r\n')}` },
      headers: [],
      removeHeaders: [],
      stage: 'data',
      reason: req.id ?? 'fuzz',
      explanation: [],
    },
    headers: [
      { label: 'Authentication-Results:', text: `mx.example; spf=pass smtp.mailfrom=${req.sender ?? ''}` },
      { label: 'X-Fuzz:', text: said.join('\r\n\t') },
    ],
    headersLeft: 0,
    removeHeaders: chance(rng, 0.5) ? [{ name: 'Authentication-Results', occurrence: 1, reason: 'forged' }] : [],
    ...(chance(rng, 0.5) ? { subjectTag: pick(rng, ['[SPAM]', '***', '[SPAM] hi']) } : {}),
  };
}

/** Checks one input; returns whether it parsed, or throws when an invariant breaks. */
export function fuzzOne(bytes: Buffer, rng: Rng): { parsed: boolean } {
  const text = bytes.toString('utf8');
  const outcome = parse(text);
  // whatever follows the empty line that ends a request is never read
  if (text.split('\n').some((l) => l !== '' && l !== '\r')) {
    check(isDeepStrictEqual(parse(`${text}\n\nstage=bogus\njunk\n`), outcome), 'the text after the ending empty line changed the outcome');
  }
  for (const [k] of decodeReadsocketResponse(text)) check(/^[a-z_][a-z0-9_]*$/.test(k), `decoded name ${JSON.stringify(k)}`);
  if ('error' in outcome) {
    check(outcome.error.length <= 500 && !/[\r\n]/.test(outcome.error), `error message of ${outcome.error.length} characters: ${JSON.stringify(outcome.error.slice(0, 120))}`);
    return { parsed: false };
  }
  const req = outcome.req;
  checkRequest(req, text);
  const again = parse(encodeRequest(req));
  check(isDeepStrictEqual(again, outcome), `written back, the request parses as ${JSON.stringify(again).slice(0, 300)}`);
  checkResponse([
    ['action', pick(rng, ['ACCEPT', 'REJECT', 'DEFER'])],
    ['message', `550 5.7.1 ${req.sender ?? ''}`],
    ['reason', req.helo ?? ''],
    ['add_header', req.headers ?? ''],
    ['remove_header', text.slice(0, 200)],
  ]);
  const received = req.headers !== undefined ? parseHeaderBlock(req.headers) : undefined;
  const answer = answerFor(req, rng);
  const pairs = readsocketResponse(answer, received);
  check(isDeepStrictEqual(pairs.map(([k]) => k), ['action', 'message', 'reason', 'add_header', 'remove_header']), 'readsocketResponse pairs');
  const back = checkResponse(pairs);
  check(['ACCEPT', 'CONTINUE', 'FILTER', 'REJECT', 'DEFER', 'DISCARD'].includes(back.get('action')!), `action ${back.get('action')}`);
  for (const line of back.get('add_header')!.split('\n')) {
    check(/^(:at_start:|[ \t]|Subject: )/.test(line), `add_header line ${JSON.stringify(line.slice(0, 80))}`);
    if (line.startsWith('Subject: ')) check(answer.subjectTag !== undefined && line.startsWith(`Subject: ${answer.subjectTag}`), 'an untagged Subject line');
  }
  return { parsed: true };
}

if (import.meta.main) {
  await runSeededFuzzer({
    name: 'exim.ts',
    seeds: SEEDS.map((s) => Buffer.from(s)),
    generate,
    outcomes: ['requests', 'protocolErrors'],
    one: (input, rng) => (fuzzOne(input, rng).parsed ? 'requests' : 'protocolErrors'),
    show: (input) => input.toString('base64'),
  });
}
