/** The dashboard: config section: defaults, paths, and the refusals with file, line and key. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLoopback, listenHost } from '../../src/dashboard/config.ts';
import { defaultConfig, parseConfig } from '../../src/policy/config.ts';
import { hashPassword } from '../../src/web/password.ts';
import { configProblems } from '../support/config.ts';

const problems = (text: string) => configProblems(text, '/etc/checkid/checkid.yaml', '/etc/checkid');

test('defaults: loopback 8025, history in the state directory, 30 days, no users', () => {
  const d = defaultConfig().dashboard;
  assert.equal(d.listen, '127.0.0.1:8025');
  assert.equal(d.listenConfigured, false);
  assert.deepEqual(d.history, { db: '', retentionDays: 30, memoryRecords: 10_000 });
  assert.deepEqual(d.users, []);
});

test('a relative history path is resolved against the config file; memory stays memory', () => {
  const c = parseConfig("dashboard:\n  listen: '127.0.0.1:9000'\n  history:\n    db: history/verdicts.db\n    retention_days: 7\n", '/etc/checkid/checkid.yaml', '/etc/checkid');
  assert.equal(c.dashboard.history.db, '/etc/checkid/history/verdicts.db');
  assert.equal(c.dashboard.history.retentionDays, 7);
  assert.equal(c.dashboard.listenConfigured, true);
  assert.equal(parseConfig('dashboard:\n  history:\n    db: memory\n').dashboard.history.db, 'memory');
  assert.equal(parseConfig("dashboard:\n  listen: ''\n").dashboard.listen, '');
});

test('off loopback without users is refused, naming the line; with a user it loads', async () => {
  const [p] = problems('http:\n  listen: 127.0.0.1:8080\ndashboard:\n  listen: 0.0.0.0:8025\n');
  assert.match(p!, /^\/etc\/checkid\/checkid.yaml: line 4, column 3: dashboard.listen is 0.0.0.0:8025, not a loopback address, and dashboard.users is empty/);
  const hash = await hashPassword('a long enough passphrase');
  const c = parseConfig(`dashboard:\n  listen: '[::]:8025'\n  users:\n    - name: admin\n      password_hash: '${hash}'\n`);
  assert.deepEqual(c.dashboard.users, [{ name: 'admin', passwordHash: hash }]);
});

test('bad users: a password instead of a hash, the same name twice, unknown keys', () => {
  assert.match(problems('dashboard:\n  users:\n    - name: admin\n      password_hash: hunter2\n')[0]!, /dashboard.users\[0\].password_hash "hunter2" is not valid \(a password hash from/);
  const h = '$scrypt$ln=17,r=8,p=1$c2FsdA$aGFzaA';
  assert.match(problems(`dashboard:\n  users:\n    - { name: Admin, password_hash: '${h}' }\n    - { name: admin, password_hash: '${h}' }\n`)[0]!, /dashboard.users\[1\].name "admin" is listed twice/);
  assert.match(problems('dashboard:\n  history:\n    retention: 3\n')[0]!, /dashboard.history.retention unknown key "retention"; known keys: db, retention_days, memory_records/);
  assert.match(problems('dashboard:\n  public_origin: https://x.example/path\n')[0]!, /public_origin/);
});

test('loopback addresses', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', 'LOCALHOST']) assert.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '192.0.2.1', '128.0.0.1', 'localhost.example', '']) assert.ok(!isLoopback(h), h);
  assert.equal(listenHost('[::1]:8025'), '::1');
  assert.equal(listenHost('127.0.0.1:8025'), '127.0.0.1');
});
