/**
 * Cross-check over real zone data: every name of every scenario of the RFC 7208 and RFC 4408
 * SPF suites is asked for A, AAAA, TXT, MX and PTR through the UDP/TCP test server (dns-packet on
 * the wire) and our StubResolver, and must give what the in-memory Zone gives.
 *
 * The one intended difference: a CNAME loop. The Zone follows one level and says NODATA; over
 * the wire the server sends the looping chain and the resolver reports an error, as RFC 1034
 * §3.6.2 asks (for SPF both mean "no match", RFC 7208 §5.5).
 * Names the Zone times out are not asked (stub.test.ts covers timeouts), so no test waits.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { normalizeIp } from '../../src/common/ip.ts';
import { StubResolver } from '../../src/dns/stub.ts';
import type { DnsResult, RecordType } from '../../src/dns/types.ts';
import { type DnsTestServer, startDnsServer } from '../support/dns-server.ts';
import { Zone, type ZoneData } from '../support/zone.ts';

const SUITES = ['rfc7208-tests.yml', 'rfc4408-tests.yml'].map(
  (f) => new URL(`../../../shared/testdata/spf/${f}`, import.meta.url).pathname,
);
const TYPES: RecordType[] = ['A', 'AAAA', 'TXT', 'MX', 'PTR'];

/** Comparable form: the server sends TXT as UTF-8 in ≤255-octet pieces; we read bytes as latin1. */
function normalise(r: DnsResult<RecordType>): unknown {
  if (r.status === 'timeout' || r.status === 'servfail') return { status: r.status };
  if (r.status !== 'ok') return r;
  const records = r.records.map((rec) => {
    if (Array.isArray(rec)) return rec.map((s) => Buffer.from(s, 'latin1').toString('utf8')).join('');
    return typeof rec === 'string' ? (normalizeIp(rec) ?? rec) : rec;
  });
  return { ...r, records };
}

function expected(zone: Zone, name: string, type: RecordType): unknown {
  const r = zone.answer(name, type);
  if (r.status === 'ok' && type === 'TXT') {
    return { ...r, records: (r.records as string[][]).map((rec) => rec.join('')) };
  }
  return normalise(r);
}

const available = SUITES.every((f) => existsSync(f));

describe('SPF suite zones through the wire', {
  skip: available ? false : 'shared/testdata is not here',
}, () => {
  let server: DnsTestServer;
  let resolver: StubResolver;
  before(async () => {
    server = await startDnsServer({ zone: {} });
    resolver = new StubResolver({
      servers: [server.address],
      timeoutMs: 5000,
      attempts: 2,
      maxInFlight: 256,
    });
  });
  after(async () => {
    await resolver.close();
    await server.close();
  });

  for (const file of SUITES) {
    test(file.split('/').pop()!, async () => {
      let compared = 0;
      let scenarios = 0;
      const differences: string[] = [];
      let skipped = 0;
      for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
        const data = (doc.toJS() as { zonedata?: ZoneData } | null)?.zonedata;
        if (!data) continue;
        scenarios++;
        const zone = new Zone(data);
        server.setZone(zone);
        const names = [...Object.keys(data), 'absent.example.invalid'];
        const jobs: Promise<void>[] = [];
        for (const name of names) {
          // one level of CNAME (the Zone's convention) versus the server's full chain: equal for
          // these suites except where a chain is longer, which they do not have
          for (const type of TYPES) {
            if (zone.answer(name, type).status === 'timeout') {
              skipped++;
              continue;
            }
            jobs.push(
              resolver.query(name, type).then((got) => {
                const want = expected(zone, name, type);
                compared++;
                try {
                  assert.deepEqual(normalise(got), want);
                } catch {
                  const loop = got.status === 'error' && /CNAME loop/.test(got.message);
                  differences.push(
                    `${name}/${type}${loop ? ' CNAME loop' : `: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`}`,
                  );
                }
              }),
            );
          }
        }
        await Promise.all(jobs);
      }
      const loops = file.endsWith('rfc7208-tests.yml')
        ? ['cname.example.com', 'loop4.example.com'].flatMap((n) => TYPES.map((t) => `${n}/${t} CNAME loop`))
        : [];
      assert.deepEqual(differences.sort(), loops.sort());
      assert.ok(skipped > 0, 'the suites have TIMEOUT names');
      assert.ok(scenarios >= 15, `${scenarios} scenarios`);
      assert.ok(compared > 1000, `${compared} comparisons`);
    });
  }
});
