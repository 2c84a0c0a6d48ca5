/** The SMTP server's parser and state machine, driven without sockets. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatReply,
  MessageReader,
  parseCommand,
  type Reply,
  reply,
  type SmtpHandler,
  type SmtpIo,
  SmtpProtocol,
  type SmtpProtocolOptions,
} from '../../../src/adapters/smtp-front/server.ts';

class FakeIo implements SmtpIo {
  writes: string[] = [];
  closed = false;
  tls = false;
  pauses = 0;
  write(data: string) {
    this.writes.push(data);
  }
  close() {
    this.closed = true;
  }
  startTls() {
    this.tls = true;
  }
  pause() {
    this.pauses++;
  }
  resume() {}
  /** every reply line written so far */
  get lines(): string[] {
    return this.writes.join('').split('\r\n').filter((l) => l !== '');
  }
  /** the last complete reply's lines */
  get last(): string {
    return this.lines.at(-1) ?? '';
  }
}

interface Recorder extends SmtpHandler {
  calls: string[];
  headers: Array<[string, string]>;
  messages: Array<{ text: string; separated: boolean; size: number; recipients: string[] }>;
}

function recorder(overrides: Partial<SmtpHandler> = {}): Recorder {
  const calls: string[] = [];
  const headers: Array<[string, string]> = [];
  const messages: Recorder['messages'] = [];
  const base: Recorder = {
    calls,
    headers,
    messages,
    connect: async () => null,
    helo: async (name, esmtp) => {
      calls.push(`${esmtp ? 'EHLO' : 'HELO'} ${name}`);
      return null;
    },
    id: async (domain) => {
      calls.push(`ID ${domain}`);
      return null;
    },
    mail: async (address) => {
      calls.push(`MAIL ${address}`);
      return null;
    },
    rcpt: async (address) => {
      calls.push(`RCPT ${address}`);
      return null;
    },
    data: async () => {
      calls.push('DATA');
      return null;
    },
    header: (name, value) => {
      headers.push([name, value]);
    },
    endOfHeaders: () => {
      calls.push('EOH');
    },
    body: () => {},
    endOfData: async (m, tx) => {
      const text = Buffer.concat([...m.headers.map((h) => h.raw), ...m.body]).toString('utf8');
      messages.push({ text, separated: m.separated, size: m.size, recipients: [...tx.recipients] });
      calls.push('EOM');
      return reply(250, '2.0.0', 'queued');
    },
    reset: () => {
      calls.push('RESET');
    },
    close: () => {
      calls.push('CLOSE');
    },
  };
  return Object.assign(base, overrides);
}

const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

async function open(handler = recorder(), options: Partial<SmtpProtocolOptions> = {}) {
  const io = new FakeIo();
  const p = new SmtpProtocol(handler, io, { remoteAddress: '192.0.2.1', remotePort: 4711, localAddress: '127.0.0.1', localPort: 25 }, { hostname: 'mx.test', ...options });
  await p.start();
  const say = async (text: string) => {
    p.receive(Buffer.from(text));
    await settle();
    return io.last;
  };
  return { p, io, handler, say };
}

test('parser: commands, paths and parameters', () => {
  const ok = (line: string) => {
    const r = parseCommand(line);
    assert.ok('command' in r, `${line}: ${JSON.stringify(r)}`);
    return r.command;
  };
  const err = (line: string, utf8 = false) => {
    const r = parseCommand(line, utf8);
    assert.ok('error' in r, `${line} should be refused`);
    return `${r.error.code} ${r.error.enhanced}`;
  };
  assert.deepEqual(ok('ehlo mx.example.com'), { verb: 'EHLO', domain: 'mx.example.com' });
  assert.deepEqual(ok('HELO [192.0.2.1]'), { verb: 'HELO', domain: '[192.0.2.1]' });
  assert.deepEqual(ok('ID example.com'), { verb: 'ID', keyword: 'ID', domain: 'example.com' });
  assert.deepEqual(ok('xid Example.COM.'), { verb: 'ID', keyword: 'XID', domain: 'Example.COM.' });
  assert.deepEqual(ok('MAIL FROM:<>'), { verb: 'MAIL', address: '', params: { smtputf8: false }, hasParams: false });
  assert.deepEqual(ok('mail from: <a@b.example> SIZE=1000 BODY=8bitmime SMTPUTF8'), {
    verb: 'MAIL',
    address: 'a@b.example',
    params: { smtputf8: true, size: 1000, body: '8BITMIME' },
    hasParams: true,
  });
  assert.deepEqual(ok('MAIL FROM:<@relay.example,@r2.example:user@b.example>'), { verb: 'MAIL', address: 'user@b.example', params: { smtputf8: false }, hasParams: false });
  assert.deepEqual(ok('MAIL FROM:<"odd > local"@b.example>'), { verb: 'MAIL', address: '"odd > local"@b.example', params: { smtputf8: false }, hasParams: false });
  assert.deepEqual(ok('RCPT TO:<Postmaster>'), { verb: 'RCPT', address: 'Postmaster' });
  assert.deepEqual(ok('RCPT TO:<user@[192.0.2.7]>'), { verb: 'RCPT', address: 'user@[192.0.2.7]' });
  assert.deepEqual(ok('NOOP anything'), { verb: 'NOOP' });
  assert.deepEqual(ok('VRFY bob'), { verb: 'VRFY', argument: 'bob' });

  assert.equal(err('EHLO'), '501 5.5.4');
  assert.equal(err('EHLO two words'), '501 5.5.4');
  assert.equal(err('ID localhost'), '501 5.5.4');
  assert.equal(err('ID 192.0.2.1'), '501 5.5.4');
  assert.equal(err('ID'), '501 5.5.4');
  assert.equal(err('ID a.example b.example'), '501 5.5.4');
  assert.equal(err('ID -bad.example'), '501 5.5.4');
  assert.equal(err('MAIL TO:<a@b.example>'), '501 5.5.4');
  assert.equal(err('MAIL FROM:<a@b.example'), '501 5.1.7');
  assert.equal(err('MAIL FROM:<a b@c.example>'), '501 5.1.7');
  assert.equal(err('MAIL FROM:<a@b.example> SIZE=big'), '501 5.5.4');
  assert.equal(err('MAIL FROM:<a@b.example> BODY=BINARYMIME'), '555 5.5.4');
  assert.equal(err('MAIL FROM:<a@b.example> AUTH=<>'), '555 5.5.4');
  assert.equal(err('MAIL FROM:<a@b.example> SIZE=1 SIZE=2'), '501 5.5.4');
  assert.equal(err('MAIL FROM:<jörg@b.example>'), '553 5.6.7');
  assert.ok('command' in parseCommand('MAIL FROM:<jörg@bücher.example> SMTPUTF8'));
  assert.equal(err('RCPT TO:<>'), '501 5.1.3');
  assert.equal(err('RCPT TO:<a@b.example> NOTIFY=NEVER'), '555 5.5.4');
  assert.equal(err('RCPT TO:<zoë@b.example>'), '553 5.6.7');
  assert.ok('command' in parseCommand('RCPT TO:<zoë@b.example>', true));
  assert.equal(err('DATA now'), '501 5.5.4');
  assert.equal(err('EXPN list'), '502 5.5.1');
  assert.equal(err('AUTH PLAIN x'), '502 5.5.1');
  assert.equal(err('GET / HTTP/1.1'), '500 5.5.2');
  assert.equal(err('NOOP \x00'), '500 5.5.2');
  assert.equal(err(''), '500 5.5.2');
});

test('replies: enhanced code on every line, continuation marks, long text wrapped under 512 octets', () => {
  assert.equal(formatReply(reply(550, '5.7.1', 'one', 'two')), '550-5.7.1 one\r\n550 5.7.1 two\r\n');
  assert.equal(formatReply(reply(220, '', 'mx.test ESMTP')), '220 mx.test ESMTP\r\n');
  assert.equal(formatReply(reply(250, '2.0.0', 'bad\r\nline')), '250 2.0.0 bad  line\r\n');
  const long = formatReply(reply(550, '5.7.1', 'word '.repeat(300).trim()));
  const lines = long.split('\r\n').filter(Boolean);
  assert.ok(lines.length >= 3);
  for (const l of lines) assert.ok(Buffer.byteLength(l) + 2 <= 512, l);
  assert.match(lines[0]!, /^550-5\.7\.1 word/);
  // octets, not characters: a line of emoji wraps too
  const wide = formatReply(reply(550, '5.7.1', `x ${'😀'.repeat(200)} y`));
  for (const l of wide.split('\r\n').filter(Boolean)) assert.ok(Buffer.byteLength(l) + 2 <= 512, `${Buffer.byteLength(l)}`);
  // nothing lost but the spaces the lines were broken at
  assert.equal(wide.replace(/550[- ]5\.7\.1 /g, '').replace(/\r\n| /g, ''), `x${'😀'.repeat(200)}y`);
  assert.match(lines.at(-1)!, /^550 5\.7\.1 word/);
});

test('greeting and EHLO: the extensions offered, ID among them; HELO gets a plain 250', async () => {
  const { io, say } = await open();
  assert.equal(io.lines[0], '220 mx.test ESMTP checkid');
  await say('EHLO client.example\r\n');
  const ehlo = io.lines.slice(1);
  assert.deepEqual(ehlo, [
    '250-mx.test Hello client.example [192.0.2.1]',
    '250-PIPELINING',
    '250-SIZE 26214400',
    '250-ENHANCEDSTATUSCODES',
    '250-8BITMIME',
    '250-SMTPUTF8',
    '250 ID',
  ]);
  assert.equal(await say('HELO client.example\r\n'), '250 mx.test');
  const tls = await open(recorder(), { starttls: true });
  await tls.say('EHLO c.example\r\n');
  assert.ok(tls.io.lines.includes('250-STARTTLS'));
});

test('sequence errors: 503 for MAIL before EHLO, RCPT before MAIL, nested MAIL; DATA without recipients', async () => {
  const { handler, say } = await open();
  assert.equal(await say('MAIL FROM:<a@b.example>\r\n'), '503 5.5.1 Send HELO/EHLO first');
  await say('EHLO c.example\r\n');
  assert.equal(await say('RCPT TO:<r@d.example>\r\n'), '503 5.5.1 Need MAIL before RCPT');
  assert.equal(await say('DATA\r\n'), '503 5.5.1 Need MAIL command');
  assert.equal(await say('MAIL FROM:<a@b.example>\r\n'), '250 2.1.0 OK');
  assert.equal(await say('MAIL FROM:<a@b.example>\r\n'), '503 5.5.1 Nested MAIL command');
  assert.equal(await say('DATA\r\n'), '554 5.5.1 No valid recipients');
  assert.equal(await say('RSET\r\n'), '250 2.0.0 OK');
  assert.equal(await say('RCPT TO:<r@d.example>\r\n'), '503 5.5.1 Need MAIL before RCPT');
  assert.equal(await say('MAIL FROM:<a@b.example> SIZE=10\r\n'), '250 2.1.0 OK');
  assert.equal(await say('HELO again.example\r\n'), '250 mx.test');
  // a new HELO ended the transaction (RFC 5321 §4.1.4)
  assert.equal(await say('RCPT TO:<r@d.example>\r\n'), '503 5.5.1 Need MAIL before RCPT');
  assert.equal(await say('MAIL FROM:<a@b.example> SIZE=10\r\n'), '555 5.5.4 MAIL parameters need EHLO');
  assert.equal(await say('VRFY bob\r\n'), '252 2.5.0 Cannot VRFY user; send mail and delivery will be attempted');
  assert.match(await say('HELP\r\n'), /^214 2\.0\.0 End of HELP$/);
  assert.equal(await say('FOO\r\n'), '500 5.5.2 Command not recognized');
  assert.equal(await say('QUIT\r\n'), '221 2.0.0 mx.test closing connection');
  assert.equal(handler.calls.filter((c) => c === 'RESET').length >= 2, true);
  assert.equal(handler.calls.at(-1), 'CLOSE');
});

test('ID: after EHLO and before MAIL, once per EHLO; XID is a synonym; 501 on bad syntax', async () => {
  const { handler, say } = await open();
  assert.equal(await say('ID example.com\r\n'), '503 5.5.1 Send EHLO before ID');
  await say('HELO c.example\r\n');
  assert.equal(await say('ID example.com\r\n'), '503 5.5.1 ID is an ESMTP extension: send EHLO, not HELO');
  await say('EHLO c.example\r\n');
  assert.equal(await say('ID localhost\r\n'), '501 5.5.4 Syntax: ID domain (a fully qualified domain name)');
  assert.equal(await say('XID example.com\r\n'), '250 2.0.0 ID example.com OK');
  assert.equal(await say('ID example.com\r\n'), '503 5.5.1 ID was already given; send EHLO to start over');
  await say('EHLO c.example\r\n');
  assert.equal(await say('ID example.org\r\n'), '250 2.0.0 ID example.org OK');
  await say('EHLO c.example\r\n');
  await say('MAIL FROM:<a@b.example>\r\n');
  assert.equal(await say('ID example.com\r\n'), '503 5.5.1 ID must come before MAIL');
  await say('RSET\r\n');
  // after a transaction (even an abandoned one) the connection's identity is settled
  assert.equal(await say('ID example.com\r\n'), '503 5.5.1 ID must come before MAIL');
  assert.deepEqual(
    handler.calls.filter((c) => c.startsWith('ID')),
    ['ID example.com', 'ID example.org'],
  );
});

test('an ID the handler refuses still counts as given', async () => {
  const { say } = await open(recorder({ id: async () => reply(550, '5.7.1', "Sending MTA '192.0.2.1' not authorized by 'example.net'") }));
  await say('EHLO c.example\r\n');
  assert.equal(await say('ID example.net\r\n'), "550 5.7.1 Sending MTA '192.0.2.1' not authorized by 'example.net'");
  assert.equal(await say('ID example.com\r\n'), '503 5.5.1 ID was already given; send EHLO to start over');
});

test('pipelining: a batch is answered in order, in one write; EHLO is a synchronisation point', async () => {
  const slow = recorder({
    rcpt: async (address) => {
      await new Promise((r) => setTimeout(r, 5));
      return address.startsWith('bad') ? reply(550, '5.1.1', 'no such user') : null;
    },
  });
  const { io, say } = await open(slow);
  io.writes = [];
  await say('EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n');
  assert.equal(io.writes.length, 2, 'the EHLO reply goes out at once, MAIL after it');
  io.writes = [];
  const batch = 'RSET\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<one@d.example>\r\nRCPT TO:<bad@d.example>\r\nRCPT TO:<two@d.example>\r\nDATA\r\n';
  slow.calls.length = 0;
  await say(batch);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(io.writes.length, 1, `one write for the whole batch: ${JSON.stringify(io.writes)}`);
  assert.deepEqual(io.writes[0]!.split('\r\n').filter(Boolean), [
    '250 2.0.0 OK',
    '250 2.1.0 OK',
    '250 2.1.5 OK',
    '550 5.1.1 no such user',
    '250 2.1.5 OK',
    '354 End data with <CR><LF>.<CR><LF>',
  ]);
  // the message may follow in the same write as the next batch
  io.writes = [];
  await say('Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n');
  assert.deepEqual(io.lines, ['250 2.0.0 queued', '221 2.0.0 mx.test closing connection']);
  assert.deepEqual(slow.messages[0]!.recipients, ['one@d.example', 'two@d.example']);
});

test('DATA: dot-stuffing removed, header fields streamed as they complete, body kept with CRLF', async () => {
  const { handler, say } = await open();
  await say('EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r@d.example>\r\nDATA\r\n');
  await say('Subject: hello\r\n\tfolded\r\nX-Dots: ..\r\nFrom: a@b.example\r\n\r\n..leading dot\r\n');
  // values byte for byte after the colon: what DKIM's simple canonicalization hashes
  assert.deepEqual(handler.headers, [
    ['Subject', ' hello\r\n\tfolded'],
    ['X-Dots', ' ..'],
    ['From', ' a@b.example'],
  ]);
  assert.equal(handler.calls.at(-1), 'EOH');
  assert.equal(await say('...\r\n.\r\n'), '250 2.0.0 queued');
  const m = handler.messages[0]!;
  assert.equal(m.text, 'Subject: hello\r\n\tfolded\r\nX-Dots: ..\r\nFrom: a@b.example\r\n\r\n.leading dot\r\n..\r\n');
  assert.equal(m.separated, true);
  assert.equal(m.size, Buffer.byteLength(m.text));
  // an empty message, and one without a header section
  await say('MAIL FROM:<>\r\nRCPT TO:<r@d.example>\r\nDATA\r\n.\r\n');
  assert.equal(handler.messages[1]!.text, '');
  await say('MAIL FROM:<>\r\nRCPT TO:<r@d.example>\r\nDATA\r\nno header here\r\nSubject: not a header\r\n.\r\n');
  assert.equal(handler.messages[2]!.separated, false);
  assert.equal(handler.messages[2]!.text, 'no header here\r\nSubject: not a header\r\n');
});

test('DATA: only CRLF.CRLF ends the message; bare LF is normalised or refused', async () => {
  const normal = await open(recorder(), { bareLineEnd: 'normalize' });
  await normal.say('EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r@d.example>\r\nDATA\r\n');
  assert.equal(await normal.say('Subject: s\n\nline\n.\nsmuggled\r\n.\r\r\nMAIL FROM:<x@y.example>\r\n.\r\n'), '250 2.0.0 queued');
  assert.equal(normal.handler.messages.length, 1);
  // "\n.\n" is content; ".\r" loses its stuffing dot, its bare CR becomes a line end of its own
  assert.equal(normal.handler.messages[0]!.text, 'Subject: s\r\n\r\nline\r\n.\r\nsmuggled\r\n\r\n\r\nMAIL FROM:<x@y.example>\r\n');

  const strict = await open(recorder(), { bareLineEnd: 'reject' });
  await strict.say('EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r@d.example>\r\nDATA\r\n');
  assert.equal(await strict.say('Subject: s\r\n\r\nline\n.\nmore\r\n.\r\n'), '550 5.5.2 Message has a bare CR or LF; lines must end with CRLF (RFC 5321 section 2.3.8)');
  assert.equal(strict.handler.messages.length, 0);
  assert.ok(strict.handler.calls.includes('RESET'));
  // the connection goes on
  assert.equal(await strict.say('MAIL FROM:<a@b.example>\r\n'), '250 2.1.0 OK');
});

test('message reader: the same message whatever the chunking', () => {
  const content = 'Subject: chunks\r\nX-A: 1\r\n  2\r\n\r\n.dot\r\nline two\r\n\r\nend\r\n.\r\nAFTER';
  const stuffed = content.replace('\r\n.dot', '\r\n..dot');
  const read = (chunks: Buffer[]) => {
    const headers: string[] = [];
    const body: Buffer[] = [];
    const r = new MessageReader({
      maxSize: 10_000,
      maxLine: 1000,
      bareLineEnd: 'normalize',
      sink: { header: (n, v) => headers.push(`${n}=${v}`), endOfHeaders: () => headers.push('EOH'), body: (c) => body.push(c) },
    });
    let rest: string | null = null;
    for (const c of chunks) {
      if (rest !== null) {
        rest += c.toString();
        continue;
      }
      const end = r.push(c);
      if (end !== -1) rest = c.subarray(end).toString();
    }
    return { text: Buffer.concat([...r.message.headers.map((h) => h.raw), ...r.message.body]).toString(), headers, body: Buffer.concat(body).toString(), rest };
  };
  const whole = read([Buffer.from(stuffed)]);
  assert.equal(whole.text, 'Subject: chunks\r\nX-A: 1\r\n  2\r\n\r\n.dot\r\nline two\r\n\r\nend\r\n');
  assert.deepEqual(whole.headers, ['Subject= chunks', 'X-A= 1\r\n  2', 'EOH']);
  // the body as streamed starts after the separator line
  assert.equal(whole.body, '.dot\r\nline two\r\n\r\nend\r\n');
  assert.equal(whole.rest, 'AFTER');
  const bytes = Buffer.from(stuffed);
  const oneByOne = read([...bytes].map((b) => Buffer.from([b])));
  assert.deepEqual(oneByOne, whole);
  for (let cut = 1; cut < bytes.length; cut += 7) assert.deepEqual(read([bytes.subarray(0, cut), bytes.subarray(cut)]), whole);
});

test('limits: command line length, text line length, SIZE at MAIL and while receiving', async () => {
  const { p, handler, say } = await open(recorder(), { limits: { maxMessageSize: 200 } });
  await say('EHLO c.example\r\n');
  // 512 octets with the CRLF is the most (RFC 5321 §4.5.3.1.4)
  assert.equal(await say(`NOOP ${'x'.repeat(505)}\r\n`), '250 2.0.0 OK');
  assert.equal(await say(`NOOP ${'x'.repeat(506)}\r\n`), '500 5.5.2 Line too long');
  // an over-long line arriving in pieces is refused once, and the next line is read normally
  await say('NOOP '.padEnd(400, 'y'));
  assert.equal(await say('y'.repeat(400)), '500 5.5.2 Line too long');
  assert.equal(await say('zzz\r\nNOOP\r\n'), '250 2.0.0 OK');
  assert.equal(await say('MAIL FROM:<a@b.example> SIZE=201\r\n'), '552 5.3.4 Message size exceeds fixed limit of 200 octets');
  await say('MAIL FROM:<a@b.example> SIZE=100\r\nRCPT TO:<r@d.example>\r\nDATA\r\n');
  assert.equal(await say(`${'a'.repeat(150)}\r\n${'b'.repeat(150)}\r\n.\r\n`), '552 5.3.4 Message size exceeds fixed limit of 200 octets');
  await say('MAIL FROM:<a@b.example>\r\nRCPT TO:<r@d.example>\r\nDATA\r\n');
  assert.equal(await say(`${'a'.repeat(198)}\r\n.\r\n`), '250 2.0.0 queued');
  assert.equal(handler.messages.length, 1);
  assert.equal(p.closed, false);
  const lines = await open(recorder());
  await lines.say('EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r@d.example>\r\nDATA\r\n');
  assert.equal(await lines.say(`${'a'.repeat(998)}\r\n.\r\n`), '250 2.0.0 queued');
  await lines.say('MAIL FROM:<a@b.example>\r\nRCPT TO:<r@d.example>\r\nDATA\r\n');
  assert.equal(await lines.say(`${'a'.repeat(999)}\r\n.\r\n`), '500 5.5.2 Message has a line longer than 998 characters (RFC 5321 section 4.5.3.1.6)');
});

test('limits: recipients per transaction, commands and errors per connection', async () => {
  const r = await open(recorder(), { limits: { maxRecipients: 2 } });
  await r.say('EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<1@d.example>\r\nRCPT TO:<2@d.example>\r\n');
  assert.equal(await r.say('RCPT TO:<3@d.example>\r\n'), '452 4.5.3 Too many recipients');
  const c = await open(recorder(), { limits: { maxCommands: 3 } });
  await c.say('NOOP\r\nNOOP\r\nNOOP\r\n');
  assert.equal(await c.say('NOOP\r\n'), '421 4.7.0 mx.test Error: too many commands');
  assert.equal(c.io.closed, true);
  const e = await open(recorder(), { limits: { maxErrors: 3 } });
  await e.say('FOO\r\nBAR\r\n');
  assert.equal(e.io.closed, false);
  assert.equal(await e.say('BAZ\r\n'), '421 4.7.0 mx.test Error: too many errors');
  assert.equal(e.io.closed, true);
  assert.equal(e.handler.calls.at(-1), 'CLOSE');
});

test('a refused connection: 554 greeting, then 503 to all but QUIT; a 4xx at connect is a 421 and close', async () => {
  const refused = await open(recorder({ connect: async () => reply(554, '5.7.1', 'Client host [192.0.2.1] blocked') }));
  assert.equal(refused.io.lines[0], '554 5.7.1 Client host [192.0.2.1] blocked');
  assert.equal(await refused.say('EHLO c.example\r\n'), '503 5.5.1 No SMTP service here; say QUIT');
  assert.equal(await refused.say('MAIL FROM:<a@b.example>\r\n'), '503 5.5.1 No SMTP service here; say QUIT');
  assert.deepEqual(refused.handler.calls, []);
  assert.equal(await refused.say('QUIT\r\n'), '221 2.0.0 mx.test closing connection');
  const later = await open(recorder({ connect: async () => reply(451, '4.4.3', 'DNS trouble') }));
  assert.deepEqual(later.io.lines, ['421 4.4.3 DNS trouble']);
  assert.equal(later.io.closed, true);
});

test('input before the greeting waits for it; UTF-8 rules for addresses', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const io = new FakeIo();
  const handler = recorder({ connect: () => gate.then(() => null) });
  const p = new SmtpProtocol(handler, io, { remoteAddress: '192.0.2.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 25 }, { hostname: 'mx.test' });
  const started = p.start();
  p.receive(Buffer.from('EHLO early.example\r\n'));
  await settle();
  assert.deepEqual(io.writes, []);
  release();
  await started;
  await settle();
  assert.equal(io.lines[0], '220 mx.test ESMTP checkid');
  assert.ok(handler.calls.includes('EHLO early.example'));
  p.receive(Buffer.from('MAIL FROM:<a@b.example>\r\nRCPT TO:<zoë@d.example>\r\nRSET\r\nMAIL FROM:<a@b.example> SMTPUTF8\r\nRCPT TO:<zoë@d.example>\r\n'));
  await settle();
  assert.deepEqual(io.lines.slice(-4), ['553 5.6.7 Non-ASCII recipient address needs SMTPUTF8 in MAIL FROM', '250 2.0.0 OK', '250 2.1.0 OK', '250 2.1.5 OK']);
  p.receive(Buffer.from([0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xff, 0x0d, 0x0a]));
  await settle();
  assert.equal(io.last, '500 5.5.2 Command is not valid UTF-8');
});

test('idle timeout closes with 421 4.4.2, but not while a command is being worked on', async () => {
  let release!: () => void;
  const { p, io, say } = await open(
    recorder({
      mail: () =>
        new Promise((resolve) => {
          release = () => resolve(null);
        }),
    }),
  );
  await say('EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n');
  p.timeout();
  assert.equal(io.closed, false);
  release();
  await settle();
  assert.equal(io.last, '250 2.1.0 OK');
  p.timeout();
  assert.equal(io.last, '421 4.4.2 mx.test Error: timeout exceeded');
  assert.equal(io.closed, true);
});

test('STARTTLS: 502 when not offered; pipelined input after it is discarded; the session starts over', async () => {
  const plain = await open();
  await plain.say('EHLO c.example\r\n');
  assert.equal(await plain.say('STARTTLS\r\n'), '502 5.5.1 STARTTLS is not available');
  const { p, io, handler, say } = await open(recorder(), { starttls: true });
  assert.equal(await say('STARTTLS\r\n'), '503 5.5.1 Send EHLO first');
  await say('EHLO c.example\r\n');
  // CVE-2011-0411: a command injected after STARTTLS in the same packet must not run
  assert.equal(await say('STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n'), '220 2.0.0 Ready to start TLS');
  assert.equal(io.tls, true);
  p.receive(Buffer.from('RCPT TO:<x@y.example>\r\n'));
  p.tlsStarted({ protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256' });
  await settle();
  assert.ok(!handler.calls.some((c) => c.includes('injected') || c.includes('x@y.example')));
  assert.equal(p.secure, true);
  assert.equal(await say('MAIL FROM:<a@b.example>\r\n'), '503 5.5.1 Send HELO/EHLO first');
  await say('EHLO c.example\r\n');
  assert.ok(!io.lines.slice(-8).includes('250-STARTTLS'));
  assert.equal(await say('STARTTLS\r\n'), '503 5.5.1 TLS is already active');
});

test('shutdown: idle connections get 421 at once, busy ones after their reply', async () => {
  const idle = await open();
  await idle.say('EHLO c.example\r\n');
  idle.p.shutdown();
  assert.equal(idle.io.last, '421 4.3.2 mx.test Service shutting down; try again later');
  assert.equal(idle.io.closed, true);
  let release!: () => void;
  const busy = await open(
    recorder({
      rcpt: () =>
        new Promise((resolve) => {
          release = () => resolve(null);
        }),
    }),
  );
  await busy.say('EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<r@d.example>\r\n');
  busy.p.shutdown();
  assert.equal(busy.io.closed, false);
  release();
  await settle();
  assert.deepEqual(busy.io.lines.slice(-2), ['250 2.1.5 OK', '421 4.3.2 mx.test Service shutting down; try again later']);
  assert.equal(busy.io.closed, true);
});

test('a handler that throws answers 451 4.3.0 and the session goes on', async () => {
  const { say } = await open(
    recorder({
      mail: async () => {
        throw new Error('bug');
      },
    }),
  );
  await say('EHLO c.example\r\n');
  assert.equal(await say('MAIL FROM:<a@b.example>\r\n'), '451 4.3.0 Temporary internal error; try again later');
  assert.equal(await say('NOOP\r\n'), '250 2.0.0 OK');
});

test('pipelined input beyond the pending limit pauses reading until it is worked off', async () => {
  let release!: () => void;
  const { io, say } = await open(
    recorder({
      mail: () =>
        new Promise<Reply | null>((resolve) => {
          release = () => resolve(null);
        }),
    }),
    { limits: { maxPendingInput: 100 } },
  );
  await say('EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n');
  await say('NOOP\r\n'.repeat(40));
  assert.equal(io.pauses, 1);
  release();
  await settle();
  assert.equal(io.lines.filter((l) => l === '250 2.0.0 OK').length, 40);
});
