/**
 * contrib/systemd/checkid.service: systemd accepts it as written (systemd-analyze verify, with
 * /opt/checkid pointed at this checkout), and its ExecStart/ExecReload/KillSignal do what the
 * unit promises when run as systemd would run them: the daemon starts on the config, reloads on
 * HUP, keeps its state in $STATE_DIRECTORY and exits 0 on TERM.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon } from '../support/daemon.ts';
import { tempDir } from '../support/fixtures.ts';

const ROOT = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
const UNIT = readFileSync(join(ROOT, 'contrib/systemd/checkid.service'), 'utf8');

/** The [Service] key's value (the last one wins, as in systemd). */
function key(name: string): string {
  const values = [...UNIT.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]!);
  assert.ok(values.length > 0, `${name}= missing from the unit`);
  return values.at(-1)!;
}

const here = (s: string) => s.replaceAll('/opt/checkid', ROOT);

test('the unit uses the documented Debian paths', () => {
  assert.equal(key('ExecStart'), '/opt/checkid/node_modules/.bin/node /opt/checkid/bin/checkid.mjs serve --config /etc/checkid/checkid.yaml');
  assert.equal(key('StateDirectory'), 'checkid');
  assert.equal(key('RuntimeDirectory'), 'checkid');
  assert.equal(key('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(key('KillSignal'), 'SIGTERM');
  const doc = readFileSync(join(ROOT, 'docs/install.md'), 'utf8');
  for (const path of ['/opt/checkid', '/etc/checkid/checkid.yaml', '/var/lib/checkid', '/run/checkid', 'contrib/systemd/checkid.service']) {
    assert.ok(doc.includes(path), `docs/install.md does not mention ${path}`);
  }
});

const analyze = spawnSync('systemd-analyze', ['--version']);
test('systemd-analyze verify accepts the unit without a warning', { skip: analyze.status === 0 ? false : 'systemd-analyze is not installed' }, () => {
  const unit = join(tempDir(), 'checkid.service');
  writeFileSync(unit, here(UNIT));
  const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // verify exits 0 on warnings too: any line about our unit is a problem
  assert.equal(r.stderr.split('\n').filter((l) => l.includes('checkid.service')).join('\n'), '');
});

test("ExecStart starts on the config with $STATE_DIRECTORY, ExecReload reloads, TERM exits 0", async () => {
  const dir = tempDir('checkid-unit-');
  const config = join(dir, 'checkid.yaml');
  writeFileSync(config, "http:\n  listen: 127.0.0.1:0\nmilter:\n  listen: ''\nresolver:\n  servers: [127.0.0.1:9]\n  timeout_ms: 50\n  attempts: 1\n");
  const state = join(dir, 'state');
  const argv = here(key('ExecStart')).replace('/etc/checkid/checkid.yaml', config).split(' ');
  const unit = await startDaemon([], { cmd: argv, env: { STATE_DIRECTORY: state } });
  const address = unit.listening.http ?? '';
  assert.match(address, /^127\.0\.0\.1:\d+$/);
  assert.equal((await fetch(`http://${address}/healthz`)).status, 200);
  assert.ok(existsSync(state), 'the state directory was not made');

  const reload = key('ExecReload').replace('$MAINPID', String(unit.child.pid)).split(' ');
  execFileSync(reload[0]!, reload.slice(1));
  assert.equal((await unit.waitFor('the reload', (_line, e) => e?.msg === 'policy reloaded')).msg, 'policy reloaded');
  assert.equal(await unit.stop(key('KillSignal') as NodeJS.Signals), 0);
});
