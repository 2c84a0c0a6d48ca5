/**
 * `checkid readsocket` behind a real Exim 4.96 (Debian's exim4-daemon-light, unpacked by
 * scripts/exim/install.sh) whose ACLs are exactly the snippet `checkid integrate exim` prints.
 * Exim's clients are on 127.0.0.1, so the names pass/fail/temp.adapter.example decide SPF.
 * Without the unpacked Exim the test skips loudly, and fails under CI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eximSnippet } from '../../src/adapters/exim/config.ts';
import { integrationText } from '../../src/cli/integrate.ts';
import { defaultConfig } from '../../src/policy/config.ts';
import { EXIM_BIN, eximMissing, eximSkip, type RunningExim, startExim } from '../adapters/exim/lab.ts';
import { type Daemon, startDaemon } from '../adapters/policyd/daemon.ts';
import { adapterZone } from '../adapters/policyd/helpers.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { type Sink, startSink } from '../support/lab/sink.ts';
import { message, SmtpClient, type SmtpReply } from '../support/smtp-client.ts';

const skip = eximSkip();

let dns: DnsTestServer;
let readsocket: Daemon;
let sink: Sink;
let exim: RunningExim;
let snippet: ReturnType<typeof eximSnippet>;

before(async () => {
  if (skip) return;
  const missing = eximMissing();
  if (missing) throw new Error(missing);
  dns = await startDnsServer({ zone: adapterZone() });
  readsocket = await startDaemon('readsocket', { resolver: dns.address });
  sink = await startSink();
  snippet = eximSnippet({ socket: readsocket.address });
  exim = await startExim({
    sinkPort: sink.port,
    parts: {
      main: `${snippet.main}acl_smtp_rcpt = acl_check_rcpt\nacl_smtp_data = acl_check_data\n`,
      acls: `${snippet.acls}\nacl_check_rcpt:\n${snippet.rcpt}  accept  domains = dest.example\n  deny    message = relay not permitted\n\nacl_check_data:\n${snippet.data}  accept\n`,
    },
  });
});

after(async () => {
  await exim?.stop();
  await sink?.close();
  await readsocket?.stop();
  await dns?.close();
});

/** A reply as code, enhanced code and text, however Exim wrapped it over lines. */
function flat(r: SmtpReply): string {
  const xcode = /^(\d\.\d{1,3}\.\d{1,3}) /.exec(r.lines[0] ?? '')?.[1];
  const text = r.lines.map((l) => (xcode && l.startsWith(`${xcode} `) ? l.slice(xcode.length + 1) : l)).join(' ');
  return `${r.code} ${xcode ? `${xcode} ` : ''}${text}`;
}

const why = () => `\n--- exim ---\n${exim.logs()}\n--- checkid ---\n${readsocket.child.output().slice(-3000)}`;

test('the Exim configuration under test is the one `checkid integrate exim` prints', { skip }, () => {
  const config = defaultConfig();
  config.readsocket.listen = readsocket.address;
  const printed = integrationText('exim', { config });
  for (const part of [snippet.main, snippet.acls, snippet.rcpt, snippet.data]) {
    assert.ok(printed.includes(part), `integrate exim does not print:\n${part}`);
  }
});

test('Exim: an SPF fail is refused at MAIL, a picky recipient at RCPT, each with our code and text', { skip, timeout: 60_000 }, async () => {
  const client = await SmtpClient.connect(exim.port);
  try {
    assert.equal(client.greeting.code, 220, client.greeting.raw.join('\n') + why());
    await client.ehlo('client.adapter.example');
    const mail = await client.mail('someone@fail.adapter.example');
    assert.equal(flat(mail), "550 5.7.23 SPF: 'fail.adapter.example' does not designate '127.0.0.1' as permitted sender", why());
    // well rated (HELO good.adapter.example), but one recipient will not take it: only that RCPT is refused
    await client.ehlo('good.adapter.example');
    assert.equal((await client.mail('someone@pass.adapter.example')).code, 250, why());
    const picky = await client.rcpt('picky@dest.example');
    assert.equal(flat(picky), "550 5.7.1 Recipient won't accept mail from 'good.adapter.example' based on its current reputation", why());
    assert.equal((await client.rcpt('bob@dest.example')).code, 250, why());
    await client.rset();
    // DNS trouble: defer, with our enhanced code and text
    await client.ehlo('client.adapter.example');
    assert.equal(flat(await client.mail('someone@temp.adapter.example')), "451 4.4.3 Temporary DNS failure checking SPF of 'temp.adapter.example'; try again later", why());
    await client.quit();
  } finally {
    client.close();
  }
});

test('Exim: an accepted message arrives with our header fields on top, a forged Authentication-Results removed', { skip, timeout: 60_000 }, async () => {
  const subject = `exim-accept-${process.pid}`;
  const client = await SmtpClient.connect(exim.port);
  try {
    await client.ehlo('client.adapter.example');
    assert.equal((await client.mail('alice@pass.adapter.example')).code, 250, why());
    assert.equal((await client.rcpt('bob@dest.example')).code, 250, why());
    const data = await client.data(
      message({
        subject,
        from: 'alice@pass.adapter.example',
        headers: ['Authentication-Results: mx.receiver.example; spf=pass smtp.mailfrom=forged@example.com'],
      }),
    );
    assert.equal(data.code, 250, data.raw.join('\n') + why());
    await client.quit();
  } finally {
    client.close();
  }
  const got = await sink.find(`Subject: ${subject}\r\n`, 30_000).catch((err) => {
    throw new Error(`${(err as Error).message}${why()}`);
  });
  const names = got.headers.map(([n]) => n);
  assert.deepEqual(names.slice(0, 3), ['Authent', 'Authentication-Results', 'Received'], got.headerLines.join('\n'));
  assert.equal(got.headers[0]![1], ' 127.0.0.1 client.adapter.example SPF1 PASS');
  assert.match(got.headers[1]![1].replace(/\r\n\t/g, ' '), /^ mx\.receiver\.example; iprev=pass \(client\.adapter\.example\) policy\.iprev=127\.0\.0\.1; spf=pass \(127\.0\.0\.1 is authorized by pass\.adapter\.example\) smtp\.mailfrom=alice@pass\.adapter\.example; spf=pass /);
  assert.match(got.headers[2]![1], /by emx\.lab\.example/);
  // the forged field (our authserv-id, from outside) is gone; ours is the only one
  assert.equal(got.headers.filter(([n]) => n === 'Authentication-Results').length, 1);
  assert.doesNotMatch(got.data, /forged@example\.com/);
});

test('Exim: DISCARD drops the message after DATA; FILTER with a subject tag rewrites the Subject', { skip, timeout: 60_000 }, async () => {
  const subject = `exim-hook-${process.pid}`;
  const client = await SmtpClient.connect(exim.port);
  try {
    await client.ehlo('client.adapter.example');
    for (const [from, tag] of [
      ['discard@pass.adapter.example', 'discarded'],
      ['tag@pass.adapter.example', 'tagged'],
      ['alice@pass.adapter.example', 'marker'],
    ] as const) {
      assert.equal((await client.mail(from)).code, 250, why());
      assert.equal((await client.rcpt('bob@dest.example')).code, 250, why());
      // the client is told "accepted" either way
      assert.equal((await client.data(message({ subject: `${subject}-${tag}`, from }))).code, 250, why());
    }
    await client.quit();
  } finally {
    client.close();
  }
  await sink.find(`Subject: ${subject}-marker\r\n`, 30_000);
  const tagged = await sink.find(`${subject}-tagged`, 30_000);
  assert.deepEqual(
    tagged.headers.filter(([n]) => n.toLowerCase() === 'subject'),
    [['Subject', ` [SUSPECT] ${subject}-tagged`]],
  );
  assert.equal(tagged.headers[0]![0], 'Authent');
  assert.equal(sink.messages.filter((m) => m.data.includes(`${subject}-discarded`)).length, 0);
});

test('Exim: a local submission (exim -bs, no client IP) is not asked about: CHECKID_SKIP_HOSTS', { skip, timeout: 60_000 }, async () => {
  const asked = readsocket.log().filter((l) => l.msg === 'readsocket answer').length;
  const session = [
    'EHLO local.example',
    'MAIL FROM:<someone@fail.adapter.example>',
    'RCPT TO:<bob@dest.example>',
    'DATA',
    `Subject: local-${process.pid}`,
    '',
    'from the local machine',
    '.',
    'QUIT',
    '',
  ].join('\r\n');
  // -odq: queued only; the daemon's queue runner (-q5s) delivers it to the sink
  const r = spawnSync(EXIM_BIN, ['-C', join(exim.dir, 'exim.conf'), '-odq', '-bs'], { input: session, encoding: 'utf8', timeout: 30_000 });
  // the sender that SPF fails from 127.0.0.1 is taken: checkid was not asked
  assert.match(r.stdout, /^250 OK id=/m, r.stdout + r.stderr + why());
  assert.doesNotMatch(r.stdout, /^5\d\d /m);
  await sink.find(`Subject: local-${process.pid}`, 30_000);
  assert.equal(readsocket.log().filter((l) => l.msg === 'readsocket answer').length, asked);
});

test('Exim: with checkid down, the connection is deferred (nothing accepted, nothing lost)', { skip, timeout: 60_000 }, async () => {
  await readsocket.stop();
  const client = await SmtpClient.connect(exim.port);
  try {
    assert.equal(flat(client.greeting), '451 4.3.0 checkid unavailable', why());
  } finally {
    client.close();
  }
});
