/**
 * A recording TCP proxy between an MTA and a milter, for the lab's negotiation tests and the
 * milter benchmark: it passes every byte through unchanged and records, per milter connection,
 * the frames each way (decoded with checkid's own codec) and how many separate reads brought them
 * (each read on one side is at least one write on the other: a burst of replies sent in one write
 * arrives in one read, barring TCP splitting it, which loopback does not do for a few hundred
 * bytes).
 */
import net from 'node:net';
import {
  decodeCommand,
  decodeResponse,
  FrameDecoder,
  type MilterCommand,
  type MilterResponse,
} from '../../../src/adapters/milter/wire.ts';

export interface RecordedConnection {
  /** MTA → milter, in order */
  commands: MilterCommand[];
  /** milter → MTA, in order */
  responses: MilterResponse[];
  /** the response frames grouped by the read that brought them */
  responseBursts: MilterResponse[][];
  /** reads of MTA bytes */
  commandReads: number;
}

export interface MilterRecorder {
  /** for the MTA's config: inet:127.0.0.1:PORT */
  address: string;
  /** new connections go to this milter (inet:HOST:PORT) from now on */
  retarget(target: string): void;
  readonly connections: RecordedConnection[];
  /** forgets what was recorded so far */
  clear(): void;
  close(): Promise<void>;
}

function parseTarget(target: string): { host: string; port: number } {
  const m = /^inet:([^:]+):(\d+)$/.exec(target);
  if (!m) throw new Error(`milter recorder: ${target}: expected inet:HOST:PORT`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** Starts a proxy on a free loopback port in front of `target` (inet:HOST:PORT). */
export async function startMilterRecorder(target: string): Promise<MilterRecorder> {
  let to = parseTarget(target);
  let connections: RecordedConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((mta) => {
    const record: RecordedConnection = { commands: [], responses: [], responseBursts: [], commandReads: 0 };
    connections.push(record);
    const milter = net.connect(to.port, to.host);
    for (const s of [mta, milter]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    const fromMta = new FrameDecoder();
    const fromMilter = new FrameDecoder();
    mta.on('data', (chunk: Buffer) => {
      record.commandReads++;
      for (const f of fromMta.push(chunk)) record.commands.push(decodeCommand(f));
      milter.write(chunk);
    });
    milter.on('data', (chunk: Buffer) => {
      const burst = fromMilter.push(chunk).map(decodeResponse);
      record.responses.push(...burst);
      record.responseBursts.push(burst);
      mta.write(chunk);
    });
    mta.on('close', () => milter.end());
    milter.on('close', () => mta.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `inet:127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    retarget(target: string) {
      to = parseTarget(target);
    },
    get connections() {
      return connections;
    },
    clear() {
      connections = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
