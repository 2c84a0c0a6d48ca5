import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { type DnsMessage, decodeMessage, encodeMessage, RCODE } from '../../src/dns/codec.ts';
import { StubResolver, type StubResolverOptions } from '../../src/dns/stub.ts';
import type { DnsResult, RecordType } from '../../src/dns/types.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { FIXTURE_TTL } from '../support/zone.ts';

const zone = {
  'a.test': [
    { A: '192.0.2.1' },
    { A: '192.0.2.2' },
    { AAAA: '2001:db8::1' },
    { MX: [10, 'mx.a.test'] },
    { MX: [20, 'mx2.a.test'] },
    { TXT: ['v=spf1 ', 'ip4:192.0.2.0/24 ', '-all'] },
    { TXT: 'second record' },
    { NS: 'ns1.a.test' },
    { SOA: 'ns1.a.test hostmaster.a.test 2024 7200 900 1209600 300' },
  ],
  '1.2.0.192.in-addr.arpa': [{ PTR: 'a.test' }],
  '_sip._tcp.a.test': [{ SRV: [1, 2, 5060, 'sip.a.test'] }],
  'www.a.test': [{ CNAME: 'alias.a.test' }],
  'alias.a.test': [{ CNAME: 'a.test' }],
  'dangling.a.test': [{ CNAME: 'missing.a.test' }],
  'loop1.a.test': [{ CNAME: 'loop2.a.test' }],
  'loop2.a.test': [{ CNAME: 'loop1.a.test' }],
  'timeout.a.test': ['TIMEOUT'],
  'servfail.a.test': ['SERVFAIL'],
  'refused.a.test': [{ A: '192.0.2.9' }],
  'big.a.test': [{ TXT: Array.from({ length: 10 }, (_, i) => `${i}`.repeat(200)) }],
  'medium.a.test': [{ TXT: 'm'.repeat(700) }],
  'forced.a.test': [{ TXT: 'small' }],
  'slow.a.test': [{ A: '192.0.2.77' }],
  'slow2.a.test': [{ A: '192.0.2.78' }],
  ...Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`c${i}.a.test`, [{ A: `192.0.2.${100 + i}` }]])),
};

let server: DnsTestServer;
const open: StubResolver[] = [];
const resolver = (options: Partial<StubResolverOptions> = {}): StubResolver => {
  const r = new StubResolver({ servers: [server.address], timeoutMs: 1000, attempts: 2, ...options });
  open.push(r);
  return r;
};

/** Waits (on real I/O, not timers) until cond() holds. */
async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 20000; i++) {
    if (cond()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`gave up waiting for ${what}`);
}

function ok<T extends RecordType>(r: DnsResult<T>): Extract<DnsResult<T>, { status: 'ok' }> {
  assert.equal(r.status, 'ok', JSON.stringify(r));
  return r as Extract<DnsResult<T>, { status: 'ok' }>;
}

before(async () => {
  server = await startDnsServer({ zone, refused: ['refused.a.test'], truncate: ['forced.a.test'] });
});
after(async () => {
  await Promise.all(open.map((r) => r.close()));
  await server.close();
});

describe('answers from a real server', () => {
  test('A, AAAA, MX, PTR, SRV, NS, SOA, and CNAME records', async () => {
    const r = resolver();
    assert.deepEqual(ok(await r.query('a.test', 'A')).records, ['192.0.2.1', '192.0.2.2']);
    assert.deepEqual(ok(await r.query('A.TEST.', 'AAAA')).records, ['2001:db8::1']);
    assert.deepEqual(ok(await r.query('a.test', 'MX')).records, [
      { preference: 10, exchange: 'mx.a.test' },
      { preference: 20, exchange: 'mx2.a.test' },
    ]);
    assert.deepEqual(ok(await r.query('1.2.0.192.in-addr.arpa', 'PTR')).records, ['a.test']);
    assert.deepEqual(ok(await r.query('_sip._tcp.a.test', 'SRV')).records, [
      { priority: 1, weight: 2, port: 5060, target: 'sip.a.test' },
    ]);
    assert.deepEqual(ok(await r.query('a.test', 'NS')).records, ['ns1.a.test']);
    assert.deepEqual(ok(await r.query('a.test', 'SOA')).records, [
      {
        mname: 'ns1.a.test',
        rname: 'hostmaster.a.test',
        serial: 2024,
        refresh: 7200,
        retry: 900,
        expire: 1209600,
        minimum: 300,
      },
    ]);
    const cname = ok(await r.query('www.a.test', 'CNAME'));
    assert.deepEqual(cname.records, ['alias.a.test']);
    assert.equal(cname.ttl, FIXTURE_TTL);
    assert.equal(cname.authenticated, false);
  });

  test('TXT keeps each record and its character-strings apart', async () => {
    const r = resolver();
    const txt = ok(await r.query('a.test', 'TXT'));
    assert.deepEqual(txt.records, [['v=spf1 ', 'ip4:192.0.2.0/24 ', '-all'], ['second record']]);
  });

  test('a CNAME chain is followed; the TTL is the smallest along it', async () => {
    const r = resolver();
    server.ttls.set('alias.a.test', 42);
    try {
      const res = ok(await r.query('WWW.a.test', 'A'));
      assert.deepEqual(res.records, ['192.0.2.1', '192.0.2.2']);
      assert.equal(res.ttl, 42);
    } finally {
      server.ttls.clear();
    }
  });

  test('NXDOMAIN at the end of a CNAME chain is NXDOMAIN; a loop is an error', async () => {
    const r = resolver();
    assert.deepEqual(await r.query('dangling.a.test', 'A'), { status: 'nxdomain', ttl: FIXTURE_TTL });
    const loop = await r.query('loop1.a.test', 'A');
    assert.equal(loop.status, 'error');
    assert.match((loop as { message: string }).message, /CNAME loop/);
  });

  test('NXDOMAIN vs NODATA, with the negative TTL min(SOA TTL, SOA MINIMUM)', async () => {
    const r = resolver();
    const saved = server.negative;
    try {
      server.negative = { ttl: 120, minimum: 60 };
      assert.deepEqual(await r.query('nope.a.test', 'A'), { status: 'nxdomain', ttl: 60 });
      assert.deepEqual(await r.query('a.test', 'SRV'), { status: 'nodata', ttl: 60 });
      server.negative = { ttl: 30, minimum: 600 };
      assert.deepEqual(await r.query('nope2.a.test', 'TXT'), { status: 'nxdomain', ttl: 30 });
    } finally {
      server.negative = saved;
    }
  });

  test('SERVFAIL and REFUSED are failures, each asked once per server', async () => {
    const r = resolver({ attempts: 3 });
    const sf = await r.query('servfail.a.test', 'A');
    assert.equal(sf.status, 'servfail');
    assert.equal(server.count('servfail.a.test'), 1);
    const rf = await r.query('refused.a.test', 'A');
    assert.equal(rf.status, 'refused');
    assert.match((rf as { message: string }).message, /refused\.a\.test\/A: REFUSED from 127\.0\.0\.1:\d+/);
    assert.equal(server.count('refused.a.test'), 1);
  });

  test('a silent server times out after exactly attempts × timeoutMs', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const r = resolver({ timeoutMs: 1000, attempts: 2 });
    let settled: DnsResult<'A'> | null = null;
    const pending = r.query('timeout.a.test', 'A').then((v) => {
      settled = v;
    });
    await until(() => server.count('timeout.a.test') === 1, 'first try');
    t.mock.timers.tick(999);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, null);
    assert.equal(server.count('timeout.a.test'), 1);
    t.mock.timers.tick(1);
    await until(() => server.count('timeout.a.test') === 2, 'second try');
    assert.equal(settled, null);
    t.mock.timers.tick(1000);
    await pending;
    assert.equal(settled!.status, 'timeout');
    assert.match((settled as unknown as { message: string }).message, /timeout after 1000 ms/);
    assert.equal(r.stats().timeouts, 2);
    assert.equal(server.count('timeout.a.test'), 2);
  });

  test('invalid names and unsupported types fail without touching the network', async () => {
    const r = resolver();
    const before = server.stats.udp;
    const bad = await r.query('a..test', 'A');
    assert.equal(bad.status, 'error');
    assert.match((bad as { message: string }).message, /empty label/);
    const type = await r.query('a.test', 'HINFO' as RecordType);
    assert.equal(type.status, 'error');
    assert.equal(server.stats.udp, before);
  });
});

describe('transport', () => {
  test('a truncated UDP answer is retried over TCP', async () => {
    const r = resolver();
    const udp = server.stats.udp;
    const tcp = server.stats.tcp;
    const big = ok(await r.query('big.a.test', 'TXT'));
    assert.equal(big.records.length, 1);
    assert.equal(big.records[0]!.join(''), Array.from({ length: 10 }, (_, i) => `${i}`.repeat(200)).join(''));
    assert.equal(server.stats.udp - udp, 1);
    assert.equal(server.stats.tcp - tcp, 1);
    assert.equal(r.stats().tcpSent, 1);
  });

  test('a forced TC bit on a small answer also goes to TCP', async () => {
    const r = resolver();
    assert.deepEqual(ok(await r.query('forced.a.test', 'TXT')).records, [['small']]);
    assert.equal(server.count('forced.a.test', 'TXT'), 2);
    assert.equal(r.stats().tcpSent, 1);
  });

  test('EDNS advertises 1232 octets, so a 700-octet answer needs no TCP; without EDNS it does', async () => {
    const sizes: (number | null)[] = [];
    server.onQuery = (q) => {
      if (q.name === 'medium.a.test') sizes.push(q.udpPayloadSize);
    };
    try {
      const edns = resolver();
      assert.equal(ok(await edns.query('medium.a.test', 'TXT')).records[0]!.join('').length, 700);
      assert.equal(edns.stats().tcpSent, 0);
      const plain = resolver({ udpPayloadSize: false });
      assert.equal(ok(await plain.query('medium.a.test', 'TXT')).records[0]!.join('').length, 700);
      assert.equal(plain.stats().tcpSent, 1);
      assert.deepEqual(sizes, [1232, null, null]);
    } finally {
      server.onQuery = undefined;
    }
  });

  test('identical questions in flight share one packet', async () => {
    const r = resolver();
    server.delays.set('slow.a.test', 40);
    try {
      const names = ['slow.a.test', 'SLOW.a.test', 'slow.a.test.', 'Slow.A.Test'];
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => r.query(names[i % 4]!, 'A')));
      for (const res of results) assert.deepEqual(ok(res).records, ['192.0.2.77']);
      assert.equal(server.count('slow.a.test', 'A'), 1);
      assert.equal(r.stats().merged, 11);
      assert.equal(r.stats().started, 1);
      // a different type is a different question
      await Promise.all([r.query('slow.a.test', 'AAAA'), r.query('slow.a.test', 'A')]);
      assert.equal(server.count('slow.a.test', 'AAAA'), 1);
      assert.equal(server.count('slow.a.test', 'A'), 2);
    } finally {
      server.delays.delete('slow.a.test');
    }
  });

  test('no more than maxInFlight questions on the wire; the rest wait their turn', async () => {
    const r = resolver({ maxInFlight: 2 });
    let completed = 0;
    let received = 0;
    let worst = 0;
    for (let i = 0; i < 8; i++) server.delays.set(`c${i}.a.test`, 15);
    server.onQuery = (q) => {
      if (!q.name.startsWith('c')) return;
      received++;
      worst = Math.max(worst, received - completed);
    };
    try {
      const pending = Array.from({ length: 8 }, (_, i) =>
        r.query(`c${i}.a.test`, 'A').then((res) => {
          completed++;
          return res;
        }),
      );
      assert.equal(r.stats().inFlight, 2);
      assert.equal(r.stats().queued, 6);
      const results = await Promise.all(pending);
      for (const [i, res] of results.entries()) assert.deepEqual(ok(res).records, [`192.0.2.${100 + i}`]);
      assert.equal(received, 8);
      assert.equal(worst, 2);
      assert.equal(r.stats().inFlight, 0);
      assert.equal(r.stats().queued, 0);
    } finally {
      server.onQuery = undefined;
      server.delays.clear();
    }
  });

  test('spoofed replies (wrong ID, wrong question, wrong source) are ignored', async () => {
    const r = resolver();
    const spoofer = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => spoofer.bind(0, '127.0.0.1', resolve));
    server.delays.set('slow2.a.test', 60);
    const seen: { id: number; port: number }[] = [];
    server.onQuery = (q) => {
      if (q.name === 'slow2.a.test') seen.push({ id: q.id, port: q.port });
    };
    const forged = (id: number, name: string): Uint8Array =>
      encodeMessage({
        id,
        qr: true,
        rd: true,
        ra: true,
        questions: [{ name, type: 'A' }],
        answers: [{ name, type: 'A', ttl: 86400, data: '6.6.6.6' }],
      });
    try {
      const pending = r.query('slow2.a.test', 'A');
      await until(() => seen.length === 1, 'the query');
      const { id, port } = seen[0]!;
      // from the server's own address: wrong ID, then right ID but another name
      await server.sendUdp(forged(id ^ 0x5555, 'slow2.a.test'), port, '127.0.0.1');
      await server.sendUdp(forged(id, 'other.a.test'), port, '127.0.0.1');
      // right ID and question, but from another port (the connected socket drops it)
      await new Promise<void>((resolve) =>
        spoofer.send(forged(id, 'slow2.a.test'), port, '127.0.0.1', () => resolve()),
      );
      await until(() => r.stats().ignored.mismatched === 1, 'the forged replies to arrive');
      assert.equal(r.stats().ignored.unknownId, 1);
      const res = ok(await pending);
      assert.deepEqual(res.records, ['192.0.2.78']);
      assert.equal(res.ttl, FIXTURE_TTL);
    } finally {
      server.onQuery = undefined;
      server.delays.clear();
      spoofer.close();
    }
  });

  test('query IDs and source ports vary; sockets are replaced after queriesPerSocket', async () => {
    const r = resolver({ sockets: 2, queriesPerSocket: 4 });
    const ids = new Set<number>();
    const ports = new Set<number>();
    server.onQuery = (q) => {
      if (q.name === 'a.test') {
        ids.add(q.id);
        ports.add(q.port);
      }
    };
    try {
      for (let i = 0; i < 16; i++) ok(await r.query('a.test', 'A'));
      assert.ok(ids.size >= 14, `only ${ids.size} distinct IDs in 16 queries`);
      assert.ok(ports.size >= 4, `only ${ports.size} source ports`);
      assert.ok(r.stats().socketsOpened >= 4);
      assert.ok(r.stats().socketsOpen <= 2);
    } finally {
      server.onQuery = undefined;
    }
  });
});

describe('IPv6', () => {
  test('a server on [::1]: UDP, TCP fallback, and the reply address check', async (t) => {
    let six: DnsTestServer;
    try {
      six = await startDnsServer({ zone, host: '::1' });
    } catch (err) {
      t.skip(`no IPv6 loopback here: ${(err as Error).message}`);
      return;
    }
    try {
      assert.match(six.address, /^\[::1\]:\d+$/);
      const r = resolver({ servers: [six.address] });
      assert.deepEqual(ok(await r.query('a.test', 'A')).records, ['192.0.2.1', '192.0.2.2']);
      assert.equal(ok(await r.query('big.a.test', 'TXT')).records.length, 1);
      assert.equal(six.stats.tcp, 1);
      assert.equal(r.stats().ignored.wrongSource, 0);
    } finally {
      await six.close();
    }
  });
});

describe('several servers', () => {
  test('a dead server is skipped after its timeout and the next one answers', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const dead = dgram.createSocket('udp4');
    let deadPackets = 0;
    dead.on('message', () => deadPackets++);
    await new Promise<void>((resolve) => dead.bind(0, '127.0.0.1', resolve));
    try {
      const r = resolver({ servers: [`127.0.0.1:${dead.address().port}`, server.address], timeoutMs: 500 });
      const pending = r.query('a.test', 'MX');
      await until(() => deadPackets === 1, 'the first try');
      t.mock.timers.tick(500);
      const res = ok(await pending);
      assert.equal(res.records.length, 2);
      assert.equal(r.stats().timeouts, 1);
    } finally {
      dead.close();
    }
  });

  test('a closed port (ICMP unreachable) fails over at once, without a timeout', async () => {
    const probe = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
    const closedPort = probe.address().port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const r = resolver({ servers: [`127.0.0.1:${closedPort}`, server.address], timeoutMs: 60_000 });
    assert.deepEqual(ok(await r.query('a.test', 'AAAA')).records, ['2001:db8::1']);
    assert.equal(r.stats().timeouts, 0);
    const alone = resolver({ servers: [`127.0.0.1:${closedPort}`], timeoutMs: 60_000 });
    const res = await alone.query('a.test', 'A');
    assert.equal(res.status, 'error');
    assert.match((res as { message: string }).message, /ECONNREFUSED/);
  });

  test('rotate spreads first tries over the servers', async () => {
    const second = await startDnsServer({ zone });
    try {
      const r = resolver({ servers: [server.address, second.address], rotate: true });
      const before = server.count('c0.a.test');
      for (let i = 0; i < 6; i++) ok(await r.query('c0.a.test', 'A'));
      assert.equal(server.count('c0.a.test') - before, 3);
      assert.equal(second.count('c0.a.test'), 3);
      const fixed = resolver({ servers: [second.address, server.address] });
      for (let i = 0; i < 4; i++) ok(await fixed.query('c1.a.test', 'A'));
      assert.equal(second.count('c1.a.test'), 4);
    } finally {
      await second.close();
    }
  });
});

/** A hand-written UDP server for behaviours the zone server does not have. */
async function rawServer(
  reply: (query: DnsMessage) => Uint8Array[] | null,
): Promise<{ address: string; queries: DnsMessage[]; close: () => Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  const queries: DnsMessage[] = [];
  socket.on('message', (msg, rinfo) => {
    const q = decodeMessage(msg);
    queries.push(q);
    for (const out of reply(q) ?? []) socket.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    queries,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

describe('odd servers', () => {
  test('FORMERR to an OPT record: asked again without EDNS (RFC 6891 §7)', async () => {
    const raw = await rawServer((q) => {
      if (q.edns) return [encodeMessage({ id: q.id, qr: true, rcode: RCODE.FORMERR })]; // no question echoed
      const name = q.questions[0]!.name;
      return [
        encodeMessage({
          id: q.id,
          qr: true,
          ra: true,
          questions: [{ name, type: 'A' }],
          answers: [{ name, type: 'A', ttl: 5, data: '192.0.2.5' }],
        }),
      ];
    });
    try {
      const r = resolver({ servers: [raw.address] });
      assert.deepEqual(ok(await r.query('old.example', 'A')).records, ['192.0.2.5']);
      assert.deepEqual(
        raw.queries.map((q) => q.edns !== null),
        [true, false],
      );
      // the server is remembered as EDNS-less for a while
      ok(await r.query('old2.example', 'A'));
      assert.equal(raw.queries[2]!.edns, null);
    } finally {
      await raw.close();
    }
  });

  test('a garbled datagram with our ID is ignored; the good answer after it is taken', async () => {
    const raw = await rawServer((q) => {
      const name = q.questions[0]!.name;
      const garbled = Buffer.from(encodeMessage({ id: q.id, qr: true, questions: [{ name, type: 'A' }] }));
      garbled[5] = 9; // claims 9 questions
      return [
        garbled,
        encodeMessage({
          id: q.id,
          qr: true,
          questions: [{ name, type: 'A' }],
          answers: [{ name, type: 'A', ttl: 5, data: '192.0.2.6' }],
        }),
      ];
    });
    try {
      const r = resolver({ servers: [raw.address] });
      assert.deepEqual(ok(await r.query('garbled.example', 'A')).records, ['192.0.2.6']);
      assert.equal(r.stats().ignored.malformed, 1);
    } finally {
      await raw.close();
    }
  });

  test('FORMERR without EDNS too: status formerr, asked once more only', async () => {
    const raw = await rawServer((q) => [
      encodeMessage({
        id: q.id,
        qr: true,
        rcode: RCODE.FORMERR,
        questions: q.questions.map((x) => ({ ...x })),
      }),
    ]);
    try {
      const r = resolver({ servers: [raw.address], attempts: 3 });
      const res = await r.query('picky.example', 'A');
      assert.equal(res.status, 'formerr');
      assert.deepEqual(
        raw.queries.map((q) => q.edns !== null),
        [true, false],
      );
    } finally {
      await raw.close();
    }
  });

  test('a server that only sends garbage is an error, not a timeout', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const raw = await rawServer((q) => [
      Uint8Array.of(q.id >> 8, q.id & 0xff, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0),
    ]);
    try {
      const r = resolver({ servers: [raw.address], timeoutMs: 1000, attempts: 1 });
      const pending = r.query('junk.example', 'A');
      await until(() => r.stats().ignored.malformed === 1, 'the garbage');
      t.mock.timers.tick(1000);
      const res = await pending;
      assert.equal(res.status, 'error');
      assert.match((res as { message: string }).message, /malformed reply: .*timeout after 1000 ms/);
    } finally {
      await raw.close();
    }
  });

  test('a referral (NS, no SOA, not authoritative) is not mistaken for NODATA', async () => {
    const raw = await rawServer((q) => {
      const name = q.questions[0]!.name;
      return [
        encodeMessage({
          id: q.id,
          qr: true,
          questions: [{ name, type: 'A' }],
          authorities: [{ name: 'example', type: 'NS', ttl: 5, data: 'ns.example' }],
        }),
      ];
    });
    try {
      const r = resolver({ servers: [raw.address] });
      const res = await r.query('ref.example', 'A');
      assert.equal(res.status, 'error');
      assert.match((res as { message: string }).message, /referral/);
      assert.equal(raw.queries.length, 1);
    } finally {
      await raw.close();
    }
  });

  test('a late answer to an earlier try is still accepted', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let held: Uint8Array | null = null;
    let port = 0;
    const socket = dgram.createSocket('udp4');
    socket.on('message', (msg, rinfo) => {
      const q = decodeMessage(msg);
      port = rinfo.port;
      const name = q.questions[0]!.name;
      // hold the first answer back; ignore the retry
      held ??= encodeMessage({
        id: q.id,
        qr: true,
        questions: [{ name, type: 'A' }],
        answers: [{ name, type: 'A', ttl: 5, data: '192.0.2.7' }],
      });
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    try {
      const r = resolver({ servers: [`127.0.0.1:${socket.address().port}`], timeoutMs: 1000, attempts: 3 });
      const pending = r.query('late.example', 'A');
      await until(() => held !== null, 'first try');
      const firstPort = port;
      t.mock.timers.tick(1000); // first try times out; second try goes out
      await until(() => r.stats().udpSent === 2, 'second try');
      socket.send(held!, firstPort, '127.0.0.1');
      assert.deepEqual(ok(await pending).records, ['192.0.2.7']);
    } finally {
      socket.close();
    }
  });
});

describe('cancellation and shutdown', () => {
  test('an aborted query settles at once; others sharing its packet still get the answer', async () => {
    const r = resolver();
    server.delays.set('slow.a.test', 40);
    try {
      const controller = new AbortController();
      const a = r.query('slow.a.test', 'A', { signal: controller.signal });
      const b = r.query('slow.a.test', 'A');
      controller.abort();
      const aborted = await a;
      assert.equal(aborted.status, 'error');
      assert.match((aborted as { message: string }).message, /aborted/);
      assert.deepEqual(ok(await b).records, ['192.0.2.77']);
      const already = await r.query('a.test', 'A', { signal: AbortSignal.abort() });
      assert.equal(already.status, 'error');
    } finally {
      server.delays.delete('slow.a.test');
    }
  });

  test('AbortSignal.timeout gives status timeout and frees the slot', async () => {
    const r = resolver({ maxInFlight: 1 });
    const res = await r.query('timeout.a.test', 'TXT', { signal: AbortSignal.timeout(20) });
    assert.equal(res.status, 'timeout');
    assert.match((res as { message: string }).message, /aborted/);
    assert.equal(r.stats().inFlight, 0);
    ok(await r.query('a.test', 'A'));
  });

  test('close() settles pending and queued queries and refuses new ones', async () => {
    const r = new StubResolver({ servers: [server.address], timeoutMs: 60_000, maxInFlight: 1 });
    const pending = [r.query('timeout.a.test', 'A'), r.query('timeout.a.test', 'MX')];
    await until(() => server.count('timeout.a.test', 'A') >= 1, 'the query');
    await r.close();
    for (const res of await Promise.all(pending)) {
      assert.equal(res.status, 'error');
      assert.match((res as { message: string }).message, /closed/);
    }
    assert.equal(r.stats().socketsOpen, 0);
    assert.equal((await r.query('a.test', 'A')).status, 'error');
  });
});
