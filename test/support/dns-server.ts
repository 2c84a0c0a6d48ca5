/**
 * A real DNS server for tests and benchmarks: UDP and TCP on one port of 127.0.0.1, answering
 * from a `Zone` (test/support/zone.ts) with the independent `dns-packet` codec, so our own codec
 * is checked against someone else's.
 *
 * Zone statuses become: ok → NOERROR with the records; nxdomain → NXDOMAIN and nodata → NOERROR
 * without answers, both with an SOA in the authority section (negative TTL, RFC 2308); servfail →
 * SERVFAIL; timeout → the query is dropped. A CNAME is answered as a resolver would: the CNAME
 * records of the chain (up to 8) followed by the target's records.
 *
 * Test hooks (all mutable on the returned object): `truncate` (names answered with TC over UDP),
 * `refused` (names answered REFUSED), `delays` (ms before answering a name), `ttls` (TTL per
 * owner name), `negative` (the SOA's TTL and MINIMUM), `onQuery` (sees every query), packet
 * counters per transport and per question, `setZone`, and `sendUdp` to emit raw datagrams from
 * the server's own address.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { RecordType } from '../../src/dns/types.ts';
import { FIXTURE_TTL, Zone, type ZoneData } from './zone.ts';

export interface QueryInfo {
  id: number;
  /** as asked (case kept), without trailing dot */
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
  /** the client's address and port */
  address: string;
  port: number;
  /** the UDP payload size of the client's OPT record; null without EDNS */
  udpPayloadSize: number | null;
}

export interface DnsServerOptions {
  zone: Zone | ZoneData;
  /** default 127.0.0.1 */
  host?: string;
  /** default 0: any free port (UDP and TCP get the same one) */
  port?: number;
  /** TTL of answer records (default FIXTURE_TTL) */
  ttl?: number;
  truncate?: Iterable<string>;
  refused?: Iterable<string>;
  delays?: Record<string, number>;
  onQuery?: (query: QueryInfo) => void;
}

export interface DnsServerStats {
  /** queries received over UDP */
  udp: number;
  /** queries received over TCP (frames, not connections) */
  tcp: number;
  tcpConnections: number;
  /** datagrams or frames dns-packet could not decode */
  malformed: number;
}

export interface DnsTestServer {
  host: string;
  port: number;
  /** "host:port", ready for a resolver's servers list */
  address: string;
  readonly stats: DnsServerStats;
  /** lower-cased names answered with TC=1 over UDP (TCP gets the full answer) */
  readonly truncate: Set<string>;
  /** lower-cased names answered REFUSED */
  readonly refused: Set<string>;
  /** lower-cased name → ms to wait before answering */
  readonly delays: Map<string, number>;
  /** lower-cased owner name → TTL of its records (default: the `ttl` option) */
  readonly ttls: Map<string, number>;
  /** the SOA sent with negative answers: its own TTL and its MINIMUM field */
  negative: { ttl: number; minimum: number };
  onQuery: ((query: QueryInfo) => void) | undefined;
  /** queries received for a name (any case), optionally of one type, over both transports */
  count(name: string, type?: string): number;
  resetStats(): void;
  setZone(zone: Zone | ZoneData): void;
  /** sends raw bytes from the server's UDP socket (for spoofing tests) */
  sendUdp(bytes: Uint8Array, port: number, address: string): Promise<void>;
  close(): Promise<void>;
}

const norm = (name: string): string => {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
};

/** TXT strings go out as UTF-8, split into character-strings of at most 255 octets. */
function txtData(strings: string[]): Buffer[] {
  const out: Buffer[] = [];
  for (const s of strings) {
    const b = Buffer.from(s, 'utf8');
    if (b.length === 0) out.push(b);
    for (let i = 0; i < b.length; i += 255) out.push(b.subarray(i, i + 255));
  }
  return out;
}

function soaData(value: unknown): dnsPacket.SoaData {
  if (value && typeof value === 'object') return value as dnsPacket.SoaData;
  const [mname = '', rname = '', ...nums] = String(value).trim().split(/\s+/);
  const [serial, refresh, retry, expire, minimum] = nums.map(Number);
  return { mname, rname, serial, refresh, retry, expire, minimum };
}

function toAnswer(owner: string, type: string, ttl: number, data: unknown): dnsPacket.Answer {
  switch (type) {
    case 'TXT':
      return { name: owner, type: 'TXT', ttl, data: txtData(data as string[]) };
    case 'MX': {
      const mx = data as { preference: number; exchange: string };
      return { name: owner, type: 'MX', ttl, data: { preference: mx.preference, exchange: mx.exchange } };
    }
    case 'SRV':
      return { name: owner, type: 'SRV', ttl, data: data as dnsPacket.SrvData };
    case 'SOA':
      return { name: owner, type: 'SOA', ttl, data: soaData(data) };
    default:
      return { name: owner, type: type as dnsPacket.StringRecordType, ttl, data: String(data) };
  }
}

/** The apex our synthesized SOA claims: the last two labels of the name. */
function apexOf(name: string): string {
  const labels = name.split('.');
  return labels.slice(-2).join('.');
}

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

export async function startDnsServer(options: DnsServerOptions): Promise<DnsTestServer> {
  let zone = options.zone instanceof Zone ? options.zone : new Zone(options.zone);
  const host = options.host ?? '127.0.0.1';
  const family = net.isIPv6(host) ? 'udp6' : 'udp4';
  const defaultTtl = options.ttl ?? FIXTURE_TTL;
  const timers = new Set<NodeJS.Timeout>();
  const connections = new Set<net.Socket>();
  const perQuestion = new Map<string, number>();
  const stats: DnsServerStats = { udp: 0, tcp: 0, tcpConnections: 0, malformed: 0 };
  let closed = false;

  const server: DnsTestServer = {
    host,
    port: 0,
    address: '',
    stats,
    truncate: new Set([...(options.truncate ?? [])].map(norm)),
    refused: new Set([...(options.refused ?? [])].map(norm)),
    delays: new Map(Object.entries(options.delays ?? {}).map(([k, v]) => [norm(k), v])),
    ttls: new Map(),
    negative: { ttl: FIXTURE_TTL, minimum: FIXTURE_TTL },
    onQuery: options.onQuery,
    count(name, type) {
      const n = norm(name);
      if (type) return perQuestion.get(`${n}/${type.toUpperCase()}`) ?? 0;
      let total = 0;
      for (const [key, v] of perQuestion) if (key.slice(0, key.lastIndexOf('/')) === n) total += v;
      return total;
    },
    resetStats() {
      stats.udp = 0;
      stats.tcp = 0;
      stats.tcpConnections = 0;
      stats.malformed = 0;
      perQuestion.clear();
    },
    setZone(next) {
      zone = next instanceof Zone ? next : new Zone(next);
    },
    sendUdp(bytes, port, address) {
      return new Promise((resolve, reject) =>
        udp.send(bytes, port, address, (err) => (err ? reject(err) : resolve())),
      );
    },
    close: async () => {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const c of connections) c.destroy();
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    },
  };

  const ttlFor = (owner: string): number => server.ttls.get(norm(owner)) ?? defaultTtl;

  const negativeSoa = (name: string): dnsPacket.Answer => {
    const apex = apexOf(norm(name));
    return {
      name: apex,
      type: 'SOA',
      ttl: server.negative.ttl,
      data: {
        mname: `ns.${apex}`,
        rname: `hostmaster.${apex}`,
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: server.negative.minimum,
      },
    };
  };

  /** The response for a query, or null to stay silent. */
  const respond = (query: dnsPacket.DecodedPacket, transport: 'udp' | 'tcp'): Buffer | null => {
    const question = query.questions?.[0];
    const opt = query.additionals?.find((a) => a.type === 'OPT') as dnsPacket.OptAnswer | undefined;
    const base = {
      type: 'response' as const,
      id: query.id ?? 0,
      // AA | RA | RD echoed
      flags: 0x0400 | 0x0080 | (query.flag_rd ? 0x0100 : 0),
      questions: question ? [question] : [],
      additionals: opt ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.OptAnswer] : [],
    };
    if (!question) return dnsPacket.encode({ ...base, flags: base.flags | 1 });
    const name = norm(question.name);
    const type = question.type as RecordType;
    let rcode: number = RCODE.NOERROR;
    const answers: dnsPacket.Answer[] = [];
    const authorities: dnsPacket.Answer[] = [];
    if (server.refused.has(name)) {
      rcode = RCODE.REFUSED;
    } else {
      // a resolver-style answer: the CNAME chain, then the records at its end
      let current = question.name.endsWith('.') ? question.name.slice(0, -1) : question.name;
      const seen = new Set<string>([norm(current)]);
      if (type !== 'CNAME') {
        for (let hop = 0; hop < 8; hop++) {
          const cname = zone.answer(current, 'CNAME');
          if (cname.status !== 'ok' || cname.records.length === 0) break;
          const target = cname.records[0]!;
          answers.push({ name: current, type: 'CNAME', ttl: ttlFor(current), data: target });
          current = target;
          if (seen.has(norm(target))) break;
          seen.add(norm(target));
        }
      }
      const result = zone.answer(current, type);
      switch (result.status) {
        case 'ok':
          for (const r of result.records) answers.push(toAnswer(current, type, ttlFor(current), r));
          break;
        case 'nxdomain':
          rcode = RCODE.NXDOMAIN;
          authorities.push(negativeSoa(current));
          break;
        case 'nodata':
          authorities.push(negativeSoa(current));
          break;
        case 'timeout':
          return null;
        default:
          rcode = RCODE.SERVFAIL;
          answers.length = 0;
      }
    }
    const full = dnsPacket.encode({ ...base, flags: base.flags | rcode, answers, authorities });
    if (transport === 'tcp') return full;
    const limit = opt ? Math.max(512, opt.udpPayloadSize) : 512;
    if (full.length <= limit && !server.truncate.has(name)) return full;
    return dnsPacket.encode({ ...base, flags: base.flags | rcode | 0x0200 });
  };

  /** Decodes, counts, runs the hooks, and calls `send` with the answer after any delay. */
  const handle = (
    bytes: Buffer,
    transport: 'udp' | 'tcp',
    address: string,
    port: number,
    send: (b: Buffer) => void,
  ): void => {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(bytes);
    } catch {
      stats.malformed++;
      return;
    }
    stats[transport]++;
    const question = query.questions?.[0];
    if (question) {
      const key = `${norm(question.name)}/${question.type}`;
      perQuestion.set(key, (perQuestion.get(key) ?? 0) + 1);
      const opt = query.additionals?.find((a) => a.type === 'OPT') as dnsPacket.OptAnswer | undefined;
      server.onQuery?.({
        id: query.id ?? 0,
        name: question.name.endsWith('.') ? question.name.slice(0, -1) : question.name,
        type: question.type,
        transport,
        address,
        port,
        udpPayloadSize: opt ? opt.udpPayloadSize : null,
      });
    }
    let reply: Buffer | null;
    try {
      reply = respond(query, transport);
    } catch {
      // a zone value dns-packet cannot encode: say SERVFAIL rather than nothing
      reply = dnsPacket.encode({
        type: 'response',
        id: query.id ?? 0,
        flags: 0x0080 | 2,
        questions: query.questions ?? [],
      });
    }
    if (!reply) return;
    const delay = question ? server.delays.get(norm(question.name)) : undefined;
    if (!delay) {
      send(reply);
      return;
    }
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) send(reply);
    }, delay);
    timers.add(t);
  };

  const makeUdp = (): dgram.Socket => {
    const socket = dgram.createSocket(family);
    socket.on('message', (msg, rinfo) => {
      handle(msg, 'udp', rinfo.address, rinfo.port, (b) => {
        if (!closed) socket.send(b, rinfo.port, rinfo.address);
      });
    });
    return socket;
  };
  let udp = makeUdp();

  const tcp = net.createServer((socket) => {
    stats.tcpConnections++;
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => {});
    let buffered: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (buffered.length < 2 + len) break;
        const frame = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        handle(frame, 'tcp', socket.remoteAddress ?? '', socket.remotePort ?? 0, (b) => {
          if (socket.destroyed) return;
          const out = Buffer.allocUnsafe(2 + b.length);
          out.writeUInt16BE(b.length, 0);
          b.copy(out, 2);
          socket.write(out);
        });
      }
    });
  });

  // UDP first (port 0 picks a free one), then TCP on the same number; retry if TCP's is taken
  for (let attempt = 0; ; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(options.port ?? 0, host, () => {
        udp.off('error', reject);
        udp.on('error', () => {});
        resolve(udp.address().port);
      });
    });
    const ok = await new Promise<boolean>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE' && !options.port && attempt < 5) resolve(false);
        else reject(err);
      };
      tcp.once('error', onError);
      tcp.listen(port, host, () => {
        tcp.off('error', onError);
        resolve(true);
      });
    });
    if (ok) {
      tcp.on('error', () => {});
      server.port = port;
      server.address = family === 'udp6' ? `[${host}]:${port}` : `${host}:${port}`;
      return server;
    }
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    udp = makeUdp();
  }
}
