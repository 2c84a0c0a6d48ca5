/** The openspf.org RFC 7208 suite (pyspf's maintained copy): all 203 tests, one case each. */
import { test } from 'node:test';
import { assertCase, loadSuite, runCase } from '../checks/spf/suite.ts';

/**
 * Explanations compared without regard to case. v-macro-ip6 expects the %{i} nibbles of
 * CAFE:BABE::1 in upper case ("...E.B.A.B.E.F.A.C.ip6.arpa"), echoing how the test wrote the
 * host. RFC 7208 §7.3 does not fix the case of hex digits in the "i" expansion, its own §7.4
 * example writes them in lower case ("...8.b.d.0.1.0.0.2.ip6._spf.example.com"), and DNS names
 * compare case-insensitively (RFC 4343), so we expand in lower case and compare loosely here.
 */
const CASE_INSENSITIVE_EXPLANATION = new Set(['v-macro-ip6']);

const cases = loadSuite('rfc7208-tests.yml');

test('the RFC 7208 suite has 203 tests', (t) => {
  t.assert.equal(cases.length, 203);
});

for (const c of cases) {
  test(`${c.scenario} / ${c.name}`, async () => {
    assertCase(c, await runCase(c), CASE_INSENSITIVE_EXPLANATION.has(c.name));
  });
}
