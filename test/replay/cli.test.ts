/**
 * `checkid replay` as a postmaster runs it: a child process over an mbox and a Maildir, real DNS
 * from the test DNS server over UDP/TCP, a real SIQ server; each verdict in report.json is
 * compared with what `checkid check` says for the same envelope and message.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { splitMessage } from '../../src/engine/engine.ts';
import type { Facts } from '../../src/engine/facts.ts';
import { factsSummary } from '../../src/telemetry/maillog.ts';
import { runCheckid } from '../support/daemon.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { seedZone, tempDir } from '../support/fixtures.ts';
import { type SiqTestServer, startSiqServer } from '../support/siq-server.ts';
import { replayConfigYaml } from './fixtures.ts';

const checkid = (args: string[]) => runCheckid(args, { timeoutMs: 60_000 });

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const SIQ: Record<string, number> = { 'example.com': 85, 'example.net': 20, 'example.org': 40, 'forwarder.example': 60 };

let dns: DnsTestServer;
let siq: SiqTestServer;
let work: string;
let config: string;

interface Fixture {
  /** CRLF text, as received */
  text: string;
  where: 'mbox' | 'cur' | 'new';
  name?: string;
  envelopeFile?: object;
}
let fixtures: Fixture[];

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');

before(async () => {
  dns = await startDnsServer({
    zone: {
      ...seedZone(),
      'sel._domainkey.example.com': [{ TXT: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}` }],
      '_dmarc.example.com': [{ TXT: 'v=DMARC1; p=reject' }],
      'forwarder.example': [{ TXT: 'v=spf1 ip4:203.0.113.0/24 -all' }],
      'list.forwarder.example': [{ A: '203.0.113.5' }],
      '5.113.0.203.in-addr.arpa': [{ PTR: 'list.forwarder.example' }],
      '1.2.0.192.bl.example': [{ A: '127.0.0.2' }],
    },
  });
  siq = await startSiqServer({ script: (q) => ({ reply: { score: SIQ[q.domain] ?? 50, ipScore: -1, domainScore: -1, relScore: -1, ttl: 300, confidence: 90, text: '' } }) });
  work = tempDir('checkid-replay-cli-');
  config = join(work, 'checkid.yaml');
  writeFileSync(config, replayConfigYaml(siq.address, 30));

  // signed by an independent implementation; the body has lines an mbox writer must quote
  const body = 'Hello Bob,\r\n\r\nFrom the desk of Alice:\r\n>From a quoted line\r\nsee you.\r\n';
  const unsigned = `From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: signed\r\nDate: Mon, 03 Jun 2024 10:00:00 +0200\r\nMessage-ID: <signed.1@example.com>\r\n\r\n${body}`;
  const signed = (await dkimSign(Buffer.from(unsigned), {
    signatureData: [{ signingDomain: 'example.com', selector: 'sel', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }],
  } as never)) as { signatures: string };

  fixtures = [
    {
      where: 'mbox',
      // Postfix; our own earlier Authentication-Results sits above the border hop
      text: crlf(`Return-Path: <alice@example.com>
X-Original-To: bob@example.org
Delivered-To: bob@example.org
Authentication-Results: mx.receiver.example; spf=pass smtp.mailfrom=alice@example.com
Received: from mx.example.com (mx.example.com [192.0.2.1])
\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)
\t(No client certificate requested)
\tby mx.receiver.example (Postfix) with ESMTPS id 4VtQ9k0Xyzz2xQ
\tfor <bob@example.org>; Mon,  3 Jun 2024 10:00:01 +0200 (CEST)
`) + signed.signatures + unsigned,
    },
    {
      where: 'mbox',
      // Exim over IPv6: example.com authorizes IPv4 only
      text: crlf(`Envelope-to: bob@example.org
Received: from mail6.example.com ([2001:db8::25] helo=mail6.example.com)
\tby mx.receiver.example with esmtps (TLS1.3) tls TLS_AES_256_GCM_SHA384
\t(Exim 4.96)
\t(envelope-from <alice@example.com>)
\tid 1sE5xY-000ABC-2D
\tfor bob@example.org; Mon, 03 Jun 2024 10:01:00 +0200
From: alice@example.com
Subject: over IPv6
Message-ID: <v6.2@example.com>

body
`),
    },
    { where: 'mbox', text: crlf('this line is not a header field\nnor is this one\n\nbody\n') },
    {
      where: 'mbox',
      // Sendmail; SIQ score 20 for example.net: tagged
      text: crlf(`Return-Path: <n@example.net>
Received: from mail.example.net (mail.example.net [198.51.100.9])
\tby mx.receiver.example (8.17.1/8.17.1) with ESMTPS id 453A0Aa1012345
\t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=NOT)
\tfor <bob@example.org>; Mon, 3 Jun 2024 10:02:00 +0200
From: n@example.net
Subject: from example.net
Message-ID: <net.4@example.net>

body
`),
    },
    {
      where: 'mbox',
      // a forgery of example.com (p=reject) through a forwarder: DMARC rejects
      text: crlf(`Return-Path: <list@forwarder.example>
X-Original-To: bob@example.org
Received: from list.forwarder.example (list.forwarder.example [203.0.113.5])
\tby mx.receiver.example (Postfix) with ESMTP id 4VtQ9k0Xyzz3xQ
\tfor <bob@example.org>; Mon,  3 Jun 2024 10:03:00 +0200 (CEST)
From: Alice <alice@example.com>
Subject: not really Alice
Message-ID: <forged.5@forwarder.example>

pay now
`),
    },
    { where: 'mbox', text: crlf('From: local@mx.receiver.example\nSubject: submitted locally\nMessage-ID: <local.6@mx.receiver.example>\n\nno Received at all\n') },
    {
      where: 'mbox',
      // qmail; the envelope (with the ID command) comes from the JSON Lines file
      text: crlf(`Return-Path: <o@example.org>
Delivered-To: bob@example.org
Received: (qmail 12345 invoked from network); 3 Jun 2024 08:04:00 -0000
Received: from unknown (HELO mail.example.org) (203.0.113.7)
  by mx.receiver.example with SMTP; 3 Jun 2024 08:04:00 -0000
From: o@example.org
Subject: with an ID
Message-ID: <id.7@example.org>

body
`),
    },
    {
      where: 'cur',
      name: '1717408800.M1P101.mx.receiver.example:2,S',
      // Exchange; the envelope file says the client declared ID example.com
      text: crlf(`Received: from mx.example.com (192.0.2.1) by mx.receiver.example (10.0.0.5) with Microsoft SMTP Server
 (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.1.2507.39; Mon, 3 Jun 2024 10:05:00 +0200
From: alice@example.com
Subject: reputable
Message-ID: <cur.8@example.com>

body
`),
      envelopeFile: { ip: '192.0.2.1', helo: 'mx.example.com', id: 'example.com', mail_from: 'alice@example.com', rcpt: ['bob@example.org'] },
    },
    {
      where: 'new',
      name: '1717408900.M2P202.mx.receiver.example',
      // a bounce (null sender), qmail
      text: crlf(`Return-Path: <>
Delivered-To: bob@example.org
Received: from unknown (HELO mail.example.net) (198.51.100.10)
  by mx.receiver.example with SMTP; 3 Jun 2024 08:06:00 -0000
From: MAILER-DAEMON@mail.example.net
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce.9@mail.example.net>

body
`),
    },
  ];

  // the mbox as an mboxrd writer stores it: LF line ends, >+From quoted, a blank line after each
  const mbox = fixtures
    .filter((f) => f.where === 'mbox')
    .map((f, i) => `From MAILER-DAEMON Mon Jun  3 10:0${i}:00 2024\n${f.text.replace(/\r\n/g, '\n').replace(/^(>*From )/gm, '>$1')}\n`)
    .join('');
  writeFileSync(join(work, 'archive.mbox'), mbox);
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(work, 'Maildir', sub), { recursive: true });
  for (const f of fixtures.filter((x) => x.where !== 'mbox')) {
    const path = join(work, 'Maildir', f.where, f.name!);
    writeFileSync(path, f.text);
    if (f.envelopeFile) writeFileSync(`${path}.envelope.json`, JSON.stringify(f.envelopeFile));
  }
  writeFileSync(
    join(work, 'envelopes.jsonl'),
    `${JSON.stringify({ message_id: '<id.7@example.org>', ip: '203.0.113.7', helo: 'mail.example.org', id: 'example.org', mail_from: 'o@example.org', rcpt: 'bob@example.org' })}\n`,
  );
});

after(async () => {
  await dns.close();
  await siq.close();
});

interface Entry {
  n: number;
  file: string;
  offset?: number;
  status: string;
  problem?: string;
  messageId: string | null;
  envelope?: { ip: string; helo?: string; id?: string; mailFrom?: string; rcpt: string[]; source: string; received?: { field: number } };
  verdict?: { action: string; reply: object; reason: string; stage: string; facts: string; subjectTagged: boolean; siq: { score: number | null } | null };
}

test('replay over an mbox and a Maildir: each verdict is what checkid check says; a broken message does not stop the run', async () => {
  const reportDir = join(work, 'report');
  const r = await checkid([
    'replay',
    join(work, 'archive.mbox'),
    join(work, 'Maildir'),
    '--config',
    config,
    '--resolver',
    dns.address,
    '--envelope',
    join(work, 'envelopes.jsonl'),
    '--report',
    reportDir,
    '--jobs',
    '4',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^9 messages: 7 checked \(.*\), 1 skipped, 1 errors\n/);
  assert.match(r.stdout, /report: .*report\.json/);
  // not a terminal: plain progress lines, ending with the final one
  assert.match(r.stderr, /checkid replay: done, 9\/9 messages|checkid replay: done, 9 messages/);
  assert.ok(dns.stats.udp > 0, 'DNS over the wire');

  const report = JSON.parse(readFileSync(join(reportDir, 'report.json'), 'utf8'));
  const entries = report.messages as Entry[];
  assert.equal(entries.length, 9);
  assert.deepEqual(
    entries.map((e) => e.status),
    ['checked', 'checked', 'error', 'checked', 'checked', 'skipped', 'checked', 'checked', 'checked'],
  );
  assert.match(entries[2]!.problem!, /not a message: header line 1 is not a "Name: value" field/);
  assert.equal(entries[2]!.file, join(work, 'archive.mbox'));
  assert.equal(typeof entries[2]!.offset, 'number');
  assert.equal(entries[5]!.problem, 'no Received header');
  assert.equal(entries[6]!.envelope!.source, 'envelope-jsonl');
  assert.equal(entries[7]!.envelope!.source, 'envelope-file');
  assert.equal(entries[1]!.envelope!.ip, '2001:db8::25');

  // what each message should come to, and why
  const v = (i: number) => entries[i]!.verdict!;
  assert.match(v(0).facts, /dkim=pass/, 'DKIM passes: the >From quoting was undone byte for byte');
  assert.match(v(0).facts, /dmarc=pass/);
  assert.doesNotMatch(v(0).facts, /forged-ar/, 'our own earlier header above the border hop is not a forgery');
  assert.match(v(0).facts, /dnsbl=1\(bl\.example\)/);
  assert.equal(v(1).action, 'REJECT');
  assert.equal(v(1).reason, 'spf-fail');
  assert.equal(v(3).action, 'FILTER');
  assert.equal(v(3).siq?.score, 20);
  assert.equal(v(3).subjectTagged, true);
  assert.equal(v(4).action, 'REJECT');
  assert.equal(v(4).reason, 'dmarc-reject');
  assert.equal(v(7).action, 'ACCEPT');
  assert.equal(v(7).reason, 'reputable');

  // the same envelope and message through `checkid check`
  const messages = fixtures;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.status !== 'checked') continue;
    const env = e.envelope!;
    const { headers, body } = splitMessage(messages[i]!.text);
    const from = env.received ? env.received.field : 0;
    const file = join(work, `check-${i}.eml`);
    writeFileSync(file, `${headers.slice(from).map(([n, val]) => `${n}: ${val}`).join('\r\n')}\r\n\r\n${body}`, 'latin1');
    const args = ['check', '--ip', env.ip, '--message', file, '--config', config, '--resolver', dns.address, '--json'];
    if (env.helo !== undefined) args.push('--helo', env.helo);
    if (env.id !== undefined) args.push('--id', env.id);
    if (env.mailFrom !== undefined) args.push('--from', env.mailFrom);
    for (const rcpt of env.rcpt) args.push('--rcpt', rcpt);
    const c = await checkid(args);
    assert.equal(c.code, 0, c.stderr);
    const out = JSON.parse(c.stdout) as { action: string; reply: object; reason: string; stage: string; facts: Facts };
    const mine = e.verdict!;
    assert.deepEqual(
      { action: mine.action, reply: mine.reply, reason: mine.reason, stage: mine.stage, facts: mine.facts },
      { action: out.action, reply: out.reply, reason: out.reason, stage: out.stage, facts: factsSummary(out.facts) },
      `message ${e.n} (${e.messageId})`,
    );
  }

  // the HTML report: there, self-contained, with its charts and the what-if table
  const html = readFileSync(join(reportDir, 'report.html'), 'utf8');
  for (const id of ['chart-actions', 'chart-reasons', 'chart-siq']) assert.match(html, new RegExp(`<svg [^>]*id="${id}"`));
  assert.match(html, /<table class="whatif">/);
  assert.doesNotMatch(html, /<script|<link |src="http/i);
  assert.equal(report.totals.checked, 7);
  assert.ok(report.whatIf.some((row: { threshold: string }) => row.threshold === 'siq.reject_score'));
});

test('usage errors exit 2 with the reason; a broken config exits 3', async () => {
  const none = await checkid(['replay']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /give at least one mbox file/);
  const both = await checkid(['replay', work, '--trusted-hops', '1', '--received-by', 'mx.example.org']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /give one/);
  const missing = await checkid(['replay', join(work, 'no-such.mbox')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no-such\.mbox: no such file or directory/);
  const badJobs = await checkid(['replay', work, '--jobs', '0']);
  assert.equal(badJobs.code, 2);
  assert.match(badJobs.stderr, /--jobs must be a whole number from 1 to 1024/);
  const badLines = join(work, 'bad.jsonl');
  writeFileSync(badLines, '{"message_id":"a@b","ip":"192.0.2.1"}\n{"message_id":"c@d","ip":"x"}\n');
  const bad = await checkid(['replay', join(work, 'archive.mbox'), '--envelope', badLines]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bad\.jsonl line 2: "ip" "x" is not an IP address/);
  const brokenConfig = join(work, 'broken.yaml');
  writeFileSync(brokenConfig, 'prescreen:\n  threshhold: 2\n');
  const conf = await checkid(['replay', join(work, 'archive.mbox'), '--config', brokenConfig, '--report', join(work, 'never')]);
  assert.equal(conf.code, 3);
  assert.match(conf.stderr, /threshhold/);
  assert.equal(existsSync(join(work, 'never')), false, 'no report for a run that never started');
});
