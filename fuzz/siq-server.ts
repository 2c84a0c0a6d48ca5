/**
 * Fuzzes the SIQ server's request side: datagrams into SiqServer.handleDatagram (the UDP
 * listener's whole path: query decoding, domain normalisation, account lookup, the checks against
 * an in-memory zone, scoring, the answer cache, reply encoding), gateway report bodies into
 * parseReports, and profiles into parseProfile.
 *
 * Promises checked: nothing throws or rejects; a datagram that is not a query gets no reply; an
 * unregistered source gets no reply; a registered one gets a reply that decodes in the configured
 * layout, echoes the query's ID, and keeps SCORE in {-4, -1, 0..100}, sub-scores and CONFIDENCE
 * in -1..100, TEXT printable US-ASCII; a report body is either report items or a BodyError; a
 * profile either parses into ranges or lists problems. Seeded PRNG, so a run can be repeated.
 *
 *   node fuzz/siq-server.ts [inputs=1000000] [--seed N]
 *
 * Prints JSON {inputs, replies, silent, errors, crashes, ms, ...}; exits 1 on any crash.
 */
import { decodeQuery, decodeReply, encodeQuery, SiqDecodeError } from '../src/siq/codec.ts';
import { defaultSiqServerConfig } from '../src/siq/server/config.ts';
import { BodyError, parseReports } from '../src/siq/server/http.ts';
import { CHECK_IDS, parseProfile } from '../src/siq/server/profile.ts';
import { SiqServer } from '../src/siq/server/server.ts';
import { MemorySiqServerStore } from '../src/siq/server/store-memory.ts';
import { Zone } from '../test/support/zone.ts';
import { ZoneResolver } from '../bench/support/zone-resolver.ts';
import { mutate as mutateBytes, prng } from './siq.ts';

export { prng };

const REGISTERED = '127.0.0.1';
const STRANGER = '127.0.0.9';

function withExtra(q: Uint8Array, extraId: number[] | null, extra: number[]): Uint8Array {
  const out = new Uint8Array(q.length + (extraId ? 4 : 0) + extra.length);
  out.set(q);
  out[21] = extra.length;
  let at = q.length;
  if (extraId) {
    out.set(extraId, at);
    at += 4;
  }
  out.set(extra, at);
  return out;
}

/** Valid queries of every shape a client may send. */
export const QUERY_SEEDS: Uint8Array[] = [
  encodeQuery({ id: 1, type: 'mail', ip: '192.0.2.10', domain: 'good.example' }),
  encodeQuery({ id: 2, type: 'data', ip: '198.51.100.7', domain: 'weak.example' }),
  encodeQuery({ id: 3, type: 'mail', ip: '2001:db8::25', domain: 'nullmx.example' }),
  encodeQuery({ id: 4, type: 'mail', ip: '192.0.2.10', domain: '' }),
  encodeQuery({ id: 5, type: 'mail', ip: '::ffff:203.0.113.5', domain: 'GOOD.Example' }),
  encodeQuery({ id: 6, type: 'mail', ip: '192.0.2.10', domain: 'good.example', hl: true, ml: true }),
  encodeQuery({
    id: 7,
    type: 'mail',
    ip: '192.0.2.10',
    domain: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`,
  }),
  withExtra(
    encodeQuery({ id: 8, type: 'mail', ip: '192.0.2.10', domain: 'good.example' }),
    [0xde, 0xad, 0xbe, 0xef],
    [1, 2, 3],
  ),
  withExtra(encodeQuery({ id: 9, type: 'mail', ip: '192.0.2.10', domain: 'good.example' }), null, [
    ...Buffer.from('rcpt.example'),
  ]),
  encodeQuery({ id: 10, type: 'mail', ip: '0.0.0.0', domain: 'x' }),
];

/** A trailing dot and a local part that our encoder refuses to write, patched in. */
{
  const q = encodeQuery({ id: 11, type: 'mail', ip: '192.0.2.10', domain: 'user.good.example' });
  q[26] = 0x40;
  QUERY_SEEDS.push(q);
  const dot = encodeQuery({ id: 12, type: 'mail', ip: '192.0.2.10', domain: 'good.example.x' });
  dot[dot.length - 1] = 0x2e;
  dot[dot.length - 2] = 0x2e;
  QUERY_SEEDS.push(dot);
}

export const REPORT_SEEDS: string[] = [
  '{"reports":[{"ip":"192.0.2.1","domain":"sender.example","result":"rejected","count":3}]}',
  '{"ip":"2001:db8::1","result":"accepted"}',
  '{"reports":[]}',
  '{"reports":[{"domain":"x.example","result":"accepted"},{"ip":"192.0.2.2","result":"rejected"}]}',
  '[1,2,3]',
  '{"reports":[{"ip":"192.0.2.1","result":"maybe"}]}',
];

export const PROFILE_SEEDS: string[] = [
  '{"base":50,"ttl":300,"checks":{"dnsbl":{"enabled":true,"pass":10,"fail":-60,"neutral":0}}}',
  '{"checks":{"spf_pass":null,"mx":{"enabled":false}}}',
  '{"base":101}',
  '{"checks":{"nope":{}}}',
  '{}',
  `{"checks":{${CHECK_IDS.map((id) => `"${id}":{"pass":1}`).join(',')}}}`,
];

/** Byte mutations aimed at a query: QD-LENGTH and EXTRA-LENGTH near consistent, odd domain octets, the IP field. */
export function mutateQuery(input: Uint8Array, random: () => number): Uint8Array {
  const int = (n: number): number => Math.floor(random() * n);
  if (input.length < 22 || int(3) === 0) return mutateBytes(input, random);
  const b = Uint8Array.from(input);
  for (let r = 1 + int(2); r > 0; r--) {
    switch (int(5)) {
      case 0:
        b[20] = Math.max(0, Math.min(255, b.length - 22 + int(9) - 4));
        break;
      case 1:
        b[21] = Math.max(0, Math.min(255, b.length - 22 - b[20]! + int(9) - 4));
        break;
      case 2:
        if (b.length > 22)
          b[22 + int(b.length - 22)] = [0x40, 0x2e, 0x2e, 0x41, 0x5a, 0x20, 0x00, 0x7f, 0x80, 0xe9, 0xff][
            int(11)
          ]!;
        break;
      case 3:
        b[4 + int(16)] = int(256);
        break;
      default:
        b[1] = int(256);
    }
  }
  return b;
}

function mutateText(text: string, random: () => number): string {
  const int = (n: number): number => Math.floor(random() * n);
  let s = text;
  const pieces = [
    '"',
    '{',
    '}',
    '[',
    ']',
    ',',
    ':',
    '-1',
    '1e309',
    'null',
    'true',
    '"ip"',
    '"count"',
    '1000000',
    '\u0000',
    '\u00e9',
    ' ',
    '"result":"accepted"',
  ];
  for (let r = int(3) === 0 ? 2 : 1; r > 0; r--) {
    const at = int(s.length + 1);
    switch (int(4)) {
      case 0:
        s = s.slice(0, at) + pieces[int(pieces.length)]! + s.slice(at);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + int(4));
        break;
      case 2:
        s = s.slice(0, at) + String.fromCharCode(int(128)) + s.slice(at + 1);
        break;
      default:
        s = s.slice(0, at);
    }
  }
  return s;
}

class Broken extends Error {}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Broken(what);
}

export interface Harness {
  server: SiqServer;
  store: MemorySiqServerStore;
  close(): Promise<void>;
}

/** A server with one registered source (127.0.0.1), DNS from an in-memory zone, no rate limit. */
export async function harness(zone: ConstructorParameters<typeof Zone>[0]): Promise<Harness> {
  const store = new MemorySiqServerStore();
  const account = await store.createAccount({ email: 'fuzz@example.org', passwordHash: '', createdAt: 0 });
  await store.addSourceIp(account.id, REGISTERED);
  const config = {
    ...defaultSiqServerConfig(),
    dnsbl: [{ zone: 'bl.test', weight: 1 }],
    cacheMaxEntries: 5000,
    rateLimit: { perSecond: 1e9, burst: 1e9, action: 'drop' as const },
  };
  const server = new SiqServer({
    store,
    resolver: new ZoneResolver(new Zone(zone)),
    config: () => config,
    pollMs: 0,
    flushMs: 60_000,
  });
  return { server, store, close: () => server.close() };
}

/** One datagram; 'reply' | 'silent', or throws Broken. */
export async function fuzzDatagram(
  server: SiqServer,
  msg: Uint8Array,
  registered: boolean,
): Promise<'reply' | 'silent'> {
  let query: ReturnType<typeof decodeQuery> | null = null;
  try {
    query = decodeQuery(msg);
  } catch (err) {
    check(err instanceof SiqDecodeError, `decodeQuery threw ${String(err)}`);
  }
  let out: Uint8Array | null;
  try {
    out = await server.handleDatagram(registered ? REGISTERED : STRANGER, msg);
  } catch (err) {
    throw new Broken(`handleDatagram rejected: ${(err as Error).stack}`);
  }
  if (!query || !registered) {
    check(out === null, `a reply to ${query ? 'an unregistered source' : 'a malformed datagram'}`);
    return 'silent';
  }
  check(out !== null, 'no reply to a registered source');
  const reply = decodeReply(out!);
  check(reply.revision === '02', `layout ${reply.revision}`);
  check(reply.id === query.id, `ID ${reply.id} for query ${query.id}`);
  check(reply.kind === 'score' || reply.score === -1 || reply.score === -4, `SCORE ${reply.score}`);
  for (const v of [reply.ipScore, reply.domainScore, reply.relScore, reply.confidence])
    check(v >= -1 && v <= 100, `sub-score ${v}`);
  check(/^[\x20-\x7e]*$/.test(reply.text), `TEXT ${JSON.stringify(reply.text)}`);
  check(reply.anomalies.length === 0, `anomalies ${reply.anomalies.join('; ')}`);
  return 'reply';
}

export function fuzzReportBody(body: string): 'ok' | 'rejected' {
  try {
    const items = parseReports(body);
    for (const i of items) check(i.result === 'accepted' || i.result === 'rejected', 'result');
    return 'ok';
  } catch (err) {
    if (err instanceof BodyError) return 'rejected';
    throw new Broken(`parseReports threw ${String(err)}`);
  }
}

export function fuzzProfile(text: string): 'ok' | 'rejected' {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  const p = parseProfile(value);
  if (!p.ok) {
    check(p.problems.length > 0, 'not ok without problems');
    return 'rejected';
  }
  check(
    p.profile.base >= 0 && p.profile.base <= 100 && p.profile.ttl >= 0 && p.profile.ttl <= 65535,
    'profile ranges',
  );
  for (const id of CHECK_IDS)
    for (const k of ['pass', 'fail', 'neutral'] as const)
      check(Math.abs(p.profile.checks[id][k]) <= 100, `${id}.${k}`);
  return 'ok';
}

const ZONE = {
  '10.2.0.192.in-addr.arpa': [{ PTR: 'mail.good.example' }],
  'mail.good.example': [{ A: '192.0.2.10' }],
  '7.100.51.198.bl.test': [{ A: '127.0.0.2' }],
  'good.example': [{ TXT: 'v=spf1 ip4:192.0.2.10 -all' }, { MX: [10, 'mail.good.example'] }],
  '_dmarc.good.example': [{ TXT: 'v=DMARC1; p=reject' }],
  'weak.example': [{ TXT: 'v=spf1 +all' }, { A: '192.0.2.99' }],
  'nullmx.example': [{ MX: [0, '.'] }],
};

async function main(): Promise<void> {
  const inputs = Number(process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 1_000_000);
  const seedAt = process.argv.indexOf('--seed');
  const seed = seedAt >= 0 ? Number(process.argv[seedAt + 1]) : 1;
  const random = prng(seed);
  const int = (n: number): number => Math.floor(random() * n);
  const h = await harness(ZONE);
  const counts = {
    replies: 0,
    silent: 0,
    reportsOk: 0,
    reportsRejected: 0,
    profilesOk: 0,
    profilesRejected: 0,
  };
  let crashes = 0;
  let first = '';
  const t0 = performance.now();
  for (let i = 0; i < inputs; i++) {
    try {
      const kind = i % 10;
      if (kind === 8) {
        const r = fuzzReportBody(mutateText(REPORT_SEEDS[int(REPORT_SEEDS.length)]!, random));
        if (r === 'ok') counts.reportsOk++;
        else counts.reportsRejected++;
      } else if (kind === 9) {
        const r = fuzzProfile(mutateText(PROFILE_SEEDS[int(PROFILE_SEEDS.length)]!, random));
        if (r === 'ok') counts.profilesOk++;
        else counts.profilesRejected++;
      } else {
        const seedQuery = QUERY_SEEDS[int(QUERY_SEEDS.length)]!;
        const msg = int(5) === 0 ? seedQuery : mutateQuery(seedQuery, random);
        const r = await fuzzDatagram(h.server, msg, int(8) !== 0);
        if (r === 'reply') counts.replies++;
        else counts.silent++;
      }
    } catch (err) {
      crashes++;
      if (!first) first = `input ${i}: ${err instanceof Broken ? err.message : (err as Error).stack}`;
    }
  }
  const ms = Math.round(performance.now() - t0);
  const stats = h.server.stats();
  await h.close();
  process.stdout.write(
    `${JSON.stringify({ fuzz: 'siq-server', inputs, seed, ...counts, crashes, ...(first ? { first } : {}), server: stats, ms })}\n`,
  );
  process.exitCode = crashes > 0 ? 1 : 0;
}

if (import.meta.main) await main();
