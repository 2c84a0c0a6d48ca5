/** The streaming mbox reader: separators, >From unquoting, offsets, chunking, bounds. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type MboxItem, readMbox } from '../../src/replay/mbox.ts';
import { tempDir } from '../support/fixtures.ts';
import { splitMbox } from './fixtures.ts';

/** What an mboxrd writer (mutt, Python's mailbox, Dovecot's export) produces for three messages. */
const MBOXRD = [
  'From alice@example.com Mon Jun  3 10:00:00 2024',
  'Return-Path: <alice@example.com>',
  'From: Alice <alice@example.com>',
  'Subject: quoting',
  '',
  'First line.',
  '>From the body, quoted once by the writer',
  '>>From a line that was ">From" before quoting',
  'From this line on nothing is quoted (no time of day: not a postmark)',
  '',
  'From MAILER-DAEMON Mon Jun  3 10:05:00 2024',
  'From: Mail Delivery System <MAILER-DAEMON@example.org>',
  'Subject: second',
  '',
  'body two',
  '',
  '',
  'From - Mon Jun  3 10:10:00 2024',
  'Subject: third, ends without a blank line',
  '',
  'last',
].join('\n');

const messages = (items: MboxItem[]) => items.map((i) => (i.kind === 'message' ? i.raw.toString('latin1') : `ERROR ${i.error}`));

test('mboxrd: three messages, one ">" removed from >+From lines, the separating blank line dropped', () => {
  const items = splitMbox(Buffer.from(MBOXRD, 'latin1'));
  assert.deepEqual(messages(items), [
    'Return-Path: <alice@example.com>\nFrom: Alice <alice@example.com>\nSubject: quoting\n\nFirst line.\nFrom the body, quoted once by the writer\n>From a line that was ">From" before quoting\nFrom this line on nothing is quoted (no time of day: not a postmark)\n',
    // a message that ended with a blank line keeps it: only the writer's separator goes
    'From: Mail Delivery System <MAILER-DAEMON@example.org>\nSubject: second\n\nbody two\n\n',
    'Subject: third, ends without a blank line\n\nlast',
  ]);
  assert.deepEqual(
    items.map((i) => [i.offset, i.index, i.kind === 'message' ? i.postmark : '']),
    [
      [0, 1, 'alice@example.com Mon Jun  3 10:00:00 2024'],
      [MBOXRD.indexOf('From MAILER-DAEMON'), 2, 'MAILER-DAEMON Mon Jun  3 10:05:00 2024'],
      [MBOXRD.indexOf('From - Mon'), 3, '- Mon Jun  3 10:10:00 2024'],
    ],
  );
});

test('mboxo: only ">From " loses its ">"; ">>From " stays as written', () => {
  const [first] = messages(splitMbox(Buffer.from(MBOXRD, 'latin1'), { format: 'mboxo' }));
  assert.match(first!, /\nFrom the body, quoted once by the writer\n/);
  assert.match(first!, /\n>>From a line that was/);
});

test('CRLF line ends are kept and the CRLF blank separator is dropped', () => {
  const crlf = Buffer.from(MBOXRD.replace(/\n/g, '\r\n'), 'latin1');
  const items = splitMbox(crlf);
  assert.equal(items.length, 3);
  assert.equal(messages(items)[1], 'From: Mail Delivery System <MAILER-DAEMON@example.org>\r\nSubject: second\r\n\r\nbody two\r\n\r\n');
});

test('fed in any chunking (one byte at a time, random cuts) the result is the same', () => {
  const data = Buffer.from(MBOXRD, 'latin1');
  const whole = JSON.stringify(splitMbox(data));
  assert.equal(JSON.stringify(splitMbox(data, {}, Array.from({ length: data.length - 1 }, (_, i) => i + 1))), whole);
  let seed = 7;
  for (let round = 0; round < 50; round++) {
    const cuts: number[] = [];
    for (let at = 0; ; ) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      at += 1 + (seed % 40);
      if (at >= data.length) break;
      cuts.push(at);
    }
    assert.equal(JSON.stringify(splitMbox(data, {}, cuts)), whole);
  }
});

test('a message over the size limit is an error item; the next message is read', () => {
  const big = `From a@example.com Mon Jun  3 10:00:00 2024\nSubject: big\n\n${'x'.repeat(5000)}\n\nFrom b@example.com Mon Jun  3 10:00:01 2024\nSubject: small\n\nok\n`;
  const items = splitMbox(Buffer.from(big), { maxMessageBytes: 1024 });
  assert.equal(items.length, 2);
  assert.equal(items[0]!.kind, 'error');
  assert.match((items[0] as { error: string }).error, /larger than 1024 bytes/);
  assert.equal(messages(items)[1], 'Subject: small\n\nok\n');
  assert.equal(items[1]!.index, 2);
});

test('a line longer than a postmark, cut across chunks, is content (quoting still undone)', () => {
  const long = `>From ${'y'.repeat(3000)}`;
  const data = Buffer.from(`From a@example.com Mon Jun  3 10:00:00 2024\nSubject: long\n\n${long}\nend\n`);
  const cuts = [70, 200, 1500, 2900];
  assert.deepEqual(messages(splitMbox(data, {}, cuts)), [`Subject: long\n\n${long.slice(1)}\nend\n`]);
  assert.deepEqual(messages(splitMbox(data)), messages(splitMbox(data, {}, cuts)));
});

test('text before the first postmark is reported once and skipped; an empty file has no items', () => {
  const items = splitMbox(Buffer.from('Subject: not an mbox\n\nhello\nFrom a@example.com Mon Jun  3 10:00:00 2024\nSubject: real\n\nx\n'));
  assert.equal(items[0]!.kind, 'error');
  assert.match((items[0] as { error: string }).error, /before the first "From " line/);
  assert.deepEqual(messages(items.slice(1)), ['Subject: real\n\nx\n']);
  assert.deepEqual(splitMbox(Buffer.alloc(0)), []);
});

test('readMbox streams a file and reports the bytes read', async () => {
  const dir = tempDir('checkid-mbox-');
  const path = join(dir, 'archive.mbox');
  // ~4 MB over several 256 KiB reads
  const one = 'From a@example.com Mon Jun  3 10:00:00 2024\nSubject: m\n\n' + 'line of body text\n'.repeat(200) + '\n';
  writeFileSync(path, one.repeat(1000));
  let seen = 0;
  let bytes = 0;
  for await (const item of readMbox(path, { onBytes: (b) => (bytes = b) })) {
    assert.equal(item.kind, 'message');
    if (item.kind === 'message') assert.equal(item.raw.length, one.length - (one.indexOf('\n') + 1) - 1);
    seen++;
  }
  assert.equal(seen, 1000);
  assert.equal(bytes, one.length * 1000);
});
