/**
 * `checkid siq serve` and `checkid siq account` as a postmaster runs them: child processes on one
 * SQLite file, queried with `checkid siq query`, checks asking a real DNS server.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Ran, runCheckid, startDaemon } from '../../support/daemon.ts';
import { tempDir } from '../../support/fixtures.ts';
import { siqProcessTests } from './processes.ts';

const procs = siqProcessTests();

const checkid = (args: string[]) => runCheckid(args, { timeoutMs: 20_000 });

/** `checkid siq query` at `server` for an IP and a domain. */
const siqQuery = (server: string, ip: string, domain: string, ...more: string[]) =>
  checkid(['siq', 'query', '--server', server, '--ip', ip, '--domain', domain, ...more]);

/** `checkid siq account add` on the database `db` for an e-mail address and a source IP. */
const accountAdd = (db: string, email: string, ip: string, ...more: string[]) =>
  checkid(['siq', 'account', 'add', '--db', db, '--email', email, '--ip', ip, ...more]);

test('siq serve + account add on one database, asked with siq query; SIGTERM exits 0', async () => {
  const dir = tempDir('checkid-siq-serve-');
  const db = join(dir, 'siq.db');
  const siq = await startDaemon(['siq', 'serve', '--listen', '127.0.0.1:0', '--db', db, '--resolver', procs.dns.address]);
  try {
    const address = /^udp (127\.0\.0\.1:\d+), db /.exec(siq.listening['siq-server'] ?? '')?.[1];
    assert.ok(address, JSON.stringify(siq.listening));
    // not registered yet: no reply (exit 4)
    const before = await siqQuery(address, '192.0.2.10', 'good.example', '--timeout', '300');
    assert.equal(before.code, 4, before.stderr);

    // another process registers this host; the server notices through the shared database
    const added = await accountAdd(db, 'Postmaster@Example.org', '127.0.0.1', '--json');
    assert.equal(added.code, 0, added.stderr);
    const account = JSON.parse(added.stdout) as {
      email: string;
      ips: string[];
      apiKey: string;
      created: boolean;
    };
    assert.equal(account.email, 'postmaster@example.org');
    assert.deepEqual(account.ips, ['127.0.0.1']);
    assert.match(account.apiKey, /^[0-9a-f]{64}$/);
    assert.equal(account.created, true);

    let answer: Ran = { code: -1, stdout: '', stderr: '' };
    for (let i = 0; i < 20 && answer.code !== 0; i++) {
      answer = await siqQuery(address, '192.0.2.10', 'good.example', '--timeout', '500', '--json');
    }
    assert.equal(answer.code, 0, answer.stderr);
    const out = JSON.parse(answer.stdout) as { score: number; text: string; revision: string; ttl: number };
    assert.ok(out.score >= 90, answer.stdout);
    assert.match(out.text, /spf_pass=pass/);
    assert.equal(out.revision, '-02');
    assert.equal(out.ttl, 300);
    const bad = await siqQuery(address, '198.51.100.7', 'nullmx.example', '--json');
    // a pool name, a null-MX domain without SPF or DMARC (no DNSBL zones are configured here)
    assert.ok((JSON.parse(bad.stdout) as { score: number }).score < 30, bad.stdout);

    // the same IP for another account is refused; list shows the one account
    const taken = await accountAdd(db, 'other@example.org', '127.0.0.1');
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /registered to another account/);
    const list = await checkid(['siq', 'account', 'list', '--db', db]);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^postmaster@example\.org\t127\.0\.0\.1\t/m);
    assert.equal(list.stdout.trim().split('\n').length, 1);
  } finally {
    assert.equal(await siq.stop(), 0);
  }
});

test('checkid serve starts the siq-server listener from the config; usage and config errors', async () => {
  const dir = tempDir('checkid-siq-serve-');
  const config = join(dir, 'checkid.yaml');
  writeFileSync(
    config,
    "http:\n  listen: ''\nmilter:\n  listen: ''\nsiq_server:\n  listen: 127.0.0.1:0\n  http_listen: 127.0.0.1:0\n  db: siq.db\n",
  );
  const serve = await startDaemon(['serve', '--config', config, '--resolver', procs.dns.address]);
  try {
    assert.match(
      serve.listening['siq-server'] ?? '',
      /^udp 127\.0\.0\.1:\d+, http 127\.0\.0\.1:\d+, db .*\/siq\.db$/,
    );
    const http = /http (127\.0\.0\.1:\d+)/.exec(serve.listening['siq-server']!)![1];
    const res = await fetch(`http://${http}/siq/protocol-1?ip=192.0.2.10`);
    assert.equal(res.status, 403, 'an unregistered address');
  } finally {
    assert.equal(await serve.stop(), 0);
  }

  writeFileSync(
    config,
    'siq_server:\n  listen: 127.0.0.1:6262\n  rate_limit:\n    per_secnd: 5\n  default_profile:\n    checks:\n      dnsbl: { fail: -300 }\n',
  );
  const bad = await checkid(['siq', 'serve', '--config', config]);
  assert.equal(bad.code, 3);
  assert.match(
    bad.stderr,
    /checkid\.yaml: line 4, column 5: siq_server\.rate_limit\.per_secnd unknown key "per_secnd" \(did you mean "per_second"\?\)/,
  );
  assert.match(
    bad.stderr,
    /checkid\.yaml: line 7, column 16: siq_server\.default_profile\.checks\.dnsbl\.fail must be at least -100, not -300/,
  );

  // no --db and no siq_server.db: siq.db in the state directory, the server's default too
  const stateDir = join(dir, 'state');
  writeFileSync(config, `state_dir: ${stateDir}\n`);
  const added = await checkid(['siq', 'account', 'add', '--email', 'pm@state.example', '--ip', '192.0.2.77', '--config', config]);
  assert.equal(added.code, 0, added.stderr);
  assert.ok(existsSync(join(stateDir, 'siq.db')), 'the account went into <state_dir>/siq.db');
  const listed = await checkid(['siq', 'account', 'list', '--config', config]);
  assert.match(listed.stdout, /pm@state\.example/);
  const usage = await checkid([
    'siq',
    'account',
    'add',
    '--db',
    join(dir, 'x.db'),
    '--email',
    'a@example.org',
  ]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /at least one --ip/);
  const help = await checkid(['siq', 'serve', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /checkid siq serve --listen HOST:PORT/);
});
