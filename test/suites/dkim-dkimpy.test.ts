/**
 * dkimpy's vectors (testdata/dkim-dkimpy, verify-cases.yml): three pre-signed messages, the
 * key-record cases (a message signed with test.private, verified against each record), and
 * sign-then-verify round trips with its keys, signed by mailauth (the test oracle) so signer and
 * verifier are independent.
 */
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { test } from 'node:test';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { verifyMessage } from '../../src/checks/dkim/index.ts';
import { ManualClock } from '../../src/common/clock.ts';
import { dkimpyCases, dkimpyZone, readData, toCrlf } from '../checks/dkim/corpus.ts';
import { MemoryResolver } from '../support/zone.ts';

const cases = dkimpyCases();
const zone = dkimpyZone(cases);
const clock = new ManualClock(Date.parse('2020-01-01T00:00:00Z'));

test('three verify vectors and six key-record cases are listed', () => {
  assert.equal(cases.verify.length, 3);
  assert.equal(Object.keys(cases.key_records).length, 6);
});

for (const v of cases.verify) {
  test(`dkimpy vector ${v.file}: ${v.expected}`, async () => {
    const raw = toCrlf(readData(`dkim-dkimpy/${v.file}`));
    const results = await verifyMessage(raw, { resolver: new MemoryResolver(zone), clock });
    assert.ok(results.length >= 1);
    for (const r of results) assert.equal(r.result, v.expected, `${r.selector}: ${r.reason}`);
  });
}

test('rfc6376.signed.msg: both signatures (ed25519 brisbane, rsa-sha256 test), simple/simple', async () => {
  const results = await verifyMessage(toCrlf(readData('dkim-dkimpy/rfc6376.signed.msg')), {
    resolver: new MemoryResolver(zone),
    clock,
  });
  assert.deepEqual(
    results.map((r) => [r.selector, r.algorithm, r.canonicalization, r.result]),
    [
      ['brisbane', 'ed25519-sha256', 'simple/simple', 'pass'],
      ['test', 'rsa-sha256', 'simple/simple', 'pass'],
    ],
  );
});

/** The RSA key of test.txt / test2.txt, as PEM. */
const TEST_PRIVATE = readData('dkim-dkimpy/test.private').toString('latin1');

/** What each key record must give for a message signed with test.private. */
const KEY_RECORD_RESULTS: Record<string, { result: string; reason?: RegExp }> = {
  'test.txt': { result: 'pass' },
  'test2.txt': { result: 'pass' },
  'badversion.txt': { result: 'permerror', reason: /unsupported version/ },
  'badk.txt': { result: 'permerror', reason: /unknown key type/ },
  'test_bad.txt': { result: 'permerror', reason: /not an RSA public key/ },
  'test_tlsrpt.txt': { result: 'permerror', reason: /not for email/ },
};

async function signedTestMessage(): Promise<Buffer> {
  const message = toCrlf(readData('dkim-dkimpy/test.message'));
  const o = {
    signingDomain: 'example.com',
    selector: 'test',
    privateKey: TEST_PRIVATE,
    canonicalization: 'relaxed/relaxed',
  };
  const signed = await dkimSign(message, { ...o, signatureData: [o] } as never);
  assert.equal(signed.errors.length, 0);
  return Buffer.concat([Buffer.from(signed.signatures), message]);
}

for (const [file, described] of Object.entries(cases.key_records)) {
  test(`dkimpy key record ${file}: ${described}`, async () => {
    const want = KEY_RECORD_RESULTS[file];
    assert.ok(want, `no expectation for ${file}`);
    const record = readData(`dkim-dkimpy/${file}`).toString('latin1').trim();
    const resolver = new MemoryResolver({ 'test._domainkey.example.com': [{ TXT: record }] });
    const [r] = await verifyMessage(await signedTestMessage(), { resolver, clock });
    assert.equal(r!.result, want.result, r!.reason);
    if (want.reason) assert.match(r!.reason, want.reason);
  });
}

/** A raw 32-octet Ed25519 seed (base64) as a PKCS#8 PEM, the form mailauth's signer takes. */
function ed25519Pem(seedBase64: string): string {
  const der = Buffer.concat([
    Buffer.from('302e020100300506032b657004220420', 'hex'),
    Buffer.from(seedBase64.trim(), 'base64'),
  ]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
}

const ROUND_TRIPS = [
  {
    key: ed25519Pem(readData('dkim-dkimpy/ed25519test.key').toString('latin1')),
    domain: 'example.net',
    selector: 'test',
    msg: 'ed25519test.msg',
  },
  {
    key: ed25519Pem(readData('dkim-dkimpy/rfc8032_7_1.key').toString('latin1')),
    domain: 'football.example.com',
    selector: 'brisbane',
    msg: 'rfc6376.msg',
  },
  {
    key: readData('dkim-dkimpy/test2.private').toString('latin1'),
    domain: 'example.com',
    selector: 'test',
    msg: 'test_extra.message',
  },
];

for (const rt of ROUND_TRIPS) {
  for (const c of ['simple/simple', 'relaxed/relaxed']) {
    test(`round trip: ${rt.msg} signed for ${rt.selector}._domainkey.${rt.domain} (${c})`, async () => {
      const message = toCrlf(readData(`dkim-dkimpy/${rt.msg}`));
      const o = { signingDomain: rt.domain, selector: rt.selector, privateKey: rt.key, canonicalization: c };
      const signed = await dkimSign(message, { ...o, signatureData: [o] } as never);
      assert.equal(signed.errors.length, 0);
      const full = Buffer.concat([Buffer.from(signed.signatures), message]);
      const [r] = await verifyMessage(full, { resolver: new MemoryResolver(zone), clock });
      assert.equal(r!.result, 'pass', r!.reason);
      const tampered = Buffer.from(
        full
          .toString('latin1')
          .replace(/\r\n\r\n/, '\r\nX-Added: later\r\n\r\n')
          .replace(/(\r\n[^\r\n]*)\r\n$/, '$1!\r\n'),
        'latin1',
      );
      const [t] = await verifyMessage(tampered, { resolver: new MemoryResolver(zone), clock });
      assert.equal(t!.result, 'fail', 'a changed last body line breaks it');
    });
  }
}
