/**
 * The milter listener: TCP or a unix socket, one MilterSession + MilterAdapter per connection
 * the MTA opens (one per SMTP session). `startMilterServer` is what `checkid milter` and
 * `checkid serve` run, and what tests and benchmarks start in-process.
 *
 * Addresses, in either MTA's spelling (mta.md §1.1):
 *   inet:127.0.0.1:8891   inet:8891@127.0.0.1 (Sendmail)   inet6:[::1]:8891   inet6:8891@::1
 *   unix:/run/checkid/milter.sock   local:/run/checkid/milter.sock   127.0.0.1:8891
 * A unix socket left over by a previous run is replaced (never a file that is not a socket, nor
 * one another process still listens on) and gets mode 0660 (socketMode); the directory should be
 * 0750, owned by checkid with the MTA's group — Sendmail refuses a socket in a group- or
 * world-writable directory ("unsafe: Group writable directory").
 */
import { lstatSync, statSync, chmodSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { dirname, isAbsolute } from 'node:path';
import type { Logger } from '../../engine/engine.ts';
import { type ConnectionTracker, trackSocket } from '../../telemetry/connections.ts';
import { MilterAdapter, type MilterAdapterOptions } from './adapter.ts';
import { MilterSession, replyOwedFor } from './session.ts';
import { DEFAULT_MAX_FRAME, type Frame, FrameDecoder, MilterProtocolError } from './wire.ts';

export type MilterAddress = { kind: 'inet'; host: string; port: number } | { kind: 'unix'; path: string };

/** Parses a listen address (see the module comment). Throws with a message fit for the user. */
export function parseMilterAddress(spec: string): MilterAddress {
  const s = spec.trim();
  const unix = /^(?:unix|local):(.+)$/i.exec(s);
  if (unix) {
    const path = unix[1]!;
    if (!isAbsolute(path)) throw new Error(`${spec}: a unix socket path must be absolute`);
    return { kind: 'unix', path };
  }
  const prefixed = /^(inet6?):(.*)$/i.exec(s);
  const rest = prefixed ? prefixed[2]! : s;
  let host: string;
  let port: string;
  const sendmail = /^(\d+)@(.+)$/.exec(rest);
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(rest);
  if (sendmail) {
    port = sendmail[1]!;
    host = sendmail[2]!.replace(/^\[(.*)\]$/, '$1');
  } else if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2]!;
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon <= 0) throw new Error(`${spec}: expected inet:HOST:PORT, inet:PORT@HOST, inet6:[HOST]:PORT or unix:/path`);
    host = rest.slice(0, colon);
    port = rest.slice(colon + 1);
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new Error(`${spec}: port ${JSON.stringify(port)} is not a number from 0 to 65535`);
  if (prefixed?.[1]?.toLowerCase() === 'inet6' && net.isIPv4(host)) throw new Error(`${spec}: inet6 with an IPv4 address`);
  return { kind: 'inet', host, port: Number(port) };
}

/** The address in milter syntax, as an MTA's configuration writes it (Postfix form). */
export function formatMilterAddress(a: MilterAddress): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return net.isIPv6(a.host) ? `inet6:[${a.host}]:${a.port}` : `inet:${a.host}:${a.port}`;
}

export interface MilterServerOptions extends MilterAdapterOptions {
  /** where to listen (port 0: any free port; see `address` of the result) */
  listen: string;
  log?: Logger;
  /** mode of a unix socket file (default 0o660) */
  socketMode?: number;
  /** the largest frame accepted (default DEFAULT_MAX_FRAME, 128 KiB) */
  maxFrameBytes?: number;
  /** PROGRESS interval while a step is pending (default 5000 ms; 0 = never) */
  progressIntervalMs?: number;
  /** close(): how long connections in the middle of a message may take to finish (default 30 s) */
  closeGraceMs?: number;
  /** counts the MTA's connections as listener "milter" (metrics) */
  connections?: ConnectionTracker;
}

export interface MilterServer {
  /** where it listens, in milter syntax (inet:127.0.0.1:8891, inet6:[::1]:8891, unix:/path) */
  readonly address: string;
  /** the TCP port (0 for a unix socket) */
  readonly port: number;
  /** filter connections open now */
  readonly connections: number;
  /**
   * Stops accepting; closes idle connections at once and the others as soon as their message is
   * done (or after closeGraceMs); removes the unix socket file.
   */
  close(): Promise<void>;
}

/** frames waiting beyond this pause reading from the MTA until they are handled */
const QUEUE_HIGH_WATER = 1024;

interface Connection {
  socket: net.Socket;
  session: MilterSession;
  /** no frame is being handled or waiting */
  quiet(): boolean;
  /** settles when the socket has closed */
  done: Promise<void>;
}

/** Ends the connection once what was written has gone out. */
function finish(socket: net.Socket): void {
  socket.end(() => socket.destroy());
}

/** A stale socket file (nobody listening) is removed; anything else in the way is an error. */
async function clearSocketPath(path: string): Promise<void> {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; not replacing it`);
  const inUse = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (inUse) throw new Error(`${path}: another process is listening on this socket`);
  unlinkSync(path);
}

/**
 * Sendmail refuses a socket when any directory on its path is group- or world-writable, even
 * /tmp with its sticky bit ("unsafe: World writable directory"): the first such directory, from
 * the socket's own up to /; null when there is none (or a directory cannot be read: missing).
 */
export function unsafeSocketDirectory(path: string): { directory: string; mode: number } | null {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    try {
      const mode = statSync(dir).mode & 0o7777;
      if (mode & 0o022) return { directory: dir, mode };
    } catch {
      return null; // listen() reports a missing directory
    }
    if (dir === dirname(dir)) return null;
  }
}

/** Warns about the directory unsafeSocketDirectory finds (`checkid doctor` reports it too). */
function checkSocketDirectory(path: string, log: Logger): void {
  const unsafe = unsafeSocketDirectory(path);
  if (!unsafe) return;
  log('warn', 'milter socket path has a group- or world-writable directory: Sendmail will refuse it ("unsafe: Group/World writable directory"); use a 0750 directory whose parents only root may write to', {
    socket: path,
    directory: unsafe.directory,
    mode: `0${unsafe.mode.toString(8)}`,
  });
}

export async function startMilterServer(options: MilterServerOptions): Promise<MilterServer> {
  const where = parseMilterAddress(options.listen);
  const log: Logger = options.log ?? (() => {});
  const connections = new Set<Connection>();
  let draining = false;

  const server = net.createServer((socket) => {
    if (draining) {
      socket.destroy();
      return;
    }
    socket.setNoDelay?.(true);
    trackSocket(options.connections, 'milter', socket);
    const adapter = new MilterAdapter({ ...options, log });
    const queue: Frame[] = [];
    let head = 0;
    // What the session writes in one go (a step's answer; the end of message's modifications and
    // its final answer) leaves in one write: corked at the first frame, uncorked in a microtask,
    // once the code that wrote it is done and before anything else runs. Later than that (say
    // setImmediate) would hold an answer back while the event loop serves other connections.
    let corked = false;
    const uncork = (): void => {
      corked = false;
      socket.uncork();
    };
    const session: MilterSession = new MilterSession(adapter, {
      send: (bytes) => {
        if (socket.destroyed) return;
        if (!corked) {
          corked = true;
          socket.cork();
          queueMicrotask(uncork);
        }
        socket.write(bytes);
      },
      log,
      ...(options.progressIntervalMs !== undefined ? { progressIntervalMs: options.progressIntervalMs } : {}),
      mtaWaiting: () => {
        const agreed = session.negotiated;
        if (!agreed) return false;
        for (let i = head; i < queue.length; i++) if (replyOwedFor(agreed, queue[i]!.code)) return true;
        return false;
      },
    });
    const decoder = new FrameDecoder(options.maxFrameBytes ?? DEFAULT_MAX_FRAME);
    let pumping = false;
    let paused = false;
    let closed!: () => void;
    const done = new Promise<void>((resolve) => {
      closed = resolve;
    });
    const conn: Connection = { socket, session, quiet: () => !pumping && head >= queue.length, done };
    connections.add(conn);

    const fail = (err: unknown): void => {
      if (err instanceof MilterProtocolError) {
        log('warn', 'milter protocol error; closing the connection (the MTA applies its default action)', { error: err.message, remote: socket.remoteAddress });
      } else {
        log('error', 'milter: internal error; closing the connection (the MTA applies its default action)', { error: (err as Error)?.message, stack: (err as Error)?.stack });
      }
      session.lose();
      queue.length = 0;
      head = 0;
      socket.destroy();
    };

    const pump = async (): Promise<void> => {
      pumping = true;
      try {
        while (head < queue.length) {
          const frame = queue[head++]!;
          try {
            await session.receive(frame);
          } catch (err) {
            fail(err);
            return;
          }
          if (session.closed || (draining && session.idle && head >= queue.length)) {
            finish(socket);
            return;
          }
        }
        queue.length = 0;
        head = 0;
        if (paused) {
          paused = false;
          socket.resume();
        }
      } finally {
        pumping = false;
      }
    };

    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        fail(err);
        return;
      }
      for (const f of frames) queue.push(f);
      if (queue.length - head > QUEUE_HIGH_WATER && !paused) {
        paused = true;
        socket.pause();
      }
      if (!pumping && head < queue.length) void pump();
    });
    socket.on('error', (err) => log('debug', 'milter connection error', { error: err.message }));
    socket.on('close', () => {
      session.lose();
      connections.delete(conn);
      closed();
    });
  });

  if (where.kind === 'unix') {
    await clearSocketPath(where.path);
    checkSocketDirectory(where.path, log);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      server.on('error', (err) => log('error', 'milter listener error', { error: err.message }));
      resolve();
    };
    if (where.kind === 'unix') server.listen(where.path, done);
    else server.listen(where.port, where.host, done);
  });
  let port = 0;
  let address: string;
  if (where.kind === 'unix') {
    chmodSync(where.path, options.socketMode ?? 0o660);
    address = formatMilterAddress(where);
  } else {
    const a = server.address() as net.AddressInfo;
    port = a.port;
    address = formatMilterAddress({ kind: 'inet', host: a.address, port });
  }

  let closing: Promise<void> | null = null;
  return {
    address,
    port,
    get connections() {
      return connections.size;
    },
    close() {
      closing ??= (async () => {
        draining = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const c of connections) if (c.session.idle && c.quiet()) finish(c.socket);
        const grace = setTimeout(() => {
          for (const c of connections) c.socket.destroy();
        }, options.closeGraceMs ?? 30_000);
        grace.unref();
        await Promise.all([...connections].map((c) => c.done));
        clearTimeout(grace);
        await stopped;
        if (where.kind === 'unix') {
          try {
            if (lstatSync(where.path).isSocket()) unlinkSync(where.path);
          } catch {
            // already gone
          }
        }
      })();
      return closing;
    },
  };
}
