import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Engine, prepareConfig } from '../../src/engine/engine.ts';
import { PolicyStore } from '../../src/policy/store.ts';
import { tempDir } from '../support/fixtures.ts';
import { MemoryResolver } from '../support/zone.ts';

const resolver = new MemoryResolver({ 'example.com': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }] });

function setup() {
  const dir = tempDir('checkid-store-');
  const path = join(dir, 'checkid.yaml');
  writeFileSync(path, 'authserv_id: one.example\n');
  const outcomes: Array<{ ok: boolean }> = [];
  const store = new PolicyStore({ path, prepare: (c) => prepareConfig(c, resolver), onReload: (o) => outcomes.push(o) });
  return { dir, path, store, outcomes };
}

test('reload picks up a good edit', async () => {
  const { path, store } = setup();
  await store.load();
  assert.equal(store.current().config.authservId, 'one.example');
  writeFileSync(path, 'authserv_id: two.example\n');
  const o = await store.reload();
  assert.deepEqual(o, { ok: true, generation: 2 });
  assert.equal(store.current().config.authservId, 'two.example');
});

test('a broken edit keeps the last good policy serving and says why', async () => {
  const { path, store, outcomes } = setup();
  await store.load();
  writeFileSync(path, 'authserv_id: [oops\n');
  const o = await store.reload();
  assert.equal(o.ok, false);
  assert.match((o as { error: string }).error, /checkid\.yaml: line \d+, column \d+: YAML syntax error/);
  assert.match((o as { error: string }).error, /keeping the last good policy, generation 1/);
  assert.equal(store.current().config.authservId, 'one.example');
  assert.equal(outcomes.length, 1);
  // an invalid local list entry is a config error too (caught by prepare)
  writeFileSync(path, 'prescreen:\n  block: ["300.1.2.3/8"]\n');
  const o2 = await store.reload();
  assert.equal(o2.ok, false);
  assert.match((o2 as { error: string }).error, /300\.1\.2\.3\/8/);
  assert.equal(store.current().generation, 1);
});

test('a policy hook is loaded, reloaded on edit, and a broken hook keeps the previous one', async () => {
  const { dir, path, store } = setup();
  const hookPath = join(dir, 'policy.mjs');
  writeFileSync(hookPath, `export default ({ stage }) => stage === 'connect' ? { action: 'REJECT', reply: { code: 550, xcode: '5.7.1', text: 'first hook' } } : undefined;\n`);
  writeFileSync(path, 'hook: policy.mjs\n');
  await store.load();
  const engine = new Engine({ resolver, policy: store });
  assert.equal((await engine.checkID({ ip: '192.0.2.1' })).reply.text, 'first hook');

  writeFileSync(hookPath, `export default ({ stage }) => stage === 'connect' ? { action: 'TEMPFAIL' } : undefined;\n`);
  // make sure the mtime differs even on coarse file systems
  const later = new Date(Date.now() + 5000);
  (await import('node:fs')).utimesSync(hookPath, later, later);
  assert.equal((await store.reload()).ok, true);
  const v = await engine.checkID({ ip: '192.0.2.1' });
  assert.equal(v.action, 'TEMPFAIL');
  assert.equal(v.reply.code, 451);

  writeFileSync(hookPath, 'export default (( => syntax error\n');
  const evenLater = new Date(Date.now() + 10000);
  (await import('node:fs')).utimesSync(hookPath, evenLater, evenLater);
  const o = await store.reload();
  assert.equal(o.ok, false);
  assert.match((o as { error: string }).error, /does not load/);
  assert.equal((await engine.checkID({ ip: '192.0.2.1' })).action, 'TEMPFAIL');
});

test('a hook that throws or answers nonsense leaves the default verdict in force', async () => {
  const { dir, path, store } = setup();
  const hookPath = join(dir, 'bad.mjs');
  writeFileSync(hookPath, `export default ({ stage }) => { if (stage === 'connect') throw new Error('boom'); return { action: 'MAYBE' }; };\n`);
  writeFileSync(path, 'hook: bad.mjs\n');
  await store.load();
  const engine = new Engine({ resolver, policy: store });
  const r = await engine.checkID({ ip: '192.0.2.1', id: 'example.com' });
  assert.equal(r.action, 'CONTINUE');
  assert.equal(r.session.facts.internalErrors.length, 2);
  assert.match(r.session.facts.internalErrors[0]!, /boom/);
  assert.match(r.session.facts.internalErrors[1]!, /unknown action "MAYBE"/);
});

test('watch(): an edit of the config file is picked up without a restart', async () => {
  const { path, store } = setup();
  await store.load();
  store.watch(20);
  try {
    writeFileSync(path, 'authserv_id: watched.example\n');
    const deadline = Date.now() + 10_000;
    while (store.current().config.authservId !== 'watched.example' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(store.current().config.authservId, 'watched.example');
  } finally {
    store.close();
  }
});

test('a reload asked for during a reload is not lost', async () => {
  const { path, store } = setup();
  await store.load();
  writeFileSync(path, 'authserv_id: first.example\n');
  const a = store.reload();
  writeFileSync(path, 'authserv_id: second.example\n');
  const b = store.reload();
  await Promise.all([a, b]);
  assert.equal(store.current().config.authservId, 'second.example');
});
