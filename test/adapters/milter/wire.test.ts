/** The milter codec: every command and response round-trips, frames arrive in pieces, bad ones are refused. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_MAX_FRAME,
  decodeCommand,
  decodeResponse,
  encodeCommand,
  encodeFrame,
  encodeResponse,
  FrameDecoder,
  type MilterCommand,
  MilterProtocolError,
  type MilterResponse,
  replyCodeText,
  SMFIC,
  SMFIR,
} from '../../../src/adapters/milter/wire.ts';

const decodeOne = (bytes: Buffer) => {
  const frames = new FrameDecoder().push(bytes);
  assert.equal(frames.length, 1);
  return frames[0]!;
};

const COMMANDS: MilterCommand[] = [
  { kind: 'OPTNEG', version: 6, actions: 0x1ff, protocol: 0x1fffff },
  { kind: 'MACRO', stage: 'C', macros: [['j', 'mx.test.example'], ['{daemon_name}', 'mx'], ['_', 'localhost [127.0.0.1]']] },
  { kind: 'MACRO', stage: 'H', macros: [] },
  { kind: 'CONNECT', hostname: '[127.0.0.1]', family: 'inet', port: 40000, address: '127.0.0.1' },
  { kind: 'CONNECT', hostname: '[IPv6:0:0:0:0:0:0:0:1]', family: 'inet6', port: 25, address: 'IPv6:0:0:0:0:0:0:0:1' },
  { kind: 'CONNECT', hostname: 'localhost', family: 'unix', port: 0, address: '/var/run/sock' },
  { kind: 'CONNECT', hostname: 'localhost', family: 'unknown', port: 0, address: '' },
  { kind: 'HELO', name: 'mx.example.com' },
  { kind: 'MAIL', args: ['<a@example.com>', 'SIZE=100', 'BODY=8BITMIME'] },
  { kind: 'MAIL', args: ['<>'] },
  { kind: 'RCPT', args: ['<b@example.org>', 'NOTIFY=NEVER'] },
  { kind: 'DATA' },
  { kind: 'HEADER', name: 'Subject', value: ' Grüße\n\tfolded' },
  { kind: 'EOH' },
  { kind: 'BODY', chunk: Buffer.from('line\r\n.dot\r\n') },
  { kind: 'BODYEOB', chunk: Buffer.alloc(0) },
  { kind: 'BODYEOB', chunk: Buffer.from('last chunk') },
  { kind: 'ABORT' },
  { kind: 'QUIT' },
  { kind: 'QUIT_NC' },
  { kind: 'UNKNOWN', line: 'XYZZY 1' },
];

test('every command of protocol versions 2 to 6 round-trips', () => {
  for (const c of COMMANDS) {
    const back = decodeCommand(decodeOne(encodeCommand(c)));
    if (back.kind === 'HEADER') {
      assert.ok(Buffer.isBuffer(back.rawValue));
      assert.deepEqual({ ...back, rawValue: undefined }, { ...c, rawValue: undefined });
    } else if (back.kind === 'BODY' || back.kind === 'BODYEOB') {
      assert.deepEqual(Buffer.from(back.chunk), (c as { chunk: Buffer }).chunk);
    } else assert.deepEqual(back, c, c.kind);
  }
});

test('CONNECT bytes as Postfix sends them for ::1 (mta.md appendix A)', () => {
  const bytes = encodeCommand({ kind: 'CONNECT', hostname: '[::1]', family: 'inet6', port: 0x8498, address: '::1' });
  assert.equal(bytes.subarray(5).toString('hex'), '5b3a3a315d00' + '36' + '8498' + '3a3a3100');
  assert.equal(bytes.readUInt32BE(0), bytes.length - 4);
  assert.equal(bytes[4], 0x43);
});

const RESPONSES: MilterResponse[] = [
  { kind: 'OPTNEG', version: 6, actions: 0x111, protocol: 0x1f0380 },
  { kind: 'OPTNEG', version: 6, actions: 0x100, protocol: 0, symbols: [{ stage: 0, macros: '{client_addr} j _' }, { stage: 5, macros: 'i' }] },
  { kind: 'ACCEPT' },
  { kind: 'CONTINUE' },
  { kind: 'REJECT' },
  { kind: 'TEMPFAIL' },
  { kind: 'DISCARD' },
  { kind: 'SKIP' },
  { kind: 'PROGRESS' },
  { kind: 'CONN_FAIL' },
  { kind: 'SHUTDOWN' },
  { kind: 'REPLYCODE', text: '550 5.7.1 no' },
  { kind: 'ADDHEADER', name: 'X-A', value: 'one\n\ttwo' },
  { kind: 'INSHEADER', index: 0, name: 'Authentication-Results', value: ' mx; spf=pass' },
  { kind: 'CHGHEADER', index: 2, name: 'Authentication-Results', value: '' },
  { kind: 'ADDRCPT', rcpt: '<c@example.org>' },
  { kind: 'ADDRCPT_PAR', rcpt: '<c@example.org>', args: 'NOTIFY=NEVER' },
  { kind: 'ADDRCPT_PAR', rcpt: '<c@example.org>' },
  { kind: 'DELRCPT', rcpt: '<b@example.org>' },
  { kind: 'QUARANTINE', reason: 'held by checkid' },
  { kind: 'CHGFROM', sender: '<bounce@example.org>', args: 'RET=HDRS' },
  { kind: 'CHGFROM', sender: '<>' },
  { kind: 'REPLBODY', chunk: Buffer.from('new body\r\n') },
  { kind: 'SETSYMLIST', stage: 2, macros: 'i {mail_addr}' },
];

test('every response round-trips, with the byte the MTAs expect', () => {
  for (const r of RESPONSES) {
    const bytes = encodeResponse(r);
    const back = decodeResponse(decodeOne(bytes));
    if (r.kind === 'REPLBODY') assert.deepEqual(Buffer.from((back as typeof r).chunk), r.chunk);
    else assert.deepEqual(back, r, r.kind);
    if (r.kind !== 'OPTNEG') assert.equal(bytes[4], SMFIR[r.kind]);
  }
  // raw header bytes that are not UTF-8 come back as bytes, unchanged
  const latin1 = Buffer.from([0x20, 0x47, 0x72, 0xfc, 0xdf, 0x65]);
  const back = decodeResponse(decodeOne(encodeResponse({ kind: 'CHGHEADER', index: 1, name: 'Subject', value: latin1 })));
  assert.deepEqual(back, { kind: 'CHGHEADER', index: 1, name: 'Subject', value: latin1 });
});

test('frames split at every byte, and coalesced, decode the same', () => {
  const stream = Buffer.concat(COMMANDS.map(encodeCommand));
  const whole = new FrameDecoder().push(stream).map(decodeCommand);
  assert.equal(whole.length, COMMANDS.length);
  for (const step of [1, 2, 3, 7, 100]) {
    const d = new FrameDecoder();
    const got: MilterCommand[] = [];
    for (let at = 0; at < stream.length; at += step) {
      for (const f of d.push(stream.subarray(at, at + step))) got.push(decodeCommand(f));
    }
    assert.deepEqual(got.map((c) => c.kind), whole.map((c) => c.kind), `step ${step}`);
    assert.equal(d.buffered, 0);
  }
  // a frame's length may itself arrive in pieces
  const d = new FrameDecoder();
  const one = encodeCommand({ kind: 'HELO', name: 'x' });
  assert.deepEqual(d.push(one.subarray(0, 2)), []);
  assert.deepEqual(d.push(one.subarray(2, 4)), []);
  assert.equal(d.buffered, 4);
  assert.equal(decodeCommand(d.push(one.subarray(4))[0]!).kind, 'HELO');
});

test('a body chunk of 65535 bytes fits; lengths of 0 or over the limit are refused before buffering', () => {
  const chunk = Buffer.alloc(65535, 0x61);
  const f = decodeOne(encodeCommand({ kind: 'BODY', chunk }));
  assert.equal(f.data.length, 65535);
  const zero = new FrameDecoder();
  assert.throws(() => zero.push(Buffer.from([0, 0, 0, 0, 0x41])), (e: Error) => e instanceof MilterProtocolError && /length 0/.test(e.message));
  // the decoder stays failed
  assert.throws(() => zero.push(encodeCommand({ kind: 'ABORT' })), MilterProtocolError);
  const big = new FrameDecoder();
  const header = Buffer.alloc(4);
  header.writeUInt32BE(DEFAULT_MAX_FRAME + 1);
  assert.throws(() => big.push(header), /exceeds the limit of 131072 bytes/);
  assert.equal(big.buffered, 0);
  const small = new FrameDecoder(100);
  assert.throws(() => small.push(encodeFrame(SMFIC.BODY, Buffer.alloc(100))), /exceeds/);
  assert.equal(new FrameDecoder(101).push(encodeFrame(SMFIC.BODY, Buffer.alloc(100))).length, 1);
});

test('malformed command data is a protocol error with a clear message', () => {
  const bad: Array<[number, number[], RegExp]> = [
    [SMFIC.OPTNEG, [0, 0, 0, 6], /OPTNEG: 4 bytes, need 12/],
    [SMFIC.MACRO, [], /no stage byte/],
    [SMFIC.MACRO, [0x43, 0x6a, 0], /not name\/value pairs/],
    [SMFIC.MACRO, [0x43, 0x6a], /not NUL-terminated/],
    [SMFIC.CONNECT, [0x68], /CONNECT hostname: string not NUL-terminated/],
    [SMFIC.CONNECT, [0x68, 0], /no address family/],
    [SMFIC.CONNECT, [0x68, 0, 0x58], /unknown address family 'X'/],
    [SMFIC.CONNECT, [0x68, 0, 0x34, 0], /no port/],
    [SMFIC.CONNECT, [0x68, 0, 0x34, 0, 25, 0x31], /CONNECT address: string not NUL-terminated/],
    [SMFIC.CONNECT, [0x68, 0, 0x34, 0, 25, 0x31, 0, 0x32], /bytes after the address/],
    [SMFIC.HELO, [0x68], /HELO: string not NUL-terminated/],
    [SMFIC.MAIL, [], /MAIL: no address/],
    [SMFIC.RCPT, [0x3c, 0x3e], /RCPT: string not NUL-terminated/],
    [SMFIC.HEADER, [0x41, 0], /HEADER: 1 strings, need name and value/],
    [SMFIC.HEADER, [0x41, 0, 0x62, 0, 0x63, 0], /HEADER: 3 strings/],
    [SMFIC.UNKNOWN, [0x78], /UNKNOWN: string not NUL-terminated/],
    [0x5a, [], /unknown command 'Z'/],
    [0x00, [], /unknown command 0x00/],
  ];
  for (const [code, data, message] of bad) {
    assert.throws(() => decodeCommand({ code, data: Buffer.from(data) }), (e: Error) => e instanceof MilterProtocolError && message.test(e.message), message.source);
  }
  // data riding on data-less commands is ignored, as libmilter does
  assert.deepEqual(decodeCommand({ code: SMFIC.ABORT, data: Buffer.from('x') }), { kind: 'ABORT' });
  assert.throws(() => decodeResponse({ code: SMFIR.CONTINUE, data: Buffer.from('x') }), /CONTINUE: unexpected 1 bytes/);
  assert.throws(() => decodeResponse({ code: 0x5a, data: Buffer.alloc(0) }), /unknown response 'Z'/);
});

test('REPLYCODE text: one line, "%" doubled, the enhanced code only when its class fits', () => {
  assert.equal(replyCodeText(550, '5.7.1', "Sending MTA '192.0.2.1' not authorized"), "550 5.7.1 Sending MTA '192.0.2.1' not authorized");
  assert.equal(replyCodeText(451, '4.4.3', '100% sure'), '451 4.4.3 100%% sure');
  assert.equal(replyCodeText(550, '4.7.1', 'class mismatch'), '550 class mismatch');
  assert.equal(replyCodeText(554, '', 'no enhanced code'), '554 no enhanced code');
  assert.throws(() => replyCodeText(250, '2.0.0', 'ok'), RangeError);
});

test('REPLYCODE text: line breaks and long text become a multi-line reply, as smfi_setmlreply builds it', () => {
  assert.equal(replyCodeText(550, '5.7.1', 'first line\nsecond line'), '550-5.7.1 first line\r\n550 5.7.1 second line');
  const long = `${'word '.repeat(150)}end`;
  const text = replyCodeText(550, '5.7.1', long);
  const lines = text.split('\r\n');
  assert.ok(lines.length >= 2);
  for (const [i, line] of lines.entries()) {
    assert.ok(Buffer.byteLength(line) <= 510, `line ${i} has ${Buffer.byteLength(line)} octets`);
    assert.match(line, i === lines.length - 1 ? /^550 5\.7\.1 / : /^550-5\.7\.1 /);
  }
  assert.equal(lines.map((l) => l.slice(10)).join(' '), long);
  // a '%' counts twice towards the line length
  for (const line of replyCodeText(451, '4.3.0', '%'.repeat(600)).split('\r\n')) assert.ok(Buffer.byteLength(line) <= 510);
  // at most 32 lines
  assert.equal(replyCodeText(550, '5.7.1', 'x\n'.repeat(40)).split('\r\n').length, 32);
});
