/**
 * Fuzzes the milter codec and session: conversations as an MTA would send them (every protocol
 * version, flag set, address family), mutated at frame level (dropped, repeated, swapped and
 * unknown commands, bad lengths, truncated data, huge macros, random bytes) and cut into chunks
 * of random sizes. Each input runs through a FrameDecoder and a MilterSession, with a stub handler
 * or (one input in eight) the real adapter and engine over an instant resolver. Invariants:
 * - the decoder returns frames or throws MilterProtocolError; the session's receive() resolves or
 *   rejects with MilterProtocolError — anything else is a crash;
 * - an input never takes over a second (a hang);
 * - the session answers exactly the steps the negotiation says are owed: one final response
 *   (after any modifications, at end of message only), none for the others;
 * - memory stays bounded: the decoder holds less than a frame, the session's macros stay under
 *   their limit, and the heap stays under 512 MB.
 *
 *   node fuzz/milter.ts [frames=1000000] [--seed N]
 *
 * Prints JSON {inputs, frames, ..., crashes, ms}; exit status 1 on any crash.
 */
import { Engine, staticPolicy } from '../src/engine/engine.ts';
import type { DnsResult, RecordType, Resolver } from '../src/dns/types.ts';
import { defaultConfig } from '../src/policy/config.ts';
import { MilterAdapter } from '../src/adapters/milter/adapter.ts';
import { type MilterHandler, MilterSession, replyOwed } from '../src/adapters/milter/session.ts';
import {
  type ConnectFamily,
  decodeCommand,
  decodeResponse,
  encodeCommand,
  encodeFrame,
  FINAL_RESPONSES,
  FrameDecoder,
  type MilterCommand,
  MilterProtocolError,
  type MilterResponse,
  SMFIC,
} from '../src/adapters/milter/wire.ts';
import { prng } from './support/prng.ts';

export { prng };

type Rng = () => number;
const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)]!;

/** The decoder's frame limit and the session's macro limit in these runs. */
export const MAX_FRAME = 131_072;
export const MAX_MACRO_BYTES = 65_536;

// --- generation ------------------------------------------------------------------------------

const VERSIONS = [2, 3, 4, 5, 6, 6, 6, 7, 0, 1];
const PROTOCOLS = [0x1fffff, 0x1fffff, 0x7f, 0x3f, 0, 0x1fffff & ~0x80, 0x3fffffff];
const ACTIONS = [0x1ff, 0x1ff, 0x3f, 0x0f, 0, 0x1ef];

function macro(stage: string, rng: Rng): MilterCommand {
  const names = ['j', 'i', '_', 'v', '{client_addr}', '{daemon_name}', '{mail_addr}', '{rcpt_addr}', '{auth_authen}', '{if_addr}'];
  const macros: Array<[string, string]> = [];
  const n = int(rng, 4);
  for (let k = 0; k < n; k++) macros.push([pick(rng, names), pick(rng, ['', 'mx.test.example', 'Postfix 3.7.11', '8.17.1.9', 'A1B2C3', '192.0.2.1', 'x'.repeat(int(rng, 300))])]);
  return { kind: 'MACRO', stage, macros };
}

function connect(rng: Rng): MilterCommand {
  const family: ConnectFamily = pick(rng, ['inet', 'inet', 'inet6', 'unix', 'unknown']);
  const address =
    family === 'inet'
      ? pick(rng, ['192.0.2.1', '198.51.100.7', '127.0.0.1', '999.1.1.1', ''])
      : family === 'inet6'
        ? pick(rng, ['::1', 'IPv6:0:0:0:0:0:0:0:1', '2001:db8::25', '::ffff:192.0.2.1', 'fe80::1%eth0', 'nonsense'])
        : family === 'unix'
          ? '/var/run/smtp.sock'
          : '';
  return { kind: 'CONNECT', hostname: pick(rng, ['[192.0.2.1]', 'localhost', 'mx.example.com', '']), family, port: int(rng, 65536), address };
}

/** A conversation an MTA could send (before mutation). */
export function conversation(rng: Rng): MilterCommand[] {
  const out: MilterCommand[] = [];
  const sessions = 1 + (int(rng, 5) === 0 ? 1 : 0);
  for (let s = 0; s < sessions; s++) {
    out.push({ kind: 'OPTNEG', version: pick(rng, VERSIONS), actions: pick(rng, ACTIONS), protocol: pick(rng, PROTOCOLS) });
    out.push(macro('C', rng), connect(rng));
    const helos = int(rng, 3);
    for (let h = 0; h < helos; h++) out.push(macro('H', rng), { kind: 'HELO', name: pick(rng, ['mx.example.com', 'example.com', '[192.0.2.1]', 'bad\r\nname', '']) });
    const messages = int(rng, 4);
    for (let m = 0; m < messages; m++) {
      out.push(macro('M', rng), { kind: 'MAIL', args: [pick(rng, ['<a@example.com>', '<>', '<x@example.net>', '<b@temp.example>', 'a\nb']), ...(int(rng, 2) ? ['SIZE=100', 'BODY=8BITMIME'] : [])] });
      const rcpts = int(rng, 4);
      for (let r = 0; r < rcpts; r++) out.push(macro('R', rng), { kind: 'RCPT', args: [pick(rng, ['<b@example.org>', '<c@example.org>', '<postmaster>'])] });
      if (int(rng, 6) === 0) {
        out.push({ kind: 'ABORT' });
        continue;
      }
      if (int(rng, 2)) out.push({ kind: 'DATA' });
      const headers = int(rng, 6);
      for (let k = 0; k < headers; k++) {
        out.push({
          kind: 'HEADER',
          name: pick(rng, ['Subject', 'From', 'Authentication-Results', 'Received', 'X-Long']),
          value: pick(rng, [' hi', 'mx.receiver.example; spf=pass', ' folded\n\tline', '', 'ü', ' [SPAM] old']),
        });
      }
      out.push({ kind: 'EOH' });
      const chunks = int(rng, 3);
      for (let k = 0; k < chunks; k++) out.push({ kind: 'BODY', chunk: Buffer.alloc(int(rng, 2000), 0x61) });
      out.push(macro('E', rng), { kind: 'BODYEOB', chunk: int(rng, 8) === 0 ? Buffer.from('tail\r\n') : Buffer.alloc(0) });
      out.push({ kind: 'ABORT' });
      if (int(rng, 3) === 0) out.push({ kind: 'ABORT' });
    }
    if (int(rng, 10) === 0) out.push({ kind: 'UNKNOWN', line: 'XYZZY' });
    out.push(s < sessions - 1 ? { kind: 'QUIT_NC' } : { kind: 'QUIT' });
  }
  return out;
}

const INTERESTING_LENGTHS = [0, 1, 2, 4, 5, 12, 13, 0xffff, 0x10000, 0x10001, MAX_FRAME, MAX_FRAME + 1, 0x7fffffff, 0xffffffff];

export const encodeConversation = (cmds: MilterCommand[]): Buffer[] => cmds.map(encodeCommand);

/** Frame-level and byte-level mutations of a conversation. */
export function mutate(rng: Rng, frames: Buffer[]): Buffer[] {
  const out = [...frames];
  const rounds = int(rng, 4);
  for (let r = 0; r < rounds && out.length > 0; r++) {
    const at = int(rng, out.length);
    switch (int(rng, 11)) {
      case 0: // drop a frame
        out.splice(at, 1);
        break;
      case 1: // repeat one
        out.splice(at, 0, out[at]!);
        break;
      case 2: {
        // swap two
        const b = int(rng, out.length);
        [out[at], out[b]] = [out[b]!, out[at]!];
        break;
      }
      case 3: {
        // another command byte (known or not)
        const f = Buffer.from(out[at]!);
        if (f.length > 4) f[4] = int(rng, 2) ? pick(rng, Object.values(SMFIC)) : int(rng, 256);
        out[at] = f;
        break;
      }
      case 4: {
        // a wrong length field
        const f = Buffer.from(out[at]!);
        if (f.length >= 4) f.writeUInt32BE(int(rng, 2) ? pick(rng, INTERESTING_LENGTHS) : Math.max(0, f.readUInt32BE(0) + int(rng, 9) - 4), 0);
        out[at] = f;
        break;
      }
      case 5: {
        // truncated data (length kept consistent)
        const f = out[at]!;
        if (f.length > 5) out[at] = encodeFrame(f[4]!, f.subarray(5, 5 + int(rng, f.length - 5)));
        break;
      }
      case 6: {
        // a flipped byte in the data
        const f = Buffer.from(out[at]!);
        if (f.length > 5) {
          const i = 5 + int(rng, f.length - 5);
          f[i] = f[i]! ^ (1 << int(rng, 8));
        }
        out[at] = f;
        break;
      }
      case 7: // a huge macro
        out.splice(at, 0, encodeCommand({ kind: 'MACRO', stage: pick(rng, ['C', 'M', 'E', 'Z']), macros: [['{big}', 'x'.repeat(pick(rng, [20_000, 70_000, 130_000]))]] }));
        break;
      case 8: // random bytes
        out.splice(at, 0, Buffer.from(Array.from({ length: int(rng, 40) }, () => int(rng, 256))));
        break;
      case 9: // a random well-framed command
        out.splice(at, 0, encodeFrame(pick(rng, Object.values(SMFIC)), Buffer.from(Array.from({ length: int(rng, 30) }, () => pick(rng, [0, 0x34, 0x36, 0x4c, 0x55, 0x41, 0x3c, 0x3e])))));
        break;
      default: // many headers at once
        for (let k = 0; k < 50; k++) out.splice(at, 0, encodeCommand({ kind: 'HEADER', name: `X-${k}`, value: 'v' }));
    }
  }
  return out;
}

/** Cuts bytes into chunks of random sizes (partial and coalesced frames). */
export function chunk(rng: Rng, bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = pick(rng, [1, 3, 5, 7, 64, 1024, 65536, bytes.length]);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

// --- the session under test ------------------------------------------------------------------

/** A handler that answers at random, as any filter might (what MTAs accept only). */
function stubHandler(rng: Rng): MilterHandler {
  const step = (): MilterResponse => pick(rng, [{ kind: 'CONTINUE' }, { kind: 'CONTINUE' }, { kind: 'ACCEPT' }, { kind: 'REJECT' }, { kind: 'TEMPFAIL' }, { kind: 'REPLYCODE', text: '550 5.7.1 no' }]);
  return {
    wants: () => ({ actions: pick(rng, [0x1ff, 0x11, 0]), protocol: pick(rng, [0x1fffff, 0x1ff780, 0x100480, 0]), macros: { 0: ['j', '{client_addr}'], 5: ['i'] } }),
    connect: step,
    helo: step,
    mail: () => (int(rng, 3) === 0 ? Promise.resolve(pick(rng, [{ kind: 'DISCARD' } as const, { kind: 'CONTINUE' } as const])) : step()),
    rcpt: step,
    header: () => ({ kind: 'CONTINUE' }),
    body: () => pick(rng, [{ kind: 'CONTINUE' }, { kind: 'SKIP' }]),
    endOfMessage: async () => ({
      modifications: [
        { kind: 'INSHEADER', index: 0, name: 'X-A', value: ' 1' },
        { kind: 'CHGHEADER', index: 1, name: 'Subject', value: '' },
        { kind: 'QUARANTINE', reason: 'test' },
        { kind: 'REPLBODY', chunk: Buffer.alloc(int(rng, 3) === 0 ? 70_000 : 10) },
      ],
      final: pick(rng, [{ kind: 'ACCEPT' }, { kind: 'CONTINUE' }, { kind: 'DISCARD' }, { kind: 'TEMPFAIL' }]),
    }),
  };
}

/** Every name answers NXDOMAIN at once: the engine runs all its stages without waiting. */
const instantResolver: Resolver = {
  query: async <T extends RecordType>(): Promise<DnsResult<T>> => ({ status: 'nxdomain', ttl: 60 }),
};
let engine: Engine | null = null;
function realHandler(): MilterHandler {
  if (!engine) {
    const config = defaultConfig();
    config.authservId = 'mx.receiver.example';
    config.filter.subjectTag = '[SPAM]';
    engine = new Engine({ resolver: instantResolver, policy: staticPolicy(config, instantResolver) });
  }
  return new MilterAdapter({ engine, quarantine: 'held by checkid' });
}

export interface Outcome {
  frames: number;
  /** the input ended cleanly, or with a protocol error (decoder or session) */
  end: 'ok' | 'decoder-error' | 'session-error';
  replies: number;
  maxBuffered: number;
  maxMacroBytes: number;
}

export class FuzzCrash extends Error {
  override name = 'FuzzCrash';
}

/** Runs one input; throws FuzzCrash (or whatever escaped) when an invariant breaks. */
export async function runInput(bytes: Buffer, rng: Rng, options: { real?: boolean } = {}): Promise<Outcome> {
  const written: MilterResponse[] = [];
  const session = new MilterSession(options.real ? realHandler() : stubHandler(rng), {
    send: (b) => {
      for (const f of new FrameDecoder(1 << 20).push(b)) written.push(decodeResponse(f));
    },
    progressIntervalMs: 0,
    maxMacroBytes: MAX_MACRO_BYTES,
  });
  const decoder = new FrameDecoder(MAX_FRAME);
  const outcome: Outcome = { frames: 0, end: 'ok', replies: 0, maxBuffered: 0, maxMacroBytes: 0 };
  for (const piece of chunk(rng, bytes)) {
    let frames: ReturnType<FrameDecoder['push']>;
    try {
      frames = decoder.push(piece);
    } catch (err) {
      if (!(err instanceof MilterProtocolError)) throw err;
      outcome.end = 'decoder-error';
      return outcome;
    }
    outcome.maxBuffered = Math.max(outcome.maxBuffered, decoder.buffered);
    if (decoder.buffered > MAX_FRAME + 4) throw new FuzzCrash(`decoder holds ${decoder.buffered} bytes`);
    for (const frame of frames) {
      outcome.frames++;
      let kind: MilterCommand['kind'] | null = null;
      try {
        kind = decodeCommand(frame).kind;
      } catch {
        // the session must reject it too
      }
      const agreed = session.negotiated;
      const expect = kind === 'OPTNEG' ? 1 : kind && agreed && replyOwed(agreed, kind) ? 1 : 0;
      const before = written.length;
      try {
        await session.receive(frame);
      } catch (err) {
        if (!(err instanceof MilterProtocolError)) throw err;
        outcome.end = 'session-error';
        return outcome;
      }
      if (kind === null) throw new FuzzCrash(`the session took a frame the codec refuses (0x${frame.code.toString(16)})`);
      const sent = written.slice(before);
      const finals = sent.filter((r) => FINAL_RESPONSES.has(r.kind) || r.kind === 'OPTNEG');
      if (finals.length !== expect) throw new FuzzCrash(`${kind}: ${finals.length} replies where ${expect} owed`);
      if (kind !== 'BODYEOB' && sent.length !== finals.length) throw new FuzzCrash(`${kind}: modifications outside end of message`);
      if (finals.length === 1 && sent[sent.length - 1] !== finals[0]) throw new FuzzCrash(`${kind}: the final reply is not last`);
      outcome.replies += finals.length;
      outcome.maxMacroBytes = Math.max(outcome.maxMacroBytes, session.macroBytesHeld);
      if (session.macroBytesHeld > MAX_MACRO_BYTES) throw new FuzzCrash(`macros hold ${session.macroBytesHeld} bytes`);
      if (session.closed) return outcome;
    }
  }
  return outcome;
}

/** Hand-made hostile inputs: each must end in a clean protocol error or a clean close. */
export function seedInputs(): Array<{ name: string; bytes: Buffer; expect: Outcome['end'] }> {
  const opt = encodeCommand({ kind: 'OPTNEG', version: 6, actions: 0x1ff, protocol: 0x1fffff });
  const conn = Buffer.concat([opt, encodeCommand({ kind: 'CONNECT', hostname: 'mx', family: 'inet', port: 25, address: '192.0.2.1' })]);
  const inMessage = Buffer.concat([conn, encodeCommand({ kind: 'MAIL', args: ['<a@example.com>'] })]);
  const frame = (code: number, data: number[] | Buffer = []) => encodeFrame(code, Buffer.from(data));
  const len = (n: number, code = 0x4f) => Buffer.concat([Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]), Buffer.from([code])]);
  const big = (stage: string, n: number) => encodeCommand({ kind: 'MACRO', stage, macros: [['{big}', 'x'.repeat(n)]] });
  const cmd = (c: MilterCommand) => encodeCommand(c);
  return [
    { name: 'frame length 0', bytes: Buffer.from([0, 0, 0, 0]), expect: 'decoder-error' },
    { name: 'frame length 2^32-1', bytes: len(0xffffffff), expect: 'decoder-error' },
    { name: 'frame one byte over the limit', bytes: len(MAX_FRAME + 1), expect: 'decoder-error' },
    { name: 'unknown command Z', bytes: frame(0x5a), expect: 'session-error' },
    { name: 'OPTNEG of 8 bytes', bytes: frame(SMFIC.OPTNEG, [0, 0, 0, 6, 0, 0, 1, 0xff]), expect: 'session-error' },
    { name: 'OPTNEG version 1', bytes: cmd({ kind: 'OPTNEG', version: 1, actions: 0xf, protocol: 0x3f }), expect: 'session-error' },
    { name: 'CONNECT before OPTNEG', bytes: conn.subarray(opt.length), expect: 'session-error' },
    { name: 'second OPTNEG', bytes: Buffer.concat([conn, opt]), expect: 'session-error' },
    { name: 'second CONNECT', bytes: Buffer.concat([conn, conn.subarray(opt.length)]), expect: 'session-error' },
    { name: 'RCPT before MAIL', bytes: Buffer.concat([conn, cmd({ kind: 'RCPT', args: ['<b@example.org>'] })]), expect: 'session-error' },
    { name: 'HEADER after BODY', bytes: Buffer.concat([inMessage, cmd({ kind: 'BODY', chunk: Buffer.from('x') }), cmd({ kind: 'HEADER', name: 'A', value: 'b' })]), expect: 'session-error' },
    { name: 'end of message outside a message', bytes: Buffer.concat([conn, cmd({ kind: 'BODYEOB', chunk: Buffer.alloc(0) })]), expect: 'session-error' },
    { name: 'one macro over the limit', bytes: Buffer.concat([opt, big('C', 100_000)]), expect: 'session-error' },
    { name: 'macros over the limit across stages', bytes: Buffer.concat([opt, big('C', 30_000), big('H', 30_000), big('M', 30_000)]), expect: 'session-error' },
    { name: 'a macro frame over the frame limit', bytes: Buffer.concat([opt, big('C', MAX_FRAME)]), expect: 'decoder-error' },
    { name: 'MACRO for an unknown step', bytes: Buffer.concat([opt, frame(SMFIC.MACRO, [0x5a, 0x6a, 0, 0x78, 0])]), expect: 'session-error' },
    { name: 'MACRO name without value', bytes: Buffer.concat([opt, frame(SMFIC.MACRO, [0x43, 0x6a, 0])]), expect: 'session-error' },
    { name: 'CONNECT with family X', bytes: Buffer.concat([opt, frame(SMFIC.CONNECT, [0x6d, 0, 0x58, 0, 25, 0x31, 0])]), expect: 'session-error' },
    { name: 'CONNECT without NUL', bytes: Buffer.concat([opt, frame(SMFIC.CONNECT, [0x6d, 0x78])]), expect: 'session-error' },
    { name: 'CONNECT without port', bytes: Buffer.concat([opt, frame(SMFIC.CONNECT, [0x6d, 0, 0x34, 0])]), expect: 'session-error' },
    { name: 'MAIL without arguments', bytes: Buffer.concat([conn, frame(SMFIC.MAIL)]), expect: 'session-error' },
    { name: 'HEADER with one string', bytes: Buffer.concat([inMessage, frame(SMFIC.HEADER, [0x41, 0])]), expect: 'session-error' },
    { name: 'frames after QUIT are not read', bytes: Buffer.concat([conn, cmd({ kind: 'QUIT' }), cmd({ kind: 'ABORT' }), frame(0x5a)]), expect: 'ok' },
    { name: 'QUIT_NC, then a new SMTP session', bytes: Buffer.concat([conn, cmd({ kind: 'QUIT_NC' }), conn, cmd({ kind: 'QUIT' })]), expect: 'ok' },
    {
      name: '20,000 headers, then end of message',
      bytes: Buffer.concat([
        inMessage,
        ...Array.from({ length: 20_000 }, (_, k) => cmd({ kind: 'HEADER', name: `X-${k % 7}`, value: ' v' })),
        cmd({ kind: 'EOH' }),
        cmd({ kind: 'BODYEOB', chunk: Buffer.alloc(0) }),
        cmd({ kind: 'QUIT' }),
      ]),
      expect: 'ok',
    },
    { name: 'garbage', bytes: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), expect: 'decoder-error' },
  ];
}

/** Runs `frames` frames' worth of generated inputs; the counts and any crash samples. */
export async function fuzz(frames: number, seed: number) {
  const rng = prng(seed);
  const stats = { inputs: 0, frames: 0, bytes: 0, ok: 0, decoderErrors: 0, sessionErrors: 0, replies: 0, realAdapter: 0, crashes: 0, hangs: 0, maxBufferedBytes: 0, maxMacroBytes: 0, maxHeapMb: 0 };
  const samples: Array<{ error: string; hex: string }> = [];
  const heapLimit = 512 * 1024 * 1024;
  while (stats.frames < frames) {
    const bytes = Buffer.concat(mutate(rng, encodeConversation(conversation(rng))));
    const real = int(rng, 8) === 0;
    stats.inputs++;
    stats.bytes += bytes.length;
    if (real) stats.realAdapter++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new FuzzCrash('hang: an input took over a second')), 1000);
      });
      const o = await Promise.race([runInput(bytes, rng, { real }), hang]);
      stats.frames += o.frames;
      stats.replies += o.replies;
      if (o.end === 'ok') stats.ok++;
      else if (o.end === 'decoder-error') stats.decoderErrors++;
      else stats.sessionErrors++;
      stats.maxBufferedBytes = Math.max(stats.maxBufferedBytes, o.maxBuffered);
      stats.maxMacroBytes = Math.max(stats.maxMacroBytes, o.maxMacroBytes);
    } catch (err) {
      stats.frames++;
      if ((err as Error).message?.startsWith('hang')) stats.hangs++;
      stats.crashes++;
      if (samples.length < 5) samples.push({ error: String((err as Error)?.stack ?? err), hex: bytes.subarray(0, 2000).toString('hex') });
    } finally {
      clearTimeout(timer);
    }
    if (stats.inputs % 1000 === 0) {
      const heap = process.memoryUsage().heapUsed;
      stats.maxHeapMb = Math.max(stats.maxHeapMb, Math.round(heap / 1048576));
      if (heap > heapLimit) {
        stats.crashes++;
        samples.push({ error: `heap ${Math.round(heap / 1048576)} MB over the limit`, hex: '' });
        break;
      }
    }
  }
  return { stats, samples };
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const seedAt = argv.indexOf('--seed');
  const seed = seedAt >= 0 ? Number(argv[seedAt + 1]) >>> 0 : 0x5eed;
  const positional = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--seed');
  const total = positional[0] ? Number(positional[0]) : 1_000_000;
  if (!(total > 0)) throw new Error('usage: node fuzz/milter.ts [frames] [--seed N]');
  const start = performance.now();
  let seedCrashes = 0;
  const rng = prng(seed);
  for (const s of seedInputs()) {
    try {
      const o = await runInput(s.bytes, rng);
      if (o.end !== s.expect) throw new FuzzCrash(`seed "${s.name}": ended ${o.end}, expected ${s.expect}`);
    } catch (err) {
      seedCrashes++;
      process.stderr.write(`${(err as Error).stack}\n`);
    }
  }
  const { stats, samples } = await fuzz(total, seed);
  const ms = Math.round(performance.now() - start);
  process.stdout.write(`${JSON.stringify({ fuzz: 'milter', seed, ...stats, seeds: seedInputs().length, seedCrashes, crashes: stats.crashes + seedCrashes, ms, ...(samples.length ? { samples } : {}) })}\n`);
  process.exit(stats.crashes + seedCrashes > 0 ? 1 : 0);
}
