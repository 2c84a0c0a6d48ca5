/** The policy server over real sockets: TCP and unix, connection reuse, pipelining, errors, drain. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeRequest } from '../../../src/adapters/policyd/protocol.ts';
import { createPolicyServer } from '../../../src/adapters/policyd/server.ts';
import { listenOn, parseSocketSpec, removeSocket } from '../../../src/cli/policy.ts';
import { tempDir } from '../../support/fixtures.ts';
import { adapterEngine, postfixRequest } from './helpers.ts';

/** A Postfix-like client: writes requests, reads "action=...\n\n" replies. */
class PolicyClient {
  readonly socket: net.Socket;
  private buffer = '';
  private waiting: Array<(reply: string) => void> = [];
  closed = false;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
        const reply = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        this.waiting.shift()?.(reply);
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w('<closed>');
    });
  }

  static async connect(target: { port: number } | { path: string }): Promise<PolicyClient> {
    const socket = 'port' in target ? net.connect(target.port, '127.0.0.1') : net.connect(target.path);
    await once(socket, 'connect');
    return new PolicyClient(socket);
  }

  send(raw: string): Promise<string>[] {
    const n = raw.split('\n\n').length - 1;
    const replies = Array.from({ length: n }, () => new Promise<string>((resolve) => this.waiting.push(resolve)));
    this.socket.write(raw);
    return replies;
  }

  async ask(attrs: Record<string, string>): Promise<string> {
    return (await this.send(encodeRequest(postfixRequest(attrs))))[0]!;
  }
}

async function serve(spec = 'inet:127.0.0.1:0', options: { maxRequestBytes?: number } = {}) {
  const policy = createPolicyServer({ engine: adapterEngine(), ...options });
  const { address, unlink } = await listenOn(policy.server, spec);
  return { policy, address, unlink, port: Number(/:(\d+)$/.exec(address)?.[1] ?? 0) };
}

test('TCP: one connection carries many requests of many SMTP sessions, answered in order even when pipelined', async () => {
  const { policy, port } = await serve();
  try {
    const client = await PolicyClient.connect({ port });
    assert.equal(await client.ask({ protocol_state: 'CONNECT' }), 'action=DUNNO');
    assert.equal(await client.ask({ helo_name: 'client.adapter.example', sender: 'a@fail.adapter.example', recipient: 'b@dest.example' }), "action=550 5.7.23 SPF: 'fail.adapter.example' does not designate '127.0.0.1' as permitted sender");
    // three requests in one write, for three different SMTP connections: three replies, in order
    const batch = [
      postfixRequest({ client_port: '1', helo_name: 'client.adapter.example', sender: 'x@temp.adapter.example', recipient: 'b@dest.example' }),
      postfixRequest({ client_port: '2', helo_name: 'client.adapter.example', sender: 'x@pass.adapter.example', recipient: 'b@dest.example' }),
      postfixRequest({ client_port: '3', client_address: '192.0.2.99', protocol_state: 'CONNECT' }),
    ];
    const replies = await Promise.all(client.send(batch.map((r) => encodeRequest(r)).join('')));
    assert.match(replies[0]!, /^action=DEFER_IF_PERMIT 4\.4\.3 /);
    assert.equal(replies[1], 'action=DUNNO');
    assert.equal(replies[2], 'action=554 5.7.1 Client host [192.0.2.99] blocked by local policy');
    assert.equal(policy.handler.sessions.size, 4);
    assert.equal(client.closed, false);
    client.socket.destroy();
  } finally {
    await policy.shutdown();
  }
});

test('unix socket: made writable for the MTA, a stale one from a crash replaced, removed on close', async () => {
  const dir = tempDir('checkid-policy-sock-');
  const path = join(dir, 'policy.sock');
  const first = await serve(`unix:${path}`);
  assert.equal(first.address, `unix:${path}`);
  assert.equal(statSync(path).mode & 0o777, 0o666);
  const client = await PolicyClient.connect({ path });
  assert.equal(await client.ask({ helo_name: 'client.adapter.example', sender: 'a@pass.adapter.example', recipient: 'b@dest.example' }), 'action=DUNNO');
  client.socket.destroy();
  // a second server on a live socket is refused
  await assert.rejects(serve(`unix:${path}`), /another process is listening there/);
  // a crash leaves the file behind: simulate by closing without removing it
  await first.policy.shutdown();
  if (!existsSync(path)) {
    // Node removed it on close; make a stale socket file the hard way
    const stale = net.createServer();
    stale.listen(path);
    await once(stale, 'listening');
    (stale as unknown as { _handle: { close(): void } })._handle.close();
  }
  const second = await serve(`unix:${path}`);
  const again = await PolicyClient.connect({ path });
  assert.equal(await again.ask({ protocol_state: 'CONNECT' }), 'action=DUNNO');
  again.socket.destroy();
  await second.policy.shutdown();
  removeSocket(second.unlink);
  assert.equal(existsSync(path), false);
});

test('a protocol error or an oversize request closes the connection without a reply (Postfix retries)', async () => {
  const { policy, port } = await serve('inet:127.0.0.1:0', { maxRequestBytes: 1024 });
  try {
    const bad = await PolicyClient.connect({ port });
    const [reply] = bad.send('request=smtpd_access_policy\nthis line has no equals sign\n\n');
    assert.equal(await reply, '<closed>');
    const big = await PolicyClient.connect({ port });
    const [huge] = big.send(`request=smtpd_access_policy\nsender=${'a'.repeat(2000)}\n\n`);
    assert.equal(await huge, '<closed>');
    // a good request before the bad one in the same write is answered first
    const mixed = await PolicyClient.connect({ port });
    const [first, second] = mixed.send(`${encodeRequest(postfixRequest({ protocol_state: 'CONNECT' }))}junk\n\n`);
    assert.equal(await first, 'action=DUNNO');
    assert.equal(await second, '<closed>');
    // the server still serves others
    const good = await PolicyClient.connect({ port });
    assert.equal(await good.ask({ protocol_state: 'CONNECT' }), 'action=DUNNO');
    good.socket.destroy();
  } finally {
    await policy.shutdown();
  }
});

test('shutdown answers the request in progress, then closes the connections', async () => {
  // a hook that holds one request until the test lets it go
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const hook = async ({ stage, facts }: { stage: string; facts: { envelope: { mailFrom?: string } } }) => {
    if (stage === 'rcpt' && facts.envelope.mailFrom === 'slow@pass.adapter.example') await gate;
    return undefined;
  };
  const policy = createPolicyServer({ engine: adapterEngine({ hook }) });
  const { address } = await listenOn(policy.server, 'inet:127.0.0.1:0');
  const port = Number(/:(\d+)$/.exec(address)![1]);
  const busy = await PolicyClient.connect({ port });
  const idle = await PolicyClient.connect({ port });
  assert.equal(await idle.ask({ protocol_state: 'CONNECT' }), 'action=DUNNO');
  const pending = busy.ask({ client_port: '9', helo_name: 'client.adapter.example', sender: 'slow@pass.adapter.example', recipient: 'b@dest.example' });
  for (let i = 0; i < 200 && policy.handler.sessions.size < 2; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(policy.handler.sessions.size, 2);
  let stopped = false;
  const stopping = policy.shutdown().then(() => {
    stopped = true;
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(idle.closed, true);
  assert.equal(busy.closed, false);
  assert.equal(stopped, false);
  release();
  assert.equal(await pending, 'action=DUNNO');
  await stopping;
  assert.equal(busy.closed, true);
});

test('socket specs: inet, inet6, bare host:port, unix and local; bad ones name what is expected', () => {
  assert.deepEqual(parseSocketSpec('inet:127.0.0.1:9998'), { kind: 'inet', host: '127.0.0.1', port: 9998 });
  assert.deepEqual(parseSocketSpec('127.0.0.1:9998'), { kind: 'inet', host: '127.0.0.1', port: 9998 });
  assert.deepEqual(parseSocketSpec('inet6:[::1]:9998'), { kind: 'inet', host: '::1', port: 9998 });
  assert.deepEqual(parseSocketSpec('unix:/run/checkid/policy.sock'), { kind: 'unix', path: '/run/checkid/policy.sock' });
  assert.deepEqual(parseSocketSpec('local:/x.sock'), { kind: 'unix', path: '/x.sock' });
  assert.throws(() => parseSocketSpec('unix:relative.sock'), /absolute path/);
  assert.throws(() => parseSocketSpec('inet:127.0.0.1:70000'), /port out of range/);
  assert.throws(() => parseSocketSpec('tcp://x'), /expected inet:HOST:PORT/);
});
