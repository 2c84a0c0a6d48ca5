/** Envelope recovery: which Received header, MAIL FROM and RCPT from the delivery headers, envelope files. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { splitMessage } from '../../src/engine/engine.ts';
import { EnvelopeError, envelopeFromHeaders, givenEnvelope, isLoopback, isPrivate, loadEnvelopeLines, readEnvelopeFile } from '../../src/replay/envelope.ts';
import { tempDir } from '../support/fixtures.ts';

const headersOf = (text: string) => splitMessage(text.replace(/\n/g, '\r\n')).headers;

/**
 * A message as Postfix with amavisd-new delivers it: the re-injection from localhost on top, the
 * border hop below it, an internal relay, then the sender's own hops.
 */
const DELIVERED = `Return-Path: <alice@example.com>
X-Original-To: bob@example.org
Delivered-To: bob@mailbox.example.org
Received: from localhost (localhost [127.0.0.1])
\tby mx.example.org (Postfix) with ESMTP id 4VtQCc1Xyzz2xQ
\tfor <bob@example.org>; Mon,  3 Jun 2024 10:00:02 +0200 (CEST)
Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=example.com
Received: from relay.corp.example.org (relay.corp.example.org [10.1.2.3])
\tby mx.example.org (Postfix) with ESMTPS id 4VtQCb0Xyzz2xQ
\tfor <bob@example.org>; Mon,  3 Jun 2024 10:00:01 +0200 (CEST)
Received: from mail.example.com (mail.example.com [192.0.2.1])
\tby relay.corp.example.org (Postfix) with ESMTPS id 4VtQCa0Xyzz2xQ
\tfor <bob@example.org>; Mon,  3 Jun 2024 10:00:00 +0200 (CEST)
Delivered-To: someone-else@example.com
Received: from [10.9.9.9] (unknown [203.0.113.50])
\tby mail.example.com (Postfix) with ESMTPSA id 4VtQBZ0Xyzz2xQ; Mon,  3 Jun 2024 09:59:59 +0200 (CEST)
From: alice@example.com
Subject: hi

body
`;

test('default: the topmost Received with a client IP that is not loopback (a content filter re-injecting is skipped)', () => {
  const r = envelopeFromHeaders(headersOf(DELIVERED));
  assert.ok(r.ok);
  assert.equal(r.envelope.ip, '10.1.2.3');
  assert.equal(r.firstField, 5);
  assert.match(r.warnings.join(), /client IP 10\.1\.2\.3 is private: an internal hop\?/);
});

test('--trusted-hops 1 and --received-by pick the border hop; MAIL FROM and RCPT from the headers above it', () => {
  for (const choice of [{ trustedHops: 1 }, { receivedBy: ['relay.corp.example.org'] }, { receivedBy: ['.corp.example.org'] }, { receivedBy: ['RELAY.corp.example.org.'] }]) {
    const r = envelopeFromHeaders(headersOf(DELIVERED), choice);
    assert.ok(r.ok, JSON.stringify(choice));
    assert.equal(r.envelope.ip, '192.0.2.1');
    assert.equal(r.envelope.helo, 'mail.example.com');
    assert.equal(r.envelope.mailFrom, 'alice@example.com');
    // X-Original-To wins over Delivered-To (the address before alias expansion)
    assert.deepEqual(r.envelope.rcpt, ['bob@example.org']);
    assert.deepEqual(r.envelope.fields, { mailFrom: 'Return-Path', rcpt: 'X-Original-To' });
    assert.equal(r.envelope.source, 'headers');
    assert.equal(r.envelope.received?.format, 'postfix');
    assert.equal(r.envelope.received?.by, 'relay.corp.example.org');
    assert.equal(r.firstField, 6);
    assert.deepEqual(r.warnings, []);
  }
});

test('skipped with a reason: no Received, only loopback, too few hops, no match for --received-by', () => {
  const cases: Array<[string, object, string, RegExp]> = [
    ['Subject: x\n\nb\n', {}, 'no-received', /^no Received header$/],
    ['Received: from localhost (localhost [127.0.0.1]) by mx (Postfix) with ESMTP id X; d\nReceived: (qmail 1 invoked by uid 89); d\n\nb\n', {}, 'no-client-ip', /no Received header names a client IP other than loopback \(2 Received headers\)/],
    [DELIVERED, { trustedHops: 3 }, 'trusted-hops', /--trusted-hops 3 needs 4 Received headers with a client IP; this message has 3/],
    [DELIVERED, { receivedBy: ['mx.other.example'] }, 'received-by', /no Received header by mx\.other\.example names a client IP/],
  ];
  for (const [text, choice, code, reason] of cases) {
    const r = envelopeFromHeaders(headersOf(text), choice);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.code, code);
      assert.match(r.reason, reason);
    }
  }
});

test('delivery headers below the chosen hop came from outside and are ignored; fallbacks to envelope-from and for', () => {
  // Exim: no Return-Path above, envelope-from in the Received; RCPT from Envelope-to (a list)
  const exim = `Envelope-to: bob@example.org, carol@example.org
Received: from mail.example.com ([192.0.2.1] helo=smtp.example.com)
\tby mx.example.org with esmtps (TLS1.3) tls TLS_AES_256_GCM_SHA384
\t(Exim 4.96)
\t(envelope-from <alice@example.com>)
\tid 1sE5xY-000ABC-2D
\tfor bob@example.org; Mon, 03 Jun 2024 10:00:00 +0200
Return-Path: <forged@evil.example>
X-Original-To: forged@evil.example

b
`;
  const r = envelopeFromHeaders(headersOf(exim));
  assert.ok(r.ok);
  assert.equal(r.envelope.mailFrom, 'alice@example.com');
  assert.deepEqual(r.envelope.rcpt, ['bob@example.org', 'carol@example.org']);
  assert.deepEqual(r.envelope.fields, { mailFrom: 'Received (envelope-from)', rcpt: 'Envelope-To' });
  assert.equal(r.envelope.helo, 'smtp.example.com');
  // nothing above: the null sender from Return-Path <>, RCPT from the bottommost Delivered-To, then "for"
  const qmail = `Return-Path: <>
Delivered-To: list-owner@example.org
Delivered-To: bob@example.org
Received: from unknown (HELO mail.example.com) (192.0.2.1)
  by mx.example.org with SMTP; 3 Jun 2024 08:00:00 -0000

b
`;
  const q = envelopeFromHeaders(headersOf(qmail));
  assert.ok(q.ok);
  assert.equal(q.envelope.mailFrom, '');
  assert.deepEqual(q.envelope.rcpt, ['bob@example.org']);
  const bare = envelopeFromHeaders(headersOf('Received: from a.example (a.example [192.0.2.1]) by mx.example.org (Postfix) with ESMTP id X for <z@example.org>; d\n\nb\n'));
  assert.ok(bare.ok);
  assert.deepEqual(bare.envelope.rcpt, ['z@example.org']);
  assert.equal(bare.envelope.mailFrom, undefined);
  assert.match(bare.warnings.join(), /no MAIL FROM/);
});

test('loopback and private addresses', () => {
  assert.ok(isLoopback('127.0.0.1') && isLoopback('127.8.9.1') && isLoopback('::1') && isLoopback('::ffff:127.0.0.1'));
  assert.ok(!isLoopback('192.0.2.1') && !isLoopback('::2'));
  assert.ok(isPrivate('10.0.0.1') && isPrivate('172.31.255.255') && isPrivate('192.168.1.1') && isPrivate('100.64.0.1') && isPrivate('fd00::1') && isPrivate('fe80::1'));
  assert.ok(!isPrivate('172.32.0.1') && !isPrivate('192.0.2.1') && !isPrivate('2001:db8::1'));
});

test('envelope files: validated, with the key named on an error', async () => {
  assert.deepEqual(givenEnvelope({ ip: '192.0.2.1', helo: 'mx.example.com', mail_from: '', rcpt: 'b@example.org', id: 'example.com' }, 'f'), {
    ip: '192.0.2.1',
    helo: 'mx.example.com',
    mailFrom: '',
    id: 'example.com',
    rcpt: ['b@example.org'],
  });
  const bad: Array<[unknown, RegExp]> = [
    [[], /f: not a JSON object/],
    [{ helo: 'x' }, /f: "ip" is required/],
    [{ ip: '300.1.1.1' }, /"ip" "300\.1\.1\.1" is not an IP address/],
    [{ ip: '192.0.2.1', mailfrom: 'a@b' }, /unknown key "mailfrom" \(did you mean "mail_from"\?\)/],
    [{ ip: '192.0.2.1', rcpt: [1] }, /"rcpt" must be a string or a list of strings/],
    [{ ip: '192.0.2.1', helo: 'a\r\nb' }, /"helo" contains a line break/],
    [{ ip: '192.0.2.1', helo: 5 }, /"helo" must be a string/],
  ];
  for (const [value, expected] of bad) assert.throws(() => givenEnvelope(value, 'f'), (err: unknown) => err instanceof EnvelopeError && expected.test((err as Error).message), String(expected));

  const dir = tempDir('checkid-envelope-');
  assert.equal(await readEnvelopeFile(join(dir, 'none.envelope.json')), null);
  writeFileSync(join(dir, 'bad.envelope.json'), '{"ip": ');
  await assert.rejects(readEnvelopeFile(join(dir, 'bad.envelope.json')), /bad\.envelope\.json: not JSON/);
});

test('the JSON Lines envelope file: keyed by Message-ID with or without brackets; bad lines named', async () => {
  const dir = tempDir('checkid-envelope-');
  const path = join(dir, 'envelopes.jsonl');
  writeFileSync(
    path,
    [
      '# exported from the MTA log',
      '{"message_id":"<one@example.com>","ip":"192.0.2.1","helo":"mx.example.com","mail_from":"a@example.com","rcpt":["b@example.org"]}',
      '',
      '{"message_id":"two@example.com","ip":"2001:db8::25","id":"example.com"}',
      '{"message_id":"<one@example.com>","ip":"192.0.2.2"}',
    ].join('\n'),
  );
  const map = await loadEnvelopeLines(path);
  assert.equal(map.size, 2);
  assert.equal(map.get('one@example.com')!.ip, '192.0.2.2', 'a later line replaces an earlier one');
  assert.deepEqual(map.get('two@example.com'), { ip: '2001:db8::25', id: 'example.com', rcpt: [] });
  writeFileSync(path, '{"message_id":"a@b","ip":"192.0.2.1"}\n{"ip":"192.0.2.1"}\n');
  await assert.rejects(loadEnvelopeLines(path), /envelopes\.jsonl line 2: "message_id" is required/);
  writeFileSync(path, '{"message_id":"a@b","ip":"192.0.2.1"}\nnot json\n');
  await assert.rejects(loadEnvelopeLines(path), /line 2: not JSON/);
  await assert.rejects(loadEnvelopeLines(join(dir, 'missing.jsonl')), /missing\.jsonl: ENOENT/);
});
