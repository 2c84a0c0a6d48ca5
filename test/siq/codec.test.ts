import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSiqServer, parseSiqServer } from '../../src/siq/address.ts';
import {
  decodeQuery,
  decodeReply,
  detectLayout,
  encodeQuery,
  encodeReply,
  fromHex,
  ipFromField,
  parseRedirectTarget,
  type ReplyInput,
  SiqDecodeError,
  SiqEncodeError,
  type SiqRevision,
} from '../../src/siq/codec.ts';

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);
const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

function decodeError(packet: Uint8Array): SiqDecodeError {
  try {
    decodeReply(packet);
  } catch (err) {
    assert.ok(err instanceof SiqDecodeError, `expected SiqDecodeError, got ${String(err)}`);
    return err;
  }
  assert.fail('decoded a malformed reply');
}

// --- queries ----------------------------------------------------------------------------------

test('query: IPv4 goes as IPv4-compatible IPv6, domain only, -02 layout byte for byte', () => {
  const q = encodeQuery({ id: 0xbeef, type: 'mail', ip: '192.0.2.1', domain: 'example.com' });
  assert.deepEqual(
    q,
    bytes(1, 0, 0xbe, 0xef, ...new Array(12).fill(0), 192, 0, 2, 1, 11, 0, ...ascii('example.com')),
  );
});

test('query: IPv4-mapped input is sent IPv4-compatible; IPv6 unchanged; QT and the HL/ML bits', () => {
  const mapped = encodeQuery({ id: 1, type: 'mail', ip: '::ffff:198.51.100.7', domain: '' });
  assert.deepEqual(mapped.subarray(4, 20), bytes(...new Array(12).fill(0), 198, 51, 100, 7));
  assert.equal(mapped.length, 22);
  const v6 = encodeQuery({ id: 2, type: 'data', ip: '2001:db8::1', domain: 'a.example', hl: true, ml: true });
  assert.deepEqual(v6.subarray(4, 20), bytes(0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1));
  assert.equal(v6[1], 0x80 | 0x40 | 0x01);
  assert.equal(encodeQuery({ id: 2, type: 'data', ip: '::1', domain: '' })[1], 0x01);
});

test('query: refuses a local part, non-ASCII, over 255 octets, bad IDs and bad IPs', () => {
  const base = { id: 1, type: 'mail' as const, ip: '192.0.2.1' };
  assert.throws(() => encodeQuery({ ...base, domain: 'user@example.com' }), SiqEncodeError);
  assert.throws(() => encodeQuery({ ...base, domain: 'bücher.example' }), SiqEncodeError);
  assert.throws(() => encodeQuery({ ...base, domain: 'a b.example' }), SiqEncodeError);
  assert.throws(() => encodeQuery({ ...base, domain: 'a'.repeat(256) }), SiqEncodeError);
  assert.equal(encodeQuery({ ...base, domain: 'a'.repeat(255) }).length, 22 + 255);
  assert.throws(() => encodeQuery({ ...base, id: 65536, domain: '' }), SiqEncodeError);
  assert.throws(() => encodeQuery({ ...base, id: -1, domain: '' }), SiqEncodeError);
  assert.throws(() => encodeQuery({ ...base, ip: '192.0.2.256', domain: '' }), SiqEncodeError);
});

test('query: decodes what we encode, and -00 (RD) and -02 (EXTRA-ID) queries', () => {
  const q = decodeQuery(encodeQuery({ id: 513, type: 'data', ip: '192.0.2.1', domain: 'example.org', ml: true }));
  assert.deepEqual(q, {
    version: 1,
    id: 513,
    type: 'data',
    flags: 0x41,
    hl: false,
    ml: true,
    ip: '192.0.2.1',
    domain: 'example.org',
    extraId: null,
    extra: '',
  });
  // -00: RD-LENGTH 3, RD "a.b"
  const q00 = decodeQuery(bytes(1, 0, 0, 9, ...new Array(15).fill(0), 1, 1, 3, ...ascii('x'), ...ascii('a.b')));
  assert.equal(q00.ip, '::1');
  assert.equal(q00.domain, 'x');
  assert.equal(q00.extra, '612e62');
  // -02: EXTRA-ID then 2 octets of EXTRA
  const q02 = decodeQuery(bytes(1, 0, 0, 9, ...new Array(16).fill(0), 0, 2, 0xde, 0xad, 0xbe, 0xef, 7, 8));
  assert.equal(q02.ip, '::');
  assert.equal(q02.extraId, 'deadbeef');
  assert.equal(q02.extra, '0708');
  assert.throws(() => decodeQuery(bytes(1, 0, 0, 9, ...new Array(16).fill(0), 0, 2, 7)), SiqDecodeError);
  assert.throws(() => decodeQuery(bytes(1, 0, 0, 9, ...new Array(16).fill(0), 5, 0, 7)), SiqDecodeError);
  assert.throws(() => decodeQuery(bytes(2, ...new Array(21).fill(0))), SiqDecodeError);
  assert.throws(() => decodeQuery(new Uint8Array(21)), SiqDecodeError);
});

test('IP field: IPv4-compatible and mapped read as IPv4; ::, ::1 and real IPv6 stay IPv6', () => {
  const f = (...tail: number[]): Uint8Array => bytes(...new Array(16 - tail.length).fill(0), ...tail);
  assert.equal(ipFromField(f(192, 0, 2, 1)), '192.0.2.1');
  assert.equal(ipFromField(f(0xff, 0xff, 10, 0, 0, 1)), '10.0.0.1');
  assert.equal(ipFromField(f(0, 0, 0, 2)), '0.0.0.2');
  assert.equal(ipFromField(f(1)), '::1');
  assert.equal(ipFromField(f()), '::');
  assert.equal(ipFromField(bytes(0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1)), '2001:db8::1');
  assert.equal(ipFromField(f(1, 0, 0, 0, 0, 192, 0, 2, 1)), '::1:0:0:c000:201');
});

// --- replies: hand-made bytes in each layout ------------------------------------------------------

test('reply -00: 8-octet header, TEXT at +8, no TTL or confidence', () => {
  const r = decodeReply(bytes(1, 73, 0x12, 0x34, 80, 0xff, 20, 3, ...ascii('a=1')));
  assert.equal(r.revision, '00');
  assert.equal(r.id, 0x1234);
  assert.equal(r.score, 73);
  assert.equal(r.kind, 'score');
  assert.deepEqual([r.ipScore, r.domainScore, r.relScore], [80, -1, 20]);
  assert.equal(r.ttl, null);
  assert.equal(r.confidence, -1);
  assert.equal(r.text, 'a=1');
  assert.deepEqual(r.anomalies, []);
  // the legacy Outbound Index reply: no text at all
  assert.equal(decodeReply(bytes(1, 5, 0, 1, 0xff, 0xff, 0xff, 0)).revision, '00');
});

test('reply -01: int32 TTL at +8, CONFIDENCE +12, EXTRA-LENGTH +13, TEXT +14, EXTRA', () => {
  const r = decodeReply(bytes(1, 42, 0, 7, 1, 2, 3, 2, 0x00, 0x01, 0x51, 0x80, 90, 2, ...ascii('hi'), 0xaa, 0xbb));
  assert.equal(r.revision, '01');
  assert.equal(r.ttl, 86400);
  assert.equal(r.confidence, 90);
  assert.equal(r.text, 'hi');
  assert.equal(r.extra, 'aabb');
  assert.equal(r.extraId, null);
  // negative TTL (int32) reads as 0, noted
  const neg = decodeReply(bytes(1, 42, 0, 7, 1, 2, 3, 2, 0xff, 0xff, 0xff, 0xfe, 90, 0, ...ascii('hi')));
  assert.equal(neg.revision, '01');
  assert.equal(neg.ttl, 0);
  assert.match(neg.anomalies.join(), /negative TTL -2/);
});

test('reply -02: uint16 TTL, CONFIDENCE +10, EXTRA-LENGTH +11, TEXT +12, EXTRA-ID, EXTRA', () => {
  const r = decodeReply(bytes(1, 100, 0xff, 0xff, 100, 0, 50, 1, 0xff, 0xff, 0, 1, ...ascii('x'), 1, 2, 3, 4, 9));
  assert.equal(r.revision, '02');
  assert.equal(r.id, 0xffff);
  assert.equal(r.ttl, 65535, 'TTL is unsigned');
  assert.equal(r.confidence, 0);
  assert.equal(r.extraId, '01020304');
  assert.equal(r.extra, '09');
  // EXTRA without EXTRA-ID
  const plain = decodeReply(bytes(1, 0, 0, 1, 0, 0, 0, 0, 0, 30, 0xff, 2, 5, 6));
  assert.equal(plain.revision, '02');
  assert.equal(plain.score, 0);
  assert.equal(plain.ttl, 30);
  assert.equal(plain.confidence, -1);
  assert.equal(plain.extraId, null);
  assert.equal(plain.extra, '0506');
  // the case libsnert misreads as -01 (TEXT empty, TTL < 256)
  const empty = decodeReply(bytes(1, 60, 0, 1, 0xff, 0xff, 0xff, 0, 0, 200, 70, 0));
  assert.equal(empty.revision, '02');
  assert.equal(empty.ttl, 200);
  assert.equal(empty.confidence, 70);
});

test('a -01 reply whose TTL low octet makes the -02 rule fit too is read as -01', () => {
  for (const ttl of [2, 258, 0x10002]) {
    const packet = encodeReply({ id: 1, score: 80, ttl, confidence: 90, text: 'ok' }, '01');
    assert.equal(packet[11], 2);
    assert.equal(detectLayout(packet), '01', `TTL ${ttl}`);
    const r = decodeReply(packet);
    assert.deepEqual([r.ttl, r.confidence, r.text, r.extra], [ttl, 90, 'ok', '']);
  }
  // EXTRA of 3 with TTL low octet 5 (= 3 + 2) or 1 (= 3 - 2)
  for (const ttl of [5, 1]) {
    const r = decodeReply(encodeReply({ id: 1, score: 80, ttl, confidence: -1, text: 't', extra: Uint8Array.of(7, 7, 7) }, '01'));
    assert.deepEqual([r.revision, r.ttl, r.extra], ['01', ttl, '070707']);
  }
  // when the -01 reading is not sound (CONFIDENCE 120), the -02 one stands
  const p = bytes(1, 80, 0, 1, 0xff, 0xff, 0xff, 0, 0, 0, 0, 2, 120, 0);
  assert.equal(detectLayout(p), '02');
});

test('signedness: SCORE, sub-scores and CONFIDENCE are int8; reserved values are errors or -1', () => {
  const reply = (score: number, sub = 0xff, conf = 0xff): ReturnType<typeof decodeReply> =>
    decodeReply(bytes(1, score, 0, 1, sub, sub, sub, 0, 0, 0, conf, 0));
  assert.equal(reply(0xff).score, -1);
  assert.equal(reply(0xff).kind, 'unknown');
  assert.equal(reply(0xfe).kind, 'tempfail');
  assert.equal(reply(0xfd).kind, 'redirect');
  assert.equal(reply(0xfc).kind, 'error');
  assert.equal(reply(0xfc).score, -4);
  assert.deepEqual(reply(0xfc).anomalies, []);
  assert.equal(reply(0xfb).score, -5);
  assert.equal(reply(0xfb).kind, 'error');
  assert.match(reply(0xfb).anomalies.join(), /reserved score -5/);
  assert.equal(reply(0x80).score, -128);
  assert.equal(reply(0x80).kind, 'error');
  assert.equal(reply(100).kind, 'score');
  assert.equal(reply(101).kind, 'error');
  assert.equal(reply(127).score, 127);
  assert.equal(reply(127).kind, 'error');
  assert.equal(reply(50, 100).ipScore, 100);
  assert.equal(reply(50, 0).ipScore, 0);
  const odd = reply(50, 0x9c, 0x80); // -100 and -128
  assert.deepEqual([odd.ipScore, odd.domainScore, odd.relScore, odd.confidence], [-1, -1, -1, -1]);
  assert.equal(odd.anomalies.length, 4);
  assert.equal(reply(50, 101).ipScore, -1);
  // -4 in an older layout is still an error, and noted
  const old = decodeReply(bytes(1, 0xfc, 0, 1, 0, 0, 0, 0));
  assert.equal(old.kind, 'error');
  assert.match(old.anomalies.join(), /-4 in a -00 layout/);
});

// --- round trips --------------------------------------------------------------------------------

const SAMPLES: ReplyInput[] = [
  { id: 0, score: 0, ipScore: 0, domainScore: 0, relScore: 0, ttl: 0, confidence: 0, text: '' },
  { id: 65535, score: 100, ipScore: 100, domainScore: 100, relScore: 100, ttl: 65535, confidence: 100, text: 'x'.repeat(255) },
  { id: 4242, score: -1, ipScore: -1, domainScore: 37, relScore: -1, ttl: 300, confidence: -1, text: 'stability=1.' },
  { id: 7, score: -2, text: 'busy' },
  { id: 8, score: -4, text: 'lookup failed' },
  { id: 9, score: 55, ttl: 1, confidence: 1, text: 'with extra', extra: Uint8Array.of(1, 2, 3) },
];

for (const revision of ['00', '01', '02'] as SiqRevision[]) {
  test(`round trip in the -${revision} layout`, () => {
    for (const input of SAMPLES) {
      const packet = encodeReply(input, revision);
      assert.equal(detectLayout(packet), revision, `layout of ${JSON.stringify(input)}`);
      const r = decodeReply(packet);
      assert.equal(r.revision, revision);
      assert.equal(r.id, input.id);
      assert.equal(r.score, input.score);
      assert.equal(r.ipScore, input.ipScore ?? -1);
      assert.equal(r.domainScore, input.domainScore ?? -1);
      assert.equal(r.relScore, input.relScore ?? -1);
      assert.equal(r.text, input.text ?? '');
      if (revision === '00') {
        assert.equal(r.ttl, null);
        assert.equal(r.confidence, -1);
        assert.equal(r.extra, '');
      } else {
        assert.equal(r.ttl, input.ttl ?? 0);
        assert.equal(r.confidence, input.confidence ?? -1);
        assert.deepEqual(fromHex(r.extra), input.extra ?? new Uint8Array(0));
      }
      assert.deepEqual(r.anomalies, revision !== '02' && input.score === -4 ? [`score -4 in a -${revision} layout`] : []);
    }
  });
}

test('round trip: -02 with EXTRA-ID, and -01 with the largest int32 TTL', () => {
  const r = decodeReply(encodeReply({ id: 1, score: 9, extraId: Uint8Array.of(0, 0, 0, 1), extra: Uint8Array.of(0xff) }, '02'));
  assert.equal(r.extraId, '00000001');
  assert.equal(r.extra, 'ff');
  assert.equal(decodeReply(encodeReply({ id: 1, score: 9, ttl: 0x7fffffff }, '01')).ttl, 0x7fffffff);
  assert.throws(() => encodeReply({ id: 1, score: 9, ttl: 65536 }, '02'), SiqEncodeError);
  assert.throws(() => encodeReply({ id: 1, score: 128 }), SiqEncodeError);
  assert.throws(() => encodeReply({ id: 1, score: 1, text: 'x'.repeat(256) }), SiqEncodeError);
  assert.throws(() => encodeReply({ id: 1, score: 1, text: 'x'.repeat(250), extra: new Uint8Array(255) }), SiqEncodeError);
});

// --- malformed ----------------------------------------------------------------------------------

test('malformed: every length under 8 octets, a bad version, TEXT past the end, over 512', () => {
  for (let n = 0; n < 8; n++) assert.equal(decodeError(new Uint8Array(n).fill(1)).reason, 'short', `length ${n}`);
  assert.equal(decodeError(bytes(0, 50, 0, 1, 0, 0, 0, 0)).reason, 'version');
  assert.equal(decodeError(bytes(2, 50, 0, 1, 0, 0, 0, 0)).reason, 'version');
  assert.equal(decodeError(bytes(1, 50, 0, 1, 0, 0, 0, 1)).reason, 'truncated');
  for (let t = 1; t <= 255; t++) {
    // TEXT-LENGTH one more than the octets after the -00 header
    const p = new Uint8Array(8 + t - 1).fill(0x41);
    p.set([1, 50, 0, 1, 0, 0, 0, t]);
    assert.equal(decodeError(p).reason, 'truncated', `T=${t}`);
  }
  const big = new Uint8Array(513);
  big.set([1, 50, 0, 1, 0, 0, 0, 0]);
  assert.equal(decodeError(big).reason, 'long');
});

test('odd lengths that still fit a layout are read, the extra octets noted', () => {
  // -00 header + TEXT + 1..3 stray octets: -00, stray octets ignored
  for (let extra = 1; extra <= 3; extra++) {
    const r = decodeReply(bytes(1, 50, 0, 1, 0, 0, 0, 1, 0x41, ...new Array(extra).fill(0)));
    assert.equal(r.revision, '00', `+${extra}`);
    assert.equal(r.text, 'A');
    assert.match(r.anomalies.join(), /after TEXT ignored/);
  }
  // -02 whose EXTRA-LENGTH promises more than is there
  const short = decodeReply(bytes(1, 50, 0, 1, 0, 0, 0, 0, 0, 60, 50, 9, 1, 2));
  assert.equal(short.revision, '02');
  assert.equal(short.extra, '');
  assert.match(short.anomalies.join(), /EXTRA-LENGTH 9 but 2 octets/);
  // -02 with octets after EXTRA-ID + EXTRA
  const long = decodeReply(bytes(1, 50, 0, 1, 0, 0, 0, 0, 0, 60, 50, 1, 1, 2, 3, 4, 5, 6, 7));
  assert.equal(long.extraId, '01020304');
  assert.equal(long.extra, '05');
  assert.match(long.anomalies.join(), /2 octets after EXTRA ignored/);
});

test('decodeReply throws nothing but SiqDecodeError on every short prefix of valid replies', () => {
  for (const revision of ['00', '01', '02'] as SiqRevision[]) {
    const full = encodeReply({ id: 3, score: 77, ttl: 9, text: 'some text here', extra: Uint8Array.of(1, 2) }, revision);
    for (let n = 0; n <= full.length; n++) {
      try {
        const r = decodeReply(full.subarray(0, n));
        assert.equal(r.id, 3);
      } catch (err) {
        assert.ok(err instanceof SiqDecodeError, String(err));
      }
    }
  }
});

// --- REDIRECT -----------------------------------------------------------------------------------

test('REDIRECT target: -03 "ADDRESS PORT", IPv4-compatible back to IPv4, names, looser forms', () => {
  assert.deepEqual(parseRedirectTarget('::c000:201 6262'), { host: '192.0.2.1', port: 6262 });
  assert.deepEqual(parseRedirectTarget('::192.0.2.9 7000'), { host: '192.0.2.9', port: 7000 });
  assert.deepEqual(parseRedirectTarget('2001:DB8::1 6264'), { host: '2001:db8::1', port: 6264 });
  assert.deepEqual(parseRedirectTarget('SIQ.Example.NET. 6264'), { host: 'siq.example.net', port: 6264 });
  assert.deepEqual(parseRedirectTarget('192.0.2.9'), { host: '192.0.2.9', port: 6262 });
  assert.deepEqual(parseRedirectTarget('192.0.2.9:6300'), { host: '192.0.2.9', port: 6300 });
  assert.deepEqual(parseRedirectTarget('[2001:db8::2]:6300'), { host: '2001:db8::2', port: 6300 });
  assert.deepEqual(parseRedirectTarget('2001:db8::2'), { host: '2001:db8::2', port: 6262 });
  for (const bad of ['', '  ', 'a b c', 'siq.example 70000', 'siq.example 0', 'siq.example x', '999.1.1.1', 'bad_host!', '[::1', '::1 6262 1']) {
    assert.equal(parseRedirectTarget(bad), null, bad);
  }
  const r = decodeReply(encodeReply({ id: 5, score: -3, text: '::7f00:1 6299' }));
  assert.equal(r.kind, 'redirect');
  assert.deepEqual(r.redirect, { host: '127.0.0.1', port: 6299 });
  assert.equal(decodeReply(encodeReply({ id: 5, score: -3, text: 'no target' })).redirect, null);
  assert.equal(decodeReply(encodeReply({ id: 5, score: 50, text: '127.0.0.1 6299' })).redirect, null);
});

// --- server specs -------------------------------------------------------------------------------

test('server specs: port 6262 by default, host:port, [v6]:port, bare IPv6, names', () => {
  assert.deepEqual(parseSiqServer('192.0.2.1'), { host: '192.0.2.1', port: 6262, family: 4 });
  assert.deepEqual(parseSiqServer('192.0.2.1:6264'), { host: '192.0.2.1', port: 6264, family: 4 });
  assert.deepEqual(parseSiqServer('[2001:db8::1]:7000'), { host: '2001:db8::1', port: 7000, family: 6 });
  assert.deepEqual(parseSiqServer('[2001:db8::1]'), { host: '2001:db8::1', port: 6262, family: 6 });
  assert.deepEqual(parseSiqServer('2001:db8::1'), { host: '2001:db8::1', port: 6262, family: 6 });
  assert.deepEqual(parseSiqServer('[::ffff:192.0.2.1]:1'), { host: '192.0.2.1', port: 1, family: 4 });
  assert.deepEqual(parseSiqServer('DB.OutboundIndex.net.:6264'), { host: 'db.outboundindex.net', port: 6264, family: 0 });
  assert.deepEqual(parseSiqServer(' siq.example '), { host: 'siq.example', port: 6262, family: 0 });
  for (const bad of ['', ':6262', 'host:', 'host:0', 'host:65536', 'host:x', '[2001:db8::1', '[2001:db8::1]x', '[host]:1', '1.2.3.4.5', 'a:b:c', 'bad host']) {
    assert.throws(() => parseSiqServer(bad), /SIQ server/, bad);
  }
  assert.equal(formatSiqServer(parseSiqServer('[::1]:6262')), '[::1]:6262');
  assert.equal(formatSiqServer(parseSiqServer('siq.example')), 'siq.example:6262');
});
