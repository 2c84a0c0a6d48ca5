/**
 * The SMTP front-end in front of real Postfix 3.7 (the lab: test/support/lab/), the way the
 * front-end is deployed: the `checkid smtp` daemon, the real test DNS server, Postfix behind it on
 * a high port with `smtpd_authorized_xclient_hosts = 127.0.0.1`, and the lab's sink behind
 * Postfix. Clients connect from 127.0.0.2 (the front-end reaches Postfix from 127.0.0.1), so
 * Postfix's own Received: field and log show whether XCLIENT gave it the real client.
 * Senders: our raw client (the only one that speaks ID), swaks and Postfix's smtp-source.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type FrontDaemon, frontConfig, frontZone, startFrontDaemon } from '../adapters/smtp-front/fixtures.ts';
import { Wire } from '../adapters/smtp-front/wire.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { labSkip, requireLab, SMTP_SOURCE, waitUntil } from '../support/lab/lab.ts';
import type { RunningMta } from '../support/lab/mta.ts';
import { startPostfix } from '../support/lab/postfix.ts';
import { type Sink, startSink } from '../support/lab/sink.ts';

const run = promisify(execFile);
const skip = labSkip('postfix');

describe('SMTP front-end before Postfix', { skip, timeout: 180_000 }, () => {
  let dns: DnsTestServer;
  let sink: Sink;
  let postfix: RunningMta;
  let front: FrontDaemon;
  const port = () => front.address.port;

  before(async () => {
    requireLab('postfix');
    dns = await startDnsServer({ zone: frontZone() });
    sink = await startSink();
    postfix = await startPostfix({
      sinkPort: sink.port,
      extra: [
        // Postfix's own refusals, to see them passed through the front-end
        'smtpd_recipient_restrictions = check_recipient_access inline:{ { refused@dest.example = 550 5.1.1 Mailbox unavailable } }, permit_mynetworks, reject',
        'message_size_limit = 40000',
        'smtpd_client_port_logging = yes',
      ],
    });
    front = await startFrontDaemon(['smtp', '--listen', '127.0.0.1:0', '--relay', `127.0.0.1:${postfix.port}`, '--hostname', 'front.lab.example', '--config', frontConfig(), '--resolver', dns.address]);
  });

  after(async () => {
    front?.child.kill('SIGTERM');
    await postfix?.stop();
    await sink?.close();
    await dns?.close();
  });

  const failure = (what: string) => `${what}\n--- postfix log ---\n${postfix.logTail(30)}\n--- checkid log ---\n${front.log.slice(-20).join('\n')}`;

  test('the seed: ID example.net is refused 550 5.7.1 at the front-end, Postfix never hears of it', async () => {
    const before = postfix.logs().split('\n').filter((l) => l.includes('connect from')).length;
    const c = await Wire.connect(port(), { localAddress: '127.0.0.1' });
    const ehlo = await c.cmd('EHLO forger.example');
    assert.ok(ehlo.lines.includes('ID'));
    assert.equal((await c.cmd('ID example.net')).text, "550 5.7.1 Sending MTA '127.0.0.1' not authorized by 'example.net'");
    assert.equal((await c.cmd('MAIL FROM:<ceo@example.net>')).code, 550);
    await c.quit();
    assert.equal(postfix.logs().split('\n').filter((l) => l.includes('connect from')).length, before);
  });

  test('accepted mail arrives through Postfix with our headers on top; XCLIENT gave Postfix the real client', async () => {
    const c = await Wire.connect(port(), { localAddress: '127.0.0.2' });
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd('ID example.com')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<alice@example.com>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@dest.example>')).code, 250);
    const clientPort = c.localPort;
    const final = await c.data('From: alice@example.com\r\nSubject: through postfix\r\nAuthentication-Results: mx.receiver.example; spf=pass\r\n\r\nHello.\r\n..dotted\r\n');
    // the client's 250 is Postfix's own ("queued as ...")
    assert.match(final.text, /^250 2\.0\.0 Ok: queued as [0-9A-F]+$/, failure(final.text));
    await c.quit();
    const m = await sink.find('through postfix', 60_000).catch((err) => assert.fail(failure((err as Error).message)));
    const lines = m.headerLines;
    // Postfix adds its Received: on top, as the real client: HELO client.example from 127.0.0.2
    assert.match(lines[0]!, /^Received: from client\.example \(unknown \[127\.0\.0\.2\]\)$/, failure(lines.join('\n')));
    const authent = lines.findIndex((l) => l.startsWith('Authent:'));
    assert.equal(lines[authent], 'Authent: 127.0.0.2 example.com SPF1 PASS ratings=S1:A,M2:A,H1:B');
    assert.match(lines[authent + 1]!, /^Authentication-Results: mx\.receiver\.example;/);
    const ours = lines.findIndex((l) => l.startsWith('Received: from client.example ([127.0.0.2])'));
    assert.ok(ours > authent, lines.join('\n'));
    assert.match(lines[ours + 1]!, /^\tby front\.lab\.example \(checkid\) with ESMTP id /);
    // the forged Authentication-Results is gone, the content intact
    assert.equal(m.headers.filter(([n]) => n === 'Authentication-Results').length, 1);
    assert.match(m.data, /\r\n\r\nHello\.\r\n\.\.dotted\r\n$/);
    // Postfix's log: connected from the front-end (127.0.0.1), the transaction from the client
    const log = postfix.logs();
    assert.match(log, new RegExp(`client=unknown\\[127\\.0\\.0\\.2\\]:${clientPort}`), failure('no XCLIENT client in the log'));
  });

  test('Postfix refusals are passed on: a recipient, a size at MAIL, a message too big', async () => {
    const c = await Wire.connect(port(), { localAddress: '127.0.0.2' });
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<alice@example.com>');
    const refused = await c.cmd('RCPT TO:<refused@dest.example>');
    assert.equal(refused.text, '550 5.1.1 <refused@dest.example>: Recipient address rejected: Mailbox unavailable', failure(refused.text));
    assert.equal((await c.cmd('RCPT TO:<kept@dest.example>')).code, 250);
    assert.equal((await c.data('Subject: one refused\r\n\r\nx\r\n')).code, 250);
    const tooBig = await c.cmd('MAIL FROM:<alice@example.com> SIZE=50000');
    assert.equal(tooBig.text, '552 5.3.4 Message size exceeds fixed limit', failure(tooBig.text));
    const again = await c.cmd('MAIL FROM:<alice@example.com>');
    assert.equal(again.code, 250, failure(again.text));
    assert.equal((await c.cmd('RCPT TO:<kept@dest.example>')).code, 250);
    const big = await c.data(`Subject: too big\r\n\r\n${`${'x'.repeat(76)}\r\n`.repeat(600)}`);
    assert.equal(big.text, '552 5.3.4 Error: message file too big', failure(big.text));
    await c.quit();
    const m = await sink.find('one refused', 60_000);
    assert.deepEqual(m.rcptTo, ['kept@dest.example']);
  });

  test('a pipelined transaction against Postfix: replies in order, the message delivered once', async () => {
    const c = await Wire.connect(port(), { localAddress: '127.0.0.2' });
    await c.cmd('EHLO client.example');
    const replies = await c.pipeline(['ID example.com', 'MAIL FROM:<alice@example.com>', 'RCPT TO:<p1@dest.example>', 'RCPT TO:<refused@dest.example>', 'RCPT TO:<p2@dest.example>', 'DATA']);
    assert.deepEqual(
      replies.map((r) => r.code),
      [250, 250, 250, 550, 250, 354],
    );
    c.send('Subject: pipelined\r\n\r\nx\r\n.\r\nQUIT\r\n');
    assert.equal((await c.reply()).code, 250);
    assert.equal((await c.reply()).code, 221);
    const m = await sink.find('pipelined', 60_000);
    assert.deepEqual(m.rcptTo, ['p1@dest.example', 'p2@dest.example']);
  });

  test('swaks as the client (HELO identity, no ID): accepted and delivered', async () => {
    const { stdout } = await run('swaks', ['--server', `127.0.0.1:${port()}`, '--local-interface', '127.0.0.2', '--ehlo', 'example.com', '--from', 'swaks@example.com', '--to', 'swaks@dest.example', '--header', 'Subject: sent by swaks', '--body', 'swaks body', '--timeout', '60']);
    assert.match(stdout, /<- {2}250 2\.0\.0 Ok: queued as/);
    const m = await sink.find('sent by swaks', 60_000);
    assert.match(m.data, /^Authent: 127\.0\.0\.2 example\.com SPF1 PASS ratings=S1:A,M2:A,H1:B\r$/m);
    assert.match(m.headerLines[0]!, /^Received: from example\.com \(unknown \[127\.0\.0\.2\]\)$/);
  });

  test('smtp-source: 200 messages over 10 parallel sessions, each delivered exactly once', async () => {
    const before = sink.messages.length;
    await run(SMTP_SOURCE, ['-s', '10', '-m', '200', '-d', '-N', '-M', 'example.com', '-f', 'load@example.com', '-t', 'load@dest.example', '-l', '2000', `127.0.0.1:${port()}`], { timeout: 120_000 });
    await sink.waitFor(before + 200, 120_000).catch((err) => assert.fail(failure((err as Error).message)));
    const load = sink.messages.slice(before).filter((m) => m.mailFrom.endsWith('load@example.com'));
    assert.equal(load.length, 200);
    assert.equal(new Set(load.map((m) => m.rcptTo[0])).size, 200, 'every recipient once');
    assert.ok(load.every((m) => /^Authent: 127\.0\.0\.1 example\.com SPF1 PASS/m.test(m.data)));
    // nothing left behind in Postfix's queue once it finished its deliveries
    await waitUntil(() => postfix.queued() === 0, 30_000, () => failure(`${postfix.queued()} messages still queued`));
  });
});
