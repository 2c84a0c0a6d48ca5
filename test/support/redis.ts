/**
 * A real redis-server for the Redis tests (Debian's /usr/bin/redis-server; .ci/run installs it):
 * on a free loopback port, with a fresh temporary directory, no persistence. Stop it in an
 * `after` hook. `kill()` and `restart()` (same port) are for outage tests.
 *
 * Outside CI a missing redis-server skips the test with the reason printed loudly on stderr;
 * under CI (CI=true) it does not skip, so the test runs and fails with the reason.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { defaultRedisConfig } from '../../src/redis/config.ts';
import { RedisConnection } from '../../src/redis/connection.ts';
import { tempDir } from './fixtures.ts';

export const REDIS_SERVER = process.env.CHECKID_REDIS_SERVER ?? '/usr/bin/redis-server';

/** The `skip` option for a Redis test: false when redis-server is there. */
export function redisSkip(): string | false {
  if (existsSync(REDIS_SERVER)) return false;
  if (process.env.CI === 'true') return false;
  const reason = `redis-server not found at ${REDIS_SERVER}: run \`sudo apt-get install -y redis-server\``;
  process.stderr.write(`\n!!! SKIPPING Redis test: ${reason}\n\n`);
  return reason;
}

export interface RedisTestServer {
  port: number;
  /** redis://127.0.0.1:PORT (with the password when one is set) */
  url: string;
  /** the Unix socket, when asked for */
  socket: string | null;
  dir: string;
  /** running now */
  readonly running: boolean;
  /** SIGKILL, as a crash (the port is kept for restart) */
  kill(): Promise<void>;
  /** starts again on the same port (empty: nothing was saved) */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: a server that stops answering without closing connections */
  pause(): void;
  resume(): void;
  /** one command on a fresh connection (plain RESP, no client library): checks from the test side */
  command(...args: string[]): Promise<string | number | null | Array<string | null>>;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function encode(args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

type Reply = string | number | null | Reply[];

/** Reads one RESP2 reply from the start of `buf`; null when incomplete. */
function parseReply(buf: Buffer, at = 0): { value: Reply; end: number } | null {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const kind = String.fromCharCode(buf[at]!);
  const line = buf.toString('utf8', at + 1, eol);
  switch (kind) {
    case '+':
      return { value: line, end: eol + 2 };
    case '-':
      throw new Error(`redis: ${line}`);
    case ':':
      return { value: Number(line), end: eol + 2 };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: eol + 2 };
      if (buf.length < eol + 2 + n + 2) return null;
      return { value: buf.toString('utf8', eol + 2, eol + 2 + n), end: eol + 2 + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: eol + 2 };
      const items: Reply[] = [];
      let pos = eol + 2;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, pos);
        if (!r) return null;
        items.push(r.value);
        pos = r.end;
      }
      return { value: items, end: pos };
    }
    default:
      throw new Error(`redis: unexpected reply ${JSON.stringify(buf.toString('utf8', at, eol))}`);
  }
}

/** Sends one command on a fresh connection and returns its reply (test-side checks). */
export async function redisCommand(port: number, ...args: string[]): Promise<Reply> {
  return redisCommandAuth(port, null, ...args);
}

async function redisCommandAuth(port: number, password: string | null, ...args: string[]): Promise<Reply> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(password === null ? encode(args) : encode(['AUTH', password]) + encode(args));
  let buf = Buffer.alloc(0);
  try {
    for await (const chunk of socket) {
      buf = Buffer.concat([buf, chunk as Buffer]);
      if (password !== null) {
        const auth = parseReply(buf);
        if (!auth) continue;
        const r = parseReply(buf, auth.end);
        if (r) return r.value;
        continue;
      }
      const r = parseReply(buf);
      if (r) return r.value;
    }
    throw new Error('redis: connection closed before the reply');
  } finally {
    socket.destroy();
  }
}

async function answersPing(port: number, password: string | null): Promise<boolean> {
  try {
    return (await redisCommandAuth(port, password, 'PING')) === 'PONG';
  } catch {
    return false;
  }
}

export interface RedisServerOptions {
  /** also listen on a Unix socket in the temporary directory */
  unixSocket?: boolean;
  /** requirepass */
  password?: string;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisTestServer> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`redis-server not found at ${REDIS_SERVER}: install the redis-server package`);
  const dir = tempDir('checkid-redis-');
  const port = await freePort();
  const password = options.password ?? null;
  const socketPath = options.unixSocket ? join(dir, 'redis.sock') : null;
  const extra = [
    ...(socketPath ? ['--unixsocket', socketPath, '--unixsocketperm', '700'] : []),
    ...(password !== null ? ['--requirepass', password] : []),
  ];
  let child: ChildProcess | null = null;
  let log = '';

  const launch = async (): Promise<void> => {
    const c = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    c.stdout!.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    c.stderr!.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    for (let i = 0; i < 200; i++) {
      if (c.exitCode !== null) throw new Error(`redis-server exited (${c.exitCode}): ${log}`);
      if (await answersPing(port, password)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    c.kill('SIGKILL');
    throw new Error(`redis-server on port ${port} did not answer PING: ${log}`);
  };

  const killNow = async (): Promise<void> => {
    const c = child as ChildProcess | null;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGCONT');
    c.kill('SIGKILL');
    await exited;
  };

  await launch();
  return {
    port,
    url: password !== null ? `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`,
    socket: socketPath,
    dir,
    get running() {
      return child !== null;
    },
    kill: killNow,
    restart: launch,
    pause: () => {
      (child as ChildProcess | null)?.kill('SIGSTOP');
    },
    resume: () => {
      (child as ChildProcess | null)?.kill('SIGCONT');
    },
    command: (...args: string[]) => redisCommandAuth(port, password, ...args) as Promise<string | number | null | Array<string | null>>,
    stop: killNow,
  };
}

export interface RedisForTests {
  /** the redis-server, once the `before` hook started it */
  readonly server: RedisTestServer;
  /** A connection under `prefix` to that server (or to `url`); the `after` hook closes it. */
  connection(prefix: string, url?: string): RedisConnection;
}

/**
 * A redis-server for the tests of a file or a describe block: `before` and `after` hooks (none
 * when `skip`) start it, then close every connection made through `connection` and stop it.
 * The connections' command timeout is `commandTimeoutMs` (default 2 s).
 */
export function redisForTests(
  options: { commandTimeoutMs?: number; skip?: string | boolean } = {},
): RedisForTests {
  let server: RedisTestServer | undefined;
  const made: RedisConnection[] = [];
  if (!options.skip) {
    before(async () => {
      server = await startRedisServer();
    });
    after(async () => {
      // also those a test that failed half-way left open (closing twice is fine)
      await Promise.all(made.map((c) => c.close()));
      await server?.stop();
    });
  }
  return {
    get server(): RedisTestServer {
      if (!server) throw new Error('the test redis-server is not running (it starts in a before hook)');
      return server;
    },
    connection(prefix: string, url?: string): RedisConnection {
      if (url === undefined && !server) throw new Error('the test redis-server is not running (it starts in a before hook)');
      const c = new RedisConnection({
        ...defaultRedisConfig(),
        url: url ?? server!.url,
        prefix,
        commandTimeoutMs: options.commandTimeoutMs ?? 2_000,
      });
      made.push(c);
      return c;
    },
  };
}
