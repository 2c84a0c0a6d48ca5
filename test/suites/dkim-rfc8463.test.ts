/**
 * The RFC 8463 Appendix A example (testdata/dkim-rfc8463-mailauth): one message signed with
 * ed25519-sha256 and rsa-sha256, relaxed/relaxed; both signatures pass.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DkimVerifier, verifyMessage } from '../../src/checks/dkim/index.ts';
import { ManualClock } from '../../src/common/clock.ts';
import { readData, rfc8463Zone, toCrlf } from '../checks/dkim/corpus.ts';
import { MemoryResolver } from '../support/zone.ts';

const clock = new ManualClock(Date.parse('2018-06-10T14:00:00Z'));

test('RFC 8463 example: the ed25519 and the RSA signature both pass', async () => {
  const resolver = new MemoryResolver(rfc8463Zone());
  const results = await verifyMessage(toCrlf(readData('dkim-rfc8463-mailauth/signed.eml')), {
    resolver,
    clock,
  });
  assert.deepEqual(
    results.map((r) => [r.result, r.algorithm, r.domain, r.selector, r.b]),
    [
      ['pass', 'ed25519-sha256', 'football.example.com', 'brisbane', '/gCrinpc'],
      ['pass', 'rsa-sha256', 'football.example.com', 'test', 'F45dVWDf'],
    ],
  );
  assert.equal(results[0]!.keyBits, 256);
  assert.equal(results[1]!.keyBits, 1024);
  assert.equal(resolver.queries, 2);
});

test('RFC 8463 example through the streaming API, one octet at a time', async () => {
  const raw = toCrlf(readData('dkim-rfc8463-mailauth/signed.eml')).toString('latin1');
  const split = raw.indexOf('\r\n\r\n');
  const v = new DkimVerifier({ resolver: new MemoryResolver(rfc8463Zone()), clock });
  const block = raw.slice(0, split + 2);
  for (const m of block.matchAll(/^([^:\r\n]+):((?:.*)(?:\r\n[ \t].*)*)\r\n/gm)) v.header(m[1]!, m[2]!);
  v.endOfHeaders();
  const body = Buffer.from(raw.slice(split + 4), 'latin1');
  for (let i = 0; i < body.length; i++) v.body(body.subarray(i, i + 1));
  const results = await v.finish();
  assert.deepEqual(
    results.map((r) => r.result),
    ['pass', 'pass'],
  );
});

test('RFC 8463 example: a changed body fails both, a revoked key is permerror', async () => {
  const raw = toCrlf(readData('dkim-rfc8463-mailauth/signed.eml')).toString('latin1');
  const changed = await verifyMessage(raw.replace('hungry', 'thirsty'), {
    resolver: new MemoryResolver(rfc8463Zone()),
    clock,
  });
  assert.deepEqual(
    changed.map((r) => [r.result, r.reason]),
    [
      ['fail', 'body hash did not verify'],
      ['fail', 'body hash did not verify'],
    ],
  );
  const zone = rfc8463Zone();
  zone['brisbane._domainkey.football.example.com'] = [{ TXT: 'v=DKIM1; k=ed25519; p=' }];
  const revoked = await verifyMessage(raw, { resolver: new MemoryResolver(zone), clock });
  assert.deepEqual(
    revoked.map((r) => r.result),
    ['permerror', 'pass'],
  );
});
