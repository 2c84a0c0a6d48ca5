/** Input detection (mbox, Maildir, files, directories), reading in order, and message checks. */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MessageError, messageIdKey, parseStoredMessage } from '../../src/replay/message.ts';
import { InputError, planInputs, readMessages, type SourceItem } from '../../src/replay/sources.ts';
import { tempDir } from '../support/fixtures.ts';

const msg = (subject: string, extra = '') => `Return-Path: <a@example.com>\nMessage-ID: <${subject}@example.com>\nSubject: ${subject}\n${extra}\nbody of ${subject}\n`;

/** A Maildir as Dovecot or Courier leave it: tmp/, new/ (unseen), cur/ (seen, with flags). */
function maildir(root: string): string {
  mkdirSync(join(root, 'tmp'), { recursive: true });
  mkdirSync(join(root, 'new'), { recursive: true });
  mkdirSync(join(root, 'cur'), { recursive: true });
  writeFileSync(join(root, 'tmp', '1717408999.M9P9.mx.example.org'), msg('being-delivered'));
  writeFileSync(join(root, 'new', '1717408900.M2P202.mx.example.org'), msg('unseen'));
  writeFileSync(join(root, 'cur', '1717408800.M1P101.mx.example.org:2,S'), msg('seen'));
  writeFileSync(join(root, 'cur', '1717408700.M0P100.mx.example.org:2,RS'), msg('replied'));
  writeFileSync(join(root, 'cur', '1717408800.M1P101.mx.example.org:2,S.envelope.json'), '{"ip":"192.0.2.1"}');
  writeFileSync(join(root, 'cur', '.hidden'), 'not a message');
  writeFileSync(join(root, 'dovecot-uidlist'), '3 V1 N4\n');
  return root;
}

async function all(paths: string[], options = {}): Promise<SourceItem[]> {
  const plan = await planInputs(paths);
  const out: SourceItem[] = [];
  for await (const item of readMessages(plan, options)) out.push(item);
  return out;
}

const subjects = (items: SourceItem[]) => items.map((i) => (i.raw ? /Subject: (\S+)/.exec(i.raw.toString('latin1'))![1] : `ERROR ${i.error}`));

test('a Maildir: cur/ then new/, in name order; tmp/, hidden files and envelope files skipped; the envelope file found', async () => {
  const root = maildir(join(tempDir('checkid-maildir-'), 'Maildir'));
  const plan = await planInputs([root]);
  assert.equal(plan.messages, 3);
  assert.deepEqual(plan.files.map((f) => f.kind), ['maildir', 'maildir', 'maildir']);
  const items = await all([root]);
  assert.deepEqual(subjects(items), ['replied', 'seen', 'unseen']);
  assert.deepEqual(items.map((i) => i.seq), [1, 2, 3]);
  assert.equal(items[1]!.envelopeFile, join(root, 'cur', '1717408800.M1P101.mx.example.org:2,S.envelope.json'));
  assert.equal(items[0]!.envelopeFile, undefined);
});

test('a directory of mixed inputs: an mbox (sniffed, whatever its name), .eml files, a Maildir inside, in name order', async () => {
  const dir = tempDir('checkid-inputs-');
  writeFileSync(join(dir, 'a.eml'), msg('eml-a'));
  writeFileSync(join(dir, 'b-archive'), `From x@example.com Mon Jun  3 10:00:00 2024\n${msg('mbox-1')}\nFrom y@example.com Mon Jun  3 10:00:01 2024\n${msg('mbox-2')}`);
  writeFileSync(join(dir, 'c.eml'), msg('eml-c'));
  writeFileSync(join(dir, 'c.eml.envelope.json'), '{"ip":"192.0.2.9"}');
  maildir(join(dir, 'd-Maildir'));
  const plan = await planInputs([dir]);
  assert.equal(plan.messages, null, 'an mbox: the count is not known ahead');
  assert.deepEqual(plan.files.map((f) => f.kind), ['file', 'mbox', 'file', 'maildir', 'maildir', 'maildir']);
  const items = await all([dir]);
  assert.deepEqual(subjects(items), ['eml-a', 'mbox-1', 'mbox-2', 'eml-c', 'replied', 'seen', 'unseen']);
  assert.equal(items[1]!.offset, 0);
  assert.equal(items[2]!.index, 2);
  assert.equal(items[3]!.envelopeFile, join(dir, 'c.eml.envelope.json'));
  assert.equal(plan.bytes, plan.files.reduce((s, f) => s + f.size, 0));
});

test('a path that does not exist is an InputError; an unreadable or oversized file is an error item and the rest is read', async (t) => {
  await assert.rejects(planInputs(['/nonexistent/checkid-replay']), (err: unknown) => err instanceof InputError && /no such file or directory/.test((err as Error).message));
  const dir = tempDir('checkid-inputs-');
  writeFileSync(join(dir, '1.eml'), msg('one'));
  writeFileSync(join(dir, '2.eml'), msg('two') + 'x'.repeat(4096));
  writeFileSync(join(dir, '3.eml'), msg('three'));
  if (process.getuid?.() !== 0) {
    chmodSync(join(dir, '3.eml'), 0o000);
  } else t.diagnostic('running as root: the unreadable-file case is not tried');
  const items = await all([dir], { maxMessageBytes: 1024 });
  assert.equal(subjects(items)[0], 'one');
  assert.match(items[1]!.error!, /larger than 1024 bytes/);
  if (process.getuid?.() !== 0) assert.match(items[2]!.error!, /cannot read: EACCES/);
});

test('parseStoredMessage: the header fields and body as checkid check splits them, the Message-ID', () => {
  const m = parseStoredMessage(Buffer.from('Received: from a (a [192.0.2.1])\r\n\tby mx; date\r\nMessage-ID:\r\n <x.1@example.com>\r\nSubject: s\r\n\r\nbody\r\n', 'latin1'));
  assert.deepEqual(m.headers, [
    ['Received', 'from a (a [192.0.2.1])\r\n\tby mx; date'],
    ['Message-ID', '\r\n <x.1@example.com>'],
    ['Subject', 's'],
  ]);
  assert.equal(m.body, 'body\r\n');
  assert.equal(m.messageId, 'x.1@example.com');
  // a saved message with its mbox postmark still reads
  assert.equal(parseStoredMessage(Buffer.from('From a@b Mon Jun  3 10:00:00 2024\nSubject: s\n\nb\n')).headers[0]![0], 'Subject');
  // bytes above 0x7f survive as one character per octet
  assert.equal(parseStoredMessage(Buffer.from([0x53, 0x3a, 0x20, 0xe9, 0x0a, 0x0a, 0xff])).body, '\u00ff');
  assert.equal(messageIdKey(' <a@b> '), 'a@b');
  assert.equal(messageIdKey('no-brackets@b'), 'no-brackets@b');
});

test('parseStoredMessage: what is not a message says why', () => {
  const cases: Array<[string | Buffer, RegExp]> = [
    ['', /empty message/],
    ['From a@b Mon Jun  3 10:00:00 2024\n', /only an mbox "From " line/],
    ['\tfolded first\nSubject: x\n\nb', /starts with a folded/],
    ['Subject: x\nthis is not a header\n\nb', /header line 2 is not a "Name: value" field: "this is not a header"/],
    ['Subject: x\nBad\u0000: y\n\nb', /NUL byte in header line 2/],
    [`Subject: ${'x'.repeat(1024 * 1024 + 10)}`, /no blank line ends the header within the first 1 MiB/],
    [`Subject: ${'x'.repeat(1024 * 1024 + 10)}\n\nbody`, /header of \d+ bytes \(more than 1 MiB\)/],
    ['\n\nbody only', /no header fields/],
  ];
  for (const [input, expected] of cases) {
    assert.throws(() => parseStoredMessage(Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1')), (err: unknown) => err instanceof MessageError && expected.test((err as Error).message), String(expected));
  }
  // a header-only message (no body) is a message
  assert.equal(parseStoredMessage(Buffer.from('Subject: x\n')).body, '');
});
