/** `checkid siq query` as users run it: a child process against the scripted SIQ server. */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { runSiq } from '../../src/cli/siq.ts';
import { runCheckid } from '../support/daemon.ts';
import { type SiqTestServer, startSiqServer } from '../support/siq-server.ts';

let server: SiqTestServer;
let silent: SiqTestServer;
before(async () => {
  [server, silent] = await Promise.all([startSiqServer(), startSiqServer({ script: () => null })]);
});
after(async () => {
  await Promise.all([server.close(), silent.close()]);
});

const siq = (args: string[]) => runCheckid(['siq', ...args], { timeoutMs: 20_000 });

test('JSON: score, sub-scores, confidence, TTL, text and the detected layout; exit 0', async () => {
  server.script = () => ({ reply: { score: 73, ipScore: 80, domainScore: -1, relScore: 5, ttl: 300, confidence: 90, text: 'stability=1.' } });
  const r = await siq(['query', '--server', server.address, '--ip', '192.0.2.1', '--domain', 'user@Example.com', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.status, 'answer');
  assert.equal(out.server, server.address);
  assert.equal(out.revision, '-02');
  assert.equal(out.kind, 'score');
  assert.deepEqual([out.score, out.ipScore, out.domainScore, out.relScore, out.confidence, out.ttl], [73, 80, -1, 5, 90, 300]);
  assert.equal(out.text, 'stability=1.');
  assert.equal(out.tries, 1);
  assert.equal(server.received.at(-1)!.query!.domain, 'example.com');
  assert.equal(out.id, server.received.at(-1)!.query!.id);
});

test('readable output, a -00 layout reply (no TTL, no confidence)', async () => {
  server.script = () => ({ revision: '00', reply: { score: 12, ipScore: 3, domainScore: 4, relScore: -1, text: 'old server' } });
  const r = await siq(['query', '--server', server.address, '--ip', '2001:db8::1', '--domain', 'example.org']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^server +127\.0\.0\.1:\d+$/m);
  assert.match(r.stdout, /^layout +draft -00$/m);
  assert.match(r.stdout, /^score +12$/m);
  assert.match(r.stdout, /^ip score +3$/m);
  assert.match(r.stdout, /^rel score +unknown \(-1\)$/m);
  assert.match(r.stdout, /^confidence +none \(-00 layout\)$/m);
  assert.match(r.stdout, /^ttl +none \(-00 layout\)$/m);
  assert.match(r.stdout, /^text +'old server'$/m);
  assert.equal(server.received.at(-1)!.query!.ip, '2001:db8::1');
});

test('a -01 reply, and an IP-only query without --domain', async () => {
  server.script = () => ({ revision: '01', reply: { score: 40, ttl: 86400, confidence: 10, text: 'v1' } });
  const r = await siq(['query', '--server', server.address, '--ip', '192.0.2.9', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual([out.revision, out.ttl, out.confidence], ['-01', 86400, 10]);
  assert.equal(server.received.at(-1)!.raw.length, 22);
});

test('answered without a score (TEMPFAIL, UNKNOWN): exit 3, the meaning printed', async () => {
  server.script = () => ({ reply: { score: -2, text: 'overloaded' } });
  const r = await siq(['query', '--server', server.address, '--ip', '192.0.2.1', '--domain', 'example.com']);
  assert.equal(r.code, 3);
  assert.match(r.stdout, /^score +-2 TEMPFAIL: try again later/m);
  server.script = () => ({ reply: { score: -1 } });
  const u = await siq(['query', '--server', server.address, '--ip', '192.0.2.1', '--domain', 'example.com', '--json']);
  assert.equal(u.code, 3);
  assert.equal(JSON.parse(u.stdout).kind, 'unknown');
});

test('failover between --server options, then no answer at all: exit 4', async () => {
  server.script = () => ({ reply: { score: 66 } });
  const r = await siq(['query', '--server', silent.address, '--server', server.address, '--ip', '192.0.2.1', '--domain', 'example.com', '--timeout', '400', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.server, server.address);
  assert.equal(out.tries, 2);
  const none = await siq(['query', '--server', silent.address, '--ip', '192.0.2.1', '--domain', 'example.com', '--timeout', '150']);
  assert.equal(none.code, 4);
  assert.match(none.stderr, /no answer from 127\.0\.0\.1:\d+ within 150 ms/);
  const json = await siq(['query', '--server', silent.address, '--ip', '192.0.2.1', '--timeout', '100', '--json']);
  assert.equal(json.code, 4);
  assert.equal(JSON.parse(json.stdout).status, 'timeout');
});

test('an unreachable server: exit 4 at once', async () => {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((ok) => s.bind(0, '127.0.0.1', () => ok()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  const r = await siq(['query', '--server', `127.0.0.1:${port}`, '--ip', '192.0.2.1', '--timeout', '10000']);
  assert.equal(r.code, 4);
  assert.match(r.stderr, /ECONNREFUSED/);
});

test('usage errors exit 2 (child process)', async () => {
  const cases: string[][] = [[], ['query', '--ip', '192.0.2.1'], ['query', '--server', server.address, '--ip', 'not-an-ip']];
  const before = server.received.length;
  const results = await Promise.all(cases.map((args) => siq(args)));
  results.forEach((r, i) => {
    assert.equal(r.code, 2, `${cases[i]!.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout + r.stderr, /usage: checkid siq query/);
  });
  assert.equal(server.received.length, before, 'nothing was sent');
});

/** runSiq in this process, its output captured (cheaper than a child per case) */
async function inProcess(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const write = (chunk: string | Uint8Array): boolean => {
    out += String(chunk);
    return true;
  };
  const saved = [process.stdout.write, process.stderr.write];
  process.stdout.write = write as typeof process.stdout.write;
  process.stderr.write = write as typeof process.stderr.write;
  try {
    return { code: await runSiq(args), out };
  } finally {
    [process.stdout.write, process.stderr.write] = saved as [typeof process.stdout.write, typeof process.stderr.write];
  }
}

test('usage errors exit 2 (every kind), --help exits 0', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown subcommand "frobnicate"/],
    [['query', '--server', server.address], /--ip is required/],
    [['query', '--server', 'bad host', '--ip', '192.0.2.1'], /not an IP address or host name in SIQ server "bad host"/],
    [['query', '--server', server.address, '--ip', '192.0.2.1', '--timeout', 'soon'], /--timeout must be an integer/],
    [['query', '--server', server.address, '--ip', '192.0.2.1', '--attempts', '0'], /--attempts must be an integer/],
    [['query', '--server', server.address, '--ip', '192.0.2.1', '--domain', 'a@[192.0.2.1]'], /cannot be sent in a SIQ query/],
    [['query', '--server', server.address, '--ip', '192.0.2.1', '--type', 'rcpt'], /--type is mail or data/],
    [['query', '--server', server.address, '--ip', '192.0.2.1', '--bogus'], /Unknown option '--bogus'/],
  ];
  const before = server.received.length;
  for (const [args, message] of cases) {
    const r = await inProcess(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.out}`);
    assert.match(r.out, message);
    assert.match(r.out, /usage: checkid siq query/);
  }
  assert.equal(server.received.length, before, 'nothing was sent');
  const help = await inProcess(['query', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /Exit status: 0 a score came back; 3/);
});
