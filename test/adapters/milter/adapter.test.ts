/**
 * Whole milter conversations: the MTA-side test client (Postfix 3.7's behaviour, or Sendmail's)
 * against the real listener, adapter and engine, over the seed zone in memory or the real DNS
 * test server. Asserts on what the MTA would receive, byte for byte where it matters.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, test } from 'node:test';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import {
  startMilterServer,
  type MilterServer,
  type MilterServerOptions,
} from '../../../src/adapters/milter/server.ts';
import { encodeResponse, type MilterResponse, SMFIP } from '../../../src/adapters/milter/wire.ts';
import { createResolver } from '../../../src/dns/config.ts';
import type { DnsResult, RecordType, Resolver } from '../../../src/dns/types.ts';
import { Engine, staticPolicy } from '../../../src/engine/engine.ts';
import { type Config, defaultConfig } from '../../../src/policy/config.ts';
import type { PolicyHook } from '../../../src/policy/hook.ts';
import { startDnsServer } from '../../support/dns-server.ts';
import { seedZone } from '../../support/fixtures.ts';
import { type MilterRecorder, startMilterRecorder } from '../../support/lab/milter-recorder.ts';
import { deliver, MilterClient, type MtaOptions } from '../../support/milter-client.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';

const servers: MilterServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

function configure(mutate?: (c: Config) => void): Config {
  const config = defaultConfig();
  config.authservId = 'mx.receiver.example';
  config.ratings.registries = [{ zone: 'registry.example' }];
  mutate?.(config);
  return config;
}

interface Setup {
  mutate?: (c: Config) => void;
  zone?: ZoneData;
  resolver?: Resolver;
  server?: Partial<MilterServerOptions>;
  policy?: Engine['context']['policy'];
  hook?: PolicyHook;
}

async function milter(
  setup: Setup = {},
): Promise<{ server: MilterServer; logs: Array<{ level: string; msg: string }> }> {
  const resolver = setup.resolver ?? new MemoryResolver({ ...seedZone(), ...setup.zone });
  const config = configure(setup.mutate);
  const logs: Array<{ level: string; msg: string }> = [];
  const log = (level: string, msg: string) => logs.push({ level, msg });
  const engine = new Engine({
    resolver,
    policy: setup.policy ?? staticPolicy(config, resolver, setup.hook),
    log,
  });
  const server = await startMilterServer({ engine, listen: 'inet:127.0.0.1:0', log, ...setup.server });
  servers.push(server);
  return { server, logs };
}

/** Negotiated and connected from `ip`, HELO sent unless null. */
async function client(
  server: Pick<MilterServer, 'address'>,
  ip = '192.0.2.1',
  helo: string | null = 'mx.example.com',
  options: MtaOptions = {},
) {
  const c = await MilterClient.connect(server.address, options);
  await c.negotiate();
  const connect = await c.connectEvent({
    hostname: `[${ip}]`,
    family: ip.includes(':') ? 'inet6' : 'inet',
    port: 40000,
    address: ip,
  });
  const heloReply = helo === null ? null : await c.helo(helo);
  return { c, connect, helo: heloReply };
}

/** The REPLYCODE frame exactly as libmilter would put it on the wire. */
const replyFrame = (text: string): Buffer => {
  const payload = Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length + 1);
  head[4] = 0x79;
  return Buffer.concat([head, payload]);
};
const text = (r: MilterResponse | null | undefined) => (r?.kind === 'REPLYCODE' ? r.text : r?.kind);

test('REJECT at connect, carried out at MAIL: the MTA did not wait at CONNECT and HELO; byte for byte, every MAIL', async () => {
  const { server } = await milter({ mutate: (c) => (c.prescreen.block = ['192.0.2.66', '::1']) });
  const { c, connect, helo } = await client(server, '192.0.2.66');
  // NR_CONN, NR_HELO: no answer to either
  assert.equal(connect, null);
  assert.equal(helo, null);
  const expected = '554 5.7.1 Client host [192.0.2.66] blocked by local policy';
  assert.equal(text(await c.mail(['<a@example.com>'])), expected);
  assert.deepEqual(c.received.at(-1), replyFrame(expected));
  c.abort();
  assert.equal(text(await c.mail(['<b@example.com>'])), expected);
  c.quit();
  await c.waitClosed();
  assert.equal(c.pending(), 0, 'no reply where none was owed');
  // Sendmail's IPv6 form: "IPv6:" before the full address; the engine sees ::1
  const sm = await MilterClient.connect(server.address, { flavor: 'sendmail' });
  await sm.negotiate();
  assert.equal(
    await sm.connectEvent({
      hostname: '[IPv6:0:0:0:0:0:0:0:1]',
      family: 'inet6',
      port: 25,
      address: 'IPv6:0:0:0:0:0:0:0:1',
    }),
    null,
  );
  assert.equal(
    text(await sm.mail(['<a@example.com>'])),
    '554 5.7.1 Client host [::1] blocked by local policy',
  );
  sm.close();
});

test('earlyReplies: REJECT at connect is the answer to CONNECT itself, and a HELO after it gets the same', async () => {
  const { server } = await milter({
    mutate: (c) => (c.prescreen.block = ['192.0.2.66', '::1']),
    server: { earlyReplies: true },
  });
  const { c, connect, helo } = await client(server, '192.0.2.66');
  const expected = '554 5.7.1 Client host [192.0.2.66] blocked by local policy';
  assert.equal(text(connect), expected);
  assert.deepEqual(c.received[1], replyFrame(expected));
  assert.equal(text(helo), expected);
  c.quit();
  await c.waitClosed();
  const sm = await MilterClient.connect(server.address, { flavor: 'sendmail' });
  await sm.negotiate();
  const r = await sm.connectEvent({
    hostname: '[IPv6:0:0:0:0:0:0:0:1]',
    family: 'inet6',
    port: 25,
    address: 'IPv6:0:0:0:0:0:0:0:1',
  });
  assert.equal(text(r), '554 5.7.1 Client host [::1] blocked by local policy');
  sm.close();
});

test('REJECT at MAIL with the SPF explanation; "%" doubled as libmilter does', async () => {
  const { server, logs } = await milter({
    zone: {
      'pct.example': [{ TXT: 'v=spf1 -all exp=why.pct.example' }],
      'why.pct.example': [{ TXT: 'Not from here, 100%% sure' }],
    },
  });
  const { c, connect, helo } = await client(server);
  assert.equal(connect, null);
  assert.equal(helo, null);
  const spf = await c.mail(['<x@example.net>', 'SIZE=1000']);
  const expected = "550 5.7.23 SPF: 'example.net' does not designate '192.0.2.1' as permitted sender";
  assert.equal(text(spf), expected);
  assert.deepEqual(c.received.at(-1), replyFrame(expected));
  c.abort();
  const pct = await c.mail(['<a@pct.example>']);
  assert.equal(text(pct), '550 5.7.23 Not from here, 100%% sure');
  assert.ok(logs.some((l) => l.msg === 'milter verdict'));
  c.quit();
});

test('answer_at end_of_message: MAIL and RCPT are not waited for; every refusal comes at the end of the message', async () => {
  const { server } = await milter({ mutate: (c) => (c.milter.answerAt = 'end_of_message') });
  const recorder = await recorded(server);
  const { c, connect, helo } = await client(recorder);
  assert.equal(connect, null);
  assert.equal(helo, null);
  // SPF fails at MAIL: nothing is answered until the end of the message, which gets MAIL's verdict
  const spf = await c.transaction({
    from: 'x@example.net',
    to: ['b@example.org'],
    headers: [['Subject', 'hi']],
  });
  assert.equal(spf.mail, null);
  assert.deepEqual(
    spf.rcpt.map((r) => r.reply),
    [null],
  );
  const expected = "550 5.7.23 SPF: 'example.net' does not designate '192.0.2.1' as permitted sender";
  assert.equal(text(spf.eom?.final), expected);
  assert.deepEqual(spf.eom?.modifications, []);
  assert.deepEqual(c.received.at(-1), replyFrame(expected));
  // the next message on the connection starts over: accepted, with the headers
  const ok = await c.transaction({
    from: 'a@example.com',
    to: ['b@example.org'],
    headers: [['Subject', 'hi']],
  });
  assert.equal(ok.mail, null);
  assert.equal(ok.eom?.final.kind, 'ACCEPT');
  assert.deepEqual(
    ok.eom!.modifications.filter((m) => m.kind === 'INSHEADER').map((m) => (m as { name: string }).name),
    ['Authentication-Results', 'Authent'],
  );
  // refusals of MAIL's own (a malformed sender) are kept for the end of the message too
  const bad = await c.transaction({ from: 'a\nb@example.com', to: ['b@example.org'] });
  assert.equal(bad.mail, null);
  assert.equal(text(bad.eom?.final), '553 5.1.7 Malformed sender address');
  c.quit();
  await c.waitClosed();
  assert.equal(c.pending(), 0, 'no reply where none was owed');
  // on the wire: answers to OPTNEG and to each end of message only (one write for an accepted message's three)
  const answered = recorder.connections[0]!.responses.map((r) => r.kind);
  assert.equal(answered[0], 'OPTNEG');
  assert.deepEqual(answered.slice(1), ['REPLYCODE', 'INSHEADER', 'INSHEADER', 'ACCEPT', 'REPLYCODE']);
  // a refused HELO argument reaches the end of the message as well
  const h = await client(server, '192.0.2.1', null);
  assert.equal(await h.c.helo('bad\r\nname'), null);
  const afterHelo = await h.c.transaction({ from: 'a@example.com', to: ['b@example.org'] });
  assert.equal(afterHelo.mail, null);
  assert.equal(text(afterHelo.eom?.final), '501 5.5.2 Invalid HELO argument');
  h.c.quit();
  // with per-recipient rules RCPT is still answered, and carries MAIL's refusal there
  const { server: perRcpt } = await milter({
    mutate: (c) => {
      c.milter.answerAt = 'end_of_message';
      c.ratings.recipients = [{ match: ['strict@example.org'], accept: null, reject: { max: 9 } }];
    },
  });
  const r = await client(perRcpt);
  const refused = await r.c.transaction({ from: 'x@example.net', to: ['b@example.org'] });
  assert.equal(refused.mail, null);
  assert.equal(text(refused.rcpt[0]!.reply), expected);
  assert.equal(refused.eom, null, 'no recipient left: no DATA');
  r.c.quit();
});

test('REJECT at RCPT refuses that recipient only; the message goes on for the others', async () => {
  const { server } = await milter({
    mutate: (c) => {
      c.ratings.recipients = [{ match: ['strict@example.org'], accept: null, reject: { max: 9 } }];
    },
  });
  const { c } = await client(server, '192.0.2.1', 'example.com');
  const t = await c.transaction({
    from: 'a@example.com',
    to: ['strict@example.org', 'normal@example.org'],
    headers: [['Subject', 'hi']],
  });
  assert.equal(t.mail?.kind, 'CONTINUE');
  assert.equal(
    text(t.rcpt[0]!.reply),
    "550 5.7.1 Recipient won't accept mail from 'example.com' based on its current reputation",
  );
  assert.equal(t.rcpt[1]!.reply?.kind, 'CONTINUE');
  assert.equal(t.eom?.final.kind, 'ACCEPT');
  assert.deepEqual(
    t.eom!.modifications.filter((m) => m.kind === 'INSHEADER').map((m) => (m as { name: string }).name),
    ['Authentication-Results', 'Authent'],
  );
  c.quit();
});

test('ACCEPT: headers inserted at index 0 in list order, so headers[0] lands directly above the received block', async () => {
  const { server } = await milter();
  const { c } = await client(server, '192.0.2.1', 'example.com');
  const mail = await c.mail(['<a@example.com>']);
  // reputable at MAIL: decided, carried out at the end of the message
  assert.equal(mail?.kind, 'CONTINUE');
  assert.equal(await c.rcpt(['<b@example.org>']), null); // NR_RCPT: no per-recipient thresholds
  assert.equal(await c.data(), null); // NODATA: Postfix does not send it
  const headers: Array<[string, string]> = [
    ['From', 'a@example.com'],
    ['Subject', 'hello'],
  ];
  for (const [n, v] of headers) assert.equal(await c.header(n, ` ${v}`), null); // NR_HDR
  assert.equal(await c.eoh(), null);
  assert.equal(await c.body('x'.repeat(100_000)), null); // NR_BODY
  const eom = await c.eom();
  assert.equal(eom.final.kind, 'ACCEPT');
  assert.deepEqual(
    eom.modifications.map((m) => [m.kind, (m as { index?: number }).index, (m as { name?: string }).name]),
    [
      ['INSHEADER', 0, 'Authentication-Results'],
      ['INSHEADER', 0, 'Authent'],
    ],
  );
  const delivered = deliver(headers, eom.modifications, { leadingSpace: true });
  assert.deepEqual(delivered, [
    'Authent: 192.0.2.1 example.com SPF1 PASS ratings=S1:A,M2:A,H1:B',
    'Authentication-Results: mx.receiver.example; iprev=pass (mx.example.com)\r\n' +
      '\tpolicy.iprev=192.0.2.1; spf=pass\r\n' +
      '\t(192.0.2.1 is authorized by example.com) smtp.mailfrom=a@example.com;\r\n' +
      '\tspf=pass (192.0.2.1 is authorized by example.com)\r\n' +
      '\tsmtp.helo=example.com',
    'Received: from client by mx.test.example (Postfix)',
    'From: a@example.com',
    'Subject: hello',
  ]);
  // folded with LF only on the wire (Postfix would double a CR), leading space ours (HDR_LEADSPC)
  const ar = eom.modifications[0] as { value: string };
  assert.ok(ar.value.startsWith(' mx.receiver.example;'));
  assert.ok(!ar.value.includes('\r'));
  assert.ok(ar.value.includes('\n\t'));
  c.quit();
});

test('without HDR_LEADSPC the MTA adds the space itself; without CHGHDRS forged headers stay', async () => {
  const { server, logs } = await milter();
  const { c } = await client(server, '192.0.2.1', 'example.com', {
    protocol: 0x1fffff & ~SMFIP.HDR_LEADSPC,
    actions: 0x1ff & ~0x10,
  });
  const t = await c.transaction({
    from: 'a@example.com',
    to: ['b@example.org'],
    headers: [['Authentication-Results', 'mx.receiver.example; spf=pass']],
  });
  const ins = t.eom!.modifications.filter((m) => m.kind === 'INSHEADER') as Array<{ value: string }>;
  assert.ok(ins[0]!.value.startsWith('mx.receiver.example;'));
  assert.equal(ins[1]!.value, '192.0.2.1 example.com SPF1 PASS ratings=S1:A,M2:A,H1:B');
  assert.ok(!t.eom!.modifications.some((m) => m.kind === 'CHGHEADER'));
  assert.ok(logs.some((l) => /did not grant the action CHGHEADER/.test(l.msg)));
  c.quit();
});

test('FILTER: forged Authentication-Results deleted (highest first), subject tagged, headers on top, quarantined', async () => {
  const { server } = await milter({
    mutate: (c) => (c.filter.subjectTag = '[SPAM]'),
    server: { quarantine: 'checkid: unknown sender' },
  });
  const { c } = await client(server, '192.0.2.1', 'mx.example.com');
  const headers: Array<[string, string]> = [
    ['Authentication-Results', 'mx.receiver.example; spf=pass smtp.mailfrom=a@example.com'],
    ['Authentication-Results', 'other.example; dkim=pass'],
    ['Subject', 'hello\r\n\tworld'],
    ['Authentication-Results', '"mx.receiver.example"; dkim=pass'],
  ];
  const t = await c.transaction({
    from: 'someone@softfail.example',
    to: ['b@example.org'],
    headers,
    body: 'Hi.\r\n',
  });
  const eom = t.eom!;
  assert.equal(eom.final.kind, 'ACCEPT');
  assert.deepEqual(
    eom.modifications.map((m) =>
      m.kind === 'QUARANTINE'
        ? ['QUARANTINE', m.reason]
        : [
            m.kind,
            (m as { index: number }).index,
            (m as { name: string }).name,
            String((m as { value: unknown }).value).slice(0, 20),
          ],
    ),
    [
      ['CHGHEADER', 3, 'Authentication-Results', ''],
      ['CHGHEADER', 1, 'Authentication-Results', ''],
      ['CHGHEADER', 1, 'Subject', ' [SPAM] hello\n\tworld'],
      ['INSHEADER', 0, 'Authentication-Results', ' mx.receiver.example'],
      ['INSHEADER', 0, 'Authent', ' 192.0.2.1 mx.exampl'],
      ['QUARANTINE', 'checkid: unknown sender'],
    ],
  );
  const delivered = deliver(headers, eom.modifications, { leadingSpace: true });
  assert.deepEqual(
    delivered.map((l) => l.split('\r\n')[0]),
    [
      'Authent: 192.0.2.1 mx.example.com SPF1 PASS',
      'Authentication-Results: mx.receiver.example; iprev=pass (mx.example.com)',
      'Received: from client by mx.test.example (Postfix)',
      'Authentication-Results: other.example; dkim=pass',
      'Subject: [SPAM] hello',
    ],
  );
  assert.equal(delivered[4], 'Subject: [SPAM] hello\r\n\tworld');
  c.quit();
});

test("TEMPFAIL when DNS does not answer: the engine's 451 4.4.3 reply", async () => {
  const { server } = await milter();
  const { c } = await client(server);
  const r = await c.mail(['<a@temp.example>']);
  assert.equal(text(r), "451 4.4.3 Temporary DNS failure checking SPF of 'temp.example'; try again later");
  c.quit();
});

test('several messages on one connection: ABORT, a second MAIL, Sendmail without ABORT, double ABORT', async () => {
  const { server } = await milter();
  for (const options of [{ flavor: 'postfix', doubleAbort: true }, { flavor: 'sendmail' }] as MtaOptions[]) {
    const { c } = await client(server, '192.0.2.1', 'mx.example.com', options);
    // 1: refused at MAIL
    const first = await c.transaction({ from: 'x@example.net', to: ['b@example.org'] });
    assert.match(text(first.mail) ?? '', /^550 5\.7\.23 /);
    // 2: accepted, with a forged A-R removed
    const second = await c.transaction({
      from: 'a@example.com',
      to: ['b@example.org'],
      headers: [['Authentication-Results', 'mx.receiver.example; none']],
    });
    assert.equal(second.eom?.final.kind, 'ACCEPT');
    assert.equal(second.eom!.modifications.filter((m) => m.kind === 'CHGHEADER').length, 1);
    // 3: the forged header of message 2 is not carried over; a refused recipient only
    const third = await c.transaction({ from: 'a@example.com', to: ['b@example.org', 'c@example.org'] });
    assert.equal(third.eom?.final.kind, 'ACCEPT');
    assert.equal(third.eom!.modifications.filter((m) => m.kind === 'CHGHEADER').length, 0);
    // 4: started and given up (RSET)
    assert.equal((await c.mail(['<a@example.com>']))?.kind, 'CONTINUE');
    c.abort();
    const fifth = await c.transaction({ from: 'x@example.net', to: ['b@example.org'] });
    assert.match(text(fifth.mail) ?? '', /^550 /);
    c.quit();
    await c.waitClosed();
    assert.equal(c.pending(), 0, 'no reply where none was owed');
  }
});

test('QUIT_NC: a new SMTP session on the same connection gets a new engine session', async () => {
  const { server } = await milter({ mutate: (c) => (c.prescreen.block = ['192.0.2.66']) });
  const { c } = await client(server, '192.0.2.1');
  const ok = await c.transaction({ from: 'a@example.com', to: ['b@example.org'] });
  assert.equal(ok.eom?.final.kind, 'ACCEPT');
  c.quitNewConnection();
  await c.negotiate();
  await c.connectEvent({ hostname: '[192.0.2.66]', family: 'inet', port: 1, address: '192.0.2.66' });
  assert.equal(
    text(await c.mail(['<a@example.com>'])),
    '554 5.7.1 Client host [192.0.2.66] blocked by local policy',
  );
  c.quitNewConnection();
  await c.negotiate();
  await c.connectEvent({ hostname: '[192.0.2.1]', family: 'inet', port: 1, address: '192.0.2.1' });
  await c.helo('mx.example.com');
  const again = await c.transaction({ from: 'a@example.com', to: ['b@example.org'] });
  assert.equal(again.eom?.final.kind, 'ACCEPT');
  c.quit();
  await c.waitClosed();
  assert.equal(c.pending(), 0, 'no reply where none was owed');
});

test('a local client without an IP address is accepted unchecked; malformed arguments are refused', async () => {
  const { server } = await milter({ mutate: (c) => (c.ratings.recipients = [{ match: ['@example.org'] }]) });
  // the MTA does not wait at CONNECT: each message is accepted at MAIL, unchecked and unchanged
  const local = await MilterClient.connect(server.address);
  await local.negotiate();
  assert.equal(
    await local.connectEvent({ hostname: 'localhost', family: 'unix', address: '/var/run/x' }),
    null,
  );
  assert.equal((await local.mail(['<a@example.com>']))?.kind, 'ACCEPT');
  local.close();
  const early = await milter({ server: { earlyReplies: true } });
  const local2 = await MilterClient.connect(early.server.address);
  await local2.negotiate();
  assert.equal(
    (await local2.connectEvent({ hostname: 'localhost', family: 'unix', address: '/var/run/x' }))?.kind,
    'ACCEPT',
  );
  local2.close();
  // a refused HELO argument the MTA did not wait for refuses the next MAIL; a new HELO starts over
  const { c } = await client(server, '192.0.2.1', null);
  assert.equal(await c.helo('bad\r\nname'), null);
  assert.equal(text(await c.mail(['<a@example.com>'])), '501 5.5.2 Invalid HELO argument');
  c.abort();
  assert.equal(await c.helo('mx.example.com'), null);
  assert.equal(text(await c.mail(['<a\nb@example.com>'])), '553 5.1.7 Malformed sender address');
  assert.equal((await c.mail(['<a@example.com>']))?.kind, 'CONTINUE');
  // RCPT is answered here: the policy has per-recipient thresholds
  assert.equal(text(await c.rcpt(['<c\r\n@example.org>'])), '553 5.1.3 Malformed recipient address');
  c.quit();
  // with earlyReplies the refusal is HELO's own answer
  const e = await client(early.server, '192.0.2.1', null);
  assert.equal(text(await e.c.helo('bad\r\nname')), '501 5.5.2 Invalid HELO argument');
  assert.equal((await e.c.helo('mx.example.com'))?.kind, 'CONTINUE');
  e.c.quit();
});

test('PROGRESS keeps Postfix waiting while a slow DNS answer is pending', async () => {
  const dns = await startDnsServer({ zone: seedZone(), delays: { 'example.com': 400 } });
  const resolver = createResolver({ servers: [dns.address], timeoutMs: 3000, attempts: 1 });
  try {
    const { server } = await milter({ resolver, server: { progressIntervalMs: 50 } });
    const { c } = await client(server, '192.0.2.1', 'mx.example.com');
    const r = await c.mail(['<a@example.com>']);
    assert.equal(r?.kind, 'CONTINUE');
    assert.ok(c.progress >= 1, `progress frames: ${c.progress}`);
    c.quit();
  } finally {
    resolver.close();
    await dns.close();
  }
});

/** A resolver that answers nothing until released (then NXDOMAIN). */
function hangingResolver() {
  const waiting: Array<() => void> = [];
  const resolver: Resolver = {
    query: <T extends RecordType>() =>
      new Promise<DnsResult<T>>((resolve) => {
        waiting.push(() => resolve({ status: 'nxdomain', ttl: 1 }));
      }),
  };
  return {
    resolver,
    release: () => {
      for (const f of waiting.splice(0)) f();
    },
  };
}

for (const onError of ['tempfail', 'accept'] as const) {
  test(`a stage past the adapter's timeout gets on_error (${onError}), and so does the rest of the session`, async () => {
    const hang = hangingResolver();
    try {
      const { server, logs } = await milter({
        resolver: hang.resolver,
        mutate: (c) => {
          c.onError = onError;
          c.deadlineMs = 60_000;
          c.iprev.enabled = false;
          c.spf.helo = false;
          c.identity.useHelo = false;
          c.helo.enabled = false;
        },
        server: { stageTimeoutMs: 100 },
      });
      const { c } = await client(server);
      const mail = await c.mail(['<a@example.com>']);
      const expected =
        onError === 'accept' ? 'ACCEPT' : '451 4.3.0 Temporary internal error; try again later';
      assert.equal(text(mail), expected);
      if (onError === 'tempfail') {
        c.abort();
        assert.equal(text(await c.mail(['<b@example.com>'])), expected, 'the rest of the session too');
      }
      assert.ok(logs.some((l) => /a stage timed out/.test(l.msg)));
      c.quit();
    } finally {
      hang.release();
    }
  });

  test(`an engine that throws gets on_error (${onError}) at once, never a hung connection`, async () => {
    const resolver = new MemoryResolver(seedZone());
    const base = staticPolicy(
      configure((c) => (c.onError = onError)),
      resolver,
    );
    const broken = {
      current: () => {
        const p = base.current();
        const localList = {
          check: () => {
            throw new Error('boom');
          },
        };
        return {
          ...p,
          prepared: { ...p.prepared, localList: localList as unknown as typeof p.prepared.localList },
        };
      },
    };
    const { server, logs } = await milter({ policy: broken });
    const { c, connect, helo } = await client(server);
    const expected = onError === 'accept' ? 'ACCEPT' : '451 4.3.0 Temporary internal error; try again later';
    assert.equal(connect, null);
    assert.equal(helo, null);
    assert.equal(text(await c.mail(['<a@example.com>'])), expected);
    assert.ok(logs.some((l) => /cannot start an engine session/.test(l.msg)));
    c.quit();
    const early = await milter({ policy: broken, server: { earlyReplies: true } });
    const e = await client(early.server);
    assert.equal(text(e.connect), expected);
    assert.equal(text(e.helo), expected);
    e.c.quit();
  });
}

test('every reply the adapter sends is a frame the MTA can read (encode/decode agree)', async () => {
  const { server } = await milter();
  const { c } = await client(server, '192.0.2.1', 'example.com');
  await c.transaction({ from: 'a@example.com', to: ['b@example.org'], headers: [['Subject', 'x']] });
  c.quit();
  await c.waitClosed();
  for (const raw of c.received) assert.ok(raw.length >= 5 && raw.readUInt32BE(0) === raw.length - 4);
  assert.deepEqual(encodeResponse({ kind: 'ACCEPT' }), c.received.at(-1));
});

test('DKIM through the milter: header bytes reach the engine exactly (simple canonicalization), with or without HDR_LEADSPC', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const unsigned =
    'From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and Grüße,\r\n\tfolded\r\n' +
    'Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello Bob,\r\nsee you.\r\n';
  // signed by an independent implementation (mailauth), simple/simple: every header byte counts
  const signed =
    (
      (await dkimSign(Buffer.from(unsigned), {
        signatureData: [
          {
            signingDomain: 'example.com',
            selector: 'sel',
            privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
            canonicalization: 'simple/simple',
          },
        ],
      } as never)) as { signatures: string }
    ).signatures + unsigned;
  const { server } = await milter({
    zone: { 'sel._domainkey.example.com': [{ TXT: `v=DKIM1; k=rsa; p=${p}` }] },
    mutate: (c) => {
      c.ratings.registries = []; // not decided early: the end of message judges
    },
  });
  const end = signed.indexOf('\r\n\r\n');
  const fields: Array<[string, string]> = [];
  for (const line of signed.slice(0, end).split(/\r\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    fields.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  for (const protocol of [0x1fffff, 0x1fffff & ~SMFIP.HDR_LEADSPC]) {
    const { c } = await client(server, '192.0.2.1', 'mx.example.com', { protocol });
    await c.mail(['<alice@example.com>']);
    await c.rcpt(['<bob@example.org>']);
    for (const [name, value] of fields) await c.header(name, value);
    await c.eoh();
    assert.equal(await c.body(signed.slice(end + 4)), null); // NR_BODY
    const eom = await c.eom();
    const ar = eom.modifications.find(
      (m) => m.kind === 'INSHEADER' && m.name === 'Authentication-Results',
    ) as { value: string };
    assert.match(
      ar.value.replace(/\n\t/g, ' '),
      /dkim=pass header\.d=example\.com/,
      `protocol 0x${protocol.toString(16)}`,
    );
    c.quit();
  }
});

// --- what is negotiated, derived from the policy ------------------------------------------------

/** The agreed protocol flags and the steps the MTA (test client, Postfix's behaviour) sends. */
async function shape(setup: Setup) {
  const { server } = await milter(setup);
  const c = await MilterClient.connect(server.address);
  const n = await c.negotiate();
  return { c, server, flags: n.protocol };
}

const FLAG = (flags: number, ...names: Array<keyof typeof SMFIP>) =>
  names.filter((k) => (flags & SMFIP[k]) === SMFIP[k]);
const ALL_NO_REPLY = [
  'NR_CONN',
  'NR_HELO',
  'NR_MAIL',
  'NR_RCPT',
  'NR_HDR',
  'NR_EOH',
  'NR_BODY',
  'NR_DATA',
  'NR_UNKN',
] as const;
const ALL_NO_SEND = [
  'NOCONNECT',
  'NOHELO',
  'NOMAIL',
  'NORCPT',
  'NOHDRS',
  'NOEOH',
  'NOBODY',
  'NODATA',
  'NOUNKNOWN',
] as const;

test('policy shapes: the flags follow what the policy needs (defaults; DKIM/ARC off; per-recipient; hook; earlyReplies)', async () => {
  const cases: Array<[string, Setup, string[], string[]]> = [
    [
      'defaults (DKIM, ARC, no per-recipient rules, no hook)',
      {},
      ['NR_CONN', 'NR_HELO', 'NR_RCPT', 'NR_HDR', 'NR_EOH', 'NR_BODY', 'NR_DATA', 'NR_UNKN'],
      ['NODATA', 'NOUNKNOWN'],
    ],
    [
      'DKIM off, ARC on: the body is still needed',
      { mutate: (c) => (c.dkim.enabled = false) },
      ['NR_CONN', 'NR_HELO', 'NR_RCPT', 'NR_HDR', 'NR_EOH', 'NR_BODY', 'NR_DATA', 'NR_UNKN'],
      ['NODATA', 'NOUNKNOWN'],
    ],
    [
      'DKIM and ARC off: no body, no end of headers',
      {
        mutate: (c) =>
          Object.assign(c, { dkim: { ...c.dkim, enabled: false }, arc: { ...c.arc, enabled: false } }),
      },
      ['NR_CONN', 'NR_HELO', 'NR_RCPT', 'NR_HDR', 'NR_DATA', 'NR_UNKN'],
      ['NOEOH', 'NOBODY', 'NODATA', 'NOUNKNOWN'],
    ],
    [
      'per-recipient thresholds: RCPT answered',
      { mutate: (c) => (c.ratings.recipients = [{ match: ['@example.org'], reject: { max: 2 } }]) },
      ['NR_CONN', 'NR_HELO', 'NR_HDR', 'NR_EOH', 'NR_BODY', 'NR_DATA', 'NR_UNKN'],
      ['NODATA', 'NOUNKNOWN'],
    ],
    [
      'a policy hook: RCPT answered',
      { hook: () => undefined },
      ['NR_CONN', 'NR_HELO', 'NR_HDR', 'NR_EOH', 'NR_BODY', 'NR_DATA', 'NR_UNKN'],
      ['NODATA', 'NOUNKNOWN'],
    ],
    [
      'earlyReplies: CONNECT and HELO answered',
      { server: { earlyReplies: true } },
      ['NR_RCPT', 'NR_HDR', 'NR_EOH', 'NR_BODY', 'NR_DATA', 'NR_UNKN'],
      ['NODATA', 'NOUNKNOWN'],
    ],
    [
      'answer_at connect: the same from the policy',
      { mutate: (c) => (c.milter.answerAt = 'connect') },
      ['NR_RCPT', 'NR_HDR', 'NR_EOH', 'NR_BODY', 'NR_DATA', 'NR_UNKN'],
      ['NODATA', 'NOUNKNOWN'],
    ],
    [
      'answer_at end_of_message: MAIL not answered either',
      { mutate: (c) => (c.milter.answerAt = 'end_of_message') },
      ['NR_CONN', 'NR_HELO', 'NR_MAIL', 'NR_RCPT', 'NR_HDR', 'NR_EOH', 'NR_BODY', 'NR_DATA', 'NR_UNKN'],
      ['NODATA', 'NOUNKNOWN'],
    ],
    [
      'earlyReplies wins over the policy',
      { mutate: (c) => (c.milter.answerAt = 'end_of_message'), server: { earlyReplies: true } },
      ['NR_RCPT', 'NR_HDR', 'NR_EOH', 'NR_BODY', 'NR_DATA', 'NR_UNKN'],
      ['NODATA', 'NOUNKNOWN'],
    ],
  ];
  for (const [name, setup, noReply, noSend] of cases) {
    const { c, flags } = await shape(setup);
    assert.deepEqual(FLAG(flags, ...ALL_NO_REPLY), noReply, `${name}: not answered`);
    assert.deepEqual(FLAG(flags, ...ALL_NO_SEND), noSend, `${name}: not sent`);
    // always: the end of message answered, header bytes exact
    assert.ok((flags & SMFIP.HDR_LEADSPC) !== 0, name);
    c.close();
  }
});

/** A recording proxy in front of `server`: what crossed the wire, each way. */
async function recorded(server: MilterServer): Promise<MilterRecorder> {
  const recorder = await startMilterRecorder(server.address);
  after(() => recorder.close());
  return recorder;
}
const stepsOf = (r: MilterRecorder) =>
  r.connections.flatMap((x) => x.commands.map((k) => k.kind)).filter((k) => k !== 'MACRO');

test('DKIM and ARC off: the MTA sends no body and no end of headers; headers still arrive, forged ones go', async () => {
  const { server } = await milter({
    mutate: (c) =>
      Object.assign(c, { dkim: { ...c.dkim, enabled: false }, arc: { ...c.arc, enabled: false } }),
  });
  const recorder = await recorded(server);
  const { c } = await client(recorder, '192.0.2.1', 'example.com');
  const t = await c.transaction({
    from: 'a@example.com',
    to: ['b@example.org'],
    headers: [
      ['Authentication-Results', 'mx.receiver.example; dkim=pass'],
      ['Subject', 'x'],
    ],
    body: 'Hello.\r\n',
  });
  assert.equal(t.eom?.final.kind, 'ACCEPT');
  const sent = stepsOf(recorder);
  assert.ok(!sent.includes('BODY') && !sent.includes('EOH'), sent.join(' '));
  assert.deepEqual(sent.filter((k) => k === 'HEADER').length, 2);
  assert.deepEqual(
    t.eom!.modifications.map((m) => m.kind),
    ['CHGHEADER', 'INSHEADER', 'INSHEADER'],
  );
  const ar = t.eom!.modifications.find(
    (m) => m.kind === 'INSHEADER' && m.name === 'Authentication-Results',
  ) as { value: string };
  assert.doesNotMatch(ar.value, /dkim=/);
  c.quit();
  await c.waitClosed();
  assert.equal(c.pending(), 0, 'no reply where none was owed');
});

test("a policy hook deciding per recipient: RCPT is answered, the hook's refusal reaches the MTA there", async () => {
  const { server } = await milter({
    hook: ({ stage, recipient }) =>
      stage === 'rcpt' && recipient === 'nobody@example.org'
        ? { action: 'REJECT', reply: { code: 550, xcode: '5.1.1', text: 'No such user here' } }
        : undefined,
  });
  const { c } = await client(server, '192.0.2.1', 'mx.example.com');
  const t = await c.transaction({ from: 'a@example.com', to: ['nobody@example.org', 'b@example.org'] });
  assert.equal(text(t.rcpt[0]!.reply), '550 5.1.1 No such user here');
  assert.equal(t.rcpt[1]!.reply?.kind, 'CONTINUE');
  assert.equal(t.eom?.final.kind, 'ACCEPT');
  c.quit();
});

test('a reload between OPTNEG and CONNECT: the connection keeps the policy it negotiated; the next one gets the new', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const zone = {
    'sel._domainkey.example.com': [
      { TXT: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}` },
    ],
  };
  const resolver = new MemoryResolver({ ...seedZone(), ...zone });
  const off = staticPolicy(
    configure((c) =>
      Object.assign(c, {
        dkim: { ...c.dkim, enabled: false },
        arc: { ...c.arc, enabled: false },
        ratings: { ...c.ratings, registries: [] },
      }),
    ),
    resolver,
  ).current();
  const on = staticPolicy(
    configure((c) => (c.ratings.registries = [])),
    resolver,
  ).current();
  let current = off;
  const { server } = await milter({ resolver, policy: { current: () => current } });
  const recorder = await recorded(server);
  const raw = 'From: a@example.com\r\nTo: b@example.org\r\nSubject: reload\r\n\r\nHello.\r\n';
  const sig = (
    (await dkimSign(Buffer.from(raw), {
      signatureData: [
        {
          signingDomain: 'example.com',
          selector: 'sel',
          privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        },
      ],
    } as never)) as { signatures: string }
  ).signatures;
  const headers: Array<[string, string]> = [];
  for (const line of (sig + raw.slice(0, raw.indexOf('\r\n\r\n'))).split(/\r\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    headers.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  const send = async (c: MilterClient) => {
    await c.connectEvent({ hostname: '[192.0.2.1]', family: 'inet', port: 1, address: '192.0.2.1' });
    await c.helo('mx.example.com');
    const t = await c.transaction({
      from: 'a@example.com',
      to: ['b@example.org'],
      headers,
      body: 'Hello.\r\n',
    });
    const ar = t.eom!.modifications.find(
      (m) => m.kind === 'INSHEADER' && m.name === 'Authentication-Results',
    ) as { value: string };
    return ar.value.replace(/\n\t/g, ' ');
  };
  const first = await MilterClient.connect(recorder.address);
  assert.ok(((await first.negotiate()).protocol & SMFIP.NOBODY) !== 0);
  current = on; // the reload lands before this connection's CONNECT
  const a = await send(first);
  assert.ok(!stepsOf(recorder).includes('BODY'));
  assert.doesNotMatch(
    a,
    /dkim=/,
    'the negotiated policy (DKIM off) judged it: no DKIM result from a body never sent',
  );
  first.quit();
  await first.waitClosed();
  recorder.clear();
  const second = await MilterClient.connect(recorder.address);
  assert.equal((await second.negotiate()).protocol & SMFIP.NOBODY, 0);
  const b = await send(second);
  assert.ok(stepsOf(recorder).includes('BODY'));
  assert.match(b, /dkim=pass header\.d=example\.com/);
  second.quit();
});
