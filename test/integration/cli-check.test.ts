/**
 * `checkid check` exactly as users and acceptance checks call it: a child process, real DNS over
 * UDP/TCP from a local test server serving the seed zone.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCheckid } from '../support/daemon.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { FIXTURES, seedZone, tempDir } from '../support/fixtures.ts';

const fixtures = FIXTURES;

let dns: DnsTestServer;
before(async () => {
  dns = await startDnsServer({ zone: seedZone() });
});
after(async () => {
  await dns.close();
});

const checkid = (args: string[]) => runCheckid(args, { timeoutMs: 20_000 });

test('seed REJECT through the CLI, JSON', async () => {
  const r = await checkid(['check', '--ip', '192.0.2.1', '--id', 'example.net', '--config', join(fixtures, 'seed-authent.yaml'), '--resolver', dns.address, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.action, 'REJECT');
  assert.deepEqual(out.reply, { code: 550, xcode: '5.7.1', text: "Sending MTA '192.0.2.1' not authorized by 'example.net'" });
  assert.deepEqual(out.headers, []);
  assert.ok(dns.stats.udp > 0, 'the answer came over the wire');
});

test('seed ACCEPT through the CLI, JSON, with the Authent: header to the letter', async () => {
  const r = await checkid(['check', '--ip', '192.0.2.1', '--id', 'example.com', '--config', join(fixtures, 'seed-authent.yaml'), '--resolver', dns.address, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.action, 'ACCEPT');
  assert.deepEqual(out.reply, { code: 250, xcode: '', text: 'Sender OK' });
  assert.deepEqual(out.headers, [{ label: 'Authent:', text: '192.0.2.1 example.com SPF1 PASS ratings=S1:A,M2:A,H1:B' }]);
});

test('readable output explains the facts and the decision', async () => {
  const r = await checkid(['check', '--ip', '192.0.2.1', '--id', 'example.net', '--helo', 'mx.example.com', '--config', join(fixtures, 'seed-authent.yaml'), '--resolver', dns.address]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /identity +example\.net \(from the ID command\): SPF1 FAIL/);
  assert.match(r.stdout, /iprev +pass/);
  assert.match(r.stdout, /verdict +REJECT at id \(identity-spf-fail\)/);
  assert.match(r.stdout, /reply +550 5\.7\.1 Sending MTA '192\.0\.2\.1' not authorized by 'example\.net'/);
});

test('a whole message: FILTER at end of message with both headers by default', async () => {
  const dir = tempDir('checkid-cli-');
  const eml = join(dir, 'm.eml');
  writeFileSync(eml, 'From: a@example.com\r\nSubject: hello\r\n\r\nbody\r\n');
  const r = await checkid(['check', '--ip', '192.0.2.1', '--helo', 'mx.example.com', '--from', 'a@example.com', '--rcpt', 'b@example.org', '--message', eml, '--resolver', dns.address, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.action, 'FILTER');
  assert.deepEqual(out.headers.map((h: { label: string }) => h.label), ['Authentication-Results:', 'Authent:']);
  assert.match(out.headers[0].text.replace(/\r\n\t/g, " "), /spf=pass \(192\.0\.2\.1 is authorized by example\.com\) smtp\.mailfrom=a@example\.com;/);
});

test('DNS that never answers → TEMPFAIL 451 4.4.3 within the deadline, never a hang', async () => {
  const dir = tempDir('checkid-cli-');
  const config = join(dir, 'c.yaml');
  writeFileSync(config, 'deadline_ms: 1500\nresolver:\n  timeout_ms: 200\n  attempts: 1\n');
  const r = await checkid(['check', '--ip', '192.0.2.1', '--id', 'temp.example', '--config', config, '--resolver', dns.address, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.action, 'TEMPFAIL');
  assert.equal(out.reply.code, 451);
  assert.equal(out.reply.xcode, '4.4.3');
});

test('usage errors exit 2, config errors exit 3 naming file, line and key', async () => {
  const usage = await checkid(['check', '--id', 'example.com']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--ip is required/);
  const badIp = await checkid(['check', '--ip', 'not-an-ip', '--resolver', dns.address]);
  assert.equal(badIp.code, 2);
  assert.match(badIp.stderr, /not an IP address/);
  const dir = tempDir('checkid-cli-');
  const config = join(dir, 'bad.yaml');
  writeFileSync(config, 'authserv_id: mx.example.org\nprescreen:\n  threshhold: 2\n');
  const bad = await checkid(['check', '--ip', '192.0.2.1', '--config', config]);
  assert.equal(bad.code, 3);
  assert.ok(bad.stderr.includes(`${config}: line 3, column 3: prescreen.threshhold unknown key "threshhold" (did you mean "threshold"?)`), bad.stderr);
});

test('DNS server down (nothing listening) → TEMPFAIL 451 4.4.3, promptly', async () => {
  const dir = tempDir('checkid-cli-');
  const config = join(dir, 'c.yaml');
  writeFileSync(config, 'deadline_ms: 2000\nresolver:\n  timeout_ms: 300\n  attempts: 1\n');
  const r = await checkid(['check', '--ip', '192.0.2.1', '--id', 'example.com', '--config', config, '--resolver', '127.0.0.1:9', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.action, 'TEMPFAIL');
  assert.equal(out.reply.code, 451);
});
