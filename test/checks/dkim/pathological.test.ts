/**
 * Pathological bodies stay linear and bounded (issue 6; mailauth had a CPU denial of service on
 * trailing white space). Memory is checked structurally, never by timing: the verifier's body
 * state between body() calls is counters and flags, no body octets, whatever the body holds.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { createBodyCanonicalizer, RELAXED_BUFFER_SIZE } from '../../../src/checks/dkim/canon.ts';
import { DkimVerifier } from '../../../src/checks/dkim/index.ts';
import { MemoryResolver } from '../../support/zone.ts';
import { parseFields, rsaKey, signMessage } from './sign.ts';

const MB = 1024 * 1024;

/**
 * One period of the body: a line with 4000 octets of mixed SP/HTAB between two letters, a line
 * of trailing white space, 300 lines of only white space and 200 empty lines. Inside a body its
 * relaxed form is "x y\r\n" and 500 empty lines; its simple form is itself.
 */
const P = Buffer.from(
  `x${' \t'.repeat(2000)}y\t \r\n${' \t  \r\n'.repeat(300)}${'\r\n'.repeat(200)}`,
  'latin1',
);
const P_RELAXED = Buffer.from(`x y\r\n${'\r\n'.repeat(500)}`, 'latin1');
/** The end of the body: one long white-space line, then 2 million empty lines (4 MB). */
const TAIL_WSP = Buffer.from(' \t'.repeat(100_000), 'latin1');
const TAIL_LINES = 2_000_000;

function repeat(piece: Buffer, times: number): Buffer {
  return Buffer.concat(Array.from({ length: times }, () => piece));
}

test('a 50 MB body of pathological white space: right hashes, no body octets held', async () => {
  const perBlock = 170; // ~1 MB per block
  const blocks = 50;
  const periods = perBlock * blocks;
  const block = repeat(P, perBlock);
  assert.ok(block.length * blocks >= 50 * 1_000_000);

  // the expected canonical bodies, hashed piece by piece from their known form
  const relaxed = createHash('sha256');
  const relaxedBlock = repeat(P_RELAXED, perBlock);
  for (let i = 0; i < blocks - 1; i++) relaxed.update(relaxedBlock);
  relaxed.update(repeat(P_RELAXED, perBlock - 1));
  relaxed.update('x y\r\n');
  const simple = createHash('sha256');
  for (let i = 0; i < blocks; i++) simple.update(block);
  simple.update(TAIL_WSP);
  simple.update('\r\n');

  const key = rsaKey(2048);
  const headers = 'From: big@example.com\r\nSubject: large\r\n\r\n';
  let signed = signMessage(headers, { key, c: 'relaxed/relaxed', bodyHash: relaxed.digest('base64') });
  signed = signMessage(signed, { key, c: 'simple/simple', bodyHash: simple.digest('base64') });

  const v = new DkimVerifier({
    resolver: new MemoryResolver({ 'sel._domainkey.example.com': [{ TXT: key.record }] }),
  });
  for (const [name, value] of parseFields(signed.slice(0, signed.indexOf('\r\n\r\n') + 2)))
    v.header(name, value);
  v.endOfHeaders();
  assert.equal(v.bufferedBytes, 0);
  let fed = 0;
  for (let i = 0; i < blocks; i++) {
    // uneven slices, so chunk edges fall inside white-space runs and CRLF pairs
    const cut1 = 333_333 + i;
    const cut2 = 777_777 - i;
    v.body(block.subarray(0, cut1));
    v.body(block.subarray(cut1, cut2));
    v.body(block.subarray(cut2));
    fed += block.length;
    assert.equal(v.bufferedBytes, 0, `body octets held after ${fed} octets`);
  }
  v.body(TAIL_WSP);
  const lines = Buffer.from('\r\n'.repeat(MB / 2), 'latin1');
  for (let n = 0; n < TAIL_LINES; n += MB / 2)
    v.body(lines.subarray(0, 2 * Math.min(MB / 2, TAIL_LINES - n)));
  assert.equal(v.bufferedBytes, 0);
  const results = await v.finish();
  assert.equal(periods * P.length + TAIL_WSP.length + 2 * TAIL_LINES > 50 * MB, true);
  assert.deepEqual(
    results.map((r) => [r.canonicalization, r.result]),
    [
      ['simple/simple', 'pass'],
      ['relaxed/relaxed', 'pass'],
    ],
  );
});

test('trailing empty lines and white space are held as counters, not octets', () => {
  for (const c of ['simple', 'relaxed'] as const) {
    let emitted = 0;
    const canon = createBodyCanonicalizer(c, (d) => {
      emitted += d.length;
    });
    canon.update(Buffer.from('content\r\n'));
    const before = emitted;
    const blank = Buffer.from(
      c === 'relaxed' ? ' \t \r\n'.repeat(1 << 18) : '\r\n'.repeat(1 << 18),
      'latin1',
    );
    for (let i = 0; i < 10; i++) canon.update(blank);
    assert.equal(emitted, before, `${c}: nothing emitted while only blank lines arrive`);
    assert.equal(canon.heldLineEnds, 1 + 10 * (1 << 18), `${c}: the held run is a count`);
    assert.equal(canon.bufferedBytes, 0);
    canon.update(Buffer.from('more'));
    assert.equal(canon.heldLineEnds, 0, `${c}: released when content follows`);
    // the held line ends come out as CRLFs, then "more"
    assert.equal(emitted - before, 2 * (1 + 10 * (1 << 18)) + 4);
  }
});

test('one white-space run of 20 MB without a line end is one SP, in constant state', () => {
  const run = Buffer.alloc(MB, 0x20);
  run.fill(0x09, 0, MB / 2);
  const out: Buffer[] = [];
  let largest = 0;
  const canon = createBodyCanonicalizer('relaxed', (d) => {
    largest = Math.max(largest, d.length);
    out.push(Buffer.from(d));
  });
  canon.update(Buffer.from('a'));
  for (let i = 0; i < 20; i++) canon.update(run);
  assert.equal(canon.bufferedBytes, 0);
  assert.equal(canon.heldLineEnds, 0);
  assert.ok(largest <= RELAXED_BUFFER_SIZE);
  canon.update(Buffer.from('b'));
  canon.finish();
  assert.equal(Buffer.concat(out).toString(), 'a b\r\n');
});
