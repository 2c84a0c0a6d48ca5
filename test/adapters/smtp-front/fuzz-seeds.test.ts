/** A seed set of the SMTP fuzzer's inputs, run on every test pass (the full fuzzer is fuzz/smtp.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkParse, checkReplyText, fuzzMessage, fuzzSession, generateCommand, mutateCommand, random } from '../../../fuzz/smtp.ts';

const HAND_SEEDS = [
  'EHLO client.example',
  'ID example.com',
  'XID example.com.',
  'ID [192.0.2.1]',
  'MAIL FROM:<> SIZE=0 BODY=8BITMIME SMTPUTF8',
  'MAIL FROM:<@a,@b:c@d.example>',
  'MAIL FROM:<"a>b"@c.example>',
  'MAIL FROM:<"unterminated@c.example>',
  'MAIL FROM:a@b.example SIZE=5',
  'RCPT TO:<Postmaster>',
  'RCPT TO:<a@[IPv6:2001:db8::1]>',
  'RCPT TO:<😀@例え.テスト>',
  `MAIL FROM:<${'a'.repeat(65)}@b.example>`,
  `RCPT TO:<a@${'b'.repeat(64)}.example>`,
  'MAIL FROM:<a@b.example> SIZE=99999999999999999999',
  'DATA\x00',
  '\ud800',
  'HELO',
  ' EHLO leading.space',
];

test('hand seeds parse to a command or a well-formed error', () => {
  const outcomes = { command: 0, error: 0 };
  for (const line of HAND_SEEDS) {
    outcomes[checkParse(line, false)]++;
    checkParse(line, true);
  }
  assert.ok(outcomes.command >= 8 && outcomes.error >= 6, JSON.stringify(outcomes));
});

test('5,000 generated and mutated command lines keep the parser invariants (seed 1)', () => {
  const rng = random(1);
  const outcomes = { command: 0, error: 0 };
  for (let i = 0; i < 5000; i++) {
    const line = i % 2 === 0 ? generateCommand(rng) : mutateCommand(rng, generateCommand(rng));
    outcomes[checkParse(line, rng() < 0.5)]++;
  }
  assert.ok(outcomes.command > 1000 && outcomes.error > 1000, JSON.stringify(outcomes));
});

test('300 fuzzed sessions and 300 messages keep the protocol invariants (seed 2)', async () => {
  const rng = random(2);
  let replies = 0;
  let messages = 0;
  for (let i = 0; i < 300; i++) {
    const [, seen, ended] = await fuzzSession(rng);
    replies += seen;
    messages += ended;
    fuzzMessage(rng);
  }
  assert.ok(replies > 2000, `${replies} replies`);
  assert.ok(messages > 50, `${messages} messages reached the end of data`);
});

test('the reply checker refuses what a client could not read', () => {
  assert.equal(checkReplyText('250-a\r\n250 b\r\n220 c\r\n'), 2);
  for (const bad of ['250 ok', '250-a\r\n', '250-a\r\n251 b\r\n', '25 x\r\n', `250 ${'x'.repeat(509)}\r\n`, '550 4.7.1 wrong class\r\n']) {
    assert.throws(() => checkReplyText(bad), Error, JSON.stringify(bad));
  }
});
