/**
 * A stub resolver: sends recursive queries to configured name servers over UDP, falls back to
 * TCP when the answer is truncated (RFC 7766), and returns the Resolver contract's statuses.
 *
 * Spoofing resistance (RFC 5452): crypto-random query IDs, UDP sockets on OS-chosen random
 * ephemeral ports that are retired after a number of queries, and a reply is only accepted
 * when it comes from the address and port we sent to and echoes our ID and question; anything
 * else is ignored while we keep waiting.
 *
 * Load: at most `maxInFlight` distinct questions on the wire (the rest wait in a FIFO queue),
 * and identical questions asked while one is in flight share it.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { RandomIds } from '../common/random-ids.ts';
import { formatServer, parseServerSpec, type ServerAddress, sameHost } from './address.ts';
import {
  CLASS_IN,
  DEFAULT_UDP_PAYLOAD,
  type DnsMessage,
  decodeMessage,
  encodeQuery,
  formatName,
  namesEqual,
  parseName,
  RCODE,
  TYPE,
} from './codec.ts';
import { interpretResponse } from './response.ts';
import type { DnsFailure, DnsResult, QueryOptions, RecordType, Resolver } from './types.ts';

export interface StubResolverOptions {
  /** name servers: specs ("192.0.2.1", "[2001:db8::1]:5353", …) or parsed addresses */
  servers: readonly (string | ServerAddress)[];
  /** how long one try waits for an answer, ms (default 2000) */
  timeoutMs?: number;
  /** rounds over the server list, like resolv.conf "attempts" (default 2) */
  attempts?: number;
  /** distinct questions on the wire at once; more wait in a queue (default 64) */
  maxInFlight?: number;
  /** start each question at the next server instead of the first (resolv.conf "rotate") */
  rotate?: boolean;
  /** EDNS UDP payload size to advertise (default 1232); false sends no OPT record */
  udpPayloadSize?: number | false;
  /** connected UDP sockets per server, used in turn (default 4) */
  sockets?: number;
  /** a UDP socket is closed and replaced by one on a new random port after this many queries (default 1024) */
  queriesPerSocket?: number;
}

export interface StubResolverStats {
  /** calls to query() */
  queries: number;
  /** calls answered by joining an identical question already in flight */
  merged: number;
  /** distinct questions put on the wire */
  started: number;
  udpSent: number;
  tcpSent: number;
  /** tries that ran out of time */
  timeouts: number;
  /** datagrams dropped: unknown ID, wrong source, undecodable, or not answering our question */
  ignored: { unknownId: number; wrongSource: number; malformed: number; mismatched: number };
  inFlight: number;
  queued: number;
  socketsOpened: number;
  socketsOpen: number;
}

type AnyResult = DnsResult<RecordType>;

interface Registration {
  task: Task;
  server: number;
  edns: boolean;
}

/** A UDP socket connected to one server (the kernel then drops datagrams from anyone else). */
class UdpSlot {
  readonly socket: dgram.Socket;
  readonly server: number;
  readonly pending = new Map<number, Registration>();
  /** packets waiting for connect() to finish, with the task each belongs to */
  backlog: { packet: Buffer; task: Task }[] | null = [];
  sent = 0;
  retired = false;
  closed = false;
  constructor(socket: dgram.Socket, server: number) {
    this.socket = socket;
    this.server = server;
  }
}

interface Waiter {
  resolve: (result: AnyResult) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

interface Failure {
  status: DnsFailure;
  message: string;
}

class Task {
  readonly key: string;
  /** canonical presentation form */
  readonly name: string;
  readonly labels: readonly Uint8Array[];
  readonly type: RecordType;
  readonly waiters: Waiter[] = [];
  state: 'queued' | 'running' | 'done' = 'queued';
  /** tries started so far */
  tries = 0;
  firstServer = 0;
  /** the server of the current try */
  server = -1;
  timer: NodeJS.Timeout | null = null;
  readonly registrations: { slot: UdpSlot; id: number }[] = [];
  tcp: net.Socket | null = null;
  /** servers that gave a definite failure (SERVFAIL, REFUSED, …): not asked again */
  failedServers: Set<number> | null = null;
  rcodeFailure: Failure | null = null;
  /** the last undecodable datagram that carried our ID from the right server */
  malformed: string | null = null;
  lastFailure: Failure | null = null;
  constructor(key: string, name: string, labels: readonly Uint8Array[], type: RecordType) {
    this.key = key;
    this.name = name;
    this.labels = labels;
    this.type = type;
  }
}

/** The server gave a definite failure for this question: do not ask it again. */
function markFailed(task: Task, server: number): void {
  if (!task.failedServers) task.failedServers = new Set();
  task.failedServers.add(server);
}

function abortResult(signal: AbortSignal): AnyResult {
  const reason = signal.reason as { name?: unknown; message?: unknown } | undefined;
  const text = typeof reason?.message === 'string' ? reason.message : String(reason);
  if (reason?.name === 'TimeoutError') return { status: 'timeout', message: `aborted: ${text}` };
  return { status: 'error', message: `aborted: ${text}` };
}

/** How long a server that rejected our OPT record is asked without one (ms). */
const NO_EDNS_MS = 10 * 60_000;

export class StubResolver implements Resolver {
  readonly servers: readonly ServerAddress[];
  private readonly timeoutMs: number;
  private readonly totalTries: number;
  private readonly maxInFlight: number;
  private readonly rotate: boolean;
  private readonly udpPayloadSize: number | false;
  private readonly socketsPerServer: number;
  private readonly queriesPerSocket: number;
  private readonly ids = new RandomIds(2048);
  /** per server index: its sockets */
  private readonly pools: (UdpSlot | null)[][];
  private readonly poolNext: number[];
  private readonly openSlots = new Set<UdpSlot>();
  private readonly inflight = new Map<string, Task>();
  private readonly queue: Task[] = [];
  private queueHead = 0;
  private running = 0;
  private rotation = 0;
  private closed = false;
  /** per server index: until when (epoch ms) it is asked without EDNS */
  private readonly noEdnsUntil: number[];
  private readonly counters = {
    queries: 0,
    merged: 0,
    started: 0,
    udpSent: 0,
    tcpSent: 0,
    timeouts: 0,
    socketsOpened: 0,
    ignored: { unknownId: 0, wrongSource: 0, malformed: 0, mismatched: 0 },
  };

  constructor(options: StubResolverOptions) {
    const servers = options.servers.map((s) => (typeof s === 'string' ? parseServerSpec(s) : s));
    if (servers.length === 0) throw new Error('StubResolver needs at least one server');
    this.servers = servers;
    this.timeoutMs = positive(options.timeoutMs, 2000, 'timeoutMs');
    this.totalTries = positive(options.attempts, 2, 'attempts') * servers.length;
    this.maxInFlight = positive(options.maxInFlight, 64, 'maxInFlight');
    this.rotate = options.rotate ?? false;
    this.udpPayloadSize =
      options.udpPayloadSize === false
        ? false
        : Math.max(512, Math.min(65535, options.udpPayloadSize ?? DEFAULT_UDP_PAYLOAD));
    this.socketsPerServer = positive(options.sockets, 4, 'sockets');
    this.queriesPerSocket = positive(options.queriesPerSocket, 1024, 'queriesPerSocket');
    this.pools = servers.map(() => new Array<UdpSlot | null>(this.socketsPerServer).fill(null));
    this.poolNext = servers.map(() => 0);
    this.noEdnsUntil = servers.map(() => 0);
  }

  stats(): StubResolverStats {
    const c = this.counters;
    return {
      queries: c.queries,
      merged: c.merged,
      started: c.started,
      udpSent: c.udpSent,
      tcpSent: c.tcpSent,
      timeouts: c.timeouts,
      ignored: { ...c.ignored },
      inFlight: this.running,
      queued: this.queue.length - this.queueHead,
      socketsOpened: c.socketsOpened,
      socketsOpen: this.openSlots.size,
    };
  }

  query<T extends RecordType>(name: string, type: T, options?: QueryOptions): Promise<DnsResult<T>> {
    this.counters.queries++;
    if (this.closed) return Promise.resolve({ status: 'error', message: 'resolver closed' });
    if (TYPE[type] === undefined)
      return Promise.resolve({ status: 'error', message: `unsupported type ${type}` });
    let labels: Uint8Array[];
    try {
      labels = parseName(name);
    } catch (err) {
      return Promise.resolve({ status: 'error', message: (err as Error).message });
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.resolve(abortResult(signal) as DnsResult<T>);
    const canonical = formatName(labels);
    const key = `${canonical.toLowerCase()}/${type}`;
    return new Promise<DnsResult<T>>((resolve) => {
      let task = this.inflight.get(key);
      if (task) {
        this.counters.merged++;
      } else {
        task = new Task(key, canonical, labels, type);
        this.inflight.set(key, task);
      }
      const waiter: Waiter = { resolve: resolve as (r: AnyResult) => void, signal, onAbort: undefined };
      if (signal) {
        const t = task;
        waiter.onAbort = () => this.abortWaiter(t, waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      task.waiters.push(waiter);
      if (task.state === 'queued' && task.waiters.length === 1) this.schedule(task);
    });
  }

  /** Settles every pending query with status 'error', closes sockets, clears timers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const task of [...this.inflight.values()])
      this.finish(task, { status: 'error', message: 'resolver closed' });
    this.queue.length = 0;
    this.queueHead = 0;
    await Promise.all([...this.openSlots].map((slot) => this.closeSlot(slot)));
  }

  // --- scheduling ---------------------------------------------------------------------------

  private schedule(task: Task): void {
    if (this.running < this.maxInFlight) this.start(task);
    else this.queue.push(task);
  }

  private start(task: Task): void {
    this.running++;
    this.counters.started++;
    task.state = 'running';
    task.firstServer = this.rotate ? this.rotation++ % this.servers.length : 0;
    this.nextTry(task);
  }

  private pump(): void {
    while (this.running < this.maxInFlight && this.queueHead < this.queue.length) {
      const task = this.queue[this.queueHead++]!;
      if (task.state === 'queued') this.start(task);
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  private abortWaiter(task: Task, waiter: Waiter): void {
    const i = task.waiters.indexOf(waiter);
    if (i < 0) return;
    task.waiters.splice(i, 1);
    waiter.resolve(abortResult(waiter.signal!));
    if (task.waiters.length === 0) this.finish(task, { status: 'error', message: 'aborted' });
  }

  private finish(task: Task, result: AnyResult): void {
    if (task.state === 'done') return;
    const wasRunning = task.state === 'running';
    task.state = 'done';
    if (task.timer) clearTimeout(task.timer);
    task.timer = null;
    this.dropTcp(task);
    for (const { slot, id } of task.registrations) {
      if (slot.pending.get(id)?.task === task) slot.pending.delete(id);
      if (slot.retired && slot.pending.size === 0) void this.closeSlot(slot);
    }
    task.registrations.length = 0;
    if (this.inflight.get(task.key) === task) this.inflight.delete(task.key);
    const waiters = task.waiters.splice(0);
    for (const w of waiters) {
      if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort);
      w.resolve(result);
    }
    if (wasRunning) {
      this.running--;
      if (!this.closed) this.pump();
    }
  }

  // --- tries ----------------------------------------------------------------------------------

  private failureResult(task: Task): AnyResult {
    let f = task.rcodeFailure ?? task.lastFailure ?? { status: 'timeout', message: 'no answer' };
    // a server that only ever sent garbage is broken, not slow
    if (!task.rcodeFailure && task.malformed && f.status === 'timeout') {
      f = { status: 'error', message: `malformed reply: ${task.malformed}; ${f.message}` };
    }
    let message = f.message;
    if (task.rcodeFailure && task.lastFailure && task.lastFailure !== task.rcodeFailure) {
      message += `; last try: ${task.lastFailure.message}`;
    }
    return { status: f.status, message: `${task.name}/${task.type}: ${message}` };
  }

  private nextTry(task: Task): void {
    if (task.state !== 'running') return;
    if (task.timer) clearTimeout(task.timer);
    task.timer = null;
    const n = this.servers.length;
    let server = -1;
    while (task.tries < this.totalTries) {
      const candidate = (task.firstServer + task.tries++) % n;
      if (!task.failedServers?.has(candidate)) {
        server = candidate;
        break;
      }
    }
    if (server < 0) {
      this.finish(task, this.failureResult(task));
      return;
    }
    task.server = server;
    const edns = this.udpPayloadSize !== false && this.noEdnsUntil[server]! <= Date.now();
    this.sendUdp(task, server, edns);
  }

  private armTimer(task: Task, server: number, what: string): void {
    if (task.timer) clearTimeout(task.timer);
    task.timer = setTimeout(() => {
      task.timer = null;
      this.counters.timeouts++;
      this.dropTcp(task);
      task.lastFailure = {
        status: 'timeout',
        message: `${what} timeout after ${this.timeoutMs} ms from ${formatServer(this.servers[server]!)}`,
      };
      this.nextTry(task);
    }, this.timeoutMs);
  }

  private slotFor(server: number): UdpSlot {
    const pool = this.pools[server]!;
    const i = this.poolNext[server]!;
    this.poolNext[server] = (i + 1) % pool.length;
    let slot = pool[i];
    if (!slot || slot.retired) {
      slot = this.openSlot(server);
      pool[i] = slot;
    }
    return slot;
  }

  private openSlot(server: number): UdpSlot {
    const addr = this.servers[server]!;
    const socket = dgram.createSocket({ type: addr.family === 4 ? 'udp4' : 'udp6' });
    const slot = new UdpSlot(socket, server);
    socket.on('message', (msg, rinfo) => this.onDatagram(slot, msg, rinfo));
    socket.on('error', (err) => this.onSlotError(slot, err));
    // connect() binds to a random ephemeral port and fixes the peer
    socket.connect(addr.port, addr.host, () => {
      const backlog = slot.backlog;
      slot.backlog = null;
      if (slot.closed || !backlog) return;
      for (const { packet, task } of backlog) this.transmit(slot, packet, task);
    });
    socket.unref();
    this.openSlots.add(slot);
    this.counters.socketsOpened++;
    return slot;
  }

  /** A send error (ENOBUFS, EPERM from a firewall, …) fails this packet's try only. */
  private transmit(slot: UdpSlot, packet: Buffer, task: Task): void {
    slot.socket.send(packet, (err) => {
      if (!err || task.state !== 'running' || task.server !== slot.server || task.tcp) return;
      task.lastFailure = {
        status: 'error',
        message: `send to ${formatServer(this.servers[slot.server]!)}: ${err.message}`,
      };
      this.nextTry(task);
    });
  }

  /**
   * connect() failed, or the kernel reported an ICMP error for this server (ECONNREFUSED:
   * nothing listens on that port). Every try waiting on this socket stops waiting, and the server
   * is not asked again for those questions.
   */
  private onSlotError(slot: UdpSlot, err: Error): void {
    const addr = this.servers[slot.server]!;
    const failure: Failure = { status: 'error', message: `${formatServer(addr)}: ${err.message}` };
    if (slot.backlog || slot.closed) this.retire(slot);
    for (const [id, reg] of [...slot.pending]) {
      slot.pending.delete(id);
      const task = reg.task;
      if (task.state !== 'running') continue;
      task.rcodeFailure = failure;
      markFailed(task, slot.server);
      if (task.server === slot.server && !task.tcp) this.nextTry(task);
    }
    if (slot.retired && slot.pending.size === 0) void this.closeSlot(slot);
  }

  private retire(slot: UdpSlot): void {
    if (slot.retired) return;
    slot.retired = true;
    if (slot.pending.size === 0) void this.closeSlot(slot);
  }

  private closeSlot(slot: UdpSlot): Promise<void> {
    this.openSlots.delete(slot);
    if (slot.closed) return Promise.resolve();
    slot.closed = true;
    slot.retired = true;
    return new Promise((resolve) => {
      try {
        slot.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  /** The query for `task` with `id`; null, the task finished with the error, if it cannot be encoded. */
  private queryPacket(task: Task, id: number, edns: boolean): Buffer | null {
    try {
      return encodeQuery({
        id,
        name: task.labels,
        type: task.type,
        edns: edns ? { udpPayloadSize: this.udpPayloadSize as number } : false,
      });
    } catch (err) {
      this.finish(task, { status: 'error', message: (err as Error).message });
      return null;
    }
  }

  private sendUdp(task: Task, server: number, edns: boolean): void {
    const slot = this.slotFor(server);
    let id = this.ids.next();
    while (slot.pending.has(id)) id = this.ids.next();
    const packet = this.queryPacket(task, id, edns);
    if (!packet) return;
    slot.pending.set(id, { task, server, edns });
    task.registrations.push({ slot, id });
    if (++slot.sent >= this.queriesPerSocket) this.retire(slot);
    this.counters.udpSent++;
    this.armTimer(task, server, 'UDP');
    if (slot.backlog) slot.backlog.push({ packet, task });
    else this.transmit(slot, packet, task);
  }

  private onDatagram(slot: UdpSlot, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const ignored = this.counters.ignored;
    if (msg.length < 12) {
      ignored.malformed++;
      return;
    }
    const id = (msg[0]! << 8) | msg[1]!;
    const reg = slot.pending.get(id);
    if (!reg) {
      ignored.unknownId++;
      return;
    }
    const addr = this.servers[reg.server]!;
    if (rinfo.port !== addr.port || !sameHost(addr, rinfo.address)) {
      ignored.wrongSource++;
      return;
    }
    let reply: DnsMessage;
    try {
      reply = decodeMessage(msg);
    } catch (err) {
      ignored.malformed++;
      reg.task.malformed = (err as Error).message;
      return;
    }
    if (!this.answersQuestion(reply, reg.task)) {
      ignored.mismatched++;
      return;
    }
    slot.pending.delete(id);
    if (slot.retired && slot.pending.size === 0) void this.closeSlot(slot);
    this.onReply(reg.task, reply, reg.server, reg.edns, 'udp');
  }

  private answersQuestion(reply: DnsMessage, task: Task): boolean {
    if (!reply.qr || reply.opcode !== 0) return false;
    if (reply.questions.length === 0) {
      // servers that do not understand EDNS may answer FORMERR without the question
      return reply.rcode === RCODE.FORMERR || reply.rcode === RCODE.NOTIMP;
    }
    if (reply.questions.length !== 1) return false;
    const q = reply.questions[0]!;
    return q.type === TYPE[task.type] && q.class === CLASS_IN && namesEqual(q.name, task.name);
  }

  private onReply(
    task: Task,
    reply: DnsMessage,
    server: number,
    edns: boolean,
    transport: 'udp' | 'tcp',
  ): void {
    if (task.state !== 'running') return;
    if (transport === 'udp' && reply.tc) {
      if (!task.tcp) this.startTcp(task, server, edns);
      return;
    }
    const outcome = interpretResponse(reply, task.name, task.type);
    if (outcome.final) {
      this.finish(task, outcome.result);
      return;
    }
    const label = `${outcome.message} from ${formatServer(this.servers[server]!)}`;
    if (outcome.ednsProblem && edns) {
      // RFC 6891 §7: a server that rejects the OPT record is asked again without one
      this.noEdnsUntil[server] = Date.now() + NO_EDNS_MS;
      if (task.server === server && !task.tcp) {
        this.sendUdp(task, server, false);
        return;
      }
    }
    task.rcodeFailure = { status: outcome.status, message: label };
    markFailed(task, server);
    // a late answer to an earlier try only marks that server; the current try keeps running
    if (task.server === server) {
      this.dropTcp(task);
      this.nextTry(task);
    }
  }

  // --- TCP ------------------------------------------------------------------------------------

  private dropTcp(task: Task): void {
    const s = task.tcp;
    if (!s) return;
    task.tcp = null;
    s.destroy();
  }

  private startTcp(task: Task, server: number, edns: boolean): void {
    const addr = this.servers[server]!;
    const id = this.ids.next();
    const packet = this.queryPacket(task, id, edns);
    if (!packet) return;
    this.counters.tcpSent++;
    task.server = server;
    const socket = net.connect({ host: addr.host, port: addr.port });
    task.tcp = socket;
    this.armTimer(task, server, 'TCP');
    socket.setNoDelay(true);
    const frame = Buffer.allocUnsafe(2 + packet.length);
    frame.writeUInt16BE(packet.length, 0);
    packet.copy(frame, 2);
    socket.write(frame);
    let chunks: Buffer[] = [];
    let have = 0;
    const fail = (message: string): void => {
      if (task.tcp !== socket) return;
      this.dropTcp(task);
      task.lastFailure = { status: 'error', message: `TCP ${formatServer(addr)}: ${message}` };
      this.nextTry(task);
    };
    socket.on('data', (chunk: Buffer) => {
      if (task.tcp !== socket) return;
      chunks.push(chunk);
      have += chunk.length;
      if (have < 2) return;
      const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, have);
      chunks = [buf];
      const len = buf.readUInt16BE(0);
      if (have < 2 + len) return;
      let reply: DnsMessage;
      try {
        reply = decodeMessage(buf.subarray(2, 2 + len));
      } catch (err) {
        fail(`malformed reply: ${(err as Error).message}`);
        return;
      }
      if (reply.id !== id || !this.answersQuestion(reply, task)) {
        fail('reply does not match the query');
        return;
      }
      this.dropTcp(task);
      this.onReply(task, reply, server, edns, 'tcp');
    });
    socket.on('error', (err) => fail(err.message));
    socket.on('close', () => fail('connection closed before the answer'));
  }
}

function positive(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${what} must be a positive number`);
  return Math.ceil(value);
}
