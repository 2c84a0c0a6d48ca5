import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveStateDir } from '../../src/common/state-dir.ts';
import { parseConfig } from '../../src/policy/config.ts';
import { tempDir } from '../support/fixtures.ts';

test('a configured state_dir wins and is created', () => {
  const dir = join(tempDir(), 'a', 'b');
  assert.equal(resolveStateDir(dir, { env: { STATE_DIRECTORY: '/nonexistent-x' } }), dir);
  assert.ok(statSync(dir).isDirectory());
});

test("systemd's STATE_DIRECTORY comes next (the first of a ':' list)", () => {
  const a = join(tempDir(), 'sd');
  assert.equal(resolveStateDir('', { env: { STATE_DIRECTORY: `${a}:/other` } }), a);
  assert.ok(existsSync(a));
});

test('a configured state_dir that cannot be made is an error naming it (even for root)', () => {
  const file = join(tempDir(), 'plain-file');
  writeFileSync(file, '');
  assert.throws(() => resolveStateDir(join(file, 'x')), /state_dir .*plain-file\/x: cannot create or write it/);
});

test('state_dir in the config is resolved against the config file directory', () => {
  assert.equal(parseConfig('state_dir: var/state\n', 'checkid.yaml', '/etc/checkid').stateDir, '/etc/checkid/var/state');
  assert.equal(parseConfig('', 'checkid.yaml', '/etc/checkid').stateDir, '');
});
