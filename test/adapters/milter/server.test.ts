/** The milter listener: addresses, unix sockets, protocol errors, graceful close, and the CLI commands. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { formatMilterAddress, parseMilterAddress, startMilterServer } from '../../../src/adapters/milter/server.ts';
import { encodeCommand } from '../../../src/adapters/milter/wire.ts';
import type { DnsResult, RecordType, Resolver } from '../../../src/dns/types.ts';
import { Engine, staticPolicy } from '../../../src/engine/engine.ts';
import { defaultConfig } from '../../../src/policy/config.ts';
import { type DnsTestServer, startDnsServer } from '../../support/dns-server.ts';
import { CHECKID_BIN, FIXTURES, seedZone, tempDir } from '../../support/fixtures.ts';
import { MilterClient } from '../../support/milter-client.ts';
import { MemoryResolver } from '../../support/zone.ts';

function engine(resolver: Resolver = new MemoryResolver(seedZone())) {
  const config = defaultConfig();
  config.authservId = 'mx.receiver.example';
  return new Engine({ resolver, policy: staticPolicy(config, resolver) });
}

test('listen addresses in Postfix and Sendmail spelling', () => {
  assert.deepEqual(parseMilterAddress('inet:127.0.0.1:8891'), { kind: 'inet', host: '127.0.0.1', port: 8891 });
  assert.deepEqual(parseMilterAddress('inet:8891@127.0.0.1'), { kind: 'inet', host: '127.0.0.1', port: 8891 });
  assert.deepEqual(parseMilterAddress('inet6:[::1]:8891'), { kind: 'inet', host: '::1', port: 8891 });
  assert.deepEqual(parseMilterAddress('inet6:8891@::1'), { kind: 'inet', host: '::1', port: 8891 });
  assert.deepEqual(parseMilterAddress('inet6:8891@[::1]'), { kind: 'inet', host: '::1', port: 8891 });
  assert.deepEqual(parseMilterAddress('inet:localhost:0'), { kind: 'inet', host: 'localhost', port: 0 });
  assert.deepEqual(parseMilterAddress('127.0.0.1:8891'), { kind: 'inet', host: '127.0.0.1', port: 8891 });
  assert.deepEqual(parseMilterAddress('unix:/run/checkid/milter.sock'), { kind: 'unix', path: '/run/checkid/milter.sock' });
  assert.deepEqual(parseMilterAddress('local:/run/checkid/milter.sock'), { kind: 'unix', path: '/run/checkid/milter.sock' });
  assert.throws(() => parseMilterAddress('unix:milter.sock'), /must be absolute/);
  assert.throws(() => parseMilterAddress('inet:8891'), /expected inet:HOST:PORT/);
  assert.throws(() => parseMilterAddress('inet:127.0.0.1:70000'), /port "70000"/);
  assert.throws(() => parseMilterAddress('inet6:127.0.0.1:1'), /inet6 with an IPv4 address/);
  assert.equal(formatMilterAddress({ kind: 'inet', host: '::1', port: 1 }), 'inet6:[::1]:1');
  assert.equal(formatMilterAddress({ kind: 'inet', host: '127.0.0.1', port: 1 }), 'inet:127.0.0.1:1');
});

test('unix socket: a stale socket file is replaced, mode 0660, a conversation works, the file goes on close', async () => {
  const dir = join(tempDir('checkid-milter-'), 'run');
  mkdirSync(dir, { mode: 0o750 });
  chmodSync(dir, 0o750);
  const path = join(dir, 'milter.sock');
  // a socket left behind by a process that died
  const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(holder.stdout!, 'data');
  holder.kill('SIGKILL');
  await once(holder, 'exit');
  assert.ok(lstatSync(path).isSocket());

  const warnings: Array<Record<string, unknown> | undefined> = [];
  const server = await startMilterServer({ engine: engine(), listen: `unix:${path}`, log: (_l, m, f) => /world-writable/.test(m) && warnings.push(f) });
  assert.equal(server.address, `unix:${path}`);
  assert.equal(statSync(path).mode & 0o777, 0o660);
  // the 0750 directory is fine; Sendmail would still refuse the world-writable temp directory above it
  const tmp = tmpdir();
  assert.deepEqual(warnings, statSync(tmp).mode & 0o002 ? [{ socket: path, directory: tmp, mode: `0${(statSync(tmp).mode & 0o7777).toString(8)}` }] : []);
  // a second instance must not steal it
  await assert.rejects(startMilterServer({ engine: engine(), listen: `unix:${path}` }), /another process is listening/);
  const c = await MilterClient.connect(server.address);
  await c.negotiate();
  // the MTA does not wait at CONNECT and HELO (NR_CONN, NR_HELO); MAIL is answered
  assert.equal(await c.connectEvent({ hostname: '[192.0.2.1]', family: 'inet', port: 1, address: '192.0.2.1' }), null);
  assert.equal(await c.helo('mx.example.com'), null);
  assert.equal((await c.mail(['<a@example.com>']))?.kind, 'CONTINUE');
  c.quit();
  await c.waitClosed();
  await server.close();
  assert.throws(() => lstatSync(path), /ENOENT/);
});

test('unix socket: never replaces a file that is not a socket; warns about a directory Sendmail refuses', async () => {
  const dir = tempDir('checkid-milter-');
  const file = join(dir, 'not-a-socket');
  writeFileSync(file, 'keep me');
  await assert.rejects(startMilterServer({ engine: engine(), listen: `unix:${file}` }), /exists and is not a socket/);
  assert.equal(readFileSync(file, 'utf8'), 'keep me');
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o770);
  const warnings: Array<Record<string, unknown> | undefined> = [];
  const server = await startMilterServer({ engine: engine(), listen: `unix:${join(open, 'm.sock')}`, log: (_l, m, f) => /unsafe: Group\/World writable directory/.test(m) && warnings.push(f) });
  assert.deepEqual(warnings, [{ socket: join(open, 'm.sock'), directory: open, mode: '0770' }]);
  await server.close();
});

test('a protocol error closes that connection only; the listener keeps serving', async () => {
  const logs: string[] = [];
  const server = await startMilterServer({ engine: engine(), listen: 'inet:127.0.0.1:0', log: (_l, m) => logs.push(m), maxFrameBytes: 1024 });
  try {
    const bad = await MilterClient.connect(server.address);
    await bad.negotiate();
    bad.writeRaw(encodeCommand({ kind: 'MACRO', stage: 'C', macros: [['{x}', 'y'.repeat(2000)]] }));
    await bad.waitClosed();
    assert.ok(logs.some((m) => /milter protocol error/.test(m)));
    const order = await MilterClient.connect(server.address);
    await order.negotiate();
    order.send({ kind: 'RCPT', args: ['<b@example.org>'] });
    await order.waitClosed();
    const good = await MilterClient.connect(server.address);
    await good.negotiate();
    assert.equal(await good.connectEvent({ hostname: 'x', family: 'inet', port: 1, address: '192.0.2.1' }), null);
    assert.equal((await good.mail(['<a@example.com>']))?.kind, 'CONTINUE');
    good.quit();
    await good.waitClosed();
  } finally {
    await server.close();
  }
});

test('graceful close: idle connections end at once, a message in progress finishes, new ones are refused', async () => {
  const waiting: Array<() => void> = [];
  const slow: Resolver = {
    query: <T extends RecordType>() => new Promise<DnsResult<T>>((resolve) => waiting.push(() => resolve({ status: 'nxdomain', ttl: 1 }))),
  };
  const server = await startMilterServer({ engine: engine(slow), listen: 'inet:127.0.0.1:0', progressIntervalMs: 0 });
  const idle = await MilterClient.connect(server.address);
  await idle.negotiate();
  const busy = await MilterClient.connect(server.address);
  await busy.negotiate();
  // not waited for (NR_CONN): the connect stage goes on in checkid, waiting on DNS (iprev)
  assert.equal(await busy.connectEvent({ hostname: 'x', family: 'inet', port: 1, address: '192.0.2.1' }), null);
  while (waiting.length === 0) await new Promise((r) => setTimeout(r, 5));
  // close now: the idle connection ends at once, the busy one stays until its stage is done
  const closing = server.close();
  await idle.waitClosed();
  assert.equal(busy.closed, false);
  await assert.rejects(MilterClient.connect(server.address), /ECONNREFUSED/);
  for (const f of waiting.splice(0)) f();
  // the session is idle again (no message): it is ended now
  await busy.waitClosed();
  await closing;
  assert.equal(server.connections, 0);
});

test('graceful close waits for the end of the message in progress', async () => {
  const server = await startMilterServer({ engine: engine(), listen: 'inet:127.0.0.1:0' });
  const c = await MilterClient.connect(server.address);
  await c.negotiate();
  await c.connectEvent({ hostname: 'x', family: 'inet', port: 1, address: '192.0.2.1' });
  await c.helo('mx.example.com');
  assert.equal((await c.mail(['<a@example.com>']))?.kind, 'CONTINUE');
  const closing = server.close();
  assert.equal(await c.rcpt(['<b@example.org>']), null);
  await c.header('Subject', ' hi');
  await c.eoh();
  await c.body('x');
  const eom = await c.eom();
  assert.equal(eom.final.kind, 'ACCEPT');
  await c.waitClosed();
  await closing;
});

let dns: DnsTestServer;
before(async () => {
  dns = await startDnsServer({ zone: seedZone() });
});
after(async () => {
  await dns.close();
});

async function runCli(args: string[], field: 'milter'): Promise<{ address: string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [CHECKID_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = createInterface({ input: child.stderr! });
  let address = '';
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg: string; milter?: string };
    if (entry.msg === 'checkid listening') {
      address = entry[field] ?? '';
      break;
    }
  }
  return {
    address,
    stop: async () => {
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      return code as number | null;
    },
  };
}

function writeConfig(extra: string): string {
  const path = join(tempDir('checkid-milter-cli-'), 'checkid.yaml');
  writeFileSync(path, `${readFileSync(join(FIXTURES, 'seed-authent.yaml'), 'utf8')}\n${extra}`);
  return path;
}

test('checkid milter --listen inet:127.0.0.1:0 answers as an MTA expects and stops on SIGTERM', async () => {
  const config = writeConfig('');
  const run = await runCli(['milter', '--listen', 'inet:127.0.0.1:0', '--config', config, '--resolver', dns.address], 'milter');
  assert.match(run.address, /^inet:127\.0\.0\.1:\d+$/);
  const c = await MilterClient.connect(run.address);
  await c.negotiate();
  await c.connectEvent({ hostname: '[192.0.2.1]', family: 'inet', port: 1, address: '192.0.2.1' });
  await c.helo('mx.example.com');
  const refused = await c.mail(['<x@example.net>']);
  assert.equal(refused?.kind === 'REPLYCODE' && refused.text, "550 5.7.23 SPF: 'example.net' does not designate '192.0.2.1' as permitted sender");
  c.abort();
  const t = await c.transaction({ from: 'a@example.com', to: ['b@example.org'] });
  assert.deepEqual(
    t.eom?.modifications.map((m) => m.kind === 'INSHEADER' && `${m.name}:${String(m.value)}`),
    ['Authent: 192.0.2.1 mx.example.com SPF1 PASS'],
  );
  c.quit();
  await c.waitClosed();
  assert.equal(await run.stop(), 0);
});

test('checkid serve starts the milter from milter.listen', async () => {
  const config = writeConfig("http:\n  listen: ''\nmilter:\n  listen: inet:127.0.0.1:0\n");
  const run = await runCli(['serve', '--config', config, '--resolver', dns.address], 'milter');
  assert.match(run.address, /^inet:127\.0\.0\.1:\d+$/);
  const c = await MilterClient.connect(run.address);
  assert.equal((await c.negotiate()).version, 6);
  c.close();
  assert.equal(await run.stop(), 0);
});
