/**
 * Fuzzes the DNS decoder: every input must either decode or throw DnsDecodeError. Inputs are
 * mutations of valid messages (ours and dns-packet's, compressed or not) and random messages,
 * from a seeded PRNG so a run can be repeated. A decoded message must also survive a round trip
 * through our encoder (decode(encode(m)) deep-equals m).
 *
 *   node fuzz/dns-decode.ts [inputs=100000] [--seed N]
 *
 * Prints {inputs, ok, rejected, crashes, roundTrips, ms, ...}; exits 1 on any crash.
 */
import { isDeepStrictEqual } from 'node:util';
import * as dnsPacket from 'dns-packet';
import {
  DnsDecodeError,
  DnsEncodeError,
  type DnsMessage,
  decodeMessage,
  encodeMessage,
  encodeQuery,
  type MessageInput,
  RCODE,
} from '../src/dns/codec.ts';
import { prng } from './support/prng.ts';

const argv = process.argv.slice(2);
const seedAt = argv.indexOf('--seed');
const seed = seedAt >= 0 ? Number(argv[seedAt + 1]) >>> 0 : 0x5eed;
const positional = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--seed');
const total = positional[0] ? Number(positional[0]) : 100_000;
if (!(total > 0)) throw new Error('usage: node fuzz/dns-decode.ts [inputs] [--seed N]');

const random = prng(seed);
const int = (n: number): number => Math.floor(random() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

// --- seeds -----------------------------------------------------------------------------------

const soa = {
  mname: 'ns1.example.org',
  rname: 'hostmaster.example.org',
  serial: 7,
  refresh: 1,
  retry: 2,
  expire: 3,
  minimum: 60,
};
const rich: MessageInput = {
  id: 0x1234,
  qr: true,
  aa: true,
  rd: true,
  ra: true,
  questions: [{ name: 'example.org', type: 'TXT' }],
  answers: [
    { name: 'www.example.org', type: 'CNAME', ttl: 10, data: 'example.org' },
    { name: 'example.org', type: 'TXT', ttl: 300, data: ['v=spf1 include:_spf.example.org ', '-all'] },
    { name: 'example.org', type: 'MX', ttl: 300, data: { preference: 10, exchange: 'mx.example.org' } },
    { name: 'example.org', type: 'A', ttl: 300, data: '192.0.2.1' },
    { name: 'example.org', type: 'AAAA', ttl: 300, data: '2001:db8::1' },
    {
      name: '_imap._tcp.example.org',
      type: 'SRV',
      ttl: 5,
      data: { priority: 1, weight: 2, port: 143, target: 'imap.example.org' },
    },
    { name: '1.2.0.192.in-addr.arpa', type: 'PTR', ttl: 5, data: 'host.example.org' },
  ],
  authorities: [
    { name: 'example.org', type: 'NS', ttl: 300, data: 'ns1.example.org' },
    { name: 'example.org', type: 'SOA', ttl: 300, data: soa },
  ],
  additionals: [{ name: 'ns1.example.org', type: 'A', ttl: 300, data: '198.51.100.1' }],
  edns: { udpPayloadSize: 1232, options: [{ code: 10, data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) }] },
};
const seeds: Uint8Array[] = [
  encodeMessage(rich),
  encodeMessage(rich, { compress: false }),
  encodeMessage({
    id: 9,
    qr: true,
    rcode: RCODE.NXDOMAIN,
    questions: [{ name: 'nx.example.org', type: 'A' }],
    authorities: [{ name: 'example.org', type: 'SOA', ttl: 60, data: soa }],
  }),
  encodeMessage({
    id: 9,
    qr: true,
    tc: true,
    questions: [{ name: 'big.example.org', type: 'TXT' }],
    edns: {},
  }),
  encodeQuery({ id: 77, name: 'example.com', type: 'MX', edns: {} }),
  dnsPacket.encode({
    type: 'response',
    id: 5,
    flags: dnsPacket.RECURSION_AVAILABLE,
    questions: [{ name: 'example.net', type: 'TXT' }],
    answers: [
      { name: 'example.net', type: 'TXT', ttl: 1, data: ['a'.repeat(255), 'b'] },
      { name: 'example.net', type: 'CAA', ttl: 1, data: { flags: 0, tag: 'issue', value: 'ca.example' } },
      { name: 'example.net', type: 'SOA', ttl: 1, data: soa },
    ],
  }),
];

// --- mutations -------------------------------------------------------------------------------

const interesting = [0, 1, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xff, 12, 41, 255];

function mutate(input: Uint8Array): Uint8Array {
  let b = Uint8Array.from(input);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const at = b.length > 0 ? int(b.length) : 0;
    switch (int(10)) {
      case 0: // flip a bit
        if (b.length) b[at] = b[at]! ^ (1 << int(8));
        break;
      case 1: // random byte
        if (b.length) b[at] = int(256);
        break;
      case 2: // interesting byte
        if (b.length) b[at] = pick(interesting);
        break;
      case 3: // compression pointer to a random earlier place
        if (b.length > 1) {
          const target = int(Math.max(1, at));
          b[at] = 0xc0 | (target >> 8);
          if (at + 1 < b.length) b[at + 1] = target & 0xff;
        }
        break;
      case 4: // a section count or a length field gets a random 16-bit value
        if (b.length >= 12) {
          const p = int(2) === 0 ? 4 + 2 * int(4) : at & ~1;
          const v = int(4) === 0 ? 0xffff : int(int(2) === 0 ? 8 : 65536);
          if (p + 1 < b.length) {
            b[p] = v >> 8;
            b[p + 1] = v & 0xff;
          }
        }
        break;
      case 5: // truncate
        b = b.slice(0, int(b.length + 1));
        break;
      case 6: {
        // insert random bytes
        const n = 1 + int(8);
        const ins = Uint8Array.from({ length: n }, () => (int(2) ? pick(interesting) : int(256)));
        const out = new Uint8Array(b.length + n);
        out.set(b.subarray(0, at));
        out.set(ins, at);
        out.set(b.subarray(at), at + n);
        b = out;
        break;
      }
      case 7: {
        // delete a range
        const n = Math.min(1 + int(16), b.length - at);
        const out = new Uint8Array(b.length - n);
        out.set(b.subarray(0, at));
        out.set(b.subarray(at + n), at);
        b = out;
        break;
      }
      case 8: {
        // duplicate a range at the end
        const n = 1 + int(32);
        const chunk = b.slice(at, at + n);
        const out = new Uint8Array(b.length + chunk.length);
        out.set(b);
        out.set(chunk, b.length);
        b = out;
        break;
      }
      default: {
        // splice with another seed
        const other = pick(seeds);
        const cut = int(other.length);
        const out = new Uint8Array(at + other.length - cut);
        out.set(b.subarray(0, at));
        out.set(other.subarray(cut), at);
        b = out;
      }
    }
  }
  return b;
}

function randomMessage(): Uint8Array {
  if (int(3) === 0) return Uint8Array.from({ length: int(700) }, () => int(256));
  // a header with small counts, then a soup of labels, pointers, and record headers
  const parts: number[] = [int(256), int(256), 0x80 | int(256), int(256)];
  for (let i = 0; i < 4; i++) parts.push(0, int(4));
  const n = int(60);
  for (let i = 0; i < n; i++) {
    switch (int(6)) {
      case 0: {
        const len = int(70);
        parts.push(len);
        for (let k = 0; k < len; k++) parts.push(97 + int(26));
        break;
      }
      case 1: {
        const target = int(Math.max(1, parts.length));
        parts.push(0xc0 | (target >> 8), target & 0xff);
        break;
      }
      case 2:
        parts.push(0);
        break;
      case 3: // type/class/ttl/rdlength
        parts.push(
          0,
          pick([1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 99]),
          0,
          1,
          0,
          0,
          int(2),
          int(256),
          0,
          int(40),
        );
        break;
      case 4:
        parts.push(pick(interesting));
        break;
      default:
        parts.push(int(256), int(256));
    }
  }
  return Uint8Array.from(parts);
}

// --- run -------------------------------------------------------------------------------------

function toInput(m: DnsMessage): MessageInput {
  return { ...m, edns: m.edns };
}

let ok = 0;
let rejected = 0;
let crashes = 0;
let roundTrips = 0;
let roundTripSkipped = 0;
let slowest = 0;
const samples: { error: string; hex: string }[] = [];
const crash = (input: Uint8Array, error: unknown): void => {
  crashes++;
  if (samples.length < 5)
    samples.push({
      error: String((error as Error)?.stack ?? error),
      hex: Buffer.from(input).toString('hex'),
    });
};

const start = performance.now();
for (let i = 0; i < total; i++) {
  const input = i < seeds.length ? seeds[i]! : int(4) === 0 ? randomMessage() : mutate(pick(seeds));
  const t0 = performance.now();
  let decoded: DnsMessage;
  try {
    decoded = decodeMessage(input);
  } catch (err) {
    if (err instanceof DnsDecodeError) rejected++;
    else crash(input, err);
    continue;
  } finally {
    const dt = performance.now() - t0;
    if (dt > slowest) slowest = dt;
  }
  ok++;
  let again: Uint8Array;
  try {
    again = encodeMessage(toInput(decoded));
  } catch (err) {
    if (err instanceof DnsEncodeError)
      roundTripSkipped++; // e.g. expanded past 65535 octets
    else crash(input, err);
    continue;
  }
  try {
    const back = decodeMessage(again);
    if (!isDeepStrictEqual(back, decoded)) throw new Error('round trip changed the message');
    roundTrips++;
  } catch (err) {
    crash(input, err);
  }
}
const ms = Math.round(performance.now() - start);

process.stdout.write(
  `${JSON.stringify({
    fuzz: 'dns-decode',
    seed,
    inputs: total,
    ok,
    rejected,
    crashes,
    roundTrips,
    roundTripSkipped,
    ms,
    slowestInputMs: Number(slowest.toFixed(3)),
    ...(samples.length ? { samples } : {}),
  })}\n`,
);
process.exit(crashes > 0 ? 1 : 0);
