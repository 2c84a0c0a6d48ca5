/**
 * The commands as run: `checkid integrate <mta>`, and `checkid serve` starting the policy and
 * readsocket listeners from their config keys (and stopping them on SIGTERM).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eximSnippetText } from '../../../src/adapters/exim/config.ts';
import { postfixPolicyLines } from '../../../src/adapters/policyd/postfix.ts';
import { encodeRequest } from '../../../src/adapters/policyd/protocol.ts';
import { integrationText, MTAS, sendmailSocket } from '../../../src/cli/integrate.ts';
import { parseConfig } from '../../../src/policy/config.ts';
import { type DnsTestServer, startDnsServer } from '../../support/dns-server.ts';
import { startDaemon } from '../../support/daemon.ts';
import { CHECKID_BIN, tempDir } from '../../support/fixtures.ts';
import { ADAPTER_CONFIG_YAML, adapterZone, postfixRequest } from './helpers.ts';

let dns: DnsTestServer;
before(async () => {
  dns = await startDnsServer({ zone: adapterZone() });
});
after(async () => {
  await dns.close();
});

const checkid = (...args: string[]) => spawnSync(process.execPath, [CHECKID_BIN, ...args], { encoding: 'utf8', timeout: 30_000 });

/** The checkid.yaml blocks a printed set-up tells the operator to add (a key, then indented lines). */
function yamlFragments(text: string): string[] {
  return [...text.matchAll(/^(?:milter|policy|readsocket|smtp):\n(?: {2}\S.*\n)+/gm)].map((m) => m[0]);
}

test('integrate: every MTA prints a set-up whose checkid.yaml fragments load; unknown MTAs and bad configs are refused', () => {
  for (const mta of MTAS) {
    const r = checkid('integrate', mta);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, integrationText(mta, { checkid: `${process.execPath} ${new URL('../../../', import.meta.url).pathname.replace(/\/$/, '')}/bin/checkid.mjs` }));
    const fragments = yamlFragments(r.stdout);
    assert.ok(fragments.length > 0 || mta === 'qmail', `no checkid.yaml block in integrate ${mta}`);
    for (const fragment of fragments) assert.doesNotThrow(() => parseConfig(fragment, `integrate ${mta}`), fragment);
  }
  const exchange = parseConfig(yamlFragments(checkid('integrate', 'exchange').stdout)[0]!, 'integrate exchange');
  assert.deepEqual([exchange.smtp.listen, exchange.smtp.relay], ['0.0.0.0:25', 'exchange.example.org:2525']);
  const postfix = checkid('integrate', 'postfix').stdout;
  assert.match(postfix, /^smtpd_milters = inet:127\.0\.0\.1:8891$/m);
  for (const line of postfixPolicyLines({ listen: 'inet:127.0.0.1:9998', headers: 2 })) assert.ok(postfix.includes(line), line);
  assert.ok(checkid('integrate', 'exim').stdout.includes(eximSnippetText({ socket: 'inet:127.0.0.1:9997' })));
  assert.match(checkid('integrate', 'sendmail').stdout, /^INPUT_MAIL_FILTER\(`checkid', `S=inet:8891@127\.0\.0\.1, F=T, T=C:10s;S:30s;R:30s;E:5m'\)dnl$/m);
  assert.match(checkid('integrate', 'exchange').stdout, /New-ReceiveConnector/);
  const unknown = checkid('integrate', 'lotus-notes');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /usage: checkid integrate <postfix\|sendmail\|exim\|qmail\|exchange>/);
  assert.equal(checkid('integrate').status, 2);
  const bad = join(tempDir('checkid-integrate-'), 'bad.yaml');
  writeFileSync(bad, 'policy:\n  listen: nowhere\n');
  const refused = checkid('integrate', 'postfix', '--config', bad);
  assert.equal(refused.status, 3);
  assert.match(refused.stderr, /policy\.listen/);
});

test('integrate follows the config: its addresses, its number of header fields, its on_error', () => {
  const path = join(tempDir('checkid-integrate-'), 'checkid.yaml');
  writeFileSync(path, "headers: [authent]\non_error: accept\nmilter:\n  listen: unix:/run/checkid/milter.sock\npolicy:\n  listen: unix:/run/checkid/policy.sock\nreadsocket:\n  listen: inet:127.0.0.1:10997\n");
  const postfix = checkid('integrate', 'postfix', '--config', path).stdout;
  assert.match(postfix, /^smtpd_milters = unix:\/run\/checkid\/milter\.sock$/m);
  assert.match(postfix, /^milter_default_action = accept$/m);
  // one header field: one DATA request
  assert.match(postfix, /^smtpd_data_restrictions = permit_mynetworks, permit_sasl_authenticated, check_policy_service unix:\/run\/checkid\/policy\.sock$/m);
  assert.ok(postfix.includes(`checkid.mjs serve --config ${path}`));
  assert.match(checkid('integrate', 'sendmail', '--config', path).stdout, /S=local:\/run\/checkid\/milter\.sock, F=, /);
  assert.match(checkid('integrate', 'exim', '--config', path).stdout, /^CHECKID_SOCKET {2}= inet:127\.0\.0\.1:10997$/m);
  assert.equal(sendmailSocket('inet6:[::1]:8891'), 'inet6:8891@::1');
  assert.throws(() => sendmailSocket('tcp:x'), /expected inet:HOST:PORT/);
});

async function askPolicy(address: string, attrs: Record<string, string>): Promise<string> {
  const [, host, port] = /^inet:([^:]+):(\d+)$/.exec(address)!;
  const socket = net.connect(Number(port), host);
  await once(socket, 'connect');
  socket.write(encodeRequest(postfixRequest(attrs)));
  let out = '';
  for await (const chunk of socket) {
    out += (chunk as Buffer).toString();
    if (out.endsWith('\n\n')) break;
  }
  socket.destroy();
  return out;
}

async function askReadsocket(address: string, request: string): Promise<string> {
  const [, host, port] = /^inet:([^:]+):(\d+)$/.exec(address)!;
  const socket = net.connect(Number(port), host);
  await once(socket, 'connect');
  socket.end(request);
  let out = '';
  for await (const chunk of socket) out += (chunk as Buffer).toString();
  return out;
}

test('checkid serve starts the policy and readsocket listeners from policy.listen and readsocket.listen; SIGTERM stops them', { timeout: 60_000 }, async () => {
  const config = join(tempDir('checkid-serve-policy-'), 'checkid.yaml');
  writeFileSync(config, `${ADAPTER_CONFIG_YAML}policy:\n  listen: inet:127.0.0.1:0\nreadsocket:\n  listen: inet:127.0.0.1:0\n`);
  const serve = await startDaemon(['serve', '--config', config, '--resolver', dns.address]);
  try {
    const { policy, readsocket } = serve.listening;
    assert.match(policy!, /^inet:127\.0\.0\.1:\d+$/);
    assert.match(readsocket!, /^inet:127\.0\.0\.1:\d+$/);
    assert.equal(await askPolicy(policy!, { helo_name: 'client.adapter.example', sender: 'a@fail.adapter.example', recipient: 'b@dest.example' }), "action=550 5.7.23 SPF: 'fail.adapter.example' does not designate '127.0.0.1' as permitted sender\n\n");
    assert.match(await askReadsocket(readsocket!, 'stage=mail\nip=127.0.0.1\nhelo=client.adapter.example\nsender=a@pass.adapter.example\n\n'), /^action="CONTINUE" /);
  } finally {
    assert.equal(await serve.stop('SIGTERM'), 0, serve.output());
  }
});

test('checkid policy without an address anywhere says so (exit 3); a bad --listen is a start-up error (exit 1)', () => {
  const config = join(tempDir('checkid-policy-cli-'), 'checkid.yaml');
  writeFileSync(config, ADAPTER_CONFIG_YAML);
  const none = checkid('policy', '--config', config, '--resolver', dns.address);
  assert.equal(none.status, 3);
  assert.match(none.stderr, /no listener is enabled/);
  const bad = checkid('readsocket', '--listen', 'unix:relative.sock', '--config', config, '--resolver', dns.address);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /cannot start readsocket on unix:relative\.sock: .*absolute path/);
});
