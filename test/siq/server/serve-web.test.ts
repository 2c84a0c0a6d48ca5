/**
 * The SIQ server as a postmaster runs it, with its web pages: `checkid siq serve --web-listen`
 * and `checkid serve` with siq_server.web_listen (child processes on a SQLite file, checks
 * asking a real DNS server), accounts from `checkid siq account add|passwd --password-stdin`
 * signing in, a profile saved on the pages answering real UDP queries, the server's figures on
 * /metrics, and the settings checkid refuses.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { publicAddress, siqWebOptions } from '../../../src/cli/siq-listener.ts';
import { SiqClient } from '../../../src/siq/client.ts';
import { defaultSiqServerConfig } from '../../../src/siq/server/config.ts';
import { CHECK_IDS } from '../../../src/siq/server/profile.ts';
import { runCheckid } from '../../support/daemon.ts';
import { tempDir } from '../../support/fixtures.ts';
import { csrfFrom, WebClient } from '../../web/client.ts';
import { rawQuery } from './fixtures.ts';
import { addressOf, eventually, siqProcessTests } from './processes.ts';

const PASSWORD = 'lantern orbit 7 quarry';
const NEW_PASSWORD = 'heron basalt 19 tundra';

const procs = siqProcessTests();

async function signIn(base: string, email: string, password: string): Promise<{ c: WebClient; status: number }> {
  const c = new WebClient(base);
  const csrf = csrfFrom((await c.get('/signin')).text);
  const r = await c.postForm('/signin', { _csrf: csrf, username: email, password });
  return { c, status: r.status };
}

test('siq serve --web-listen: a CLI account with a password signs in, its saved profile scores real queries; passwd resets it', async () => {
  const dir = tempDir('checkid-siq-web-');
  const db = join(dir, 'siq.db');
  const config = join(dir, 'siq.yaml');
  writeFileSync(
    config,
    [
      'siq_server:',
      '  http_listen: 127.0.0.1:0',
      '  web:',
      '    allow_signup: false',
      '    siq_address: siq.example.net:6262',
      '    session_idle_minutes: 5',
      '',
    ].join('\n'),
  );
  const account = ['siq', 'account', 'add', '--db', db, '--config', config, '--email', 'PM@Gateway.Example', '--ip', '127.0.0.1'];
  const weak = await runCheckid([...account, '--password-stdin'], { input: 'short\n' });
  assert.equal(weak.code, 1);
  assert.match(weak.stderr, /at least 12 characters/);
  const empty = await runCheckid(['siq', 'account', 'list', '--db', db]);
  assert.equal(empty.stdout, 'no accounts\n', 'a refused password writes nothing');
  const added = await runCheckid([...account, '--password-stdin', '--json'], { input: `${PASSWORD}\n` });
  assert.equal(added.code, 0, added.stderr);
  const made = JSON.parse(added.stdout) as { email: string; apiKey: string; password: boolean; ips: string[] };
  assert.equal(made.email, 'pm@gateway.example');
  assert.equal(made.password, true);
  assert.deepEqual(made.ips, ['127.0.0.1']);

  const siq = await procs.start([
    'siq', 'serve', '--listen', '127.0.0.1:0', '--web-listen', '127.0.0.1:0', '--db', db, '--config', config, '--resolver', procs.dns.address,
  ]);
  assert.match(siq.listening['siq-server']!, /^udp 127\.0\.0\.1:\d+, http 127\.0\.0\.1:\d+, web 127\.0\.0\.1:\d+, db .*siq\.db$/);
  const udp = addressOf(siq.listening['siq-server'], 'udp');
  const http = addressOf(siq.listening['siq-server'], 'http');
  const base = `http://${addressOf(siq.listening['siq-server'], 'web')}`;

  // sign-up is off: the operator's accounts only
  const visitor = new WebClient(base);
  assert.equal((await visitor.get('/signup')).status, 404);
  assert.doesNotMatch((await visitor.get('/signin')).text, /Sign up/);
  assert.equal((await signIn(base, 'pm@gateway.example', 'not the password at all')).status, 401);
  const { c, status } = await signIn(base, 'PM@gateway.example', PASSWORD);
  assert.equal(status, 303);
  const home = await c.get('/');
  assert.equal(home.status, 200);
  assert.match(home.text, /siq\.example\.net:6262/, 'the overview names siq_address');
  const key = await c.get('/key');
  assert.match(key.text, new RegExp(made.apiKey));
  assert.match(key.text, new RegExp(`http://${http.replace(/\./g, '\\.')}/siq/report`), 'the report URL from http_listen');

  // a profile saved on the pages: only iprev, base 37, +6 for a pass
  const fields: Record<string, string> = { _csrf: csrfFrom((await c.get('/profile')).text), base: '37', ttl: '120' };
  for (const id of CHECK_IDS) {
    fields[`checks.${id}.pass`] = id === 'iprev' ? '6' : '0';
    fields[`checks.${id}.fail`] = '0';
    fields[`checks.${id}.neutral`] = '0';
  }
  fields['checks.iprev.enabled'] = 'on';
  const saved = await c.postForm('/profile', fields);
  assert.equal(saved.status, 303, saved.text);
  const client = new SiqClient({ servers: [udp], cache: false, timeoutMs: 2000 });
  try {
    const r = await client.query({ ip: '192.0.2.10', domain: 'good.example' });
    assert.equal(r.status, 'answer');
    if (r.status === 'answer') {
      assert.equal(r.reply.score, 43);
      assert.equal(r.reply.text, 'iprev=pass');
      assert.equal(r.reply.ttl, 120);
    }
  } finally {
    client.close();
  }
  // the query log is written once a second: the query shows on the recent-queries page
  await eventually(async () => ((await c.get('/queries')).text.includes('iprev=pass') ? true : undefined), 'the query on /queries');

  // the operator resets the password from the command line
  const unknown = await runCheckid(['siq', 'account', 'passwd', '--db', db, '--email', 'nobody@gateway.example', '--password-stdin'], { input: `${NEW_PASSWORD}\n` });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no account for nobody@gateway\.example/);
  const noStdin = await runCheckid(['siq', 'account', 'passwd', '--db', db, '--email', 'pm@gateway.example']);
  assert.equal(noStdin.code, 2);
  assert.match(noStdin.stderr, /--password-stdin/);
  const reset = await runCheckid(['siq', 'account', 'passwd', '--db', db, '--email', 'pm@gateway.example', '--password-stdin'], { input: `${NEW_PASSWORD}\n` });
  assert.equal(reset.code, 0, reset.stderr);
  assert.match(reset.stdout, /password set for pm@gateway\.example/);
  assert.equal((await signIn(base, 'pm@gateway.example', PASSWORD)).status, 401, 'the old password no longer works');
  assert.equal((await signIn(base, 'pm@gateway.example', NEW_PASSWORD)).status, 303);
  const list = await runCheckid(['siq', 'account', 'list', '--db', db, '--json']);
  assert.deepEqual(
    (JSON.parse(list.stdout) as Array<{ email: string; password: boolean }>).map((a) => [a.email, a.password]),
    [['pm@gateway.example', true]],
  );
  assert.equal(await siq.stop(), 0);
});

test('checkid serve: the SIQ server from the config with its pages, and its figures on /metrics', async () => {
  const dir = tempDir('checkid-siq-metrics-');
  const config = join(dir, 'checkid.yaml');
  writeFileSync(
    config,
    [
      'http: { listen: 127.0.0.1:0 }',
      "milter: { listen: '' }",
      'siq_server:',
      '  listen: 127.0.0.1:0',
      '  web_listen: 127.0.0.1:0',
      '  db: siq.db',
      '  rate_limit: { per_second: 1, burst: 5 }',
      '',
    ].join('\n'),
  );
  const added = await runCheckid(['siq', 'account', 'add', '--config', config, '--email', 'pm@example.org', '--ip', '127.0.0.1']);
  assert.equal(added.code, 0, added.stderr);
  const serve = await procs.start(['serve', '--config', config, '--resolver', procs.dns.address]);
  const udp = addressOf(serve.listening['siq-server'], 'udp');
  const web = addressOf(serve.listening['siq-server'], 'web');
  assert.equal((await fetch(`http://${web}/signup`)).status, 200, 'sign-up is on by default');
  const metrics = async () => (await fetch(`http://${serve.listening.http}/metrics`)).text();
  const before = await metrics();
  assert.match(before, /^checkid_siq_server_queries_total 0$/m);

  const [host, port] = [udp.slice(0, udp.lastIndexOf(':')), Number(udp.slice(udp.lastIndexOf(':') + 1))];
  // three times the same question from the registered address: checks once, then the cache
  for (let i = 0; i < 3; i++) assert.ok(await rawQuery({ host, port }, '127.0.0.1', { ip: '192.0.2.10', domain: 'good.example' }));
  // an address no account registered: no reply
  assert.equal(await rawQuery({ host, port }, '127.0.0.2', { ip: '192.0.2.10', domain: 'good.example' }, 300), null);
  // not a SIQ query
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  s.send(Buffer.from('hello'), port, host);
  // over the rate limit (5 at once, then 1 a second): ten more at the same moment cannot all pass
  const burst = await Promise.all(
    Array.from({ length: 10 }, () => rawQuery({ host, port }, '127.0.0.1', { ip: '192.0.2.10', domain: 'good.example' }, 500)),
  );
  s.close();
  const answered = 3 + burst.filter((r) => r !== null).length;

  const text = await eventually(async () => {
    const t = await metrics();
    return /^checkid_siq_server_dropped_total\{reason="malformed"\} 1$/m.test(t) ? t : undefined;
  }, 'the malformed datagram counted');
  const value = (name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1]);
  assert.equal(value('checkid_siq_server_queries_total'), 15);
  assert.equal(value('checkid_siq_server_answers_total'), answered);
  assert.equal(value('checkid_siq_server_computed_total'), 1, 'the checks ran once');
  assert.equal(value('checkid_siq_server_cache_hits_total'), answered - 1, 'every other answer came from the cache');
  assert.equal(value('checkid_siq_server_dropped_total{reason="unregistered"}'), 1);
  assert.ok(answered < 13, `${answered} answers: the rate limit held some back`);
  assert.equal(value('checkid_siq_server_rate_limited_total'), 13 - answered);
  assert.match(text, /^# HELP checkid_siq_server_answers_total /m);
  assert.equal(await serve.stop(), 0);
});

test('settings checkid refuses: the pages off loopback without public_origin, a Redis store without Redis', async () => {
  const dir = tempDir('checkid-siq-refused-');
  const config = join(dir, 'checkid.yaml');
  writeFileSync(config, "siq_server:\n  listen: 127.0.0.1:0\n  web_listen: 0.0.0.0:8062\n  store: redis\n");
  const bad = await runCheckid(['siq', 'serve', '--config', config]);
  assert.equal(bad.code, 3);
  assert.match(bad.stderr, /checkid\.yaml: line 3, column 3: siq_server\.web_listen is 0\.0\.0\.0:8062, not a loopback address, and siq_server\.web\.public_origin is empty/);
  assert.match(bad.stderr, /checkid\.yaml: line 4, column 3: siq_server\.store is redis, but redis\.url is not set/);

  writeFileSync(config, "siq_server:\n  web_listen: '[::]:8062'\n  web: { public_origin: https://siq.example.net/path }\n");
  const path = await runCheckid(['siq', 'serve', '--config', config]);
  assert.equal(path.code, 3);
  assert.match(path.stderr, /siq_server\.web\.public_origin .*like https:\/\/siq\.example\.net \(scheme and host, no path\)/);

  // the flag is checked the same way when the listener starts
  const flag = await runCheckid(['siq', 'serve', '--listen', '127.0.0.1:0', '--web-listen', '0.0.0.0:0', '--resolver', procs.dns.address]);
  assert.equal(flag.code, 1);
  assert.match(flag.stderr, /cannot start siq-server on 127\.0\.0\.1:0: siq_server\.web_listen is 0\.0\.0\.0:0, not a loopback address/);
  const usage = await runCheckid(['siq', 'serve', '--listen', '127.0.0.1:0', '--web-listen', 'nowhere']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--web-listen nowhere: expected HOST:PORT/);

  writeFileSync(config, 'siq_server:\n  store: memory\n');
  const memory = await runCheckid(['siq', 'account', 'list', '--config', config]);
  assert.equal(memory.code, 2);
  assert.match(memory.stderr, /siq_server\.store is memory/);
});

test('the pages tell postmasters the public names of the server, not its wildcard or loopback binds', () => {
  assert.equal(publicAddress('0.0.0.0:6262', 'https://siq.example.net'), 'siq.example.net:6262');
  assert.equal(publicAddress('[::]:6262', 'https://siq.example.net:8443'), 'siq.example.net:6262');
  assert.equal(publicAddress('127.0.0.1:6262', ''), '127.0.0.1:6262');
  assert.equal(publicAddress('192.0.2.53:6262', 'https://siq.example.net'), '192.0.2.53:6262');
  const s = defaultSiqServerConfig();
  s.web.publicOrigin = 'https://siq.example.net';
  assert.deepEqual(siqWebOptions(s, { udp: '0.0.0.0:6262', http: '0.0.0.0:6263' }), {
    secure: true,
    siqAddress: 'siq.example.net:6262',
    reportUrl: 'http://siq.example.net:6263/siq/report',
  });
  s.web = { ...s.web, secure: false, siqAddress: 'siq.example.org:6264', reportUrl: 'https://siq.example.org/siq/report' };
  assert.deepEqual(siqWebOptions(s, { udp: '0.0.0.0:6262' }), {
    secure: false,
    siqAddress: 'siq.example.org:6264',
    reportUrl: 'https://siq.example.org/siq/report',
  });
  assert.deepEqual(siqWebOptions(defaultSiqServerConfig(), { udp: '127.0.0.1:6262' }), { secure: false, siqAddress: '127.0.0.1:6262' });
});
