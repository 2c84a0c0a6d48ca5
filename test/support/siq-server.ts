/**
 * A scripted SIQ server for tests: UDP on 127.0.0.1 (or ::1), any free port. For every query it
 * calls `script`, which returns what to send back: nothing (drop), one reply or several, each in
 * a chosen draft layout, after a delay, with another ID, from another socket (wrong source
 * port), or raw bytes. Queries are decoded with our own codec and recorded with their raw bytes.
 */
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import {
  type DecodedQuery,
  decodeQuery,
  encodeReply,
  type ReplyInput,
  type SiqReply,
  type SiqRevision,
} from '../../src/siq/codec.ts';

export interface ScriptedReply {
  /** the reply's fields; `id` defaults to the query's */
  reply?: Partial<ReplyInput>;
  /** layout (default '02') */
  revision?: SiqRevision;
  /** send these bytes instead of an encoded reply */
  raw?: Uint8Array;
  /** wait before sending, ms */
  delayMs?: number;
  /** send from a second socket on another port (a spoofed source) */
  wrongSource?: boolean;
}

export interface ReceivedQuery {
  /** null when our codec could not decode it */
  query: DecodedQuery | null;
  raw: Buffer;
  address: string;
  port: number;
}

export type SiqScript = (query: DecodedQuery, raw: Buffer) => ScriptedReply | ScriptedReply[] | null | undefined;

export interface SiqTestServer {
  host: string;
  port: number;
  /** "127.0.0.1:port" or "[::1]:port" */
  address: string;
  readonly received: ReceivedQuery[];
  script: SiqScript;
  close(): Promise<void>;
}

/** A decoded -02 reply, as a cache stores it: `score`, IP sub-score 60, TTL 300, confidence 90; `extra` overrides. */
export function siqReply(score: number, extra: Partial<SiqReply> = {}): SiqReply {
  return {
    revision: '02',
    id: 4242,
    score,
    kind: 'score',
    ipScore: 60,
    domainScore: -1,
    relScore: 5,
    ttl: 300,
    confidence: 90,
    text: 'stability=1.',
    extraId: null,
    extra: '',
    redirect: null,
    anomalies: [],
    ...extra,
  };
}

/** score 50 in the -02 layout, TTL 300, confidence 80 */
export const DEFAULT_SCRIPT: SiqScript = () => ({
  reply: { score: 50, ipScore: 60, domainScore: 40, relScore: -1, ttl: 300, confidence: 80, text: 'neutral' },
});

export async function startSiqServer(options: { host?: string; script?: SiqScript } = {}): Promise<SiqTestServer> {
  const host = options.host ?? '127.0.0.1';
  const type = host.includes(':') ? 'udp6' : 'udp4';
  const socket = dgram.createSocket(type);
  const other = dgram.createSocket(type);
  const timers = new Set<NodeJS.Timeout>();
  const received: ReceivedQuery[] = [];
  await Promise.all([
    new Promise<void>((ok) => socket.bind(0, host, () => ok())),
    new Promise<void>((ok) => other.bind(0, host, () => ok())),
  ]);
  const port = (socket.address() as AddressInfo).port;
  let closed = false;

  const server: SiqTestServer = {
    host,
    port,
    address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    received,
    script: options.script ?? DEFAULT_SCRIPT,
    close: async () => {
      closed = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all([new Promise<void>((ok) => socket.close(() => ok())), new Promise<void>((ok) => other.close(() => ok()))]);
    },
  };

  socket.on('message', (msg, rinfo) => {
    let query: DecodedQuery | null = null;
    try {
      query = decodeQuery(msg);
    } catch {
      query = null;
    }
    received.push({ query, raw: msg, address: rinfo.address, port: rinfo.port });
    if (!query) return;
    const planned = server.script(query, msg);
    const list = planned == null ? [] : Array.isArray(planned) ? planned : [planned];
    for (const item of list) {
      const bytes = item.raw ?? encodeReply({ score: 50, ...item.reply, id: item.reply?.id ?? query.id }, item.revision ?? '02');
      const out = item.wrongSource ? other : socket;
      const send = (): void => {
        if (!closed) out.send(bytes, rinfo.port, rinfo.address);
      };
      if (item.delayMs) {
        const t = setTimeout(() => {
          timers.delete(t);
          send();
        }, item.delayMs);
        timers.add(t);
      } else {
        send();
      }
    }
  });
  return server;
}
