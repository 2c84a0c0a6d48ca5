/** The QMAILQUEUE wrapper in-process: envelope format, message rewriting, verdicts → exit codes. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { EnvelopeError, encodeEnvelope, parseEnvelope } from '../../../src/adapters/qmail/envelope.ts';
import { heloFromReceived, MAX_ENVELOPE_BYTES, type QmailQueueIo, rewriteMessage, runQmailQueueWrapper } from '../../../src/adapters/qmail/wrapper.ts';
import { tempDir } from '../../support/fixtures.ts';
import { adapterEngine } from '../policyd/helpers.ts';

const FAKE_QQ = new URL('./fake-qmail-queue.sh', import.meta.url).pathname;

test('envelope: F<sender>\\0 T<rcpt>\\0 ... \\0; cut short = read error 54, malformed = format error 91', () => {
  const env = { sender: 'a@example.com', recipients: ['b@example.org', 'c@example.org'] };
  const bytes = encodeEnvelope(env);
  assert.equal(bytes.toString('latin1'), 'Fa@example.com\0Tb@example.org\0Tc@example.org\0\0');
  assert.deepEqual(parseEnvelope(bytes), env);
  assert.deepEqual(parseEnvelope(Buffer.from('F\0Tpostmaster@example.org\0\0')), { sender: '', recipients: ['postmaster@example.org'] });
  const code = (input: string) => {
    try {
      parseEnvelope(Buffer.from(input, 'latin1'));
    } catch (err) {
      assert.ok(err instanceof EnvelopeError);
      return err.exitCode;
    }
    return 0;
  };
  assert.equal(code(''), 54);
  assert.equal(code('Fa@b\0Tc@d\0'), 54);
  assert.equal(code('Fa@b\0Tc@d'), 54);
  assert.equal(code('Xa@b\0Tc@d\0\0'), 91);
  assert.equal(code('Fa@b\0\0'), 91);
  assert.equal(code('Fa@b\0Qc@d\0\0'), 91);
  assert.equal(code('Fa@b\0Tc@d\0\0extra'), 91);
});

test('HELO from qmail-smtpd\'s own Received: line, only when it names the client IP', () => {
  const line = (s: string) => `${s}\n  by mx.example.org with SMTP; 23 Nov 2026 12:00:00 -0000\nSubject: x\n`;
  assert.equal(heloFromReceived(line('Received: from unknown (HELO mx.example.com) (192.0.2.1)'), '192.0.2.1'), 'mx.example.com');
  assert.equal(heloFromReceived(line('Received: from mail.example.com (192.0.2.1)'), '192.0.2.1'), 'mail.example.com');
  assert.equal(heloFromReceived(line('Received: from relay.example (HELO mx.example.com) (ident@192.0.2.1)'), '192.0.2.1'), 'mx.example.com');
  assert.equal(heloFromReceived(line('Received: from unknown (HELO ) (192.0.2.1)'), '192.0.2.1'), undefined);
  assert.equal(heloFromReceived(line('Received: from unknown (HELO mx.example.com) (198.51.100.7)'), '192.0.2.1'), undefined);
  assert.equal(heloFromReceived('Subject: no received line\n', '192.0.2.1'), undefined);
});

test('rewriteMessage: our fields on top (headers[0] lowest), the n-th forged field removed, the subject tagged; bytes kept', () => {
  const body = 'caf\xe9 body\n.line\n';
  const message = Buffer.from(
    `Received: from x (1.2.3.4)\n  by y with SMTP; date\nAuthentication-Results: a; spf=pass\nAuthentication-Results: mx.r; spf=pass\n (folded)\nSubject: hi\nX-8bit: \xe9\n\n${body}`,
    'latin1',
  );
  const out = rewriteMessage(
    message,
    [
      { label: 'Authentication-Results:', text: 'mx.r; spf=fail\r\n\tsmtp.mailfrom=x' },
      { label: 'Authent:', text: '1.2.3.4 example.com SPF1 PASS' },
    ],
    [{ name: 'Authentication-Results', occurrence: 2, reason: 'forged' }],
    '[SUSPECT]',
  ).toString('latin1');
  assert.equal(
    out,
    `Authent: 1.2.3.4 example.com SPF1 PASS\nAuthentication-Results: mx.r; spf=fail\n\tsmtp.mailfrom=x\nReceived: from x (1.2.3.4)\n  by y with SMTP; date\nAuthentication-Results: a; spf=pass\nSubject: [SUSPECT] hi\nX-8bit: \xe9\n\n${body}`,
  );
  // CRLF messages keep CRLF; a message without a Subject gets one; a tag is not doubled
  const crlf = rewriteMessage(Buffer.from('Subject: [SUSPECT] x\r\n\r\nb\r\n'), [{ label: 'A:', text: 'b' }], [], '[SUSPECT]').toString();
  assert.equal(crlf, 'A: b\r\nSubject: [SUSPECT] x\r\n\r\nb\r\n');
  assert.equal(rewriteMessage(Buffer.from('From: a\n\nb\n'), [], [], '[T]').toString(), 'Subject: [T]\nFrom: a\n\nb\n');
  assert.equal(rewriteMessage(Buffer.from('no header end'), [], []).toString(), 'no header end');
});

interface Run {
  exitCode: number;
  customError: string | null;
  queued: { message: string; envelope: string } | null;
  action?: string;
}

async function run(message: string, envelope: string, env: Record<string, string>, options: { customError?: boolean; fakeExit?: number } = {}): Promise<Run> {
  const dir = tempDir('checkid-qq-');
  let customError: string | null = null;
  const io: QmailQueueIo = {
    message: Readable.from([Buffer.from(message)]),
    envelope: Readable.from([Buffer.from(envelope, 'latin1')]),
    env: { PATH: process.env.PATH, FAKE_QQ_DIR: dir, FAKE_QQ_EXIT: String(options.fakeExit ?? 0), ...env },
    customError: options.customError
      ? (text) => {
          customError = text;
        }
      : null,
    passErrorFd: null,
  };
  const outcome = await runQmailQueueWrapper(io, { engine: adapterEngine(), qmailQueue: FAKE_QQ });
  let queued: Run['queued'] = null;
  try {
    queued = { message: readFileSync(`${dir}/message`, 'latin1'), envelope: readFileSync(`${dir}/envelope`, 'latin1') };
  } catch {
    queued = null;
  }
  return { exitCode: outcome.exitCode, customError, queued, ...(outcome.verdict ? { action: outcome.verdict.action } : {}) };
}

const received = (helo: string, ip = '127.0.0.1') => `Received: from unknown (HELO ${helo}) (${ip})\n  by mx.example.org with SMTP; 23 Nov 2026 12:00:00 -0000\n`;

test('accepted: our fields prepended, then the message and the same envelope handed to qmail-queue; its exit code is ours', async () => {
  const msg = `${received('client.adapter.example')}From: a@pass.adapter.example\nSubject: hi\n\nbody\n`;
  const envelope = 'Fa@pass.adapter.example\0Tb@dest.example\0Tc@dest.example\0\0';
  const r = await run(msg, envelope, { TCPREMOTEIP: '127.0.0.1' });
  assert.equal(r.exitCode, 0);
  assert.equal(r.action, 'FILTER');
  assert.ok(r.queued);
  assert.equal(r.queued.envelope, envelope);
  // unfolded: qmail's line ends are LF, a folded field continues with LF + tab
  const lines = r.queued.message.replace(/\n\t/g, ' ').split('\n');
  assert.equal(lines[0], 'Authent: 127.0.0.1 client.adapter.example SPF1 PASS');
  assert.match(lines[1]!, /^Authentication-Results: mx\.receiver\.example; iprev=pass \(client\.adapter\.example\)/);
  assert.doesNotMatch(r.queued.message.slice(0, r.queued.message.indexOf('Received:')), /\r/);
  assert.ok(r.queued.message.endsWith(msg), 'the received message follows unchanged');
  // qmail-queue's own refusal passes through
  const refused = await run(msg, envelope, { TCPREMOTEIP: '127.0.0.1' }, { fakeExit: 53 });
  assert.equal(refused.exitCode, 53);
  // qmail is 8-bit clean: addresses that are not UTF-8 reach qmail-queue with their own bytes
  const eightBit = 'Fj\xfcrgen@pass.adapter.example\0Tb@dest.example\0T\xe9t\xe9@dest.example\0\0';
  const passed = await run(msg, eightBit, { TCPREMOTEIP: '127.0.0.1' });
  assert.equal(passed.exitCode, 0);
  assert.equal(passed.queued?.envelope, eightBit);
});

test('refused: 31 / 71 without the custom-error channel, 82 with "D"/"Z" text on it; nothing queued', async () => {
  const msg = `${received('client.adapter.example')}Subject: hi\n\nbody\n`;
  const fail = 'Fx@fail.adapter.example\0Tb@dest.example\0\0';
  const plain = await run(msg, fail, { TCPREMOTEIP: '127.0.0.1' });
  assert.deepEqual([plain.exitCode, plain.customError, plain.queued], [31, null, null]);
  const custom = await run(msg, fail, { TCPREMOTEIP: '127.0.0.1' }, { customError: true });
  assert.equal(custom.exitCode, 82);
  assert.equal(custom.customError, "D5.7.23 SPF: 'fail.adapter.example' does not designate '127.0.0.1' as permitted sender");
  const temp = 'Fx@temp.adapter.example\0Tb@dest.example\0\0';
  assert.equal((await run(msg, temp, { TCPREMOTEIP: '127.0.0.1' })).exitCode, 71);
  const tempCustom = await run(msg, temp, { TCPREMOTEIP: '127.0.0.1' }, { customError: true });
  assert.equal(tempCustom.exitCode, 82);
  assert.match(tempCustom.customError!, /^Z4\.4\.3 Temporary DNS failure checking SPF of 'temp\.adapter\.example'/);
  // one picky recipient refuses the whole message (qmail answers once, after DATA)
  const picky = await run(`${received('good.adapter.example')}Subject: hi\n\nb\n`, 'Fa@pass.adapter.example\0Tb@dest.example\0Tpicky@dest.example\0\0', { TCPREMOTEIP: '127.0.0.1' }, { customError: true });
  assert.equal(picky.exitCode, 82);
  assert.equal(picky.customError, "D5.7.1 Recipient won't accept mail from 'good.adapter.example' based on its current reputation");
  assert.equal(picky.queued, null);
});

test('DISCARD exits 0 and queues nothing; SMTPHELOHOST wins over the Received: line; no TCPREMOTEIP passes unchecked', async () => {
  const discard = await run(`${received('client.adapter.example')}Subject: hi\n\nb\n`, 'Fdiscard@pass.adapter.example\0Tb@dest.example\0\0', { TCPREMOTEIP: '127.0.0.1' });
  assert.deepEqual([discard.exitCode, discard.action, discard.queued], [0, 'DISCARD', null]);
  const helo = await run('Subject: hi\n\nb\n', 'Fa@pass.adapter.example\0Tb@dest.example\0\0', { TCPREMOTEIP: '127.0.0.1', SMTPHELOHOST: 'client.adapter.example' });
  assert.match(helo.queued!.message, /^Authent: 127\.0\.0\.1 client\.adapter\.example SPF1 PASS\n/);
  const local = await run('Subject: local\n\nb\n', 'Froot@localhost\0Tb@dest.example\0\0', {});
  assert.equal(local.exitCode, 0);
  assert.equal(local.queued!.message, 'Subject: local\n\nb\n');
  assert.equal(local.action, undefined);
});

test('a bad envelope is refused with qmail-queue\'s own codes, before any check', async () => {
  assert.equal((await run('Subject: x\n\nb\n', 'Fa@b\0Tc@d\0', { TCPREMOTEIP: '127.0.0.1' })).exitCode, 54);
  assert.equal((await run('Subject: x\n\nb\n', 'Ta@b\0\0', { TCPREMOTEIP: '127.0.0.1' })).exitCode, 91);
  // an envelope beyond MAX_ENVELOPE_BYTES is refused as malformed, not held in memory
  const recipient = `T${'r'.repeat(1000)}@example.org\0`;
  const huge = `Fa@b\0${recipient.repeat(Math.ceil(MAX_ENVELOPE_BYTES / recipient.length) + 1)}\0`;
  const big = await run('Subject: x\n\nb\n', huge, { TCPREMOTEIP: '127.0.0.1' });
  assert.equal(big.exitCode, 91);
  assert.equal(big.queued, null);
});

test('a qmail-queue that cannot be run is a temporary failure', async () => {
  const io: QmailQueueIo = {
    message: Readable.from([Buffer.from('Subject: x\n\nb\n')]),
    envelope: Readable.from([Buffer.from('Fa@b\0Tc@d\0\0')]),
    env: {},
    customError: null,
    passErrorFd: null,
  };
  const outcome = await runQmailQueueWrapper(io, { engine: adapterEngine(), qmailQueue: '/nonexistent/qmail-queue' });
  assert.equal(outcome.exitCode, 71);
});
