import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeReply, encodeRequest, PolicyParser, PolicyProtocolError } from '../../../src/adapters/policyd/protocol.ts';

const two = 'request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@example.com\n\nrequest=smtpd_access_policy\nprotocol_state=DATA\n\n';

test('two requests in one chunk, and the same two fed one byte at a time', () => {
  const whole = new PolicyParser().push(Buffer.from(two));
  assert.equal(whole.length, 2);
  assert.deepEqual([...whole[0]!], [
    ['request', 'smtpd_access_policy'],
    ['protocol_state', 'RCPT'],
    ['sender', 'a@example.com'],
  ]);
  assert.equal(whole[1]!.get('protocol_state'), 'DATA');
  const parser = new PolicyParser();
  const bytes: Map<string, string>[] = [];
  for (const b of Buffer.from(two)) bytes.push(...parser.push(Buffer.from([b])));
  assert.deepEqual(bytes.map((r) => [...r]), whole.map((r) => [...r]));
  assert.ok(parser.idle);
});

test('a request split across chunks in the middle of a line waits for its end', () => {
  const parser = new PolicyParser();
  assert.deepEqual(parser.push(Buffer.from('request=smtpd_acc')), []);
  assert.equal(parser.idle, false);
  assert.deepEqual(parser.push(Buffer.from('ess_policy\nclient_address=192.0.2.1\n')), []);
  const [req] = parser.push(Buffer.from('\n'));
  assert.equal(req!.get('request'), 'smtpd_access_policy');
  assert.equal(req!.get('client_address'), '192.0.2.1');
});

test('CR before LF is dropped, values keep "=" and UTF-8, a repeated attribute keeps its last value, empty values stay', () => {
  const [req] = new PolicyParser().push(Buffer.from('sender=j\u00fcrgen@b\u00fccher.example\r\nccert_subject=CN=x=y\r\nstress=\r\nsender=z@example.com\r\n\r\n'));
  assert.equal(req!.get('sender'), 'z@example.com');
  assert.equal(req!.get('ccert_subject'), 'CN=x=y');
  assert.equal(req!.get('stress'), '');
  const [utf] = new PolicyParser().push(Buffer.from('sender=j\u00fcrgen@b\u00fccher.example\n\n'));
  assert.equal(utf!.get('sender'), 'j\u00fcrgen@b\u00fccher.example');
});

test('malformed input is a protocol error, never a request', () => {
  const bad: Array<[string | Buffer, RegExp]> = [
    ['no equals sign\n\n', /without "="/],
    ['=value\n\n', /empty attribute name/],
    [Buffer.from('sender=a\0b\n\n'), /NUL/],
    [Buffer.from([0x73, 0x3d, 0xff, 0xfe, 0x0a, 0x0a]), /not UTF-8/],
  ];
  for (const [input, message] of bad) {
    assert.throws(() => new PolicyParser().push(Buffer.isBuffer(input) ? input : Buffer.from(input)), (err: Error) => err instanceof PolicyProtocolError && message.test(err.message));
  }
});

test('an error keeps the requests completed before it in the same chunk, and the parser takes nothing more', () => {
  const parser = new PolicyParser();
  try {
    parser.push(Buffer.from('request=smtpd_access_policy\n\nbroken line\n\n'));
    assert.fail('no error');
  } catch (err) {
    assert.ok(err instanceof PolicyProtocolError);
    assert.deepEqual(err.completed.map((r) => [...r]), [[['request', 'smtpd_access_policy']]]);
  }
  assert.throws(() => parser.push(Buffer.from('request=smtpd_access_policy\n\n')), /input after a protocol error/);
});

test('requests are bounded in bytes (complete lines and an endless line alike) and in attributes', () => {
  const small = new PolicyParser({ maxRequestBytes: 100 });
  assert.throws(() => small.push(Buffer.from(`sender=${'a'.repeat(200)}\n`)), /longer than 100 bytes/);
  const endless = new PolicyParser({ maxRequestBytes: 100 });
  assert.deepEqual(endless.push(Buffer.from('sender=')), []);
  assert.throws(() => {
    for (let i = 0; i < 20; i++) endless.push(Buffer.from('aaaaaaaaaa'));
  }, /longer than 100 bytes/);
  // many short lines add up too
  const lines = new PolicyParser({ maxRequestBytes: 100 });
  assert.throws(() => lines.push(Buffer.from('a=1\n'.repeat(40))), /longer than 100 bytes/);
  // the bound is per request: many requests on one connection are fine
  const reuse = new PolicyParser({ maxRequestBytes: 100 });
  let n = 0;
  for (let i = 0; i < 50; i++) n += reuse.push(Buffer.from('request=smtpd_access_policy\n\n')).length;
  assert.equal(n, 50);
  const attrs = new PolicyParser({ maxAttributes: 3 });
  assert.throws(() => attrs.push(Buffer.from('a=1\nb=2\nc=3\nd=4\n\n')), /more than 3 attributes/);
  assert.equal(new PolicyParser({ maxAttributes: 3 }).push(Buffer.from('a=1\na=2\nb=2\nc=3\n\n')).length, 1);
});

test('encoders: a request round-trips; a reply is one action line and an empty line, with no line break smuggled in', () => {
  const attrs: Array<[string, string]> = [
    ['request', 'smtpd_access_policy'],
    ['helo_name', 'mx.example.com'],
    ['sender', ''],
  ];
  const [back] = new PolicyParser().push(Buffer.from(encodeRequest(attrs)));
  assert.deepEqual([...back!], attrs);
  assert.throws(() => encodeRequest([['a=b', 'x']]), PolicyProtocolError);
  assert.throws(() => encodeRequest([['a', 'x\ny']]), PolicyProtocolError);
  assert.equal(encodeReply('550 5.7.1 no'), 'action=550 5.7.1 no\n\n');
  assert.equal(encodeReply('PREPEND X: a\r\nY: b'), 'action=PREPEND X: a Y: b\n\n');
});
