/**
 * The front-end under load: 500 concurrent client sessions, some of them forgers and some whose
 * message the back-end loses at the final dot. Every message the client saw acknowledged arrives
 * at the back-end exactly once; no refused one arrives; with the back-end down nothing is accepted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSmtpFront } from '../../src/adapters/smtp-front/adapter.ts';
import { Engine, staticPolicy } from '../../src/engine/engine.ts';
import { defaultConfig } from '../../src/policy/config.ts';
import { frontZone } from '../adapters/smtp-front/fixtures.ts';
import { Wire } from '../adapters/smtp-front/wire.ts';
import { startSmtpSink } from '../support/smtp-sink.ts';
import { MemoryResolver } from '../support/zone.ts';

const SESSIONS = 500;

function engine() {
  const resolver = new MemoryResolver(frontZone());
  const config = defaultConfig();
  config.authservId = 'mx.receiver.example';
  config.ratings.registries = [{ zone: 'registry.example' }];
  return new Engine({ resolver, policy: staticPolicy(config, resolver) });
}

/** One client session; returns the final reply code to its message, or the code that stopped it. */
async function session(port: number, n: number): Promise<number> {
  const c = await Wire.connect(port, { localAddress: '127.0.0.2' });
  try {
    await c.cmd('EHLO client.example');
    const id = await c.cmd(n % 25 === 0 ? 'ID example.net' : 'ID example.com');
    if (id.code !== 250) return id.code;
    const replies = await c.pipeline(['MAIL FROM:<load@example.com>', `RCPT TO:<r${n}@dest.example>`, 'DATA']);
    if (replies[2]!.code !== 354) return replies.find((r) => r.code !== 250)!.code;
    c.send(`Subject: load ${n}\r\nFrom: load@example.com\r\n\r\n${'body line\r\n'.repeat(20)}.\r\n`);
    return (await c.reply()).code;
  } finally {
    await c.quit();
  }
}

test(`${SESSIONS} concurrent sessions: every acknowledged message relayed exactly once, no refused one`, { timeout: 120_000 }, async () => {
  const sink = await startSmtpSink({
    xclient: true,
    // the back-end loses every 10th message at the final dot (connection dropped)
    final: (m) => (/^Subject: load \d*0\r$/m.test(m.data) ? 'HANGUP' : null),
  });
  const front = createSmtpFront({ engine: engine(), hostname: 'front.test', relay: { host: '127.0.0.1', port: sink.port, heloName: 'front.test' } });
  const { port } = await front.listen(0, '127.0.0.1');
  try {
    const codes = await Promise.all(Array.from({ length: SESSIONS }, (_, n) => session(port, n)));
    const acknowledged = codes.flatMap((code, n) => (code === 250 ? [n] : []));
    const forgers = codes.flatMap((code, n) => (n % 25 === 0 ? [code] : []));
    assert.ok(forgers.every((code) => code === 550), `forgers got ${forgers}`);
    const lost = codes.flatMap((code, n) => (n % 10 === 0 && n % 25 !== 0 ? [code] : []));
    assert.ok(lost.every((code) => code === 451), `messages lost by the back-end got ${lost}`);
    assert.equal(acknowledged.length, SESSIONS - forgers.length - lost.length);
    const arrived = sink.messages.map((m) => Number(/^Subject: load (\d+)\r$/m.exec(m.data)![1]));
    assert.equal(arrived.length, acknowledged.length);
    assert.deepEqual(
      [...arrived].sort((a, b) => a - b),
      acknowledged,
    );
    assert.equal(sink.received, acknowledged.length + lost.length);
    assert.ok(sink.messages.every((m) => m.client.addr === '127.0.0.2' && m.data.startsWith('Authent: 127.0.0.2 example.com SPF1 PASS')));
  } finally {
    await front.close();
    await sink.close();
  }
  assert.equal(front.connections, 0);
});

test('back-end down: every one of 100 concurrent clients gets 451 at MAIL, nothing is accepted', { timeout: 60_000 }, async () => {
  const probe = await startSmtpSink();
  const deadPort = probe.port;
  await probe.close();
  const front = createSmtpFront({ engine: engine(), hostname: 'front.test', relay: { host: '127.0.0.1', port: deadPort, heloName: 'front.test', connectTimeoutMs: 5_000 } });
  const { port } = await front.listen(0, '127.0.0.1');
  try {
    const replies = await Promise.all(
      Array.from({ length: 100 }, async (_, n) => {
        const c = await Wire.connect(port, { localAddress: '127.0.0.2' });
        await c.cmd('EHLO client.example');
        const r = await c.pipeline(['MAIL FROM:<a@example.com>', `RCPT TO:<r${n}@dest.example>`, 'DATA']);
        await c.quit();
        return r.map((x) => x.code).join(' ');
      }),
    );
    assert.deepEqual(new Set(replies), new Set(['451 503 503']));
  } finally {
    await front.close();
  }
});
