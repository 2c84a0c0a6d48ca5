import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as dnsPacket from 'dns-packet';
import {
  CLASS_IN,
  canonicalName,
  DnsDecodeError,
  DnsEncodeError,
  decodeMessage,
  encodeMessage,
  encodeQuery,
  formatName,
  labelText,
  namesEqual,
  nameToWire,
  parseName,
  RCODE,
  TYPE,
  typeName,
} from '../../src/dns/codec.ts';

const bytes = (...parts: (number | number[] | string)[]): Uint8Array => {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (typeof p === 'string') for (const c of p) out.push(c.charCodeAt(0));
    else out.push(...p);
  }
  return Uint8Array.from(out);
};

/** a 12-octet header */
const header = (id: number, flags: number, qd: number, an: number, ns: number, ar: number): number[] => [
  id >> 8,
  id & 0xff,
  flags >> 8,
  flags & 0xff,
  0,
  qd,
  0,
  an,
  0,
  ns,
  0,
  ar,
];

const rejects = (input: Uint8Array, pattern?: RegExp): void => {
  assert.throws(
    () => decodeMessage(input),
    (err: unknown) => {
      assert.ok(err instanceof DnsDecodeError, `expected DnsDecodeError, got ${String(err)}`);
      if (pattern) assert.match(err.message, pattern);
      return true;
    },
  );
};

describe('names', () => {
  test('plain names: trailing dot optional, case kept, root is empty', () => {
    assert.deepEqual(
      parseName('Mail.Example.COM.').map((l) => Buffer.from(l).toString()),
      ['Mail', 'Example', 'COM'],
    );
    assert.equal(canonicalName('Mail.Example.COM.'), 'Mail.Example.COM');
    assert.deepEqual(parseName(''), []);
    assert.deepEqual(parseName('.'), []);
    assert.deepEqual([...nameToWire('.')], [0]);
    assert.deepEqual([...nameToWire('a.bc')], [1, 97, 2, 98, 99, 0]);
  });

  test('escapes: \\. and \\\\ inside labels, \\DDD bytes, normalised on output', () => {
    const labels = parseName('a\\.b.c\\\\d.\\065\\000');
    assert.deepEqual(
      labels.map((l) => [...l]),
      [
        [97, 46, 98],
        [99, 92, 100],
        [65, 0],
      ],
    );
    assert.equal(canonicalName('a\\.b.c\\\\d.\\065\\000'), 'a\\.b.c\\\\d.A\\000');
    assert.equal(
      labelText(Uint8Array.of(0, 0x20, 0x2e, 0x5c, 0x7f, 0xff, 0x41)),
      '\\000\\032\\.\\\\\\127\\255A',
    );
    // an escaped ordinary char is that char
    assert.equal(canonicalName('\\a\\-b.x'), 'a-b.x');
  });

  test('canonicalName\'s fast path agrees with parsing: 20,000 random names, near the limits too', () => {
    // a seeded generator: the same names on every run
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const alphabet = ['a', 'Z', '0', '-', '_', '*', '.', '.', '\\', ' ', '\x7f', 'é', '\\.', '\\065'];
    const outcome = (f: () => string) => {
      try {
        return f();
      } catch (e) {
        return `throws ${(e as Error).name}`;
      }
    };
    for (let i = 0; i < 20_000; i++) {
      const kind = rand(4);
      let name: string;
      if (kind === 0) name = Array.from({ length: rand(12) }, () => alphabet[rand(alphabet.length)]).join('');
      else if (kind === 1) name = Array.from({ length: 1 + rand(5) }, () => 'x'.repeat(60 + rand(6))).join('.');
      else if (kind === 2) name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(59 + rand(5))}${rand(2) ? '.' : ''}`;
      else name = `${'ab.'.repeat(rand(90))}${rand(3) === 0 ? '' : 'example'}${rand(2) ? '.' : ''}`;
      assert.equal(
        outcome(() => canonicalName(name)),
        outcome(() => formatName(parseName(name))),
        JSON.stringify(name),
      );
    }
  });

  test('non-ASCII text is sent as UTF-8 and comes back escaped', () => {
    assert.equal(canonicalName('bücher.example'), 'b\\195\\188cher.example');
    assert.deepEqual([...parseName('😀')[0]!], [0xf0, 0x9f, 0x98, 0x80]);
  });

  test('limits: 63-octet labels and 255-octet names', () => {
    const l63 = 'a'.repeat(63);
    assert.equal(parseName(`${l63}.b`)[0]!.length, 63);
    assert.throws(() => parseName(`${'a'.repeat(64)}.b`), DnsEncodeError);
    // 3 × (1+63) + (1+61) + root = 255
    const max = `${l63}.${l63}.${l63}.${'b'.repeat(61)}`;
    assert.equal(nameToWire(max).length, 255);
    assert.equal(nameToWire(`${max}.`).length, 255);
    assert.throws(() => parseName(`${l63}.${l63}.${l63}.${'b'.repeat(62)}`), /255/);
    // the same limit when the length comes from escapes
    assert.throws(() => parseName(`${'\\065'.repeat(64)}.x`), /63/);
  });

  test('malformed names are refused', () => {
    for (const bad of ['a..b', '.a', 'a.b..', '..', 'a\\', 'a\\25', 'a\\256', 'a\\2x5', '\ud800x']) {
      assert.throws(() => parseName(bad), DnsEncodeError, bad);
    }
  });

  test('namesEqual ignores ASCII case only', () => {
    assert.ok(namesEqual('Example.COM', 'example.com'));
    assert.ok(!namesEqual('example.com', 'example.co'));
    assert.ok(!namesEqual('a\\255', 'a\\254'));
  });
});

describe('encodeQuery', () => {
  test('a query dns-packet reads back: ID, RD, one question, OPT 1232 with DO=0', () => {
    const q = encodeQuery({ id: 0xbeef, name: 'example.com', type: 'TXT', edns: {} });
    const p = dnsPacket.decode(q);
    assert.equal(p.id, 0xbeef);
    assert.equal(p.type, 'query');
    assert.equal(p.flag_rd, true);
    assert.equal(p.flag_cd, false);
    assert.deepEqual(p.questions, [{ name: 'example.com', type: 'TXT', class: 'IN' }]);
    assert.equal(p.additionals?.length, 1);
    const opt = p.additionals![0] as dnsPacket.OptAnswer;
    assert.equal(opt.type, 'OPT');
    assert.equal(opt.udpPayloadSize, 1232);
    assert.equal(opt.flag_do, false);
    assert.equal(opt.ednsVersion, 0);
  });

  test('without EDNS, with RD off, CD and DO on', () => {
    const plain = dnsPacket.decode(
      encodeQuery({ id: 1, name: 'a.b.', type: 'AAAA', recursionDesired: false }),
    );
    assert.equal(plain.additionals?.length, 0);
    assert.equal(plain.flag_rd, false);
    const dnssec = dnsPacket.decode(
      encodeQuery({
        id: 2,
        name: 'a.b',
        type: 'A',
        checkingDisabled: true,
        edns: { udpPayloadSize: 4096, dnssecOk: true },
      }),
    );
    assert.equal(dnssec.flag_cd, true);
    const opt = dnssec.additionals![0] as dnsPacket.OptAnswer;
    assert.equal(opt.udpPayloadSize, 4096);
    assert.equal(opt.flag_do, true);
  });

  test('our decoder reads our query back', () => {
    const m = decodeMessage(encodeQuery({ id: 7, name: 'X.example', type: 'MX', edns: {} }));
    assert.equal(m.id, 7);
    assert.equal(m.qr, false);
    assert.equal(m.rd, true);
    assert.deepEqual(m.questions, [{ name: 'X.example', type: TYPE.MX, class: CLASS_IN }]);
    assert.equal(m.edns?.udpPayloadSize, 1232);
    assert.equal(m.edns?.dnssecOk, false);
    assert.deepEqual(m.additionals, []);
  });

  test('an invalid name throws DnsEncodeError', () => {
    assert.throws(() => encodeQuery({ id: 1, name: 'a..b', type: 'A' }), DnsEncodeError);
  });
});

describe('decodeMessage of dns-packet responses', () => {
  const response = (answers: dnsPacket.Answer[], extra: Partial<dnsPacket.Packet> = {}): Buffer =>
    dnsPacket.encode({
      type: 'response',
      id: 4242,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: [{ name: 'example.org', type: 'A' }],
      answers,
      ...extra,
    });

  test('header flags and every supported RDATA type', () => {
    const m = decodeMessage(
      response([
        { name: 'example.org', type: 'A', ttl: 60, data: '192.0.2.1' },
        { name: 'example.org', type: 'AAAA', ttl: 61, data: '2001:db8:0:0:0:0:0:1' },
        { name: 'example.org', type: 'TXT', ttl: 62, data: [Buffer.from('v=spf1 '), Buffer.from('-all')] },
        { name: 'example.org', type: 'MX', ttl: 63, data: { preference: 10, exchange: 'mx.example.org' } },
        { name: '1.2.0.192.in-addr.arpa', type: 'PTR', ttl: 64, data: 'host.example.org' },
        {
          name: '_sip._tcp.example.org',
          type: 'SRV',
          ttl: 65,
          data: { priority: 1, weight: 2, port: 5060, target: 'sip.example.org' },
        },
        { name: 'www.example.org', type: 'CNAME', ttl: 66, data: 'example.org' },
        { name: 'example.org', type: 'NS', ttl: 67, data: 'ns1.example.org' },
        {
          name: 'example.org',
          type: 'SOA',
          ttl: 68,
          data: {
            mname: 'ns1.example.org',
            rname: 'hostmaster.example.org',
            serial: 2024010101,
            refresh: 7200,
            retry: 900,
            expire: 1209600,
            minimum: 300,
          },
        },
      ]),
    );
    assert.equal(m.id, 4242);
    assert.deepEqual(
      [m.qr, m.aa, m.tc, m.rd, m.ra, m.ad, m.cd],
      [true, true, false, true, true, false, false],
    );
    assert.equal(m.rcode, RCODE.NOERROR);
    assert.equal(m.opcode, 0);
    assert.deepEqual(
      m.answers.map((r) => [r.name, typeName(r.type), r.ttl, r.data]),
      [
        ['example.org', 'A', 60, '192.0.2.1'],
        ['example.org', 'AAAA', 61, '2001:db8::1'],
        ['example.org', 'TXT', 62, ['v=spf1 ', '-all']],
        ['example.org', 'MX', 63, { preference: 10, exchange: 'mx.example.org' }],
        ['1.2.0.192.in-addr.arpa', 'PTR', 64, 'host.example.org'],
        [
          '_sip._tcp.example.org',
          'SRV',
          65,
          { priority: 1, weight: 2, port: 5060, target: 'sip.example.org' },
        ],
        ['www.example.org', 'CNAME', 66, 'example.org'],
        ['example.org', 'NS', 67, 'ns1.example.org'],
        [
          'example.org',
          'SOA',
          68,
          {
            mname: 'ns1.example.org',
            rname: 'hostmaster.example.org',
            serial: 2024010101,
            refresh: 7200,
            retry: 900,
            expire: 1209600,
            minimum: 300,
          },
        ],
      ],
    );
  });

  test('TXT bytes are kept losslessly (latin1), empty strings and empty RDATA too', () => {
    const raw = Buffer.from([0x76, 0x3d, 0xff, 0x00, 0xc3, 0xa9]);
    const m = decodeMessage(
      response([
        { name: 'example.org', type: 'TXT', data: [raw, Buffer.alloc(0), Buffer.from('x'.repeat(255))] },
      ]),
    );
    const strings = m.answers[0]!.data as string[];
    assert.equal(strings.length, 3);
    assert.deepEqual([...Buffer.from(strings[0]!, 'latin1')], [...raw]);
    assert.equal(strings[1], '');
    assert.equal(strings[2]!.length, 255);
    const empty = encodeMessage({ qr: true, answers: [{ name: 'e', type: 'TXT', data: [] }] });
    assert.deepEqual(decodeMessage(empty).answers[0]!.data, []);
  });

  test('the null MX and SRV target "." decode to empty names', () => {
    const m = decodeMessage(
      response([
        { name: 'example.org', type: 'MX', data: { preference: 0, exchange: '.' } },
        { name: '_x._tcp.example.org', type: 'SRV', data: { priority: 0, weight: 0, port: 0, target: '.' } },
      ]),
    );
    assert.deepEqual(m.answers[0]!.data, { preference: 0, exchange: '' });
    assert.equal((m.answers[1]!.data as { target: string }).target, '');
  });

  test('unknown types are kept as raw bytes', () => {
    const m = decodeMessage(
      response([{ name: 'example.org', type: 'CAA', data: { flags: 0, tag: 'issue', value: 'ca.example' } }]),
    );
    assert.equal(m.answers[0]!.type, 257);
    assert.equal(typeName(257), 'TYPE257');
    assert.ok(m.answers[0]!.data instanceof Uint8Array);
    assert.equal((m.answers[0]!.data as Uint8Array)[1], 5); // tag length of "issue"
  });

  test('rcode, TC, AD, CD and the extended rcode from OPT', () => {
    const nx = decodeMessage(
      dnsPacket.encode({ type: 'response', id: 1, flags: 3 | dnsPacket.TRUNCATED_RESPONSE, questions: [] }),
    );
    assert.equal(nx.rcode, RCODE.NXDOMAIN);
    assert.equal(nx.tc, true);
    assert.equal(nx.edns, null);
    const ad = decodeMessage(
      dnsPacket.encode({
        type: 'response',
        id: 1,
        flags: dnsPacket.AUTHENTIC_DATA | dnsPacket.CHECKING_DISABLED,
      }),
    );
    assert.equal(ad.ad, true);
    assert.equal(ad.cd, true);
    const badvers = decodeMessage(
      dnsPacket.encode({
        type: 'response',
        id: 1,
        additionals: [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: 4096,
            extendedRcode: 1,
            ednsVersion: 0,
            flags: dnsPacket.DNSSEC_OK,
          } as dnsPacket.OptAnswer,
        ],
      }),
    );
    assert.equal(badvers.rcode, RCODE.BADVERS);
    assert.equal(badvers.edns?.udpPayloadSize, 4096);
    assert.equal(badvers.edns?.dnssecOk, true);
    assert.deepEqual(badvers.additionals, []);
  });

  test('EDNS options are decoded', () => {
    const m = decodeMessage(
      dnsPacket.encode({
        type: 'response',
        id: 1,
        additionals: [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: 1232,
            options: [{ code: 10, data: Buffer.from('0123456789abcdef') }],
          } as unknown as dnsPacket.OptAnswer,
        ],
      }),
    );
    assert.ok(m.edns);
    assert.equal(m.edns.options.length, 1);
    assert.equal(m.edns.options[0]!.code, 10);
    assert.equal(Buffer.from(m.edns.options[0]!.data).toString(), '0123456789abcdef');
  });

  test('a TTL with the top bit set reads as 0 (RFC 2181 §8)', () => {
    const m = decodeMessage(
      response([{ name: 'example.org', type: 'A', ttl: 0x80000001, data: '192.0.2.1' }]),
    );
    assert.equal(m.answers[0]!.ttl, 0);
  });
});

describe('encodeMessage round trips', () => {
  const sample = {
    id: 99,
    qr: true,
    aa: true,
    rd: true,
    ra: true,
    ad: true,
    rcode: RCODE.NOERROR,
    questions: [{ name: 'Example.org', type: 'MX' as const }],
    answers: [
      {
        name: 'example.org',
        type: 'MX' as const,
        ttl: 300,
        data: { preference: 5, exchange: 'mx1.example.org' },
      },
      {
        name: 'example.org',
        type: 'MX' as const,
        ttl: 300,
        data: { preference: 10, exchange: 'MX2.Example.org' },
      },
      { name: 'example.org', type: 'TXT' as const, ttl: 1, data: ['a', 'b\u00ff'] },
      { name: 'example.org', type: 'AAAA' as const, ttl: 2, data: '::ffff:192.0.2.1' },
    ],
    authorities: [
      {
        name: 'example.org',
        type: 'SOA' as const,
        ttl: 3600,
        data: {
          mname: 'ns.example.org',
          rname: 'host\\.master.example.org',
          serial: 1,
          refresh: 2,
          retry: 3,
          expire: 4,
          minimum: 5,
        },
      },
    ],
    additionals: [
      { name: 'mx1.example.org', type: 'A' as const, ttl: 300, data: '198.51.100.7' },
      { name: 'odd.example.org', type: 99, ttl: 300, data: Uint8Array.of(1, 2, 3) },
    ],
    edns: { udpPayloadSize: 1232 },
  };

  for (const compress of [true, false]) {
    test(`our encoder → our decoder (compress=${compress})`, () => {
      const m = decodeMessage(encodeMessage(sample, { compress }));
      assert.equal(m.id, 99);
      assert.deepEqual([m.qr, m.aa, m.rd, m.ra, m.ad], [true, true, true, true, true]);
      assert.deepEqual(m.questions, [{ name: 'Example.org', type: TYPE.MX, class: CLASS_IN }]);
      assert.deepEqual(
        m.answers.map((r) => r.data),
        [
          { preference: 5, exchange: 'mx1.example.org' }, // compression keeps the case written
          { preference: 10, exchange: 'MX2.Example.org' },
          ['a', 'b\u00ff'],
          '::ffff:c000:201',
        ],
      );
      assert.equal((m.authorities[0]!.data as { rname: string }).rname, 'host\\.master.example.org');
      assert.deepEqual(m.additionals[1]!.data, Uint8Array.of(1, 2, 3));
      assert.equal(m.additionals.length, 2);
      assert.equal(m.edns?.udpPayloadSize, 1232);
    });
  }

  test('compression makes it smaller, and dns-packet agrees with our compressed output', () => {
    const packed = encodeMessage(sample);
    const flat = encodeMessage(sample, { compress: false });
    assert.ok(packed.length < flat.length - 40, `${packed.length} vs ${flat.length}`);
    const p = dnsPacket.decode(Buffer.from(packed));
    assert.equal(p.answers?.length, 4);
    assert.deepEqual((p.answers![1] as dnsPacket.MxAnswer).data, {
      preference: 10,
      exchange: 'MX2.Example.org',
    });
    assert.equal((p.additionals![0] as dnsPacket.StringAnswer).data, '198.51.100.7');
  });

  test('extended rcodes need EDNS', () => {
    assert.throws(() => encodeMessage({ rcode: RCODE.BADVERS }), DnsEncodeError);
    assert.equal(decodeMessage(encodeMessage({ rcode: RCODE.BADVERS, edns: {} })).rcode, RCODE.BADVERS);
  });

  test('TXT strings over 255 octets or above U+00FF are refused', () => {
    assert.throws(
      () => encodeMessage({ answers: [{ name: 'a', type: 'TXT', data: ['x'.repeat(256)] }] }),
      DnsEncodeError,
    );
    assert.throws(
      () => encodeMessage({ answers: [{ name: 'a', type: 'TXT', data: ['€'] }] }),
      DnsEncodeError,
    );
  });
});

describe('malformed input: DnsDecodeError, nothing else', () => {
  const q = [7, ...'example'.split('').map((c) => c.charCodeAt(0)), 3, 99, 111, 109, 0, 0, 1, 0, 1];

  test('short and truncated headers', () => {
    rejects(new Uint8Array(0), /shorter than a header/);
    rejects(new Uint8Array(11), /shorter than a header/);
    rejects(bytes(header(1, 0x8000, 1, 0, 0, 0)), /exceed the message size/);
    rejects(bytes(header(1, 0x8000, 1, 0, 0, 0), q.slice(0, 10)));
    rejects(bytes(header(1, 0x8000, 1, 0, 0, 0), q.slice(0, q.length - 1)), /question runs past/);
  });

  test('huge section counts are refused up front', () => {
    rejects(
      bytes([0, 1, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      /exceed the message size/,
    );
    rejects(bytes(header(1, 0x8000, 1, 200, 0, 0), q), /exceed the message size/);
  });

  test('compression pointer to itself, forward, and out of range', () => {
    rejects(bytes(header(1, 0x8000, 1, 0, 0, 0), [0xc0, 12], [0, 1, 0, 1]), /does not point backwards/);
    rejects(
      bytes(header(1, 0x8000, 1, 0, 0, 0), [0xc0, 14], [0xc0, 12], [0, 1, 0, 1]),
      /does not point backwards/,
    );
    rejects(bytes(header(1, 0x8000, 1, 0, 0, 0), [0xff, 0xff], [0, 1, 0, 1]), /does not point backwards/);
    // a pointer whose second octet is missing (a CNAME with RDLENGTH 1)
    rejects(
      bytes(header(1, 0x8000, 0, 1, 0, 0), [0, 0, 5, 0, 1, 0, 0, 0, 0, 0, 1, 0xc0]),
      /compression pointer runs past/,
    );
  });

  test('a two-step loop through earlier data cannot loop', () => {
    // question name "a" + pointer back to itself through a second name
    const msg = bytes(
      header(1, 0x8000, 2, 0, 0, 0),
      [1, 97, 0xc0, 18],
      [0, 1, 0, 1],
      [0xc0, 12],
      [0, 1, 0, 1],
    );
    rejects(msg, /does not point backwards/);
  });

  test('too many compression pointers', () => {
    // an unknown-type record whose RDATA is a chain of 200 pointers, each to the one before
    const base = 12 + 5 + 11; // header, root question, RR header with root owner
    const chain: number[] = [0xc0, 12];
    for (let i = 1; i < 200; i++) {
      const target = base + 2 * (i - 1);
      chain.push(0xc0 | (target >> 8), target & 0xff);
    }
    const last = base + 2 * 199;
    const msg = bytes(
      header(1, 0x8000, 1, 2, 0, 0),
      [0, 0, 1, 0, 1],
      [0, 0xff, 0x00, 0, 1, 0, 0, 0, 0, (chain.length >> 8) & 0xff, chain.length & 0xff],
      chain,
      [0xc0 | (last >> 8), last & 0xff, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 192, 0, 2, 1],
    );
    rejects(msg, /too many compression pointers/);
  });

  test('a name made longer than 255 octets through pointers', () => {
    const label = [63, ...new Array(63).fill(97)];
    // name 1 at 12: one 63-octet label + root; each next name: a label + pointer to the previous
    const parts: number[] = [...label, 0, 0, 1, 0, 1];
    let prev = 12;
    for (let i = 0; i < 4; i++) {
      const at = 12 + parts.length;
      parts.push(...label, 0xc0 | (prev >> 8), prev & 0xff, 0, 1, 0, 1);
      prev = at;
    }
    rejects(bytes(header(1, 0x8000, 5, 0, 0, 0), parts), /longer than 255/);
  });

  test('labels running past the end, reserved label types', () => {
    rejects(bytes(header(1, 0x8000, 1, 0, 0, 0), [5, 97, 98], [0, 1, 0, 1]), /label runs past/);
    rejects(bytes(header(1, 0x8000, 1, 0, 0, 0), [0x40, 1, 0], [0, 1, 0, 1]), /unsupported label type/);
    rejects(bytes(header(1, 0x8000, 1, 0, 0, 0), [0x80, 1, 0], [0, 1, 0, 1]), /unsupported label type/);
  });

  const rr = (type: number, rdata: number[], rdlength = rdata.length): number[] => [
    0,
    type >> 8,
    type & 0xff,
    0,
    1,
    0,
    0,
    0,
    60,
    rdlength >> 8,
    rdlength & 0xff,
    ...rdata,
  ];
  const answer = (record: number[], ar = 0): Uint8Array => bytes(header(1, 0x8000, 0, 1, 0, ar), record);

  test('bad RDLENGTH for fixed-size and name-bearing types', () => {
    rejects(answer(rr(TYPE.A, [1, 2, 3, 4, 5])), /A record with RDLENGTH 5/);
    rejects(answer(rr(TYPE.AAAA, [1, 2, 3, 4])), /AAAA record with RDLENGTH 4/);
    rejects(answer(rr(TYPE.A, [1, 2, 3, 4], 40)), /RDATA runs past/);
    rejects(answer(rr(TYPE.MX, [0, 10, 0, 99])), /RDATA is 3 octets, RDLENGTH says 4/);
    rejects(answer(rr(TYPE.MX, [0, 10])), /MX record with RDLENGTH 2/);
    rejects(answer(rr(TYPE.CNAME, [3, 97, 98, 99, 0], 3)), /runs past the end of its data/);
    rejects(answer(rr(TYPE.SRV, [0, 1, 0, 2, 0, 3])), /SRV record/);
    rejects(answer(rr(TYPE.SOA, [0, 0, 0, 0, 0, 1])), /SOA record too short/);
    rejects(answer(rr(TYPE.TXT, [5, 97, 98])), /TXT character-string runs past/);
  });

  test('OPT in the wrong place, twice, with an owner, or with broken options', () => {
    rejects(answer(rr(TYPE.OPT, [])), /OPT record in the answer section/);
    const opt = rr(TYPE.OPT, []);
    rejects(bytes(header(1, 0x8000, 0, 0, 0, 2), opt, opt), /more than one OPT/);
    rejects(bytes(header(1, 0x8000, 0, 0, 0, 1), [1, 97], opt), /owner is not the root/);
    rejects(bytes(header(1, 0x8000, 0, 0, 0, 1), rr(TYPE.OPT, [0, 10, 0, 9, 1])), /EDNS option runs past/);
    rejects(bytes(header(1, 0x8000, 0, 0, 0, 1), rr(TYPE.OPT, [0, 10, 0])), /EDNS option header/);
  });

  test('trailing octets after the last record are ignored', () => {
    const m = decodeMessage(bytes([...answer(rr(TYPE.A, [192, 0, 2, 1]))], [0, 0, 0]));
    assert.equal(m.answers[0]!.data, '192.0.2.1');
  });

  test('every truncation of a valid response is refused cleanly', () => {
    const full = encodeMessage({
      qr: true,
      questions: [{ name: 'example.org', type: 'TXT' }],
      answers: [
        { name: 'example.org', type: 'TXT', ttl: 5, data: ['v=spf1 -all'] },
        { name: 'example.org', type: 'MX', ttl: 5, data: { preference: 1, exchange: 'mx.example.org' } },
      ],
      authorities: [
        {
          name: 'example.org',
          type: 'SOA',
          ttl: 5,
          data: {
            mname: 'a.example.org',
            rname: 'b.example.org',
            serial: 1,
            refresh: 1,
            retry: 1,
            expire: 1,
            minimum: 1,
          },
        },
      ],
      edns: {},
    });
    assert.equal(decodeMessage(full).answers.length, 2);
    for (let n = 0; n < full.length; n++) rejects(full.subarray(0, n));
  });
});
