/**
 * `checkid qmail-queue` as qmail-smtpd runs it (Debian ships no qmail, so this is a harness of
 * qmail's QMAILQUEUE contract, docs/adapters/qmail.md): the program `checkid integrate qmail`
 * prints is exec'd with no arguments, tcpserver's environment (TCPREMOTEIP ...), the message on
 * fd 0 and then the envelope on fd 1 through real pipes (FIFOs), fd 6 an anonymous pipe for the
 * custom-error text when the qmail-smtpd has that patch; the exit code is read as qmail_close() reads it. The "real"
 * qmail-queue is a script that records what it got (test/adapters/qmail/fake-qmail-queue.sh).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { qmailWrapperScript, integrationText } from '../../src/cli/integrate.ts';
import { ADAPTER_CONFIG_YAML, adapterZone } from '../adapters/policyd/helpers.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { CHECKID_BIN, tempDir } from '../support/fixtures.ts';
import { run } from '../support/lab/lab.ts';

const FAKE_QQ = new URL('../adapters/qmail/fake-qmail-queue.sh', import.meta.url).pathname;

let dns: DnsTestServer;
let wrapper: string;
let configPath: string;

before(async () => {
  dns = await startDnsServer({ zone: adapterZone() });
  const dir = tempDir('checkid-qmail-');
  configPath = join(dir, 'checkid.yaml');
  // the resolver comes from the config: qmail passes no arguments
  writeFileSync(configPath, `${ADAPTER_CONFIG_YAML.replace('resolver:\n', `resolver:\n  servers: ['${dns.address}']\n`)}`);
  wrapper = join(dir, 'checkid-qmail-queue');
  writeFileSync(wrapper, qmailWrapperScript({ configPath, checkid: `${process.execPath} ${CHECKID_BIN}`, qmailQueue: FAKE_QQ }));
  chmodSync(wrapper, 0o755);
});

after(async () => {
  await dns?.close();
});

interface Delivery {
  exit: number;
  /** what qmail-smtpd read on fd 6 (custom-error patch), '' when none */
  errorText: string;
  /** what the fake qmail-queue recorded, or null when it was not run */
  queued: { message: string; envelope: string; env: string } | null;
  stderr: string;
}

/** Does what qmail-smtpd's qmail_open/qmail_put/qmail_from/qmail_to/qmail_close do, through FIFOs. */
async function qmailSmtpd(
  message: string,
  envelope: string,
  options: { env?: Record<string, string>; customError?: boolean; fakeExit?: number; fakeError?: string; program?: string[] } = {},
): Promise<Delivery> {
  const dir = tempDir('checkid-qq-run-');
  const pipes = tempDir('checkid-qq-fifo-');
  const fifo = (name: string) => join(pipes, name);
  run('mkfifo', [fifo('msg'), fifo('env')]);
  // fd 6, when qmail-smtpd has the custom-error patch, is an anonymous pipe whose read end stays
  // with qmail-smtpd (here: cat, which keeps what it reads)
  const redirect = options.customError
    ? '( "$0" "$@" <"$Q/msg" 6>&1 1<"$Q/env"; echo $? >"$Q/rc" ) | cat >"$Q/err.txt"; exit "$(cat "$Q/rc")"'
    : 'exec "$0" "$@" <"$Q/msg" 1<"$Q/env"';
  const child = spawn('sh', ['-c', redirect, ...(options.program ?? [wrapper])], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      PATH: process.env.PATH,
      Q: pipes,
      PROTO: 'TCP',
      TCPLOCALIP: '127.0.0.1',
      TCPLOCALPORT: '25',
      TCPREMOTEIP: '127.0.0.1',
      TCPREMOTEPORT: '40001',
      FAKE_QQ_DIR: dir,
      FAKE_QQ_EXIT: String(options.fakeExit ?? 0),
      ...(options.fakeError ? { FAKE_QQ_ERROR: options.fakeError } : {}),
      ...options.env,
    },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = once(child, 'exit');
  // the whole message on fd 0 and close it; then the envelope on fd 1 and close it
  const msg = createWriteStream(fifo('msg'));
  msg.on('error', () => {});
  msg.end(message);
  await once(msg, 'close');
  const env = createWriteStream(fifo('env'));
  env.on('error', () => {});
  env.end(Buffer.from(envelope, 'latin1'));
  await once(env, 'close');
  const [code] = (await exited) as [number | null];
  // the custom-error patch reads fd 6 to its end before waitpid()
  const errorText = options.customError ? readFileSync(fifo('err.txt'), 'utf8') : '';
  let queued: Delivery['queued'] = null;
  try {
    queued = { message: readFileSync(join(dir, 'message'), 'latin1'), envelope: readFileSync(join(dir, 'envelope'), 'latin1'), env: readFileSync(join(dir, 'env'), 'utf8') };
  } catch {
    queued = null;
  }
  return { exit: code ?? -1, errorText, queued, stderr };
}

/** qmail-smtpd's Received: line, as it writes it at the top of the message. */
const received = (helo: string) => `Received: from unknown (HELO ${helo}) (127.0.0.1)\n  by mx.example.org with SMTP; 23 Nov 2026 12:00:00 -0000\n`;

test('the program under test is the one `checkid integrate qmail` prints', () => {
  const printed = integrationText('qmail', { configPath, checkid: `${process.execPath} ${CHECKID_BIN}` });
  assert.ok(printed.includes(qmailWrapperScript({ configPath, checkid: `${process.execPath} ${CHECKID_BIN}` })), printed);
  assert.match(printed, /^:allow,QMAILQUEUE="\/var\/qmail\/bin\/checkid-qmail-queue"$/m);
});

test('qmail: an accepted message reaches qmail-queue with our fields on top and the envelope unchanged (exit 0)', { timeout: 60_000 }, async () => {
  const message = `${received('client.adapter.example')}From: alice@pass.adapter.example\nTo: bob@dest.example\nSubject: qmail accept\n\nHello.\n.leading dot\n`;
  const envelope = 'Falice@pass.adapter.example\0Tbob@dest.example\0Tcarol@dest.example\0\0';
  const d = await qmailSmtpd(message, envelope, { customError: true });
  assert.equal(d.exit, 0, d.stderr);
  assert.equal(d.errorText, '');
  assert.ok(d.queued, d.stderr);
  assert.equal(d.queued.envelope, envelope);
  assert.ok(d.queued.message.endsWith(message), 'the message qmail-smtpd sent follows our fields unchanged');
  const ours = d.queued.message.slice(0, d.queued.message.length - message.length).replace(/\n\t/g, ' ');
  assert.match(ours, /^Authent: 127\.0\.0\.1 client\.adapter\.example SPF1 PASS\nAuthentication-Results: mx\.receiver\.example; iprev=pass \(client\.adapter\.example\) policy\.iprev=127\.0\.0\.1; spf=pass \(127\.0\.0\.1 is authorized by pass\.adapter\.example\) smtp\.mailfrom=alice@pass\.adapter\.example; spf=pass .*\n$/);
  // qmail-queue got tcpserver's environment too
  assert.match(d.queued.env, /^TCPREMOTEIP=127\.0\.0\.1$/m);
});

test('qmail: a refused sender exits 31 (classic qmail) or 82 with "D" and our text on fd 6; nothing is queued', { timeout: 60_000 }, async () => {
  const message = `${received('client.adapter.example')}Subject: forged\n\nx\n`;
  const envelope = 'Fsomeone@fail.adapter.example\0Tbob@dest.example\0\0';
  const classic = await qmailSmtpd(message, envelope);
  assert.equal(classic.exit, 31, classic.stderr);
  assert.equal(classic.queued, null);
  const patched = await qmailSmtpd(message, envelope, { customError: true });
  assert.equal(patched.exit, 82, patched.stderr);
  // qmail-smtpd answers "554 " + the text after D
  assert.equal(patched.errorText, "D5.7.23 SPF: 'fail.adapter.example' does not designate '127.0.0.1' as permitted sender");
  assert.equal(patched.queued, null);
});

test('qmail: DNS trouble exits 71, or 82 with "Z" text; DISCARD exits 0 without queueing', { timeout: 60_000 }, async () => {
  const temp = 'Fx@temp.adapter.example\0Tbob@dest.example\0\0';
  const message = `${received('client.adapter.example')}Subject: t\n\nx\n`;
  assert.equal((await qmailSmtpd(message, temp)).exit, 71);
  const z = await qmailSmtpd(message, temp, { customError: true });
  assert.equal(z.exit, 82);
  assert.match(z.errorText, /^Z4\.4\.3 Temporary DNS failure checking SPF of 'temp\.adapter\.example'; try again later$/);
  const discard = await qmailSmtpd(message, 'Fdiscard@pass.adapter.example\0Tbob@dest.example\0\0', { customError: true });
  assert.deepEqual([discard.exit, discard.errorText, discard.queued], [0, '', null]);
});

test('qmail: the real qmail-queue\'s own failure and custom text pass through; a bad envelope gets qmail-queue\'s codes', { timeout: 60_000 }, async () => {
  const message = `${received('client.adapter.example')}Subject: t\n\nx\n`;
  const ok = 'Fa@pass.adapter.example\0Tbob@dest.example\0\0';
  const full = await qmailSmtpd(message, ok, { fakeExit: 53 });
  assert.equal(full.exit, 53);
  const own = await qmailSmtpd(message, ok, { customError: true, fakeExit: 82, fakeError: 'Dvirus found (#5.7.1)' });
  assert.equal(own.exit, 82);
  assert.equal(own.errorText, 'Dvirus found (#5.7.1)');
  assert.equal((await qmailSmtpd(message, 'Fa@pass.adapter.example\0Tbob@dest.example\0')).exit, 54);
  assert.equal((await qmailSmtpd(message, 'Tbob@dest.example\0\0')).exit, 91);
});

test('qmail: run directly (no wrapper script), checkid itself tells whether qmail-smtpd left fd 6 open', { timeout: 60_000 }, async () => {
  const program = [process.execPath, CHECKID_BIN, 'qmail-queue', '--config', configPath, '--qmail-queue', FAKE_QQ];
  const message = `${received('client.adapter.example')}Subject: forged\n\nx\n`;
  const envelope = 'Fsomeone@fail.adapter.example\0Tbob@dest.example\0\0';
  const classic = await qmailSmtpd(message, envelope, { program });
  assert.equal(classic.exit, 31, classic.stderr);
  const patched = await qmailSmtpd(message, envelope, { program, customError: true });
  assert.equal(patched.exit, 82, patched.stderr);
  assert.match(patched.errorText, /^D5\.7\.23 SPF: /);
  const accepted = await qmailSmtpd(`${received('client.adapter.example')}Subject: ok\n\nx\n`, 'Fa@pass.adapter.example\0Tbob@dest.example\0\0', { program });
  assert.equal(accepted.exit, 0, accepted.stderr);
  assert.match(accepted.queued!.message, /^Authent: 127\.0\.0\.1 client\.adapter\.example SPF1 PASS\n/);
});
