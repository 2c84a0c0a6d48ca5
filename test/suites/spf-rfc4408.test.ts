/**
 * The openspf.org RFC 4408 suite, run against our RFC 7208 implementation: all 191 tests. Where
 * RFC 7208 changed a result (Appendix C: void lookups, the mx limit, type SPF records, ip4-mapped
 * addresses, ...), this older file already lists both answers, so no case needs skipping.
 */
import { test } from 'node:test';
import { assertCase, loadSuite, runCase } from '../checks/spf/suite.ts';

/** See spf-rfc7208.test.ts: the expected %{i} nibbles are upper case, ours lower (RFC 7208 §7.4). */
const CASE_INSENSITIVE_EXPLANATION = new Set(['v-macro-ip6']);

const cases = loadSuite('rfc4408-tests.yml');

test('the RFC 4408 suite has 191 tests', (t) => {
  t.assert.equal(cases.length, 191);
});

for (const c of cases) {
  test(`${c.scenario} / ${c.name}`, async () => {
    assertCase(c, await runCase(c), CASE_INSENSITIVE_EXPLANATION.has(c.name));
  });
}
