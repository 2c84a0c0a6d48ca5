/** `checkid dashboard hash-password`: a hash the config accepts and the sign-in verifies. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { parseConfig } from '../../src/policy/config.ts';
import { verifyPassword } from '../../src/web/password.ts';

const MODULE = new URL('../../src/cli/dashboard.ts', import.meta.url).href;

function run(args: string[], input: string) {
  const script = `import { runDashboardCommand } from ${JSON.stringify(MODULE)}; process.exitCode = await runDashboardCommand(${JSON.stringify(args)});`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], { input, encoding: 'utf8' });
}

test('hash-password --user prints a users entry; the config loads it and the password verifies', async () => {
  const r = run(['hash-password', '--user', 'postmaster'], 'correct horse battery staple\n');
  assert.equal(r.status, 0, r.stderr);
  const config = parseConfig(`dashboard:\n  listen: 0.0.0.0:8025\n  users:\n${r.stdout}`);
  const [user] = config.dashboard.users;
  assert.equal(user?.name, 'postmaster');
  assert.ok(await verifyPassword('correct horse battery staple', user!.passwordHash));
  assert.ok(!(await verifyPassword('correct horse battery stapler', user!.passwordHash)));
});

test('hash-password refuses a weak password and unknown subcommands', () => {
  const weak = run(['hash-password'], 'password1\n');
  assert.equal(weak.status, 1);
  assert.match(weak.stderr, /at least 12 characters/);
  const unknown = run(['frobnicate'], '');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown subcommand "frobnicate"/);
});
