/**
 * The SMTP front-end's throughput and cost: C client connections each send M messages of S
 * octets (EHLO, ID, then MAIL/RCPT/DATA pipelined) through the front-end (engine with in-memory
 * DNS, XCLIENT to a scriptable back-end sink), against the same clients talking to the sink
 * directly. Everything runs in this one process, so the difference in CPU time between the two
 * runs is what the front-end itself costs per message (engine stages, parsing, relaying).
 *
 *   node bench/smtp-front.ts [--clients 20] [--messages 50] [--size 4000]
 *
 * Prints one JSON line.
 */
import { createSmtpFront } from '../src/adapters/smtp-front/adapter.ts';
import { Engine, staticPolicy } from '../src/engine/engine.ts';
import { defaultConfig } from '../src/policy/config.ts';
import { frontZone } from '../test/adapters/smtp-front/fixtures.ts';
import { Wire } from '../test/adapters/smtp-front/wire.ts';
import { startSmtpSink } from '../test/support/smtp-sink.ts';
import { MemoryResolver } from '../test/support/zone.ts';
import { numberArg } from './support/args.ts';

const clients = numberArg('clients', 20);
const perClient = numberArg('messages', 50);
const size = numberArg('size', 4000);
const body = `${'x'.repeat(76)}\r\n`.repeat(Math.max(1, Math.floor(size / 78)));

async function client(port: number, n: number, id: boolean): Promise<number> {
  const c = await Wire.connect(port, { localAddress: '127.0.0.2' });
  await c.cmd('EHLO client.example');
  if (id) await c.cmd('ID example.com');
  let ok = 0;
  for (let i = 0; i < perClient; i++) {
    const r = await c.pipeline(['MAIL FROM:<bench@example.com>', `RCPT TO:<c${n}m${i}@dest.example>`, 'DATA']);
    if (r[2]!.code !== 354) continue;
    c.send(`Subject: bench ${n}/${i}\r\nFrom: bench@example.com\r\n\r\n${body}.\r\n`);
    if ((await c.reply()).code === 250) ok++;
  }
  await c.quit();
  return ok;
}

async function run(port: number, id: boolean) {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const ok = (await Promise.all(Array.from({ length: clients }, (_, n) => client(port, n, id)))).reduce((a, b) => a + b, 0);
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { messages: ok, ms: Math.round(ms), perSecond: Math.round((ok / ms) * 1000), cpuUsPerMessage: Math.round((used.user + used.system) / ok) };
}

const sink = await startSmtpSink({ xclient: true });
const resolver = new MemoryResolver(frontZone());
const config = defaultConfig();
config.authservId = 'mx.receiver.example';
config.ratings.registries = [{ zone: 'registry.example' }];
const front = createSmtpFront({ engine: new Engine({ resolver, policy: staticPolicy(config, resolver) }), hostname: 'front.bench', relay: { host: '127.0.0.1', port: sink.port, heloName: 'front.bench' } });
const { port } = await front.listen(0, '127.0.0.1');

// warm-up, then the measured runs
await run(port, true);
const direct = await run(sink.port, false);
const through = await run(port, true);
await front.close();
await sink.close();
console.log(
  JSON.stringify({
    bench: 'smtp-front',
    node: process.version,
    clients,
    messagesPerClient: perClient,
    messageOctets: body.length + 60,
    direct,
    front: through,
    frontCpuUsPerMessage: through.cpuUsPerMessage - direct.cpuUsPerMessage,
  }),
);
