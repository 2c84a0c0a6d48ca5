/**
 * The RFC 7208 suite again, end to end over the wire: our stub resolver (no cache) asks the real
 * test DNS server (UDP, TCP on truncation) that serves each scenario's zone data, so SPF, the
 * resolver's status mapping (NXDOMAIN / NODATA / timeout) and the codec are proven together.
 */
import { after, before, describe, test } from 'node:test';
import { createResolver, type ManagedResolver } from '../../src/dns/config.ts';
import { assertCase, loadSuite, runCase, type SuiteCase } from '../checks/spf/suite.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';

const CASE_INSENSITIVE_EXPLANATION = new Set(['v-macro-ip6']);
const cases = loadSuite('rfc7208-tests.yml');
const byScenario = new Map<string, SuiteCase[]>();
for (const c of cases) byScenario.set(c.scenario, [...(byScenario.get(c.scenario) ?? []), c]);

let dns: DnsTestServer;
let resolver: ManagedResolver;
before(async () => {
  dns = await startDnsServer({ zone: {} });
  // timeouts are the suite's TIMEOUT entries: keep them short, one try
  resolver = createResolver({ servers: [dns.address], timeoutMs: 150, attempts: 1, cache: false });
});
after(async () => {
  await resolver.close();
  await dns.close();
});

for (const [scenario, list] of byScenario) {
  describe(`over DNS: ${scenario}`, () => {
    before(() => dns.setZone(list[0]!.zone));
    for (const c of list) {
      test(c.name, async () => {
        assertCase(c, await runCase(c, resolver), CASE_INSENSITIVE_EXPLANATION.has(c.name));
      });
    }
  });
}
