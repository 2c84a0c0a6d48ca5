import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ARGON2_DEFAULTS,
  DEFAULT_PASSWORD_PARAMS,
  decodePasswordHash,
  HAVE_ARGON2,
  hashPassword,
  MAX_PASSWORD_LENGTH,
  needsRehash,
  passwordProblem,
  SCRYPT_DEFAULTS,
  TEST_PASSWORD_PARAMS,
  verifyPassword,
  verifyPasswordOrDummy,
} from '../../src/web/password.ts';

test('this Node has Argon2id, and it is the default', () => {
  assert.equal(HAVE_ARGON2, true, 'Node 24.7+ has crypto.argon2');
  assert.deepEqual(DEFAULT_PASSWORD_PARAMS, ARGON2_DEFAULTS);
});

test('default parameters: a self-describing Argon2id string that verifies, and a wrong password that does not', async () => {
  const encoded = await hashPassword('correct horse battery staple');
  assert.match(encoded, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.equal(await verifyPassword('correct horse battery staple', encoded), true);
  assert.equal(await verifyPassword('correct horse battery stapl', encoded), false);
  assert.equal(await verifyPassword('', encoded), false);
  assert.equal(needsRehash(encoded), false);
  // a fresh salt every time
  assert.notEqual(
    await hashPassword('correct horse battery staple', TEST_PASSWORD_PARAMS),
    await hashPassword('correct horse battery staple', TEST_PASSWORD_PARAMS),
  );
});

test('scrypt strings verify too (N = 2^17 by default), and need a rehash when Argon2id is the target', async () => {
  assert.deepEqual(SCRYPT_DEFAULTS, { algorithm: 'scrypt', logN: 17, blockSize: 8, parallelism: 1 });
  const p = { algorithm: 'scrypt', logN: 12, blockSize: 8, parallelism: 1 } as const;
  const encoded = await hashPassword('tr0ub4dor&3 horse', p);
  assert.match(encoded, /^\$scrypt\$ln=12,r=8,p=1\$/);
  assert.equal(await verifyPassword('tr0ub4dor&3 horse', encoded), true);
  assert.equal(await verifyPassword('tr0ub4dor&3 hors', encoded), false);
  assert.equal(needsRehash(encoded), true);
  assert.equal(needsRehash(encoded, p), false);
  assert.equal(needsRehash(encoded, { ...p, logN: 13 }), true);
});

test('weaker Argon2 parameters than the target need a rehash', async () => {
  const encoded = await hashPassword('some long passphrase', TEST_PASSWORD_PARAMS);
  assert.equal(needsRehash(encoded), true);
  assert.equal(needsRehash(encoded, TEST_PASSWORD_PARAMS), false);
  assert.equal(await verifyPassword('some long passphrase', encoded), true);
});

test('passwords are NFKC-normalised: a composed and a decomposed é are the same password', async () => {
  const encoded = await hashPassword('caf\u00e9 au lait 2024', TEST_PASSWORD_PARAMS);
  assert.equal(await verifyPassword('cafe\u0301 au lait 2024', encoded), true);
});

test('unreadable or out-of-bounds encodings verify as false and never throw', async () => {
  const good = await hashPassword('x'.repeat(20), TEST_PASSWORD_PARAMS);
  const bad = [
    '',
    'plain',
    '$argon2id$v=19$m=64,t=1,p=1$c2FsdA$',
    good.replace('v=19', 'v=16'),
    good.replace('m=64', 'm=99999999'), // 95 GiB: refused before any work
    good.replace('t=1', 't=1000'),
    good.replace('m=64,t=1,p=1', 'm=64,t=1'),
    good.replace('m=64,t=1,p=1', 'm=64,t=1,p=1,x=2'),
    good.replace('m=64,t=1,p=1', 'm=64,m=64,p=1'),
    `${good}$extra`,
    good.replace(/\$[^$]+$/, '$!!!!'),
    '$scrypt$ln=40,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA',
    '$bcrypt$2b$10$abcdefghijklmnopqrstuv',
    `$argon2id$v=19$m=64,t=1,p=1$${'A'.repeat(600)}$AAAA`,
  ];
  for (const enc of bad) {
    assert.equal(await verifyPassword('x'.repeat(20), enc), false, enc);
    assert.equal(needsRehash(enc), true);
  }
  assert.equal(decodePasswordHash(good.replace('m=64', 'm=99999999')), null);
  assert.equal(await verifyPassword('x'.repeat(MAX_PASSWORD_LENGTH + 1), good), false);
  await assert.rejects(hashPassword('x'.repeat(MAX_PASSWORD_LENGTH + 1)), /longer than/);
  await assert.rejects(
    hashPassword('x', { algorithm: 'argon2id', memoryKiB: 4, passes: 1, parallelism: 1 }),
    /out of bounds/,
  );
});

test('verifyPasswordOrDummy: false without a stored hash, the real answer with one', async () => {
  assert.equal(await verifyPasswordOrDummy('anything at all', null), false);
  const encoded = await hashPassword('another passphrase', TEST_PASSWORD_PARAMS);
  assert.equal(await verifyPasswordOrDummy('another passphrase', encoded), true);
  assert.equal(await verifyPasswordOrDummy('another passphrasE', encoded), false);
});

test('the strength minimum', () => {
  assert.match(passwordProblem('short')!, /at least 12 characters/);
  assert.match(passwordProblem('aaaaaaaaaaaaaaaa')!, /too few different/);
  assert.match(passwordProblem('Password12345')!, /well-known/);
  assert.match(passwordProblem('1234567890abc')!, /well-known/);
  assert.match(passwordProblem('postmaster2024!')!, /well-known/);
  assert.match(passwordProblem('hostmaster-jane-2024', { account: 'jane@example.org' })!, /account name/);
  assert.equal(passwordProblem('violet staple 42 ferry'), null);
  assert.equal(passwordProblem('ab1!', { minLength: 4 }), null);
  // counted in characters, not UTF-16 units: 11 emoji are still too short
  assert.match(passwordProblem('🐘🐙🐚🐛🐜🐝🐞🐟🐠🐡🐢')!, /at least 12/);
});
