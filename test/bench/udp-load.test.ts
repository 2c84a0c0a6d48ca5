/**
 * The C load generator of bench/siq-server.ts: it compiles, paces the count it was asked for,
 * matches every answer to its query by the ID it wrote, and refuses a bad packet file. No timing
 * is asserted (latencies are only checked to be ordered).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { type UdpLoadResult, udpLoadBinary, writePacketFile } from '../../bench/support/udp-load.ts';

const bin = udpLoadBinary();
const skip = bin instanceof Error ? `SKIPPED: the C load generator cannot be built: ${bin.message}` : false;
const dir = mkdtempSync(join(tmpdir(), 'udp-load-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const run = promisify(execFile);

/** A UDP responder that answers each datagram with its own octets 0..3 and a marker. */
async function responder(answerEvery = 1): Promise<{ port: number; seen: number[]; close(): void }> {
  const s = dgram.createSocket('udp4');
  const seen: number[] = [];
  s.on('message', (msg, r) => {
    seen.push((msg[2]! << 8) | msg[3]!);
    if (seen.length % answerEvery === 0)
      s.send(Buffer.concat([msg.subarray(0, 4), Buffer.from('ok')]), r.port, r.address);
  });
  await new Promise<void>((ok) => s.bind(0, '127.0.0.1', () => ok()));
  return { port: s.address().port, seen, close: () => s.close() };
}

/** Runs the generator at `rate` for `seconds` against `port` with these queries. */
async function load(
  port: number,
  rate: number,
  seconds: number,
  queries: string[],
): Promise<{ r: UdpLoadResult; stdout: string }> {
  const file = join(dir, 'q.bin');
  writePacketFile(
    file,
    queries.map((q) => Buffer.from(q)),
  );
  const { stdout } = await run(bin as string, [
    '127.0.0.1',
    String(port),
    String(rate),
    String(seconds),
    file,
  ]);
  return { r: JSON.parse(stdout) as UdpLoadResult, stdout };
}

test('sends RATE × SECONDS queries with fresh IDs and times every answer', { skip }, async () => {
  const echo = await responder();
  try {
    const { r, stdout } = await load(echo.port, 2000, 0.5, ['Q\0\0\0first', 'Q\0\0\0second one']);
    assert.equal(r.sent, 1000);
    assert.equal(r.answered, 1000);
    assert.equal(r.lost, 0);
    assert.ok(r.p50Ms > 0 && r.p50Ms <= r.p99Ms && r.p99Ms <= r.maxMs, stdout);
    assert.deepEqual(
      echo.seen,
      Array.from({ length: 1000 }, (_, i) => i + 1),
      'IDs 1, 2, 3, … in network order at offset 2',
    );
  } finally {
    echo.close();
  }
});

test('unanswered queries are counted as lost', { skip }, async () => {
  const half = await responder(2);
  try {
    const { r } = await load(half.port, 1000, 0.2, ['Q\0\0\0x']);
    assert.equal(r.sent, 200);
    assert.equal(r.answered, 100);
    assert.equal(r.lost, 100);
  } finally {
    half.close();
  }
});

test('a packet file that does not parse, or bad arguments: exit 2 with the reason', { skip }, async () => {
  const bad = join(dir, 'bad.bin');
  writeFileSync(bad, Buffer.from([0, 9, 1, 2])); // says 9 octets, has 2
  await assert.rejects(
    run(bin as string, ['127.0.0.1', '9', '10', '1', bad]),
    (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr, /bad packet 0/);
      return true;
    },
  );
  await assert.rejects(
    run(bin as string, ['127.0.0.1', '0', '10', '1', bad]),
    (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr, /bad arguments/);
      return true;
    },
  );
});
