/**
 * `checkid smtp` as deployed: the daemon in its own process, the real DNS test server, a back-end
 * sink; flags over config; SIGTERM drains. Also `checkid serve` starting it from `smtp.listen`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { frontConfig, frontZone, startFrontDaemon as daemon } from '../adapters/smtp-front/fixtures.ts';
import { Wire } from '../adapters/smtp-front/wire.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { CHECKID_BIN } from '../support/fixtures.ts';
import { type SmtpSink, startSmtpSink } from '../support/smtp-sink.ts';

let dns: DnsTestServer;
let sink: SmtpSink;
before(async () => {
  dns = await startDnsServer({ zone: frontZone() });
  sink = await startSmtpSink({ xclient: true });
});
after(async () => {
  await sink.close();
  await dns.close();
});

test('checkid smtp: ID refused, mail relayed with headers and XCLIENT, SIGTERM drains and exits 0', async () => {
  const config = frontConfig();
  const { child, address, log } = await daemon(['smtp', '--listen', '127.0.0.1:0', '--relay', sink.address, '--hostname', 'front.cli.test', '--config', config, '--resolver', dns.address]);
  try {
    const forger = await Wire.connect(address.port, { localAddress: '127.0.0.1' });
    assert.equal(forger.greeting.text, '220 front.cli.test ESMTP checkid');
    await forger.cmd('EHLO forger.example');
    assert.equal((await forger.cmd('ID example.net')).text, "550 5.7.1 Sending MTA '127.0.0.1' not authorized by 'example.net'");
    await forger.quit();

    const c = await Wire.connect(address.port, { localAddress: '127.0.0.2' });
    await c.cmd('EHLO client.example');
    await c.cmd('XID example.com');
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@dest.example>');
    assert.equal((await c.data('Subject: via the daemon\r\n\r\nhello\r\n')).code, 250);
    // a client in the middle of a transaction when SIGTERM comes finishes its message
    await c.cmd('MAIL FROM:<a@example.com>');
    await c.cmd('RCPT TO:<b@dest.example>');
    assert.equal((await c.cmd('DATA')).code, 354);
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    c.send('Subject: during shutdown\r\n\r\nstill delivered\r\n.\r\n');
    assert.equal((await c.reply()).code, 250);
    assert.match((await c.reply()).text, /^421 4\.3\.2 front\.cli\.test Service shutting down/);
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, log.join('\n'));
    const mine = sink.messages.filter((m) => m.data.includes('front.cli.test'));
    assert.equal(mine.length, 2);
    assert.match(mine[0]!.data, /^Authent: 127\.0\.0\.2 example\.com SPF1 PASS ratings=S1:A,M2:A,H1:B\r\n/);
    assert.equal(mine[0]!.client.addr, '127.0.0.2');
    const relayed = log.map((l) => JSON.parse(l) as { msg: string; declared_id?: string }).filter((e) => e.msg === 'smtp: message relayed');
    assert.equal(relayed.length, 2);
    assert.equal(relayed[0]!.declared_id, 'example.com');
  } finally {
    child.kill('SIGKILL');
  }
});

test('checkid serve starts the front-end from smtp.listen; a missing relay or half a TLS pair is a clear error', async () => {
  const config = frontConfig(['smtp:', '  listen: 127.0.0.1:0', `  relay: ${sink.address}`, '  max_message_size: 5000'].join('\n'));
  const { child, address } = await daemon(['serve', '--config', config, '--resolver', dns.address]);
  try {
    const c = await Wire.connect(address.port);
    assert.ok((await c.cmd('EHLO client.example')).lines.includes('SIZE 5000'));
    await c.quit();
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  const fail = async (args: string[]) => {
    const p = spawn(process.execPath, [CHECKID_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const [code] = await once(p, 'exit');
    return { code: code as number, err };
  };
  const noRelay = await fail(['smtp', '--listen', '127.0.0.1:0', '--config', frontConfig(), '--resolver', dns.address]);
  assert.equal(noRelay.code, 1);
  assert.match(noRelay.err, /no back-end MTA: set smtp\.relay in the config or give --relay HOST:PORT/);
  const halfTls = await fail(['smtp', '--listen', '127.0.0.1:0', '--relay', sink.address, '--tls-cert', '/nonexistent.pem', '--config', frontConfig(), '--resolver', dns.address]);
  assert.equal(halfTls.code, 1);
  assert.match(halfTls.err, /STARTTLS needs both a certificate and a key/);
  const badFlag = await fail(['smtp', '--relay']);
  assert.equal(badFlag.code, 2);
});
