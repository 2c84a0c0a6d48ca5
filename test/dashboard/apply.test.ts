/** Applying thresholds: the file edited in place with comments kept, validated first, reloaded, rolled back on failure. */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseDocument } from 'yaml';
import { ApplyError, applyToFile, changesOf, editConfigText, parseCandidate } from '../../src/dashboard/apply.ts';
import { type Config, defaultConfig, loadConfigFile, parseConfig } from '../../src/policy/config.ts';
import { PolicyStore } from '../../src/policy/store.ts';
import { tempDir } from '../support/fixtures.ts';

const OPERATOR = `# checkid on mx1 — edited by hand, keep my notes
authserv_id: mx.example.org   # our name

siq:
  servers: [127.0.0.1]   # the SIQ box
  tag_score: 50          # tag at or below
  # reject_score: 10     (not yet)
ratings:
  accept: { average: 7, min: 5 }   # reputable
  reject:
    average: 1   # very bad only
    max: 3
# the end
`;

test('an existing value is replaced where it stands; every comment, space and the key order stay', () => {
  const out = editConfigText(OPERATOR, { siqTagScore: 40 });
  assert.equal(out, OPERATOR.replace('tag_score: 50 ', 'tag_score: 40 '));
});

test('a missing key goes in as one line of its section; a missing section at the end', () => {
  const out = editConfigText(OPERATOR, { siqRejectScore: 20, dnsblThreshold: 3 });
  assert.equal(
    out,
    OPERATOR.replace('  servers: [127.0.0.1]', '  reject_score: 20\n  servers: [127.0.0.1]') + 'prescreen:\n  threshold: 3\n',
  );
  const c = parseConfig(out);
  assert.equal(c.siq.rejectScore, 20);
  assert.equal(c.prescreen.threshold, 3);
  assert.equal(c.siq.tagScore, 50);
});

test('rating thresholds: a flow mapping replaced in place, a block mapping edited key by key, null for off', () => {
  const out = editConfigText(OPERATOR, { ratingsAccept: { average: 8 }, ratingsReject: { average: 2, min: 0 } });
  assert.equal(
    out,
    OPERATOR.replace('accept: { average: 7, min: 5 }', 'accept: { average: 8 }')
      .replace('    average: 1   # very bad only\n    max: 3\n', '    min: 0\n    average: 2   # very bad only\n'),
  );
  const c = parseConfig(out);
  assert.deepEqual(c.ratings.accept, { average: 8 });
  assert.deepEqual(c.ratings.reject, { average: 2, min: 0 });
  const offText = editConfigText(OPERATOR, { ratingsReject: null });
  assert.equal(offText, OPERATOR.replace('  reject:\n    average: 1   # very bad only\n    max: 3\n', '  reject: null\n'));
  assert.equal(parseConfig(offText).ratings.reject, null);
});

test('an empty file (the overlay) and shapes the small edits cannot handle still give the right config', () => {
  assert.equal(editConfigText('', { siqTagScore: 30, siqRejectScore: 10 }), 'siq:\n  tag_score: 30\n  reject_score: 10\n');
  assert.equal(editConfigText('# only a comment', { dnsblThreshold: 2 }), '# only a comment\nprescreen:\n  threshold: 2\n');
  for (const text of ['siq: { tag_score: 50, servers: [127.0.0.1] }\n', 'siq:\n', 'siq: null\nhttp:\n  listen: 127.0.0.1:8080\n', '{ siq: { tag_score: 5 } }\n']) {
    const out = editConfigText(text, { siqTagScore: 33, siqRejectScore: 3 });
    const c = parseConfig(out);
    assert.equal(c.siq.tagScore, 33, text);
    assert.equal(c.siq.rejectScore, 3, text);
  }
  assert.throws(() => editConfigText('siq: [unclosed\n', { siqTagScore: 1 }), ApplyError);
});

test('parseCandidate: the config schema ranges, with clear messages', () => {
  assert.deepEqual(parseCandidate({ siqRejectScore: 20, ratingsReject: { average: 2, min: null } }), { siqRejectScore: 20, ratingsReject: { average: 2 } });
  assert.throws(() => parseCandidate({ siqRejectScore: 101 }), /siq.reject_score must be a whole number from -1 to 100, not 101/);
  assert.throws(() => parseCandidate({ siqTagScore: 2.5 }), /whole number/);
  assert.throws(() => parseCandidate({ dnsblThreshold: '3' }), /prescreen.threshold/);
  assert.throws(() => parseCandidate({ ratingsAccept: { avg: 3 } }), /unknown key "avg"/);
  assert.throws(() => parseCandidate({ ratingsAccept: {} }), /at least one/);
  assert.throws(() => parseCandidate({ hook: '/tmp/evil.ts' }), /unknown threshold "hook"/);
  assert.throws(() => parseCandidate([]), /JSON object/);
});

test('changesOf lists only what differs', () => {
  const c = defaultConfig();
  assert.deepEqual(changesOf(c, { siqTagScore: c.siq.tagScore, siqRejectScore: 10, ratingsAccept: { ...c.ratings.accept } }), [{ key: 'siq.reject_score', from: -1, to: 10 }]);
});

function storeFor(path: string | undefined, overlay?: string) {
  return new PolicyStore<Config>({ ...(path ? { path } : {}), ...(overlay ? { overlay } : {}), prepare: (c) => c });
}

test('applyToFile: the file changes, the store reloads and serves the new value; the mode is kept', async () => {
  const dir = tempDir('checkid-apply-');
  const file = join(dir, 'checkid.yaml');
  writeFileSync(file, OPERATOR, { mode: 0o640 });
  chmodSync(file, 0o640);
  const store = storeFor(file);
  await store.load();
  const outcome = await applyToFile({ file, overlay: false, reload: () => store.reload() }, store.current().config, { siqRejectScore: 25 });
  assert.deepEqual(outcome, { ok: true, file, generation: 2, changes: [{ key: 'siq.reject_score', from: -1, to: 25 }] });
  assert.equal(store.current().config.siq.rejectScore, 25);
  assert.equal(readFileSync(file, 'utf8'), OPERATOR.replace('  servers: [127.0.0.1]', '  reject_score: 25\n  servers: [127.0.0.1]'));
  assert.equal(statSync(file).mode & 0o777, 0o640);
  await assert.rejects(() => applyToFile({ file, overlay: false, reload: () => store.reload() }, store.current().config, { siqRejectScore: 25 }), /nothing to change/);
  store.close();
});

test('applyToFile through a symlinked config edits the target and keeps the link', async () => {
  const dir = tempDir('checkid-apply-');
  const real = join(dir, 'real.yaml');
  const link = join(dir, 'checkid.yaml');
  writeFileSync(real, OPERATOR);
  symlinkSync(real, link);
  const store = storeFor(link);
  await store.load();
  const o = await applyToFile({ file: link, overlay: false, reload: () => store.reload() }, store.current().config, { siqTagScore: 10 });
  assert.equal(o.ok, true);
  assert.match(readFileSync(real, 'utf8'), /tag_score: 10 /);
  assert.equal(store.current().config.siq.tagScore, 10);
  store.close();
});

test('an edit that would not validate is refused before anything is written; the policy is untouched', async () => {
  const dir = tempDir('checkid-apply-');
  const file = join(dir, 'checkid.yaml');
  // an alias feeds siq: the edit cannot say what it would change
  const text = 'defaults: &d\n  tag_score: 50\nsiq: *d\n';
  writeFileSync(file, text);
  const store = new PolicyStore<Config>({ path: file, prepare: (c) => c });
  // (this config is not valid in the first place: "defaults" is no key of ours)
  await assert.rejects(() => store.load());
  const live = defaultConfig();
  await assert.rejects(
    () => applyToFile({ file, overlay: false, reload: () => store.reload() }, live, { siqTagScore: 5 }),
    (err: ApplyError) => err.status === 409 && /edit it by hand/.test(err.message),
  );
  assert.equal(readFileSync(file, 'utf8'), text);
  // a file broken elsewhere (a hand edit in progress): the edit would not load, so it is not written
  const broken = 'siq:\n  tag_score: 50\nhttp:\n  lissen: 127.0.0.1:8080\n';
  writeFileSync(file, broken);
  await assert.rejects(
    () => applyToFile({ file, overlay: false, reload: () => store.reload() }, live, { siqTagScore: 5 }),
    (err: ApplyError) => err.status === 409 && /would not load, so nothing was written: .*unknown key "lissen"/.test(err.message),
  );
  assert.equal(readFileSync(file, 'utf8'), broken);
});

test('a reload that fails after the write puts the old file back and reloads it', async () => {
  const dir = tempDir('checkid-apply-');
  const file = join(dir, 'checkid.yaml');
  writeFileSync(file, OPERATOR);
  let calls = 0;
  const store = new PolicyStore<Config>({
    path: file,
    prepare: (c) => {
      calls++;
      // the new value trips something the loader does not check (as a broken hook would)
      if (c.siq.tagScore === 13) throw new Error('simulated failure while preparing the policy');
      return c;
    },
  });
  await store.load();
  const o = await applyToFile({ file, overlay: false, reload: () => store.reload() }, store.current().config, { siqTagScore: 13 });
  assert.equal(o.ok, false);
  assert.ok(!o.ok && o.restored);
  assert.match(!o.ok ? o.error : '', /simulated failure/);
  assert.equal(readFileSync(file, 'utf8'), OPERATOR);
  assert.equal(store.current().config.siq.tagScore, 50, 'the running policy never changed');
  assert.equal(calls, 3, 'load, the failed reload, the reload of the restored file');
  store.close();
});

test('without a config file: the overlay in the state directory is created, read over the defaults, and watched', async () => {
  const dir = tempDir('checkid-apply-');
  const overlay = join(dir, 'policy-overlay.yaml');
  const store = storeFor(undefined, overlay);
  await store.load();
  assert.equal(store.current().config.source, '', 'no overlay yet: the embedded defaults');
  const o = await applyToFile({ file: overlay, overlay: true, reload: () => store.reload() }, store.current().config, { siqRejectScore: 7, dnsblThreshold: 2 });
  assert.equal(o.ok, true);
  assert.ok(existsSync(overlay));
  assert.equal(store.current().config.siq.rejectScore, 7);
  assert.equal(store.current().config.prescreen.threshold, 2);
  assert.equal(store.current().config.source, overlay);
  assert.equal(loadConfigFile(overlay).siq.tagScore, defaultConfig().siq.tagScore, 'the other keys keep their defaults');
  // a hand edit of the overlay is picked up like any config edit
  store.watch(20);
  writeFileSync(overlay, `${readFileSync(overlay, 'utf8')}# by hand\n`.replace('reject_score: 7', 'reject_score: 9'));
  for (let i = 0; i < 200 && store.current().config.siq.rejectScore !== 9; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(store.current().config.siq.rejectScore, 9);
  store.close();
  assert.ok(parseDocument(readFileSync(overlay, 'utf8')).errors.length === 0);
});
