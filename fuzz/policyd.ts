/**
 * Fuzzes the Postfix policy-protocol parser (src/adapters/policyd/protocol.ts) and the request
 * mapping behind it: streams made of real Postfix 3.7 requests (every stage, all 29 attributes),
 * mutated at line and byte level (dropped, repeated and swapped lines, lines without "=", NUL,
 * CR, invalid UTF-8, huge values, random bytes) and cut into chunks of random sizes. Invariants:
 * - the parser returns requests or throws PolicyProtocolError; anything else is a crash;
 * - chunking changes nothing: the stream fed whole and fed in random pieces gives the same
 *   requests and the same error (or none);
 * - every request is within its bounds (attributes, bytes); names are non-empty without "=",
 *   names and values hold no NUL or line break;
 * - a request re-encoded parses back to itself;
 * - requestToAsk and policyAction never throw, and an action is one line;
 * - an input never takes over a second (a hang).
 *
 *   node fuzz/policyd.ts [inputs=1000000] [seed=1]
 *
 * Prints JSON {inputs, requests, protocolErrors, crashes, ms, seed}; exit status 1 on any crash.
 */
import { encodeRequest, PolicyParser, PolicyProtocolError, type PolicyRequest } from '../src/adapters/policyd/protocol.ts';
import { policyAction, requestToAsk } from '../src/adapters/policyd/server.ts';
import { ACTIONS, type Verdict } from '../src/engine/verdict.ts';
import { pick, prng } from './support/prng.ts';

export { prng };

const MAX_BYTES = 4096;
const MAX_ATTRIBUTES = 64;

const STATES = ['CONNECT', 'EHLO', 'HELO', 'MAIL', 'RCPT', 'DATA', 'END-OF-MESSAGE', 'VRFY', 'ETRN', 'BDAT', 'rcpt', ''];

/** A request as Postfix 3.7 sends it at `state`. */
export function postfixRequest(state: string, n: number): string {
  const attrs: Array<[string, string]> = [
    ['request', 'smtpd_access_policy'],
    ['protocol_state', state],
    ['protocol_name', 'ESMTP'],
    ['client_address', n % 3 === 0 ? '2001:db8::25' : `192.0.2.${n % 255}`],
    ['client_name', 'mail.example.com'],
    ['client_port', String(40000 + (n % 1000))],
    ['reverse_client_name', 'mail.example.com'],
    ['server_address', '127.0.0.1'],
    ['server_port', '25'],
    ['helo_name', state === 'CONNECT' ? '' : 'mail.example.com'],
    ['sender', n % 5 === 0 ? '' : 'alice@example.com'],
    ['recipient', state === 'RCPT' ? `bob${n}@example.org` : ''],
    ['recipient_count', state === 'DATA' || state === 'END-OF-MESSAGE' ? '1' : '0'],
    ['queue_id', state === 'END-OF-MESSAGE' ? '4ABC123DEF' : ''],
    ['instance', `1a2b.5f3c1d2e.${n}`],
    ['size', '12345'],
    ['etrn_domain', ''],
    ['stress', ''],
    ['sasl_method', ''],
    ['sasl_username', ''],
    ['sasl_sender', ''],
    ['ccert_subject', ''],
    ['ccert_issuer', ''],
    ['ccert_fingerprint', ''],
    ['ccert_pubkey_fingerprint', ''],
    ['encryption_protocol', 'TLSv1.3'],
    ['encryption_cipher', 'TLS_AES_256_GCM_SHA384'],
    ['encryption_keysize', '256'],
    ['policy_context', ''],
  ];
  return encodeRequest(attrs);
}

export const SEEDS: string[] = [
  ...STATES.map((s, i) => postfixRequest(s, i)),
  postfixRequest('RCPT', 1) + postfixRequest('DATA', 1) + postfixRequest('END-OF-MESSAGE', 1),
  'request=smtpd_access_policy\r\nprotocol_state=RCPT\r\n\r\n',
  'sender=j\u00fcrgen@b\u00fccher.example\nrecipient=\u7528\u6237@\u4f8b\u5b50.example\n\n',
  '\n\n\n',
  'a=b=c\nsender=\n\n',
];

const PIECES = ['=', '\n', '\r\n', '\r', '\0', '\n\n', 'request=', 'smtpd_access_policy', 'protocol_state=', 'x'.repeat(300), '\u00ff', '\ud83d\ude00'];

/** A mutated stream: seeds glued together, then line and byte edits. */
export function generate(rng: () => number): Buffer {
  let text = '';
  const n = 1 + Math.floor(rng() * 3);
  for (let k = 0; k < n; k++) text += rng() < 0.7 ? pick(rng, SEEDS) : postfixRequest(pick(rng, STATES), Math.floor(rng() * 1000));
  const lines = text.split('\n');
  const edits = Math.floor(rng() * rng() * 6);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rng() * lines.length);
    const r = rng();
    if (r < 0.15) lines.splice(at, 1);
    else if (r < 0.3) lines.splice(at, 0, lines[Math.floor(rng() * lines.length)] ?? '');
    else if (r < 0.4) lines[at] = (lines[at] ?? '').replace('=', '');
    else if (r < 0.5) lines[at] = `${lines[at] ?? ''}${'v'.repeat(Math.floor(rng() * 5000))}`;
    else if (r < 0.6) lines.splice(at, 0, '');
    else {
      const line = lines[at] ?? '';
      const pos = Math.floor(rng() * (line.length + 1));
      lines[at] = line.slice(0, pos) + pick(rng, PIECES) + line.slice(pos);
    }
  }
  let bytes = Buffer.from(lines.join('\n'), 'utf8');
  if (rng() < 0.15) {
    // byte-level damage: invalid UTF-8, NULs, random bytes
    const copy = Buffer.from(bytes);
    const hits = 1 + Math.floor(rng() * 4);
    for (let h = 0; h < hits && copy.length > 0; h++) copy[Math.floor(rng() * copy.length)] = Math.floor(rng() * 256);
    bytes = copy;
  }
  if (rng() < 0.03) bytes = Buffer.from(Array.from({ length: Math.floor(rng() * 200) }, () => Math.floor(rng() * 256)));
  return bytes;
}

type Outcome = { requests: PolicyRequest[]; error: string | null };

function feed(stream: Buffer, cuts: number[]): Outcome {
  const parser = new PolicyParser({ maxRequestBytes: MAX_BYTES, maxAttributes: MAX_ATTRIBUTES });
  const requests: PolicyRequest[] = [];
  let start = 0;
  try {
    for (const cut of [...cuts, stream.length]) {
      requests.push(...parser.push(stream.subarray(start, cut)));
      start = cut;
    }
  } catch (err) {
    if (!(err instanceof PolicyProtocolError)) throw err;
    requests.push(...err.completed);
    return { requests, error: err.message };
  }
  return { requests, error: null };
}

const VERDICT = (action: Verdict['action']): Verdict => ({
  action,
  reply: { code: action === 'REJECT' ? 550 : action === 'TEMPFAIL' ? 451 : 250, xcode: '', text: 'fuzz\r\nreply' },
  headers: [],
  removeHeaders: [],
  stage: 'rcpt',
  reason: 'fuzz',
  explanation: [],
});

/** Checks one stream; returns how many requests it held, or throws when an invariant breaks. */
export function fuzzOne(stream: Buffer, rng: () => number): { requests: number; protocolError: boolean } {
  const whole = feed(stream, []);
  const cuts: number[] = [];
  for (let at = 0; at < stream.length; ) {
    at += 1 + Math.floor(rng() * rng() * 64);
    if (at < stream.length) cuts.push(at);
  }
  const chunked = feed(stream, cuts);
  if (whole.error !== chunked.error) throw new Error(`chunking changed the error: ${whole.error} vs ${chunked.error}`);
  if (whole.requests.length !== chunked.requests.length) throw new Error('chunking changed the number of requests');
  whole.requests.forEach((req, i) => {
    const other = chunked.requests[i]!;
    if (JSON.stringify([...req]) !== JSON.stringify([...other])) throw new Error(`chunking changed request ${i}`);
    if (req.size > MAX_ATTRIBUTES) throw new Error(`${req.size} attributes`);
    let bytes = 1;
    for (const [name, value] of req) {
      if (name === '' || name.includes('=') || /[\0\n]/.test(name) || /[\0\n]/.test(value)) throw new Error(`bad attribute ${JSON.stringify(name)}`);
      bytes += Buffer.byteLength(name) + Buffer.byteLength(value) + 2;
    }
    if (bytes > MAX_BYTES) throw new Error(`request of ${bytes} bytes passed a ${MAX_BYTES}-byte bound`);
    if (![...req.values()].some((v) => v.endsWith('\r'))) {
      const back = new PolicyParser({ maxRequestBytes: MAX_BYTES * 2, maxAttributes: MAX_ATTRIBUTES }).push(Buffer.from(encodeRequest(req)));
      if (back.length !== 1 || JSON.stringify([...back[0]!]) !== JSON.stringify([...req])) throw new Error('re-encoded request parses differently');
    }
    const q = requestToAsk(req);
    const stage = q?.ask.stage ?? 'rcpt';
    for (const action of ACTIONS) {
      const text = policyAction(VERDICT(action), stage, rng() < 0.5 ? { label: 'X-Fuzz:', text: [...req.values()].join('\r\n\t') } : undefined);
      if (/[\r\n]/.test(text)) throw new Error(`action with a line break: ${JSON.stringify(text)}`);
    }
  });
  return { requests: whole.requests.length, protocolError: whole.error !== null };
}

function main(): void {
  const count = Number(process.argv[2] ?? 1_000_000);
  const seed = Number(process.argv[3] ?? 1);
  if (!(count > 0) || !Number.isInteger(seed)) {
    console.error('usage: node fuzz/policyd.ts [inputs=1000000] [seed=1]');
    process.exit(2);
  }
  const rng = prng(seed);
  let requests = 0;
  let protocolErrors = 0;
  let crashes = 0;
  const examples: Array<{ input: string; error: string }> = [];
  const start = performance.now();
  for (let k = 0; k < count; k++) {
    const input = k < SEEDS.length ? Buffer.from(SEEDS[k]!) : generate(rng);
    const t0 = performance.now();
    try {
      const r = fuzzOne(input, rng);
      requests += r.requests;
      if (r.protocolError) protocolErrors++;
      const took = performance.now() - t0;
      if (took > 1000) throw new Error(`took ${Math.round(took)} ms`);
    } catch (err) {
      crashes++;
      if (examples.length < 5) examples.push({ input: input.toString('base64'), error: (err as Error).stack ?? String(err) });
    }
  }
  const ms = Math.round(performance.now() - start);
  console.log(JSON.stringify({ inputs: count, requests, protocolErrors, crashes, ms, seed }));
  if (crashes > 0) {
    for (const x of examples) console.error(JSON.stringify(x));
    process.exit(1);
  }
}

if (import.meta.main) main();
