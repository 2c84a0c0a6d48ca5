/** The milter session: negotiation matrix, reply-owed table, macros per stage, order, SKIP, progress. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { milterWants } from '../../../src/adapters/milter/adapter.ts';
import {
  engineHeaderValue,
  type FilterWants,
  type MilterHandler,
  MilterSession,
  type MilterSessionOptions,
  negotiate,
  replyOwed,
  replyOwedFor,
  type StepContext,
  wireHeaderValue,
} from '../../../src/adapters/milter/session.ts';
import {
  decodeResponse,
  encodeCommand,
  FrameDecoder,
  type MilterCommand,
  MilterProtocolError,
  type MilterResponse,
  SMFIF,
  SMFIP,
} from '../../../src/adapters/milter/wire.ts';

const POSTFIX = { version: 6, actions: 0x1ff, protocol: 0x1fffff };
const NR_ALL =
  SMFIP.NR_CONN |
  SMFIP.NR_HELO |
  SMFIP.NR_MAIL |
  SMFIP.NR_RCPT |
  SMFIP.NR_DATA |
  SMFIP.NR_UNKN |
  SMFIP.NR_EOH |
  SMFIP.NR_BODY |
  SMFIP.NR_HDR;

test('negotiation: Postfix 3.7 / Sendmail 8.17 offer (6, 0x1ff, 0x1fffff)', () => {
  // milterWants() without a policy: one that needs everything (per-recipient answers, the body)
  const { reply, agreed } = negotiate(POSTFIX, milterWants());
  assert.equal(reply.version, 6);
  assert.equal(reply.actions, SMFIF.ADDHDRS | SMFIF.CHGHDRS | SMFIF.SETSYMLIST);
  assert.equal(
    reply.protocol,
    SMFIP.NODATA |
      SMFIP.NOUNKNOWN |
      SMFIP.NR_CONN |
      SMFIP.NR_HELO |
      SMFIP.NR_HDR |
      SMFIP.NR_EOH |
      SMFIP.NR_BODY |
      SMFIP.NR_DATA |
      SMFIP.NR_UNKN |
      SMFIP.SKIP |
      SMFIP.HDR_LEADSPC,
  );
  assert.equal(agreed.macrosRequested, true);
  // only the macros the adapter reads, and every stage listed (else the MTA sends its defaults)
  assert.deepEqual(
    reply.symbols?.map((s) => [s.stage, s.macros]),
    [
      [0, 'v {client_addr}'],
      [1, 'i'],
      [2, 'i'],
      [3, 'i'],
      [4, 'i'],
      [5, 'i'],
      [6, 'i'],
    ],
  );
  // what we owe: MAIL, RCPT and end of message, nothing else
  const owed = (
    [
      'CONNECT',
      'HELO',
      'MAIL',
      'RCPT',
      'DATA',
      'HEADER',
      'EOH',
      'BODY',
      'BODYEOB',
      'UNKNOWN',
      'MACRO',
      'ABORT',
      'QUIT',
      'QUIT_NC',
    ] as const
  ).filter((k) => replyOwed(agreed, k));
  assert.deepEqual(owed, ['MAIL', 'RCPT', 'BODYEOB']);
  assert.equal(
    negotiate(POSTFIX, milterWants({ quarantine: 'held' })).reply.actions & SMFIF.QUARANTINE,
    SMFIF.QUARANTINE,
  );
  // earlyReplies: CONNECT and HELO answered as well
  const early = negotiate(POSTFIX, milterWants({ earlyReplies: true })).agreed;
  assert.deepEqual(
    (['CONNECT', 'HELO', 'MAIL', 'RCPT', 'BODYEOB'] as const).filter((k) => replyOwed(early, k)),
    ['CONNECT', 'HELO', 'MAIL', 'RCPT', 'BODYEOB'],
  );
});

test('replyOwedFor (a frame not decoded yet, by its command byte) agrees with replyOwed for every step', () => {
  for (const protocol of [0, NR_ALL, SMFIP.NR_CONN | SMFIP.NR_BODY, milterWants().protocol]) {
    for (const cmd of [OPT(), CONN, MAIL, RCPT, EOM, { kind: 'HELO', name: 'x' }, { kind: 'DATA' }, { kind: 'HEADER', name: 'a', value: 'b' }, { kind: 'EOH' }, { kind: 'BODY', chunk: Buffer.from('x') }, { kind: 'UNKNOWN', line: 'X' }, { kind: 'MACRO', stage: 'C', macros: [] }, { kind: 'ABORT' }, { kind: 'QUIT' }, { kind: 'QUIT_NC' }] as MilterCommand[]) {
      const [frame] = new FrameDecoder().push(encodeCommand(cmd));
      assert.equal(replyOwedFor({ protocol }, frame!.code), replyOwed({ protocol }, cmd.kind), `${cmd.kind} with 0x${protocol.toString(16)}`);
    }
  }
});

test('negotiation matrix: versions 2 to 6, older and partial MTAs, offers of 0', () => {
  const wants = milterWants();
  // version 2 (Postfix before 2.6 / milter_protocol=2): V2 actions and protocol, no wish list
  const v2 = negotiate({ version: 2, actions: 0x3f, protocol: 0x7f }, wants);
  assert.deepEqual(
    [v2.reply.version, v2.reply.actions, v2.reply.protocol, v2.reply.symbols],
    [2, SMFIF.ADDHDRS | SMFIF.CHGHDRS, 0, undefined],
  );
  assert.equal(replyOwed(v2.agreed, 'HEADER'), true);
  // versions 3..5 answer with the MTA's own version; above 6 we answer 6
  for (const v of [3, 4, 5])
    assert.equal(negotiate({ version: v, actions: 0x1ff, protocol: 0x1fffff }, wants).reply.version, v);
  assert.equal(negotiate({ version: 9, actions: 0x1ff, protocol: 0x1fffff }, wants).reply.version, 6);
  assert.throws(() => negotiate({ version: 1, actions: 0xf, protocol: 0x3f }, wants), MilterProtocolError);
  // an offer of 0 means version 1's sets (libmilter)
  const zero = negotiate({ version: 6, actions: 0, protocol: 0 }, wants);
  assert.equal(zero.reply.actions, SMFIF.ADDHDRS);
  assert.equal(zero.reply.protocol, 0);
  // an MTA without CHGHDRS or SETSYMLIST: we never claim what it did not offer
  const partial = negotiate(
    { version: 6, actions: SMFIF.ADDHDRS | SMFIF.QUARANTINE, protocol: 0x1fffff },
    milterWants({ quarantine: 'q' }),
  );
  assert.equal(partial.reply.actions, SMFIF.ADDHDRS | SMFIF.QUARANTINE);
  assert.equal(partial.reply.symbols, undefined);
  // an MTA without the no-reply flags: every step is answered
  const noNr = negotiate({ version: 6, actions: 0x1ff, protocol: 0x1fffff & ~NR_ALL }, wants);
  assert.equal(noNr.reply.protocol & NR_ALL, 0);
  for (const k of ['HEADER', 'EOH', 'DATA', 'UNKNOWN'] as const)
    assert.equal(replyOwed(noNr.agreed, k), true, k);
  // a filter that wants everything gets exactly the offer
  const all = negotiate(
    { version: 6, actions: 0x1ff, protocol: 0x1fffff },
    { actions: 0x1ff, protocol: 0x1fffffff, macros: { 0: ['j'] } },
  );
  assert.deepEqual([all.reply.actions, all.reply.protocol], [0x1ff, 0x1fffff]);
  for (const k of ['CONNECT', 'HELO', 'MAIL', 'RCPT', 'DATA', 'HEADER', 'EOH', 'BODY', 'UNKNOWN'] as const)
    assert.equal(replyOwed(all.agreed, k), false, k);
  assert.equal(replyOwed(all.agreed, 'BODYEOB'), true);
});

test('header values: LF folding on the wire, CRLF for the engine; HDR_LEADSPC: our own space going out', () => {
  assert.equal(engineHeaderValue(' hi\n\tthere'), ' hi\r\n\tthere');
  assert.equal(engineHeaderValue('\thi\r\n x'), '\thi\r\n x');
  assert.equal(wireHeaderValue('a;\r\n\tb', true), ' a;\n\tb');
  assert.equal(wireHeaderValue('a;\r\n\tb', false), 'a;\n\tb');
  assert.equal(wireHeaderValue(' already', true), ' already');
});

/** A session driven directly with frames, recording what it sends and what the handler saw. */
function harness(handler: MilterHandler, wants: FilterWants, options: Partial<MilterSessionOptions> = {}) {
  const sent: MilterResponse[] = [];
  const events: string[] = [];
  const logs: string[] = [];
  const onSend: Array<(r: MilterResponse) => void> = [];
  const wrapped: MilterHandler = { ...handler, wants: () => wants };
  const session = new MilterSession(wrapped, {
    send: (b) => {
      for (const f of new FrameDecoder().push(b)) {
        const r = decodeResponse(f);
        sent.push(r);
        for (const fn of onSend) fn(r);
      }
    },
    log: (_level, message) => logs.push(message),
    progressIntervalMs: 0,
    ...options,
  });
  const feed = async (...cmds: MilterCommand[]) => {
    for (const c of cmds) for (const f of new FrameDecoder().push(encodeCommand(c))) await session.receive(f);
  };
  return { session, sent, events, logs, feed, onSend };
}

const OPT = (protocol = 0x1fffff, actions = 0x1ff, version = 6): MilterCommand => ({
  kind: 'OPTNEG',
  version,
  actions,
  protocol,
});
const CONN: MilterCommand = {
  kind: 'CONNECT',
  hostname: '[192.0.2.1]',
  family: 'inet',
  port: 4000,
  address: '192.0.2.1',
};
const MAIL: MilterCommand = { kind: 'MAIL', args: ['<a@example.com>'] };
const RCPT: MilterCommand = { kind: 'RCPT', args: ['<b@example.org>'] };
const EOM: MilterCommand = { kind: 'BODYEOB', chunk: Buffer.alloc(0) };
const kinds = (rs: MilterResponse[]) => rs.map((r) => r.kind);

test('no-reply flags: a step the MTA does not wait for is never answered, even with a verdict', async () => {
  const handler: MilterHandler = {
    header: () => ({ kind: 'REJECT' }),
    endOfHeaders: () => ({ kind: 'CONTINUE' }),
  };
  const h = harness(handler, { actions: 0, protocol: SMFIP.NR_HDR | SMFIP.NR_EOH });
  await h.feed(
    OPT(),
    CONN,
    MAIL,
    RCPT,
    { kind: 'HEADER', name: 'A', value: 'b' },
    { kind: 'HEADER', name: 'C', value: 'd' },
    { kind: 'EOH' },
    EOM,
  );
  assert.deepEqual(kinds(h.sent), ['OPTNEG', 'CONTINUE', 'CONTINUE', 'CONTINUE', 'CONTINUE']);
  assert.ok(h.logs.some((l) => /REJECT for HEADER not sent/.test(l)));
  // the same filter talking to an MTA without NR_HDR answers every header
  const old = harness(handler, { actions: 0, protocol: SMFIP.NR_HDR | SMFIP.NR_EOH });
  await old.feed(
    OPT(0x7f, 0x3f, 2),
    CONN,
    MAIL,
    RCPT,
    { kind: 'HEADER', name: 'A', value: 'b' },
    { kind: 'EOH' },
  );
  assert.deepEqual(kinds(old.sent), ['OPTNEG', 'CONTINUE', 'CONTINUE', 'CONTINUE', 'REJECT', 'CONTINUE']);
});

test('macros: per stage, the latest first, message macros cleared by ABORT, all by QUIT_NC', async () => {
  const seen: Record<string, Array<string | undefined>> = {};
  const look = (step: string) => (ctx: StepContext) => {
    seen[step] = [
      ctx.macro('j'),
      ctx.macro('{j}'),
      ctx.macro('{client_addr}'),
      ctx.macro('i'),
      ctx.macro('{mail_addr}'),
    ];
    return { kind: 'CONTINUE' } as const;
  };
  const h = harness(
    {
      connect: (_i, ctx) => look('connect')(ctx),
      mail: (_a, ctx) => look('mail')(ctx),
      rcpt: (_a, ctx) => look('rcpt')(ctx),
      helo: (_n, ctx) => look('helo')(ctx),
    },
    { actions: 0, protocol: 0 },
  );
  await h.feed(
    OPT(),
    {
      kind: 'MACRO',
      stage: 'C',
      macros: [
        ['j', 'mx.test.example'],
        ['{client_addr}', '192.0.2.1'],
      ],
    },
    CONN,
    {
      kind: 'MACRO',
      stage: 'M',
      macros: [
        ['i', 'QID1'],
        ['{mail_addr}', 'a@example.com'],
      ],
    },
    MAIL,
    { kind: 'MACRO', stage: 'R', macros: [['i', 'QID2']] },
    RCPT,
  );
  assert.deepEqual(seen.connect, ['mx.test.example', 'mx.test.example', '192.0.2.1', undefined, undefined]);
  assert.deepEqual(seen.mail, ['mx.test.example', 'mx.test.example', '192.0.2.1', 'QID1', 'a@example.com']);
  assert.deepEqual(seen.rcpt, ['mx.test.example', 'mx.test.example', '192.0.2.1', 'QID2', 'a@example.com']);
  await h.feed({ kind: 'ABORT' }, { kind: 'HELO', name: 'x' });
  assert.deepEqual(seen.helo, ['mx.test.example', 'mx.test.example', '192.0.2.1', undefined, undefined]);
  const bytes = h.session.macroBytesHeld;
  assert.ok(bytes > 0);
  await h.feed({ kind: 'QUIT_NC' });
  assert.equal(h.session.macroBytesHeld, 0);
  assert.equal(h.session.negotiated, null);
});

test('macros are bounded: more than the limit is a protocol error', async () => {
  const h = harness({}, { actions: 0, protocol: 0 }, { maxMacroBytes: 1000 });
  await h.feed(OPT(), { kind: 'MACRO', stage: 'C', macros: [['{a}', 'x'.repeat(600)]] });
  // replacing a stage's list frees the old one
  await h.feed({ kind: 'MACRO', stage: 'C', macros: [['{a}', 'x'.repeat(600)]] });
  await assert.rejects(
    h.feed({ kind: 'MACRO', stage: 'H', macros: [['{b}', 'y'.repeat(600)]] }),
    /macros over 1000 bytes/,
  );
  await assert.rejects(h.feed({ kind: 'MACRO', stage: 'Z', macros: [] }), /MACRO for unknown step "Z"/);
});

test('commands out of order are protocol errors; the MTA quirks are not', async () => {
  const cases: Array<[MilterCommand[], RegExp]> = [
    [[CONN], /CONNECT before OPTNEG/],
    [[OPT(), OPT()], /OPTNEG a second time/],
    [[OPT(), CONN, CONN], /CONNECT after the connection began/],
    [[OPT(), { kind: 'HELO', name: 'x' }], /HELO before CONNECT/],
    [[OPT(), CONN, RCPT], /RCPT outside a message/],
    [
      [
        OPT(),
        CONN,
        MAIL,
        { kind: 'BODY', chunk: Buffer.from('x') },
        { kind: 'HEADER', name: 'A', value: 'b' },
      ],
      /HEADER after BODY/,
    ],
    [[OPT(), CONN, MAIL, { kind: 'EOH' }, RCPT], /RCPT after EOH/],
    [[OPT(), CONN, EOM], /BODYEOB outside a message/],
    [[OPT(), CONN, MAIL, RCPT, EOM, { kind: 'BODY', chunk: Buffer.from('x') }], /BODY outside a message/],
  ];
  for (const [cmds, message] of cases) {
    const h = harness({}, { actions: 0, protocol: 0 });
    await assert.rejects(
      h.feed(...cmds),
      (e: Error) => e instanceof MilterProtocolError && message.test(e.message),
      message.source,
    );
  }
  // Postfix: ABORT after every message, often twice; Sendmail: the next MAIL without ABORT;
  // a HELO inside a message (RSET semantics); NOCONNECT lets HELO come first
  const aborts: string[] = [];
  const h = harness({ abort: () => aborts.push('abort') }, { actions: 0, protocol: 0 });
  await h.feed(
    OPT(),
    CONN,
    MAIL,
    RCPT,
    EOM,
    { kind: 'ABORT' },
    { kind: 'ABORT' },
    MAIL,
    RCPT,
    MAIL,
    RCPT,
    { kind: 'HELO', name: 'again' },
    MAIL,
    { kind: 'QUIT' },
  );
  assert.deepEqual(aborts, ['abort', 'abort']);
  assert.equal(h.session.closed, true);
  const noConnect = harness({}, { actions: 0, protocol: SMFIP.NOCONNECT });
  await noConnect.feed(OPT(), { kind: 'HELO', name: 'x' }, MAIL);
  assert.deepEqual(kinds(noConnect.sent), ['OPTNEG', 'CONTINUE', 'CONTINUE']);
});

test('QUIT_NC: the SMTP session ends, a new one starts on the same connection with OPTNEG', async () => {
  const events: string[] = [];
  const h = harness(
    {
      connect: (info) => {
        events.push(`connect ${info.address}`);
        return { kind: 'CONTINUE' };
      },
      close: () => events.push('close'),
      abort: () => events.push('abort'),
    },
    { actions: 0, protocol: 0 },
  );
  await h.feed(OPT(), CONN, MAIL, { kind: 'QUIT_NC' });
  assert.equal(h.session.closed, false);
  await assert.rejects(h.feed(MAIL), /MAIL before OPTNEG/);
  const h2 = harness(
    {
      connect: (info) => {
        events.push(`connect ${info.address}`);
        return { kind: 'CONTINUE' };
      },
      close: () => events.push('close'),
    },
    { actions: 0, protocol: 0 },
  );
  await h2.feed(OPT(), CONN, { kind: 'QUIT_NC' }, OPT(), { ...CONN, address: '192.0.2.2' } as MilterCommand, {
    kind: 'QUIT',
  });
  assert.deepEqual(events, [
    'connect 192.0.2.1',
    'abort',
    'close',
    'connect 192.0.2.1',
    'close',
    'connect 192.0.2.2',
    'close',
  ]);
  assert.deepEqual(kinds(h2.sent), ['OPTNEG', 'CONTINUE', 'OPTNEG', 'CONTINUE']);
});

test('SKIP answers a body chunk only where negotiated; CONTINUE otherwise', async () => {
  const handler: MilterHandler = { body: () => ({ kind: 'SKIP' }) };
  const withSkip = harness(handler, { actions: 0, protocol: SMFIP.SKIP });
  await withSkip.feed(OPT(), CONN, MAIL, RCPT, { kind: 'BODY', chunk: Buffer.from('x') });
  assert.equal(withSkip.sent.at(-1)?.kind, 'SKIP');
  const without = harness(handler, { actions: 0, protocol: SMFIP.SKIP });
  await without.feed(OPT(0x1fffff & ~SMFIP.SKIP), CONN, MAIL, RCPT, {
    kind: 'BODY',
    chunk: Buffer.from('x'),
  });
  assert.equal(without.sent.at(-1)?.kind, 'CONTINUE');
  // a handler answering SKIP elsewhere is a bug, caught
  const wrong = harness({ mail: () => ({ kind: 'SKIP' }) }, { actions: 0, protocol: SMFIP.SKIP });
  await assert.rejects(wrong.feed(OPT(), CONN, MAIL), TypeError);
  const discard = harness({ connect: () => ({ kind: 'DISCARD' }) }, { actions: 0, protocol: 0 });
  await assert.rejects(discard.feed(OPT(), CONN), /DISCARD \(allowed from MAIL on\)/);
});

test('headers reach the handler in the engine form; a last body chunk on BODYEOB is passed on', async () => {
  const got: Array<[string, string, string]> = [];
  const bodies: string[] = [];
  const h = harness(
    {
      header: (name, value, raw) => {
        got.push([name, value, raw.toString()]);
        return { kind: 'CONTINUE' };
      },
      body: (chunk) => {
        bodies.push(chunk.toString());
        return { kind: 'CONTINUE' };
      },
    },
    { actions: 0, protocol: SMFIP.HDR_LEADSPC | SMFIP.NR_HDR },
  );
  await h.feed(
    OPT(),
    CONN,
    MAIL,
    RCPT,
    { kind: 'HEADER', name: 'Subject', value: ' hello\n\tworld' },
    { kind: 'BODY', chunk: Buffer.from('a') },
    { kind: 'BODYEOB', chunk: Buffer.from('b') },
  );
  assert.deepEqual(got, [['Subject', ' hello\r\n\tworld', ' hello\n\tworld']]);
  assert.deepEqual(bodies, ['a', 'b']);
});

test('headers beyond the limit are answered but not passed on', async () => {
  let passed = 0;
  const h = harness(
    {
      header: () => {
        passed++;
        return { kind: 'CONTINUE' };
      },
    },
    { actions: 0, protocol: 0 },
    { maxHeaders: 3 },
  );
  await h.feed(
    OPT(),
    CONN,
    MAIL,
    ...Array.from({ length: 5 }, (): MilterCommand => ({ kind: 'HEADER', name: 'X', value: 'y' })),
  );
  assert.equal(passed, 3);
  assert.equal(kinds(h.sent).filter((k) => k === 'CONTINUE').length, 2 + 5);
  assert.ok(h.logs.some((l) => /more headers than the limit/.test(l)));
});

test('end of message: modifications the MTA did not grant are dropped, REPLBODY split, the final reply last', async () => {
  const h = harness(
    {
      endOfMessage: () => ({
        modifications: [
          { kind: 'CHGHEADER', index: 1, name: 'Authentication-Results', value: '' },
          { kind: 'INSHEADER', index: 0, name: 'X-A', value: ' 1' },
          { kind: 'REPLBODY', chunk: Buffer.alloc(70_000, 0x61) },
        ],
        final: { kind: 'ACCEPT' },
      }),
    },
    { actions: 0x1ff, protocol: 0 },
  );
  await h.feed(OPT(0x1fffff, SMFIF.ADDHDRS | SMFIF.CHGBODY), CONN, MAIL, RCPT, EOM);
  assert.deepEqual(kinds(h.sent), [
    'OPTNEG',
    'CONTINUE',
    'CONTINUE',
    'CONTINUE',
    'INSHEADER',
    'REPLBODY',
    'REPLBODY',
    'ACCEPT',
  ]);
  assert.deepEqual(
    h.sent.filter((r) => r.kind === 'REPLBODY').map((r) => (r as { chunk: Uint8Array }).chunk.length),
    [65535, 4465],
  );
  assert.ok(h.logs.some((l) => /did not grant the action CHGHEADER needs/.test(l)));
  const bad = harness(
    { endOfMessage: () => ({ modifications: [{ kind: 'CONTINUE' }], final: { kind: 'ACCEPT' } }) },
    { actions: 0x1ff, protocol: 0 },
  );
  await assert.rejects(bad.feed(OPT(), CONN, MAIL, EOM), /sent CONTINUE as a modification/);
});

test('PROGRESS while end of message is pending; at other steps only to Postfix (macro v)', async () => {
  // end of message: the handler answers once the MTA has had two PROGRESS frames
  let release!: () => void;
  const eomGate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const h = harness(
    { endOfMessage: () => eomGate.then(() => ({ modifications: [], final: { kind: 'ACCEPT' } })) },
    { actions: 0, protocol: 0 },
    { progressIntervalMs: 5 },
  );
  let progress = 0;
  h.onSend.push((r) => {
    if (r.kind === 'PROGRESS' && ++progress === 2) release();
  });
  await h.feed(OPT(), CONN, MAIL, RCPT, EOM);
  assert.equal(progress, 2);
  assert.deepEqual(kinds(h.sent).slice(-3), ['PROGRESS', 'PROGRESS', 'ACCEPT']);

  // MAIL at Postfix: progress too
  let releaseMail!: () => void;
  const mailGate = new Promise<void>((resolve) => {
    releaseMail = resolve;
  });
  const pf = harness(
    { mail: () => mailGate.then(() => ({ kind: 'CONTINUE' })) },
    { actions: 0, protocol: 0 },
    { progressIntervalMs: 5 },
  );
  pf.onSend.push((r) => {
    if (r.kind === 'PROGRESS') releaseMail();
  });
  await pf.feed(OPT(), { kind: 'MACRO', stage: 'C', macros: [['v', 'Postfix 3.7.11']] }, CONN, MAIL);
  assert.deepEqual(kinds(pf.sent).slice(-2), ['PROGRESS', 'CONTINUE']);

  // MAIL at Sendmail (v = "8.17.1.9"): Sendmail would take a PROGRESS there for a bogus reply
  const sm = harness(
    { mail: () => new Promise((r) => setTimeout(() => r({ kind: 'CONTINUE' }), 60)) },
    { actions: 0, protocol: 0 },
    { progressIntervalMs: 5 },
  );
  await sm.feed(OPT(), { kind: 'MACRO', stage: 'C', macros: [['v', '8.17.1.9']] }, CONN, MAIL);
  assert.deepEqual(kinds(sm.sent), ['OPTNEG', 'CONTINUE', 'CONTINUE']);
});

test('a slow step the MTA did not wait for sends PROGRESS (Postfix) only once a later step waits', async () => {
  let waiting = false;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const h = harness(
    { connect: () => gate.then(() => ({ kind: 'CONTINUE' })) },
    { actions: 0, protocol: SMFIP.NR_CONN },
    { progressIntervalMs: 5, mtaWaiting: () => waiting },
  );
  await h.feed(OPT(), { kind: 'MACRO', stage: 'C', macros: [['v', 'Postfix 3.7.11']] });
  const connecting = h.feed(CONN);
  // nothing owed and nothing waiting: no PROGRESS (the MTA is not reading)
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(kinds(h.sent), ['OPTNEG']);
  // the MTA sent MAIL behind it and waits for its answer: PROGRESS now
  waiting = true;
  await new Promise<void>((resolve) => h.onSend.push((r) => r.kind === 'PROGRESS' && resolve()));
  release();
  await connecting;
  // still no answer to CONNECT itself
  assert.ok(kinds(h.sent).slice(1).every((k) => k === 'PROGRESS'));
  await h.feed(MAIL);
  assert.equal(kinds(h.sent).at(-1), 'CONTINUE');
});

test('a lost connection drops the pending reply and closes the handler once', async () => {
  let closes = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const h = harness(
    { mail: () => gate.then(() => ({ kind: 'REJECT' })), close: () => closes++ },
    { actions: 0, protocol: 0 },
  );
  await h.feed(OPT(), CONN);
  const pending = h.feed(MAIL);
  assert.equal(h.session.idle, false);
  h.session.lose();
  h.session.lose();
  release();
  await pending;
  assert.deepEqual(kinds(h.sent), ['OPTNEG', 'CONTINUE']);
  assert.equal(closes, 1);
  assert.equal(h.session.closed, true);
});
