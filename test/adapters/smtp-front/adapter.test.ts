/**
 * The SMTP front-end end to end over real sockets: a raw client, the front-end with the engine
 * (in-memory DNS), and the scriptable back-end sink (test/support/smtp-sink.ts).
 */
import assert from 'node:assert/strict';
// an independent DKIM signer: mailauth (a dev dependency)
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { composeMessage, createSmtpFront, receivedHeader, rfc5322Date, verdictReply } from '../../../src/adapters/smtp-front/adapter.ts';
import type { SmtpLimits } from '../../../src/adapters/smtp-front/server.ts';
import { Engine, staticPolicy } from '../../../src/engine/engine.ts';
import type { Verdict } from '../../../src/engine/verdict.ts';
import { type Config, defaultConfig } from '../../../src/policy/config.ts';
import type { PolicyHook } from '../../../src/policy/hook.ts';
import { tempDir } from '../../support/fixtures.ts';
import { type SmtpSinkOptions, startSmtpSink } from '../../support/smtp-sink.ts';
import { MemoryResolver, type ZoneData } from '../../support/zone.ts';
import { frontZone } from './fixtures.ts';
import { Wire } from './wire.ts';

interface Setup {
  zone?: ZoneData;
  mutate?: (c: Config) => void;
  hook?: PolicyHook;
  sink?: SmtpSinkOptions;
  limits?: Partial<SmtpLimits>;
  relayPort?: number;
  tls?: { key: Buffer; cert: Buffer };
  log?: Array<[string, string, Record<string, unknown> | undefined]>;
}

async function setup(options: Setup = {}) {
  const resolver = new MemoryResolver({ ...frontZone(), ...options.zone });
  const config = defaultConfig();
  config.authservId = 'mx.receiver.example';
  config.ratings.registries = [{ zone: 'registry.example' }];
  options.mutate?.(config);
  const engine = new Engine({ resolver, policy: staticPolicy(config, resolver, options.hook) });
  const sink = await startSmtpSink({ xclient: true, ...options.sink });
  const front = createSmtpFront({
    engine,
    hostname: 'front.test',
    relay: { host: '127.0.0.1', port: options.relayPort ?? sink.port, heloName: 'front.test', connectTimeoutMs: 2_000 },
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
    now: () => new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    log: (level, message, fields) => options.log?.push([level, message, fields]),
  });
  const { port } = await front.listen(0, '127.0.0.1');
  const connect = (localAddress = '127.0.0.2') => Wire.connect(port, { localAddress });
  return {
    sink,
    front,
    port,
    connect,
    async close() {
      await front.close();
      await sink.close();
    },
  };
}

const MESSAGE = [
  'Authentication-Results: mx.receiver.example; spf=pass smtp.mailfrom=forged@example.com',
  'From: a@example.com',
  'To: b@dest.example',
  'Subject: hello',
  '',
  'body line',
  '.starts with a dot',
  '',
].join('\r\n');

test('the seed: ID example.net from a client it does not authorize is refused 550 5.7.1, before any relaying', async () => {
  const s = await setup();
  try {
    const c = await s.connect('127.0.0.1');
    assert.match(c.greeting.text, /^220 front\.test ESMTP/);
    const ehlo = await c.cmd('EHLO client.example');
    assert.ok(ehlo.lines.includes('ID'), ehlo.text);
    const id = await c.cmd('ID example.net');
    assert.equal(id.text, "550 5.7.1 Sending MTA '127.0.0.1' not authorized by 'example.net'");
    // the refused identity stays with the connection: no mail from it
    assert.equal((await c.cmd('MAIL FROM:<a@example.net>')).code, 550);
    await c.quit();
    assert.equal(s.sink.connections, 0);
  } finally {
    await s.close();
  }
});

test('accepted mail reaches the back-end with our headers on top and the real client passed by XCLIENT', async () => {
  const s = await setup();
  try {
    const c = await s.connect();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd('ID example.com')).text, '250 2.0.0 ID example.com OK');
    assert.equal((await c.cmd('MAIL FROM:<a@example.com>')).text, '250 2.1.0 Ok');
    assert.equal((await c.cmd('RCPT TO:<b@dest.example>')).text, '250 2.1.5 Ok');
    const final = await c.data(MESSAGE);
    assert.equal(final.text, '250 2.0.0 Ok: queued as S1');
    const clientPort = c.localPort;
    await c.quit();
    const [m] = await s.sink.waitFor(1);
    const lines = m!.data.split('\r\n');
    // the verdict's last header is the very first line; headers[0] sits right above our Received:
    assert.equal(lines[0], 'Authent: 127.0.0.2 example.com SPF1 PASS ratings=S1:A,M2:A,H1:B');
    assert.match(lines[1]!, /^Authentication-Results: mx\.receiver\.example/);
    const received = lines.findIndex((l) => l.startsWith('Received:'));
    assert.ok(received >= 2 && lines.slice(2, received).every((l) => /^\s/.test(l)), 'nothing but folds between the verdict headers and Received:');
    assert.equal(lines[received], 'Received: from client.example ([127.0.0.2])');
    assert.match(lines[received + 1]!, /^\tby front\.test \(checkid\) with ESMTP id [0-9A-F]{12}$/);
    assert.equal(lines[received + 2], '\tfor <b@dest.example>; Fri, 2 Jan 2026 03:04:05 +0000');
    // the forged Authentication-Results (our authserv-id) is gone; the rest is as sent
    assert.equal(m!.data.match(/^Authentication-Results:/gm)?.length, 1);
    assert.ok(m!.data.endsWith('From: a@example.com\r\nTo: b@dest.example\r\nSubject: hello\r\n\r\nbody line\r\n.starts with a dot\r\n'));
    // XCLIENT: the back-end sees the client, not the front-end's own connection
    assert.equal(s.sink.sessions[0]!.peer, '127.0.0.1');
    assert.deepEqual(m!.client, { addr: '127.0.0.2', port: String(clientPort), name: '[UNAVAILABLE]', helo: 'client.example', proto: 'ESMTP' });
    assert.deepEqual(s.sink.sessions[0]!.commands.slice(0, 3), ['EHLO front.test', `XCLIENT PROTO=ESMTP HELO=client.example PORT=${clientPort} NAME=[UNAVAILABLE] ADDR=127.0.0.2`, 'EHLO client.example']);
  } finally {
    await s.close();
  }
});

test('FILTER: subject tagged, per-recipient back-end refusals passed through, the message relayed for the others', async () => {
  const s = await setup({
    mutate: (c) => {
      c.filter.subjectTag = '[SUSPECT]';
    },
    sink: { rcpt: (a) => (a.startsWith('nobody') ? '550 5.1.1 <nobody@dest.example>: Recipient address rejected: User unknown' : null) },
  });
  try {
    const c = await s.connect();
    await c.cmd('EHLO client.example');
    await c.cmd('ID unrated.example');
    assert.equal((await c.cmd('MAIL FROM:<a@unrated.example>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<one@dest.example>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<nobody@dest.example>')).text, '550 5.1.1 <nobody@dest.example>: Recipient address rejected: User unknown');
    assert.equal((await c.cmd('RCPT TO:<two@dest.example>')).code, 250);
    assert.equal((await c.data('Subject: hello\r\n\r\nhi\r\n')).code, 250);
    await c.quit();
    const [m] = await s.sink.waitFor(1);
    assert.deepEqual(m!.rcpt, ['one@dest.example', 'two@dest.example']);
    assert.match(m!.data, /^Subject: \[SUSPECT\] hello\r$/m);
    assert.match(m!.data, /^Authent: 127\.0\.0\.2 unrated\.example SPF1 PASS\r$/m);
    // two recipients: no "for" clause
    assert.doesNotMatch(m!.data, /\tfor </);
  } finally {
    await s.close();
  }
});

test('DATA is never acknowledged before the back-end accepted the message', async () => {
  let release!: (r: string | null) => void;
  let clientHadReply: boolean | undefined;
  let c: Wire;
  const s = await setup({
    sink: {
      final: () =>
        new Promise((resolve) => {
          // the whole message is at the back-end, and the client has heard nothing yet
          clientHadReply = c.pending;
          release = resolve;
        }),
    },
  });
  try {
    c = await s.connect();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@dest.example>');
    await c.cmd('DATA');
    c.send('Subject: wait\r\n\r\nfor it\r\n.\r\n');
    while (!release) await new Promise((r) => setTimeout(r, 5));
    assert.equal(clientHadReply, false);
    assert.equal(c.pending, false);
    release('250 2.0.0 Ok: queued as LATE');
    assert.equal((await c.reply()).text, '250 2.0.0 Ok: queued as LATE');
    await c.quit();
  } finally {
    await s.close();
  }
});

test('back-end refusals and failures reach the client; nothing is acknowledged that the back-end did not take', async () => {
  let mode: 'refuse' | 'hangup' = 'refuse';
  const s = await setup({ sink: { final: () => (mode === 'refuse' ? '554 5.7.1 Rejected by the content filter' : 'HANGUP') } });
  try {
    const c = await s.connect();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@dest.example>');
    assert.equal((await c.data('Subject: x\r\n\r\ny\r\n')).text, '554 5.7.1 Rejected by the content filter');
    mode = 'hangup';
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@dest.example>');
    assert.equal((await c.data('Subject: x\r\n\r\ny\r\n')).text, '451 4.4.2 Lost the connection to the mail server; message not accepted, try again later');
    // the next transaction opens a new back-end connection
    mode = 'refuse';
    assert.equal((await c.cmd('MAIL FROM:<a@example.com>')).code, 250);
    assert.equal(s.sink.connections, 2);
    await c.quit();
    assert.equal(s.sink.messages.length, 0);
    assert.equal(s.sink.received, 2);
  } finally {
    await s.close();
  }
});

test('back-end down: 451 4.4.1 at MAIL, nothing accepted', async () => {
  const probe = await startSmtpSink();
  const deadPort = probe.port;
  await probe.close();
  const s = await setup({ relayPort: deadPort });
  try {
    const c = await s.connect();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd('MAIL FROM:<a@example.com>')).text, '451 4.4.1 The mail server is not available; try again later');
    assert.equal((await c.cmd('RCPT TO:<b@dest.example>')).code, 503);
    await c.quit();
  } finally {
    await s.close();
  }
});

test('a back-end connection lost between transactions is opened anew; one connection serves several messages', async () => {
  const s = await setup();
  try {
    const c = await s.connect();
    await c.cmd('EHLO client.example');
    for (const n of [1, 2]) {
      await c.cmd('MAIL FROM:<a@example.com>');
      await c.cmd(`RCPT TO:<r${n}@dest.example>`);
      assert.equal((await c.data(`Subject: ${n}\r\n\r\nx\r\n`)).code, 250);
    }
    assert.equal(s.sink.connections, 1);
    s.sink.hangUp();
    await new Promise((r) => setTimeout(r, 20));
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<r3@dest.example>');
    assert.equal((await c.data('Subject: 3\r\n\r\nx\r\n')).code, 250);
    assert.equal(s.sink.connections, 2);
    await c.quit();
    assert.deepEqual(
      s.sink.messages.map((m) => m.rcpt[0]),
      ['r1@dest.example', 'r2@dest.example', 'r3@dest.example'],
    );
  } finally {
    await s.close();
  }
});

test('over-size: refused at MAIL with SIZE=, and while receiving; the back-end gets nothing', async () => {
  const s = await setup({ limits: { maxMessageSize: 2_000 } });
  try {
    const c = await s.connect();
    const ehlo = await c.cmd('EHLO client.example');
    assert.ok(ehlo.lines.includes('SIZE 2000'));
    assert.equal((await c.cmd('MAIL FROM:<a@example.com> SIZE=5000')).text, '552 5.3.4 Message size exceeds fixed limit of 2000 octets');
    assert.equal((await c.cmd('MAIL FROM:<a@example.com> SIZE=1000')).code, 250);
    await c.cmd('RCPT TO:<b@dest.example>');
    assert.equal((await c.data(`Subject: big\r\n\r\n${'x'.repeat(900)}\r\n${'y'.repeat(900)}\r\n${'z'.repeat(900)}\r\n`)).text, '552 5.3.4 Message size exceeds fixed limit of 2000 octets');
    // the back-end's transaction was abandoned: the next one works
    await c.cmd('MAIL FROM:<a@example.com> SIZE=100');
    await c.cmd('RCPT TO:<b@dest.example>');
    assert.equal((await c.data('Subject: small\r\n\r\nok\r\n')).code, 250);
    await c.quit();
    assert.equal(s.sink.received, 1);
    assert.match(s.sink.messages[0]!.mailParams, /SIZE=100/);
    assert.ok(s.sink.sessions[0]!.commands.includes('RSET'));
  } finally {
    await s.close();
  }
});

test('pipelining: a whole transaction in one write, replies in order; the back-end gets RSET and MAIL in one go', async () => {
  const s = await setup({ sink: { rcpt: (a) => (a.startsWith('bad') ? '550 5.1.1 unknown user' : null) } });
  try {
    const c = await s.connect();
    await c.cmd('EHLO client.example');
    const first = await c.pipeline(['MAIL FROM:<a@example.com>', 'RCPT TO:<one@dest.example>', 'RCPT TO:<bad@dest.example>', 'RCPT TO:<two@dest.example>', 'DATA']);
    assert.deepEqual(
      first.map((r) => r.code),
      [250, 250, 550, 250, 354],
    );
    c.send('Subject: one\r\n\r\n1\r\n.\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<three@dest.example>\r\nDATA\r\n');
    const next = [await c.reply(), await c.reply(), await c.reply(), await c.reply()];
    assert.deepEqual(
      next.map((r) => r.code),
      [250, 250, 250, 354],
    );
    // the second message is empty
    c.send('.\r\n');
    assert.equal((await c.reply()).code, 250);
    await c.quit();
    assert.deepEqual(
      s.sink.messages.map((m) => m.rcpt),
      [['one@dest.example', 'two@dest.example'], ['three@dest.example']],
    );
    assert.equal(s.sink.connections, 1);
  } finally {
    await s.close();
  }
});

test('XFORWARD when the back-end offers no XCLIENT; HELO clients get SMTP, and a new EHLO name reaches XCLIENT back-ends', async () => {
  const xf = await setup({ sink: { xclient: false, xforward: true } });
  try {
    const c = await xf.connect();
    await c.cmd('HELO old.example');
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@dest.example>');
    assert.equal((await c.data('Subject: xf\r\n\r\nx\r\n')).code, 250);
    const clientPort = c.localPort;
    await c.quit();
    const [m] = await xf.sink.waitFor(1);
    assert.deepEqual(m!.xforward, { NAME: '[UNAVAILABLE]', ADDR: '127.0.0.2', PORT: String(clientPort), PROTO: 'SMTP', HELO: 'old.example', SOURCE: 'REMOTE' });
    assert.equal(m!.client.addr, '127.0.0.1');
    assert.match(m!.data, /^Received: from old\.example \(\[127\.0\.0\.2\]\)\r\n\tby front\.test \(checkid\) with SMTP id/m);
  } finally {
    await xf.close();
  }
  const xc = await setup();
  try {
    const c = await xc.connect();
    await c.cmd('EHLO first.example');
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@dest.example>');
    await c.data('Subject: 1\r\n\r\nx\r\n');
    await c.cmd('EHLO second.example');
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@dest.example>');
    await c.data('Subject: 2\r\n\r\nx\r\n');
    await c.quit();
    const [one, two] = await xc.sink.waitFor(2);
    assert.equal(one!.client.helo, 'first.example');
    assert.equal(two!.client.helo, 'second.example');
    assert.equal(xc.sink.connections, 1);
  } finally {
    await xc.close();
  }
});

test('policy actions at RCPT and end of message: DISCARD accepts without relaying, TEMPFAIL and REJECT refuse', async () => {
  const hook: PolicyHook = ({ stage, recipient, facts }) => {
    if (stage === 'rcpt' && recipient === 'trash@dest.example') return { action: 'DISCARD' };
    if (stage === 'rcpt' && recipient === 'later@dest.example') return { action: 'TEMPFAIL', reply: { code: 451, xcode: '4.7.1', text: 'Greylisted, try again' } };
    if (stage === 'eom' && facts.envelope.mailFrom === 'spam@unrated.example') return { action: 'REJECT', reply: { code: 550, xcode: '5.7.1', text: 'Content refused' } };
    return undefined;
  };
  const s = await setup({ hook });
  try {
    const c = await s.connect();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<a@unrated.example>');
    assert.equal((await c.cmd('RCPT TO:<later@dest.example>')).text, '451 4.7.1 Greylisted, try again');
    assert.equal((await c.cmd('RCPT TO:<trash@dest.example>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<kept@dest.example>')).code, 250);
    assert.equal((await c.data('Subject: gone\r\n\r\nx\r\n')).code, 250);
    await c.cmd('MAIL FROM:<spam@unrated.example>');
    await c.cmd('RCPT TO:<kept@dest.example>');
    assert.equal((await c.data('Subject: no\r\n\r\nx\r\n')).text, '550 5.7.1 Content refused');
    await c.quit();
    assert.equal(s.sink.received, 0);
  } finally {
    await s.close();
  }
});

test('STARTTLS with a throwaway certificate: the session starts over under TLS and Received: says ESMTPS', async () => {
  const dir = tempDir('checkid-smtp-tls-');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=front.test', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  const s = await setup({ tls: { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) } });
  try {
    const c = await s.connect();
    assert.ok((await c.cmd('EHLO client.example')).lines.includes('STARTTLS'));
    assert.equal((await c.cmd('STARTTLS')).text, '220 2.0.0 Ready to start TLS');
    const secure = await c.upgrade();
    assert.equal(secure.getPeerCertificate().subject?.CN, 'front.test');
    assert.equal((await c.cmd('MAIL FROM:<a@example.com>')).code, 503);
    const ehlo = await c.cmd('EHLO client.example');
    assert.ok(!ehlo.lines.includes('STARTTLS'));
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@dest.example>');
    assert.equal((await c.data('Subject: tls\r\n\r\nsecret\r\n')).code, 250);
    await c.quit();
    const [m] = await s.sink.waitFor(1);
    assert.match(m!.data, /^Received: from client\.example \(\[127\.0\.0\.2\]\)\r\n\t\(using TLSv1\.3 with cipher [A-Z0-9_]+\)\r\n\tby front\.test \(checkid\) with ESMTPS id/m);
  } finally {
    await s.close();
  }
});

test('the connect stage: a blocked client gets a 554 greeting and never reaches the back-end', async () => {
  const s = await setup({ mutate: (c) => (c.prescreen.block = ['127.0.0.2']) });
  try {
    const c = await s.connect();
    assert.equal(c.greeting.text, '554 5.7.1 Client host [127.0.0.2] blocked by local policy');
    assert.equal((await c.cmd('EHLO client.example')).code, 503);
    await c.quit();
    assert.equal(s.sink.connections, 0);
  } finally {
    await s.close();
  }
  // an allow-listed client is accepted for the whole connection, with headers
  const allowed = await setup({ mutate: (c) => (c.prescreen.allow = ['127.0.0.2']) });
  try {
    const c = await allowed.connect();
    await c.cmd('EHLO client.example');
    await c.cmd('ID example.net');
    await c.cmd('MAIL FROM:<a@example.net>');
    await c.cmd('RCPT TO:<b@dest.example>');
    assert.equal((await c.data('Subject: ok\r\n\r\nx\r\n')).code, 250);
    await c.quit();
    const [m] = await allowed.sink.waitFor(1);
    assert.match(m!.data, /^Authentication-Results: mx\.receiver\.example/);
  } finally {
    await allowed.close();
  }
});

test('Received:, message composition and reply mapping', () => {
  assert.equal(rfc5322Date(new Date(Date.UTC(2026, 10, 23, 9, 8, 7))), 'Mon, 23 Nov 2026 09:08:07 +0000');
  const r = receivedHeader({
    helo: 'bad (helo)',
    ip: '2001:db8::1',
    reverseName: 'mx.example.com',
    hostname: 'front.test',
    esmtp: true,
    secure: false,
    smtputf8: true,
    id: 'ABC',
    recipients: ['a@b.example'],
    date: new Date(0),
  });
  assert.equal(r, 'Received: from bad??helo? (mx.example.com [IPv6:2001:db8::1])\r\n\tby front.test (checkid) with UTF8SMTP id ABC\r\n\tfor <a@b.example>; Thu, 1 Jan 1970 00:00:00 +0000\r\n');
  const composed = composeMessage(
    {
      headers: [
        { name: 'Authentication-Results', raw: Buffer.from('Authentication-Results: mx; spf=pass\r\n') },
        { name: 'subject', raw: Buffer.from('subject:\r\n') },
        { name: 'Authentication-Results', raw: Buffer.from('Authentication-Results: other; dkim=pass\r\n') },
      ],
      body: [Buffer.from('no separator\r\n')],
      separated: false,
      size: 0,
    },
    {
      headers: [
        { label: 'First:', text: 'one\r\n\tfolded' },
        { label: 'Second:', text: 'two\r\nINJECTED: x' },
      ],
      received: 'Received: ours\r\n',
      removals: [{ name: 'authentication-results', occurrence: 1, reason: 'forged' }],
      subjectTag: '[TAG]',
    },
  );
  assert.equal(
    Buffer.concat(composed).toString(),
    'Second: two INJECTED: x\r\nFirst: one\r\n\tfolded\r\nReceived: ours\r\nsubject: [TAG]\r\nAuthentication-Results: other; dkim=pass\r\n\r\nno separator\r\n',
  );
  const v = (action: Verdict['action'], code: number, xcode: string): Verdict => ({ action, reply: { code, xcode, text: 't' }, headers: [], removeHeaders: [], stage: 'rcpt', reason: '', explanation: [] });
  assert.deepEqual(verdictReply(v('REJECT', 250, '')), { code: 550, enhanced: '5.7.1', lines: ['t'] });
  assert.deepEqual(verdictReply(v('TEMPFAIL', 451, '5.7.1')), { code: 451, enhanced: '4.0.0', lines: ['t'] });
  assert.deepEqual(verdictReply(v('ACCEPT', 250, ''), '2.1.5'), { code: 250, enhanced: '2.1.5', lines: ['t'] });
});

test('DKIM through the front-end: the header bytes and the dot-stuffed body reach the engine exactly (simple/simple)', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const unsigned =
    'From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and Grüße,\r\n\tfolded\r\n' +
    'Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello Bob,\r\n.a line with a dot\r\n..two\r\n\r\n';
  const signed = (
    (await dkimSign(Buffer.from(unsigned), {
      signatureData: [{ signingDomain: 'example.com', selector: 'sel', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, canonicalization: 'simple/simple' }],
    } as never)) as { signatures: string }
  ).signatures + unsigned;
  const s = await setup({ zone: { 'sel._domainkey.example.com': [{ TXT: `v=DKIM1; k=rsa; p=${p}` }] } });
  try {
    const c = await s.connect();
    await c.cmd('EHLO client.example');
    await c.cmd('ID unrated.example');
    await c.cmd('MAIL FROM:<alice@unrated.example>');
    await c.cmd('RCPT TO:<bob@example.org>');
    assert.equal((await c.data(signed)).code, 250);
    await c.quit();
    const [m] = await s.sink.waitFor(1);
    const ar = /^Authentication-Results: [\s\S]*?(?=\r\n\S)/m.exec(m!.data)![0].replace(/\r\n\t/g, ' ');
    assert.match(ar, /dkim=pass header\.d=example\.com/, ar);
    // and the message went on unchanged below our headers
    assert.ok(m!.data.endsWith(signed));
  } finally {
    await s.close();
  }
});
